"""Torch stage: checkpoint -> PyanNet -> verified, quantized ONNX (needs the ``export`` extra)."""

from .checkpoint import load_checkpoint
from .pyannet import PyanNet

__all__ = ["PyanNet", "load_checkpoint"]
