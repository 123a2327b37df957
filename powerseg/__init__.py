"""powerseg: pyannote/segmentation-3.0 and speaker diarization without PyTorch (numpy + onnxruntime)."""

from pathlib import Path as _Path

__version__ = "0.1.0"

# In a source checkout, runtime/, export/ and models/ sit beside this folder (pyproject maps them
# with package-dir); this lets `import powerseg` from the checkout's root find them too.
_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "runtime" / "__init__.py").is_file():
    __path__.append(str(_checkout))

from .errors import (AudioError, CheckpointError, ModelError, OptionError, OutputError,  # noqa: E402
                     PowersegError, ProviderError, StreamClosedError, TooLittleSpeechError,
                     TranscriptError, VoiceBankError)
from .lazy import lazy_names  # noqa: E402

_LAZY = {**{name: ".runtime" for name in (
    "Diarization", "DiarizationStream", "Diarizer", "DiarizerOptions", "Embedder", "EmbedderOptions",
    "Embedding", "Embeddings", "Segmentation", "Segmenter", "SegmenterOptions", "Turn")},
    "VoiceBank": ".runtime.diarization.voices", "assign_speakers": ".transcript"}

__all__ = ["AudioError", "CheckpointError", "Diarization", "DiarizationStream", "Diarizer", "DiarizerOptions",
           "Embedder", "EmbedderOptions", "Embedding", "Embeddings",
           "ModelError", "OptionError", "OutputError", "PowersegError", "ProviderError",
           "Segmentation", "Segmenter", "SegmenterOptions", "StreamClosedError",
           "TooLittleSpeechError", "TranscriptError", "Turn", "VoiceBank", "VoiceBankError",
           "__version__", "assign_speakers"]

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
