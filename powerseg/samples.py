"""The bundled recording: 30 s, two speakers, from pyannote.audio's own sample (MIT)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def sample_path() -> Path:
    """Path of the bundled 16 kHz FLAC recording (pyannote.audio's sample.wav, losslessly)."""
    return Path(str(files("powerseg").joinpath("data", "sample.flac")))
