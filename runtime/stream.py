"""The sliding-window engine: samples in, final frame scores out, in memory bounded by one window.

Offline calls are one push of the whole signal plus a flush; files are pushed
block by block; live audio is pushed as it arrives. All three run the same
code, so their scores agree (up to onnxruntime's batch-size rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from powerseg.errors import AudioError

from .aggregate import OverlapAdd
from .audio import check_finite
from .framing import Framing
from .powerset import overlap_score, speaker_count, speech_score, to_multilabel

if TYPE_CHECKING:
    from .segmenter import Segmenter


@dataclass(frozen=True)
class FrameScores:
    """Final scores of consecutive output frames ``first, first + 1, ...``."""

    first: int
    speech: np.ndarray
    overlap: np.ndarray
    count: np.ndarray
    frame_start: float
    frame_step: float
    frame_duration: float

    def __len__(self) -> int:
        return len(self.speech)

    @property
    def times(self) -> np.ndarray:
        """Start time (seconds) of each frame."""
        return self.frame_start + (self.first + np.arange(len(self))) * self.frame_step


class _Samples:
    """Append-only sample buffer with a moving start; appends are amortised O(1)."""

    def __init__(self) -> None:
        self.data = np.zeros(1 << 16, dtype=np.float32)
        self.begin = 0
        self.end = 0

    def __len__(self) -> int:
        return self.end - self.begin

    def append(self, samples: np.ndarray) -> None:
        n = len(samples)
        if self.end + n > len(self.data):
            live = self.data[self.begin:self.end]
            size = max(len(self.data), 2 * (len(live) + n))
            grown = np.zeros(size, dtype=np.float32) if size > len(self.data) else self.data
            grown[:len(live)] = live
            self.data, self.begin, self.end = grown, 0, len(live)
        self.data[self.end:self.end + n] = samples
        self.end += n

    def window(self, length: int) -> np.ndarray:
        """The first ``length`` samples, zero-padded when fewer are held."""
        out = np.zeros(length, dtype=np.float32)
        live = self.data[self.begin:min(self.end, self.begin + length)]
        out[:len(live)] = live
        return out

    def drop(self, count: int) -> None:
        self.begin = min(self.end, self.begin + count)


class Stream:
    """Push mono float32 samples at the model's rate; get frames once no window can change them.

    A frame is final once every window covering it has run: about one window
    (10 s) after it was heard, plus up to one step.
    """

    def __init__(self, segmenter: Segmenter, keep_activations: bool = False):
        self._model = segmenter.model
        self._options = segmenter.options
        self.framing: Framing = segmenter.framing
        spec = self.framing.spec
        self._window, self._step = spec.window_samples, self.framing.step_samples
        self._samples = _Samples()
        self._chunks = 0  # chunks run so far
        self._total = 0  # samples pushed so far
        self._closed = False
        self._scores = OverlapAdd(self.framing, 2, hamming=True)
        self._count = OverlapAdd(self.framing, 1, hamming=False)
        self.activations: list[np.ndarray] | None = [] if keep_activations else None

    @property
    def samples_pushed(self) -> int:
        return self._total

    def push(self, samples: np.ndarray) -> FrameScores:
        """Add samples (any block size); returns the frames that became final."""
        if self._closed:
            raise RuntimeError("stream already flushed")
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        check_finite(samples, self.framing.spec.sample_rate, "stream", offset=self._total)
        self._samples.append(samples)
        self._total += len(samples)
        ready = []
        while len(self._samples) >= self._window:
            ready.append(self._samples.window(self._window))
            self._samples.drop(self._step)
        self._run(ready)
        return self._release(self.framing.first_frame(self._chunks))

    def flush(self) -> FrameScores:
        """End of audio: run the zero-padded last window if pyannote would, return the rest."""
        if self._closed:
            raise RuntimeError("stream already flushed")
        self._closed = True
        if self._total == 0:
            raise AudioError("stream: no samples were pushed")
        full, has_last = self.framing.num_chunks(self._total)
        if has_last:
            self._run([self._samples.window(self._window)])
        num_frames = self.framing.num_frames(full + has_last, self._total, has_last)
        return self._release(num_frames)

    def _run(self, windows: list[np.ndarray]) -> None:
        batch = self._options.batch_size
        for i in range(0, len(windows), batch):
            logprobs = self._model(np.stack(windows[i:i + batch]))
            active = to_multilabel(logprobs, self.framing.spec.mapping, soft=self._options.soft)
            scores = np.stack([speech_score(active), overlap_score(active)], axis=-1)
            count = speaker_count(active)[..., None]
            for j in range(len(logprobs)):
                self._scores.add(self._chunks, scores[j])
                self._count.add(self._chunks, count[j])
                self._chunks += 1
            if self.activations is not None:
                self.activations.extend(active)

    def _release(self, upto: int) -> FrameScores:
        first = self._scores.released
        scores = self._scores.pop(upto)
        count = np.rint(self._count.pop(upto)[:, 0]).astype(np.uint8)
        spec = self.framing.spec
        return FrameScores(first, scores[:, 0], scores[:, 1], count,
                           spec.frame_start, spec.frame_step, spec.frame_duration)
