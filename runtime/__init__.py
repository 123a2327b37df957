"""Inference with numpy + onnxruntime only: audio, framing, decoding, aggregation, regions,
speaker embeddings, clustering, diarization, writers."""

from powerseg.lazy import lazy_names

_LAZY = {
    "BinarizeOptions": ".binarize", "Region": ".binarize",
    "Diarization": ".diarizer", "Diarizer": ".diarizer", "DiarizerOptions": ".diarizer",
    "Turn": ".diarizer", "DiarizationStream": ".live", "LiveEnd": ".live",
    "Embedder": ".embedder", "EmbedderOptions": ".embedder", "Embedding": ".embedder",
    "Embeddings": ".embedder", "Segmentation": ".segmenter", "Segmenter": ".segmenter",
    "SegmenterOptions": ".segmenter", "FrameScores": ".stream", "Stream": ".stream",
}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
