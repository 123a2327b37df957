"""Scores -> regions, as pyannote's ``Binarize``: hysteresis, then gap filling and short-region removal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from powerseg.errors import OptionError

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
        if self.offset > self.onset:
            raise OptionError(f"offset ({self.offset}) must not exceed onset ({self.onset}): "
                              "hysteresis switches on above onset and off below offset")
        for name in ("min_duration_on", "min_duration_off", "pad_onset", "pad_offset"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise OptionError(f"{name} must be a non-negative number of seconds, got {value}")


def active_runs(scores: np.ndarray, onset: float, offset: float) -> list[tuple[int, int]]:
    """[first active frame, frame where it switched off (or the last frame)) pairs.

    Active from a frame whose score is above onset until a frame below offset;
    in between the state holds (hysteresis). Same frame-by-frame rule as pyannote.
    """
    n = len(scores)
    if n == 0:
        return []
    events = np.where(scores > onset, 1, np.where(scores < offset, -1, 0))
    events[0] = 1 if scores[0] > onset else -1
    last_event = np.maximum.accumulate(np.where(events != 0, np.arange(n), 0))
    active = events[last_event] == 1
    edges = np.diff(active.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    ends = np.minimum(np.flatnonzero(edges == -1), n - 1)
    return list(zip(starts.tolist(), ends.tolist()))


def binarize(scores: np.ndarray, frame_start: float, frame_step: float, frame_duration: float,
             options: BinarizeOptions = BinarizeOptions(), label: str = "SPEECH") -> list[Region]:
    """(frames,) scores -> sorted regions; region times are frame middles, as pyannote's."""
    opts = options
    regions = []
    for first, last in active_runs(np.asarray(scores), opts.onset, opts.offset):
        start, end = _middle(first, frame_start, frame_step, frame_duration), \
            _middle(last, frame_start, frame_step, frame_duration)
        start, end = start - opts.pad_onset, end + opts.pad_offset
        if end - start > SEGMENT_PRECISION:
            regions.append(Region(start, end, label))
    if opts.pad_onset > 0 or opts.pad_offset > 0 or opts.min_duration_off > 0:
        regions = _support(regions, collar=opts.min_duration_off)
    if opts.min_duration_on > 0:
        regions = [r for r in regions if r.duration >= opts.min_duration_on]
    return regions


def _middle(index: int, frame_start: float, frame_step: float, frame_duration: float) -> float:
    begin = frame_start + index * frame_step  # same float expression as pyannote.core
    return 0.5 * (begin + (begin + frame_duration))


def _support(regions: list[Region], collar: float) -> list[Region]:
    """Merge overlapping regions and those separated by a gap shorter than ``collar``."""
    merged: list[Region] = []
    for region in sorted(regions):
        gap = region.start - merged[-1].end if merged else None
        if gap is not None and (gap <= SEGMENT_PRECISION or gap < collar):
            last = merged[-1]
            merged[-1] = Region(last.start, max(last.end, region.end), last.label)
        else:
            merged.append(region)
    return merged
