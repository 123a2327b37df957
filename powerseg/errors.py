"""Typed errors: one base class, each subclass also a matching built-in.

Callers can catch ``PowersegError`` for everything powerseg raises, or keep
catching the built-in they already handle (``ValueError``, ``FileNotFoundError``).
"""

from __future__ import annotations


class PowersegError(Exception):
    """Base class of every error powerseg raises on purpose."""


class AudioError(PowersegError, ValueError):
    """An audio input cannot be read or is unusable (corrupt, empty, NaN...)."""


class AudioNotFoundError(AudioError, FileNotFoundError):
    """An audio path does not exist or is not a file."""


class ModelError(PowersegError, ValueError):
    """An ONNX model file is missing, corrupt, or not a segmentation model."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model path does not exist."""


class CheckpointError(PowersegError, ValueError):
    """A torch checkpoint is missing, unsafe, corrupt or of another architecture."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint path does not exist."""


class OptionError(PowersegError, ValueError):
    """An option value is out of its valid range."""


class ProviderError(PowersegError, RuntimeError):
    """An execution provider was asked for that this onnxruntime cannot give."""


class OutputError(PowersegError, OSError):
    """An output file cannot be written (a directory in the way, no permission, disk full)."""


class VerificationError(ModelError):
    """An exported model disagrees with the torch model beyond the stated tolerance."""


class StreamClosedError(PowersegError, RuntimeError):
    """A stream was pushed to, or flushed, after its flush."""


class VoiceBankError(PowersegError, ValueError):
    """A voice bank is damaged, foreign (another embedding model), empty, or a name clashes."""


class TooLittleSpeechError(AudioError):
    """An enrollment clip holds too little speech from its main speaker."""

    def __init__(self, message: str, clip: str, seconds: float):
        super().__init__(message)
        self.clip, self.seconds = clip, seconds


class TranscriptError(PowersegError, ValueError):
    """A words file is in no known format or has impossible times; an unknown output format."""
