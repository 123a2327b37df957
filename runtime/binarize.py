"""Scores -> regions, as pyannote's ``Binarize``: hysteresis, then gap filling and short-region removal.

One implementation serves offline results and streams: ``RegionTracker`` takes
consecutive blocks of frame scores and emits each region once it is final;
``binarize`` is one block and a flush.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from powerseg.errors import OptionError

from .framing import FrameGrid

# pyannote.core drops segments not longer than this (Segment.__bool__).
SEGMENT_PRECISION = 1e-6


class Region(NamedTuple):
    start: float
    end: float
    label: str

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class BinarizeOptions:
    """Thresholds and durations (seconds). ``offset`` defaults to ``onset``.

    For this powerset model pyannote fixes onset = offset = 0.5.
    """

    onset: float = 0.5
    offset: float | None = None
    min_duration_on: float = 0.0
    min_duration_off: float = 0.0
    pad_onset: float = 0.0
    pad_offset: float = 0.0

    def __post_init__(self) -> None:
        if self.offset is None:
            object.__setattr__(self, "offset", self.onset)
        if not (np.isfinite(self.onset) and np.isfinite(self.offset)):
            raise OptionError("onset and offset must be finite numbers")
        # scores are probabilities: an onset of 1 or more finds nothing, one at or below 0
        # (or an offset below 0) takes the whole file
        if not 0 < self.onset < 1:
            raise OptionError(f"onset ({self.onset}) must be above 0 and below 1 (scores are "
                              "probabilities)")
        if self.offset < 0:
            raise OptionError(f"offset ({self.offset}) must not be below 0 (scores are "
                              "probabilities)")
        if self.offset > self.onset:
            raise OptionError(f"offset ({self.offset}) must not exceed onset ({self.onset}): "
                              "hysteresis switches on above onset and off below offset")
        for name in ("min_duration_on", "min_duration_off", "pad_onset", "pad_offset"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise OptionError(f"{name} must be a non-negative number of seconds, got {value}")


def binarize(scores: np.ndarray, grid: FrameGrid, options: BinarizeOptions = BinarizeOptions(),
             label: str = "SPEECH") -> list[Region]:
    """(frames,) scores on ``grid`` -> sorted regions; region times are frame middles, as
    pyannote's."""
    tracker = RegionTracker(options, label, grid)
    return tracker.push(scores) + tracker.flush()


class RegionTracker:
    """One channel (speech or overlap) of scores -> final regions, block by block.

    A region leaves once nothing later can change it: its end is known (scores fell
    below offset, or the stream ended) and, with padding or min_duration_off, the
    earliest start a later region could have is already too far to merge. So it is
    final about min_duration_off + pad_onset + pad_offset after its last active frame.
    """

    def __init__(self, options: BinarizeOptions, label: str, grid: FrameGrid):
        self.options = options
        self.label = label
        self._grid = grid
        # binarize() only fills gaps (and merges padded overlaps) in this case
        self._support = options.pad_onset > 0 or options.pad_offset > 0 or \
            options.min_duration_off > 0
        self.frames = 0  # frames consumed so far
        self._run_start: int | None = None  # first frame of the run still active, if any
        self._pending: Region | None = None  # merged region that a later one could still extend
        self._closed = False

    def push(self, scores: np.ndarray) -> list[Region]:
        """Scores of the next frames (in order); returns the regions that became final."""
        if self._closed:
            raise RuntimeError("region tracker already flushed")
        scores = np.asarray(scores).reshape(-1)
        out: list[Region] = []
        n = len(scores)
        if n == 0:
            return out
        opts = self.options
        state = np.where(scores > opts.onset, 1, np.where(scores < opts.offset, -1, 0))
        was_active = self._run_start is not None
        # hysteresis: each frame takes the state of the last decided frame, else the carried one
        decided = np.where(state != 0, np.arange(n), -1)
        last = np.maximum.accumulate(decided)
        active = np.where(last >= 0, state[np.maximum(last, 0)] == 1, was_active)
        previous = np.concatenate(([was_active], active[:-1]))
        for i in np.flatnonzero(active != previous).tolist():
            frame = self.frames + i
            if active[i]:
                self._run_start = frame
            else:  # switched off at this frame: the run ends at its middle, as binarize's
                self._close(self._run_start, frame, out)
                self._run_start = None
        self.frames += n
        self._settle(out)
        return out

    def flush(self) -> list[Region]:
        """End of the scores: close the active run at the last frame, emit what is left."""
        if self._closed:
            raise RuntimeError("region tracker already flushed")
        self._closed = True
        out: list[Region] = []
        if self._run_start is not None:
            self._close(self._run_start, self.frames - 1, out)
            self._run_start = None
        if self._pending is not None:
            self._emit(self._pending, out)
            self._pending = None
        return out

    def earliest_end(self) -> float:
        """The earliest end a region still to come can have: the pending one's, else the
        middle of the next frame (less ``pad_onset``). Orders several trackers' regions."""
        if self._pending is not None:
            return self._pending.end
        return self._grid.middle(self.frames) - self.options.pad_onset

    def open_part(self) -> Region | None:
        """What is already certain of the region in progress: from its start to the middle of
        the last frame pushed. None with no run, while an earlier region it may merge with is
        pending, while min_duration_on may still drop it, or while it has no length yet. Lets
        a live caller emit a long region piece by piece instead of waiting for its end."""
        if self._run_start is None or self._pending is not None or self.options.min_duration_on > 0:
            return None
        start = self._grid.middle(self._run_start) - self.options.pad_onset
        end = self._grid.middle(self.frames - 1)
        return Region(start, end, self.label) if end - start > SEGMENT_PRECISION else None

    def _close(self, first: int, last: int, out: list[Region]) -> None:
        opts = self.options
        start = self._grid.middle(first) - opts.pad_onset
        end = self._grid.middle(last) + opts.pad_offset
        if not end - start > SEGMENT_PRECISION:
            return
        region = Region(start, end, self.label)
        if not self._support:
            self._emit(region, out)
        elif self._pending is not None and self._merges(region.start):
            pending = self._pending
            self._pending = Region(pending.start, max(pending.end, region.end), self.label)
        else:
            if self._pending is not None:
                self._emit(self._pending, out)
            self._pending = region

    def _merges(self, start: float) -> bool:
        gap = start - self._pending.end
        return gap <= SEGMENT_PRECISION or gap < self.options.min_duration_off

    def _settle(self, out: list[Region]) -> None:
        """Emit the pending region if even the earliest possible next region cannot merge."""
        if self._pending is None:
            return
        earliest = self._run_start if self._run_start is not None else self.frames
        if not self._merges(self._grid.middle(earliest) - self.options.pad_onset):
            self._emit(self._pending, out)
            self._pending = None

    def _emit(self, region: Region, out: list[Region]) -> None:
        if self.options.min_duration_on > 0 and region.duration < self.options.min_duration_on:
            return
        out.append(region)
