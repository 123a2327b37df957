"""The shipped ONNX models, found as package data (works from a wheel, not only a checkout)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from powerseg.errors import ModelError, ModelNotFoundError

VARIANTS = {
    "fp32": "segmentation-3.0.onnx",
    "int8": "segmentation-3.0.int8.onnx",
    "fp16": "segmentation-3.0.fp16.onnx",  # for GPUs
}


def model_path(variant: str) -> Path:
    """Path of a shipped model variant ("fp32", "int8", "fp16")."""
    if variant not in VARIANTS:
        raise ModelError(f"unknown model {variant!r}: use one of {', '.join(VARIANTS)} "
                         "or the path of an .onnx file")
    path = Path(str(files(__name__).joinpath(VARIANTS[variant])))
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: shipped model {variant!r} is missing from this install")
    return path
