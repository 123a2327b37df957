"""Inference with numpy + onnxruntime only: audio, framing, decoding, aggregation, regions,
speaker embeddings, clustering, diarization, writers."""

from .binarize import BinarizeOptions, Region
from .diarizer import Diarization, Diarizer, DiarizerOptions, Turn
from .live import DiarizationStream, LiveEnd
from .embedder import Embedder, EmbedderOptions, Embedding, Embeddings
from .segmenter import Segmentation, Segmenter, SegmenterOptions
from .stream import FrameScores, Stream

__all__ = ["BinarizeOptions", "Diarization", "DiarizationStream", "Diarizer", "DiarizerOptions",
           "Embedder", "EmbedderOptions", "Embedding", "Embeddings", "FrameScores", "LiveEnd",
           "Region", "Segmentation", "Segmenter", "SegmenterOptions", "Stream", "Turn"]
