"""Windows as a segmentation model takes them, made from samples pushed in any block size.

A window source belongs to one stream: samples go in with ``append``; ``next`` hands out each
window once its samples are in (``early``) or once everything it needs is computed; at the end
of the audio, ``rest`` hands out the windows still to come, with zeros past the end as pyannote
pads its last window. The full model takes a window's samples (``SampleWindows``); the tail of a
shared front-end pair takes front rows computed once over the signal (``runtime/segmentation/front.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .buffer import RowBuffer


@dataclass(frozen=True)
class Window:
    """One window: its samples (what the window hook sees) and the model's inputs for it.

    ``inputs`` have no batch axis and are the window's own arrays (a model may run them after
    the source has moved on); ``samples`` may be a view into the source's buffer, valid until
    its next ``append``.
    """

    samples: np.ndarray  # (window_samples,) float32, zeros past the end of the audio
    inputs: dict[str, np.ndarray]


class WindowSource(Protocol):
    def append(self, samples: np.ndarray) -> None: ...

    def next(self, early: bool = True) -> Window | None: ...

    def rest(self, count: int) -> list[Window]: ...


def stack(windows: list[Window]) -> dict[str, np.ndarray]:
    """The inputs of several windows as one batch (one window's: its own arrays, no copy)."""
    if len(windows) == 1:
        return {name: value[None] for name, value in windows[0].inputs.items()}
    return {name: np.stack([w.inputs[name] for w in windows]) for name in windows[0].inputs}


class SampleWindows:
    """Windows of raw samples, every ``step_samples``; holds about one window of audio."""

    def __init__(self, input_name: str, window_samples: int, step_samples: int):
        self.input, self.window, self.step = input_name, window_samples, step_samples
        self.samples = RowBuffer()
        self.next_start = 0  # first sample of the next window

    def append(self, samples: np.ndarray) -> None:
        self.samples.append(samples)

    def next(self, early: bool = True) -> Window | None:  # noqa: ARG002 - nothing to compute early
        if self.samples.stop < self.next_start + self.window:
            return None
        return self._take()

    def rest(self, count: int) -> list[Window]:
        return [self._take() for _ in range(count)]

    def _take(self) -> Window:
        samples = np.array(self.samples.take(self.next_start, self.window))  # the window's own
        self.next_start += self.step
        self.samples.drop_before(self.next_start)
        return Window(samples, {self.input: samples[None]})
