"""Sliding windows over the signal: where chunks start, where output frames lie, and which
frames each chunk covers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .segmentation.model import ModelSpec


@dataclass(frozen=True)
class FrameGrid:
    """Where output frame ``i`` lies: ``[start + i * step, start + i * step + duration]``
    seconds. One value carried by results, regions, writers, plots and interop, with
    pyannote.core's SlidingWindow float expressions so that times round as pyannote's do."""

    start: float
    step: float
    duration: float

    def begin(self, index: int) -> float:
        return self.start + index * self.step

    def middle(self, index: int) -> float:
        """The time regions use for frame ``index`` (pyannote.core's ``middle``)."""
        begin = self.begin(index)
        return 0.5 * (begin + (begin + self.duration))

    def times(self, count: int, first: int = 0) -> np.ndarray:
        """Start times of ``count`` frames from frame ``first``."""
        return self.start + (first + np.arange(count)) * self.step

    def position(self, t: float) -> float:
        """Where ``t`` falls in frame indices, counted from frame middles (frame i's middle: i)."""
        return (t - self.start - 0.5 * self.duration) / self.step

    def closest(self, t: float) -> int:
        """The frame whose middle is closest to ``t`` (pyannote's ``closest_frame``)."""
        return int(np.rint(self.position(t)))


@dataclass(frozen=True)
class Framing:
    """Chunk and frame geometry of one run: the model's windows at a given step.

    Times follow pyannote.core's SlidingWindow arithmetic (same float expressions),
    so frame indices round the same way as pyannote's.
    """

    spec: ModelSpec
    step: float  # seconds between chunk starts

    @property
    def step_samples(self) -> int:
        return round(self.step * self.spec.sample_rate)

    def chunk_start(self, index: int) -> float:
        return index * self.step

    def first_frame(self, chunk: int) -> int:
        """Index of the output frame that a chunk's first frame lands on."""
        grid = self.spec.grid
        return grid.closest(self.chunk_start(chunk) + 0.5 * grid.duration)

    def num_chunks(self, num_samples: int) -> tuple[int, bool]:
        """(full chunks, whether a zero-padded last chunk follows), as pyannote's Inference.slide."""
        window, step = self.spec.window_samples, self.step_samples
        full = (num_samples - window) // step + 1 if num_samples >= window else 0
        has_last = num_samples < window or (num_samples - window) % step > 0
        return full, has_last

    def num_frames(self, num_chunks: int, num_samples: int, has_last: bool) -> int:
        """Output frames: pyannote's aggregate length, cropped to the audio after a padded chunk."""
        s, grid = self.spec, self.spec.grid
        end = self.chunk_start(0) + s.window + (num_chunks - 1) * self.step
        frames = grid.closest(end + 0.5 * grid.duration) + 1
        if has_last:  # crop(Segment(0, duration), mode="loose")
            duration = num_samples / s.sample_rate
            frames = min(frames, math.floor((duration - grid.start) / grid.step) + 1)
        return frames

    def windows(self, samples: np.ndarray) -> np.ndarray:
        """All (chunks, window_samples) windows of a signal, the last zero-padded as pyannote's."""
        window, step = self.spec.window_samples, self.step_samples
        full, has_last = self.num_chunks(len(samples))
        out = np.zeros((full + has_last, window), dtype=np.float32)
        for i in range(full + has_last):
            part = samples[i * step:i * step + window]
            out[i, :len(part)] = part
        return out
