"""Inference with numpy + onnxruntime only: audio, framing, decoding, aggregation, regions, writers."""

from .binarize import BinarizeOptions, Region
from .segmenter import Segmentation, Segmenter, SegmenterOptions
from .stream import FrameScores, Stream

__all__ = ["BinarizeOptions", "FrameScores", "Region", "Segmentation", "Segmenter",
           "SegmenterOptions", "Stream"]
