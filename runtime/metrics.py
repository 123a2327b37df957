"""Error rates on time intervals, as pyannote.metrics computes them (collar 0, overlap scored).

DetectionScore: (false alarm + missed detection) / reference speech, inside the UEM (the whole
reference extent when none is given); overlapping regions of one side count once.
Diarization: (false alarm + missed + confusion) / reference speaker time, counting each
speaker, after the one-to-one mapping of hypothesis to reference speakers that maximises
their co-occurrence (``DiarizationErrorRate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from powerseg.errors import AudioError, AudioNotFoundError

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
class DetectionScore:
    reference: float  # seconds of reference activity
    false_alarm: float
    missed: float

    @property
    def error_rate(self) -> float:
        return (self.false_alarm + self.missed) / self.reference if self.reference else 0.0


def detection_error(reference: list[Region], hypothesis: list[Region],
                    uem: list[tuple[float, float]] | None = None) -> DetectionScore:
    ref, hyp = union(reference), union(hypothesis)
    if uem is None:
        extent = np.concatenate([ref, hyp])
        uem = [(0.0, float(extent[:, 1].max()))] if len(extent) else []
    scope = union([(s, e, "") for s, e in uem])
    ref, hyp = intersect(ref, scope), intersect(hyp, scope)
    both = total(intersect(ref, hyp))
    return DetectionScore(total(ref), total(hyp) - both, total(ref) - both)


@dataclass(frozen=True)
class DiarizationScore(DetectionScore):
    confusion: float = 0.0  # seconds of speech given to the wrong (mapped) speaker

    @property
    def error_rate(self) -> float:
        errors = self.false_alarm + self.missed + self.confusion
        return errors / self.reference if self.reference else 0.0


def _activity(regions: list[Region], bounds: np.ndarray) -> np.ndarray:
    """(segments, labels) int: how many regions of each label cover each elementary segment.

    A label's overlapping regions count as often as they overlap, as pyannote.metrics counts
    an annotation's tracks."""
    labels = sorted({r.label for r in regions})
    active = np.zeros((len(bounds) - 1, len(labels)), dtype=np.int64)
    column = {label: i for i, label in enumerate(labels)}
    for r in regions:
        first, last = np.searchsorted(bounds, [r.start, r.end])
        active[first:last, column[r.label]] += 1
    return active


def _activities(reference: list[Region],
                hypothesis: list[Region]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elementary segment bounds, and each side's (segments, labels) activity on them."""
    bounds = np.unique([t for r in [*reference, *hypothesis] for t in (r.start, r.end)])
    if len(bounds) < 2:
        return bounds, np.zeros((0, 0), np.int64), np.zeros((0, 0), np.int64)
    return bounds, _activity(reference, bounds), _activity(hypothesis, bounds)


def speaker_mapping(source: list[Region], target: list[Region]) -> dict[str, str | None]:
    """Each ``source`` label -> the ``target`` label it shares most time with, one-to-one
    (the mapping the diarization error rate uses); None for a label left without one."""
    bounds, src, tgt = _activities(source, target)
    names = sorted({r.label for r in source})
    mapping: dict[str, str | None] = dict.fromkeys(names)
    if len(bounds) < 2 or not tgt.shape[1]:
        return mapping
    together = (src.T * np.diff(bounds)) @ tgt
    targets = sorted({r.label for r in target})
    for row, col in zip(*linear_sum_assignment(together, maximize=True)):
        if together[row, col] > 0:
            mapping[names[row]] = targets[col]
    return mapping


def diarization_error(reference: list[Region], hypothesis: list[Region],
                      uem: list[tuple[float, float]] | None = None) -> DiarizationScore:
    """Missed, false alarm and confusion seconds; region labels are the speakers."""
    if uem is None:
        ends = [r.end for r in [*reference, *hypothesis]]
        uem = [(0.0, max(ends))] if ends else []
    scope = union([(s, e, "") for s, e in uem])

    def clipped(regions: list[Region]) -> list[Region]:
        out = []
        for r in regions:
            for start, end in intersect(np.array([[r.start, r.end]]), scope):
                out.append(Region(float(start), float(end), r.label))
        return out

    reference, hypothesis = clipped(reference), clipped(hypothesis)
    bounds, ref, hyp = _activities(reference, hypothesis)
    if len(bounds) < 2:
        return DiarizationScore(0.0, 0.0, 0.0, 0.0)
    duration = np.diff(bounds)
    together = (ref.T * duration) @ hyp
    rows, cols = linear_sum_assignment(together, maximize=True)
    correct = np.minimum(ref[:, rows], hyp[:, cols]).sum(axis=1)
    r, h = ref.sum(axis=1), hyp.sum(axis=1)
    return DiarizationScore(float(duration @ r), float(duration @ np.maximum(0, h - r)),
                            float(duration @ np.maximum(0, r - h)),
                            float(duration @ (np.minimum(r, h) - correct)))


def _text(path: str | Path, what: str) -> str:
    """A reference file's text; a missing, unreadable or binary file as one AudioError line."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AudioNotFoundError(f"{path}: no such {what} file") from None
    except OSError as error:
        raise AudioError(f"{path}: cannot read this {what} file ({error.strerror or error})"
                         ) from None
    except UnicodeDecodeError:
        raise AudioError(f"{path}: not a text {what} file (binary data; audio given as the "
                         f"{what}?)") from None


# RTTM record types (NIST RT-09); only SPEAKER turns are read, the others are passed over
RTTM_TYPES = frozenset({"SEGMENT", "NOSCORE", "NO_RT_METADATA", "LEXEME", "NON-LEX", "NON-SPEECH",
                        "FILLER", "SU", "A/P", "IP", "EDIT", "CB", "SPEAKER", "SPKR-INFO"})


def _seconds(path: str | Path, number: int, what: str, fields: list[str], names: tuple[str, str],
             ordered: bool) -> tuple[float, float]:
    """Two time fields of a reference line as finite, non-negative seconds (``ordered``: the
    second is an end not before the first, else a duration)."""
    try:
        a, b = float(fields[0]), float(fields[1])
    except ValueError:
        raise AudioError(f"{path}:{number}: malformed {what} line ({names[0]} {fields[0]!r} and "
                         f"{names[1]} {fields[1]!r} must be numbers of seconds)") from None
    if not (np.isfinite(a) and np.isfinite(b)) or a < 0 or b < (a if ordered else 0):
        rule = f"{names[1]} not before {names[0]}" if ordered else "neither negative"
        raise AudioError(f"{path}:{number}: malformed {what} line ({names[0]} {a:g} and "
                         f"{names[1]} {b:g} must be finite seconds, {rule})")
    return a, b


def read_rttm(path: str | Path) -> dict[str, list[Region]]:
    """RTTM SPEAKER lines -> regions per recording (label = the speaker field). Other record
    types and ``;;`` comments are passed over; anything else is refused, not skipped."""
    out: dict[str, list[Region]] = {}
    for number, line in enumerate(_text(path, "RTTM").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith(";;") or (fields[0] in RTTM_TYPES and
                                                         fields[0] != "SPEAKER"):
            continue
        if fields[0] != "SPEAKER" or len(fields) < 8:
            raise AudioError(f"{path}:{number}: malformed RTTM line (expected SPEAKER uri channel "
                             "start duration <NA> <NA> speaker ...)")
        start, duration = _seconds(path, number, "RTTM", fields[3:5], ("start", "duration"),
                                   ordered=False)
        out.setdefault(fields[1], []).append(Region(start, start + duration, fields[7]))
    return out


def read_uem(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """UEM lines ``uri channel start end`` -> scored intervals per recording."""
    out: dict[str, list[tuple[float, float]]] = {}
    for number, line in enumerate(_text(path, "UEM").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith(";;"):
            continue
        if len(fields) != 4:
            raise AudioError(f"{path}:{number}: malformed UEM line (expected uri channel start "
                             "end)")
        out.setdefault(fields[0], []).append(
            _seconds(path, number, "UEM", fields[2:4], ("start", "end"), ordered=True))
    return out
