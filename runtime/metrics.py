"""Detection error rate on time intervals, as pyannote.metrics' ``DetectionErrorRate`` (collar 0).

DER = (false alarm + missed detection) / reference speech, all measured inside
the UEM (the whole reference extent when none is given). Overlapping regions of
one side count once: both sides are reduced to the union of their regions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from powerseg.errors import AudioError

from .binarize import Region

Intervals = np.ndarray  # (n, 2) sorted, disjoint [start, end) rows


def union(regions: list[Region] | Intervals) -> Intervals:
    """Sorted, disjoint union of regions."""
    rows = np.array([[r[0], r[1]] for r in regions if r[1] > r[0]], dtype=np.float64).reshape(-1, 2)
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    merged: list[list[float]] = []
    for start, end in rows:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.array(merged, dtype=np.float64).reshape(-1, 2)


def intersect(a: Intervals, b: Intervals) -> Intervals:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if end > start:
            out.append([start, end])
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def total(intervals: Intervals) -> float:
    return float((intervals[:, 1] - intervals[:, 0]).sum())


@dataclass(frozen=True)
class Detection:
    reference: float  # seconds of reference activity
    false_alarm: float
    missed: float

    @property
    def error_rate(self) -> float:
        return (self.false_alarm + self.missed) / self.reference if self.reference else 0.0


def detection_error(reference: list[Region], hypothesis: list[Region],
                    uem: list[tuple[float, float]] | None = None) -> Detection:
    ref, hyp = union(reference), union(hypothesis)
    if uem is None:
        extent = np.concatenate([ref, hyp])
        uem = [(0.0, float(extent[:, 1].max()))] if len(extent) else []
    scope = union([(s, e, "") for s, e in uem])
    ref, hyp = intersect(ref, scope), intersect(hyp, scope)
    both = total(intersect(ref, hyp))
    return Detection(total(ref), total(hyp) - both, total(ref) - both)


def read_rttm(path: str | Path) -> dict[str, list[Region]]:
    """RTTM SPEAKER lines -> regions per recording (label = the speaker field)."""
    out: dict[str, list[Region]] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        try:
            start, duration = float(fields[3]), float(fields[4])
        except (IndexError, ValueError):
            raise AudioError(f"{path}:{number}: malformed RTTM line") from None
        out.setdefault(fields[1], []).append(Region(start, start + duration, fields[7]))
    return out


def read_uem(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """UEM lines ``uri channel start end`` -> scored intervals per recording."""
    out: dict[str, list[tuple[float, float]]] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            out.setdefault(fields[0], []).append((float(fields[2]), float(fields[3])))
        except (IndexError, ValueError):
            raise AudioError(f"{path}:{number}: malformed UEM line") from None
    return out
