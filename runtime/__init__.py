"""Inference with numpy + onnxruntime only: audio, framing, decoding, aggregation, regions,
speaker embeddings, writers."""

from .binarize import BinarizeOptions, Region
from .embedder import Embedder, EmbedderOptions, Embedding, Embeddings
from .segmenter import Segmentation, Segmenter, SegmenterOptions
from .stream import FrameScores, Stream

__all__ = ["BinarizeOptions", "Embedder", "EmbedderOptions", "Embedding", "Embeddings",
           "FrameScores", "Region", "Segmentation", "Segmenter", "SegmenterOptions", "Stream"]
