"""powerseg: pyannote/segmentation-3.0 without PyTorch (numpy + onnxruntime)."""

__version__ = "0.1.0"

from .errors import (AudioError, CheckpointError, ModelError, OptionError, OutputError,  # noqa: E402
                     PowersegError, ProviderError)
from .runtime import Segmentation, Segmenter, SegmenterOptions  # noqa: E402

__all__ = ["AudioError", "CheckpointError", "ModelError", "OptionError", "OutputError",
           "PowersegError", "ProviderError", "Segmentation", "Segmenter", "SegmenterOptions",
           "__version__"]
