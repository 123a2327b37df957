"""Overlap-add of per-chunk frame scores into one timeline, as pyannote's ``Inference.aggregate``.

Each chunk's scores are weighted (Hamming window by default), summed into the
frames they land on, and divided by the summed weights. Frames no chunk covers
are 0 (pyannote's ``missing=0.0``). Accumulators are float32 and each chunk's
contribution is formed in float64, exactly as pyannote's numpy code does, so
the results agree to the last bit for the same chunk scores.

``OverlapAdd`` is incremental: frames are released as soon as no later chunk
can touch them, which is what makes streaming and constant-memory long files
give the very same numbers as the one-shot ``aggregate``.
"""

from __future__ import annotations

import numpy as np

from .framing import Framing

EPSILON = 1e-12


class OverlapAdd:
    """Accumulates chunks in order; ``pop(upto)`` returns finished frames [released, upto)."""

    def __init__(self, framing: Framing, channels: int, hamming: bool = True):
        self.framing = framing
        frames = framing.spec.num_frames
        window = np.hamming(frames) if hamming else np.ones(frames)
        self.window = window.reshape(-1, 1)  # float64, as pyannote
        self.released = 0  # absolute index of the first frame still held
        self.held = 0  # frames of the buffers in use
        self.sum = np.zeros((0, channels), dtype=np.float32)
        self.weight = np.zeros((0, channels), dtype=np.float32)

    def add(self, chunk: int, scores: np.ndarray) -> None:
        """Add one chunk's (frames, channels) float32 scores; chunks must come in order."""
        start = self.framing.first_frame(chunk) - self.released
        if start < 0:
            raise ValueError("chunks must be added in order")
        end = start + len(scores)
        if end > len(self.sum):  # grow geometrically: appending chunk by chunk stays linear
            grown = np.zeros((max(end, 2 * len(self.sum)), self.sum.shape[1]), np.float32)
            self.sum = _moved(self.sum, grown.copy(), self.held)
            self.weight = _moved(self.weight, grown, self.held)
        self.sum[start:end] += scores * self.window
        self.weight[start:end] += self.window
        self.held = max(self.held, end)

    def pop(self, upto: int) -> np.ndarray:
        """Averaged frames [released, upto) as float32; frames past the last chunk are 0."""
        count = max(0, upto - self.released)
        done = min(count, self.held)
        average = np.zeros((count, self.sum.shape[1]), np.float32)
        average[:done] = self._average(done)
        keep = self.held - done
        self.sum[:keep] = self.sum[done:self.held]
        self.weight[:keep] = self.weight[done:self.held]
        self.sum[keep:self.held] = 0.0
        self.weight[keep:self.held] = 0.0
        self.held = keep
        self.released += count
        return average

    def peek(self) -> np.ndarray:
        """The held frames averaged over the chunks added so far, releasing nothing.

        Later chunks still change these: they are provisional, and final once popped.
        """
        return self._average(self.held)

    def _average(self, rows: int) -> np.ndarray:
        """The first ``rows`` held frames: weighted sums / weights, 0 where nothing landed."""
        total, weight = self.sum[:rows], self.weight[:rows]
        average = np.zeros(total.shape, np.float32)
        np.divide(total, np.maximum(weight, EPSILON), out=average)
        average[weight == 0.0] = 0.0
        return average


def _moved(old: np.ndarray, new: np.ndarray, rows: int) -> np.ndarray:
    new[:rows] = old[:rows]
    return new


def aggregate(scores: np.ndarray, framing: Framing, num_frames: int,
              hamming: bool = True) -> np.ndarray:
    """(chunks, frames_per_chunk, channels) scores -> (num_frames, channels) timeline."""
    overlap_add = OverlapAdd(framing, scores.shape[-1], hamming=hamming)
    for chunk, chunk_scores in enumerate(scores):
        overlap_add.add(chunk, chunk_scores)
    return overlap_add.pop(num_frames)
