"""Sliding windows over the signal: where chunks start, and which frames each chunk covers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .segmentation.model import ModelSpec


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

    def closest_frame(self, t: float) -> int:
        s = self.spec
        return int(np.rint((t - s.frame_start - 0.5 * s.frame_duration) / s.frame_step))

    def first_frame(self, chunk: int) -> int:
        """Index of the output frame that a chunk's first frame lands on."""
        return self.closest_frame(self.chunk_start(chunk) + 0.5 * self.spec.frame_duration)

    def num_chunks(self, num_samples: int) -> tuple[int, bool]:
        """(full chunks, whether a zero-padded last chunk follows), as pyannote's Inference.slide."""
        window, step = self.spec.window_samples, self.step_samples
        full = (num_samples - window) // step + 1 if num_samples >= window else 0
        has_last = num_samples < window or (num_samples - window) % step > 0
        return full, has_last

    def num_frames(self, num_chunks: int, num_samples: int, has_last: bool) -> int:
        """Output frames: pyannote's aggregate length, cropped to the audio after a padded chunk."""
        s = self.spec
        end = self.chunk_start(0) + s.window + (num_chunks - 1) * self.step
        frames = self.closest_frame(end + 0.5 * s.frame_duration) + 1
        if has_last:  # crop(Segment(0, duration), mode="loose")
            duration = num_samples / s.sample_rate
            frames = min(frames, math.floor((duration - s.frame_start) / s.frame_step) + 1)
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
