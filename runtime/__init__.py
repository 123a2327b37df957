"""Inference with numpy + onnxruntime only. Shared here: audio, framing, overlap-add, regions,
sessions and providers, options, writers and scores; each pipeline in its own package:
segmentation/, embedding/, diarization/."""

from powerseg.lazy import lazy_names

_SEG, _EMB, _DIA = ".segmentation", ".embedding", ".diarization"
_LAZY = {
    "BinarizeOptions": ".binarize", "Region": ".binarize",
    **dict.fromkeys(("Diarization", "Diarizer", "DiarizerOptions", "Turn"), f"{_DIA}.diarizer"),
    **dict.fromkeys(("DiarizationStream", "LiveEnd"), f"{_DIA}.live"),
    **dict.fromkeys(("Embedder", "EmbedderOptions", "Embedding", "Embeddings"), f"{_EMB}.embedder"),
    **dict.fromkeys(("Segmentation", "Segmenter", "SegmenterOptions"), f"{_SEG}.segmenter"),
    **dict.fromkeys(("FrameScores", "Stream"), f"{_SEG}.stream"),
}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
