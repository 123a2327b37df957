"""Inference with numpy + onnxruntime only: audio, framing, decoding, aggregation, regions,
speaker embeddings, clustering, diarization, writers."""

from importlib import import_module

_LAZY = {
    "BinarizeOptions": ".binarize", "Region": ".binarize",
    "Diarization": ".diarizer", "Diarizer": ".diarizer", "DiarizerOptions": ".diarizer",
    "Turn": ".diarizer", "DiarizationStream": ".live", "LiveEnd": ".live",
    "Embedder": ".embedder", "EmbedderOptions": ".embedder", "Embedding": ".embedder",
    "Embeddings": ".embedder", "Segmentation": ".segmenter", "Segmenter": ".segmenter",
    "SegmenterOptions": ".segmenter", "FrameScores": ".stream", "Stream": ".stream",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    """The public names, each imported on first use: `import powerseg` and `powerseg vad` do
    not load the diarization stack (scipy) they do not use."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
