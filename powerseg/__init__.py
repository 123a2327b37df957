"""powerseg: pyannote/segmentation-3.0 without PyTorch (numpy + onnxruntime)."""

__version__ = "0.1.0"

from .errors import (AudioError, CheckpointError, ModelError, OptionError, PowersegError,  # noqa: E402
                     ProviderError)
from .runtime import Segmentation, Segmenter, SegmenterOptions  # noqa: E402

__all__ = ["AudioError", "CheckpointError", "ModelError", "OptionError", "PowersegError",
           "ProviderError", "Segmentation", "Segmenter", "SegmenterOptions", "__version__"]
