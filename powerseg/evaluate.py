"""Error rates against reference RTTM (and UEM), per file and overall: detection error rate of
VAD and OSD, diarization error rate of speaker diarization."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from powerseg.errors import AudioError, PowersegError
from powerseg.runtime import BinarizeOptions, Diarizer, Region, Segmenter
from powerseg.runtime.metrics import (DiarizationScore, detection_error, diarization_error,
                                      read_rttm, read_uem)
from powerseg.runtime.writers import uri_of

if TYPE_CHECKING:
    from powerseg.batch import Progress

TASKS = ("vad", "osd", "diarization")


def overlapped(regions: list[Region]) -> list[Region]:
    """Where at least two reference speakers talk at once."""
    events = sorted([(r.start, 1) for r in regions] + [(r.end, -1) for r in regions])
    out, active, since = [], 0, 0.0
    for time, change in events:
        if active < 2 <= active + change:
            since = time
        elif active >= 2 > active + change and time > since:
            out.append(Region(since, time, "OVERLAP"))
        active += change
    return out


@dataclass(frozen=True)
class Score:
    uri: str
    task: str
    reference: float
    false_alarm: float
    missed: float
    confusion: float = 0.0  # diarization only

    @property
    def error_rate(self) -> float:
        return DiarizationScore(self.reference, self.false_alarm, self.missed,
                                self.confusion).error_rate

    def as_dict(self) -> dict:
        return {**asdict(self), "error_rate": self.error_rate}


def _pyannote():
    try:
        from pyannote.core import Segment, Timeline
        from pyannote.metrics.detection import DetectionErrorRate
        from pyannote.metrics.diarization import DiarizationErrorRate
    except ImportError:
        raise PowersegError("--metric pyannote needs pyannote.metrics: "
                            "pip install 'powerseg[eval]'") from None
    return Segment, Timeline, DetectionErrorRate, DiarizationErrorRate


def pyannote_metric(reference: list[Region], hypothesis: list[Region],
                    uem: list[tuple[float, float]] | None,
                    diarization: bool = False) -> DiarizationScore:
    """The same quantities computed by pyannote.metrics' DetectionErrorRate or
    DiarizationErrorRate (collar 0, overlap scored)."""
    from powerseg.interop import to_annotation

    Segment, Timeline, DetectionErrorRate, DiarizationErrorRate = _pyannote()
    metric = (DiarizationErrorRate if diarization else DetectionErrorRate)(
        collar=0.0, skip_overlap=False)
    scope = Timeline([Segment(s, e) for s, e in uem]) if uem else None
    parts = metric(to_annotation(reference), to_annotation(hypothesis), uem=scope, detailed=True)
    return DiarizationScore(parts["total"], parts["false alarm"],
                            parts["missed detection" if diarization else "miss"],
                            parts.get("confusion", 0.0))


def _references(references: list[Path]) -> dict[str, list[Region]]:
    truth: dict[str, list[Region]] = {}
    for path in references:
        for uri, regions in read_rttm(path).items():
            truth.setdefault(uri, []).extend(regions)
    return truth


def _scopes(uems: list[Path] | Path | None) -> dict[str, list[tuple[float, float]]]:
    """Every UEM given, merged: a recording's scored regions are all its lines."""
    scopes: dict[str, list[tuple[float, float]]] = {}
    for path in [uems] if isinstance(uems, (str, Path)) else uems or []:
        for uri, regions in read_uem(path).items():
            scopes.setdefault(uri, []).extend(regions)
    return scopes


def _scope(path: Path, uri: str, scopes: dict, uems, duration: float) -> list[tuple[float, float]]:
    """The file's scored regions; the whole file, with a warning, when a UEM was given but
    has no line for it (scoring silence the UEM meant to leave out would skew the rate)."""
    if uri in scopes:
        return scopes[uri]
    if uems:
        names = ", ".join(str(u) for u in ([uems] if isinstance(uems, (str, Path)) else uems))
        warnings.warn(f"{path}: {names} has no line for URI {uri!r}; the whole file is scored",
                      stacklevel=3)
    return [(0.0, duration)]


def _reference_of(path: Path, truth: dict[str, list[Region]], references: list[Path]) -> str:
    uri = uri_of(path)
    if uri not in truth:
        raise AudioError(f"{path}: no reference for URI {uri!r} in "
                         f"{', '.join(str(r) for r in references)}")
    return uri


def _each(audio: list[Path], progress: Progress | None, work: Callable) -> None:
    """``work(path, hook)`` for each file, the progress line (if any) following along."""
    for path in audio:
        if progress is None:
            work(path, None)
            continue
        progress.start(path)
        try:
            work(path, lambda stage, payload, path=path: progress.update(path, payload))
        finally:
            progress.step(path)


def evaluate_diarization(diarizer: Diarizer, audio: list[Path], references: list[Path],
                         uem: list[Path] | Path | None = None, metric: str = "powerseg",
                         exclusive: bool = False, progress: Progress | None = None,
                         **speakers) -> list[Score]:
    """Per-file diarization error rates; ``speakers``: num/min/max_speakers for every file;
    several UEM files are merged."""
    truth, scopes = _references(references), _scopes(uem)
    scores = []

    def one(path: Path, hook) -> None:
        uri = _reference_of(path, truth, references)
        result = diarizer(path, hook=hook, **speakers)
        turns = result.exclusive() if exclusive else result.turns()
        hypothesis = [Region(t.start, t.end, t.speaker) for t in turns]
        scope = _scope(path, uri, scopes, uem, result.duration)
        d = pyannote_metric(truth[uri], hypothesis, scope, diarization=True) \
            if metric == "pyannote" else diarization_error(truth[uri], hypothesis, scope)
        scores.append(Score(uri, "diarization", d.reference, d.false_alarm, d.missed,
                            d.confusion))

    _each(audio, progress, one)
    return scores


def evaluate(segmenter: Segmenter, audio: list[Path], references: list[Path],
             uem: list[Path] | Path | None = None, tasks: tuple[str, ...] = TASKS,
             options: BinarizeOptions = BinarizeOptions(), metric: str = "powerseg",
             progress: Progress | None = None) -> list[Score]:
    """Per-file scores; recordings are matched to RTTM/UEM entries by file stem (the URI)."""
    truth, scopes = _references(references), _scopes(uem)
    measure = pyannote_metric if metric == "pyannote" else detection_error
    scores = []

    def one(path: Path, hook) -> None:
        uri = _reference_of(path, truth, references)
        result = segmenter(path, activations=False, hook=hook)
        scope = _scope(path, uri, scopes, uem, result.duration)
        for task in tasks:
            reference = truth[uri] if task == "vad" else overlapped(truth[uri])
            hypothesis = result.vad(options) if task == "vad" else result.osd(options)
            d = measure(reference, hypothesis, scope)
            scores.append(Score(uri, task, d.reference, d.false_alarm, d.missed))

    _each(audio, progress, one)
    return scores


def overall(scores: list[Score], task: str) -> Score:
    """Totals over files: the error rate of the sums, not the mean of the rates."""
    mine = [s for s in scores if s.task == task]
    return Score("TOTAL", task, sum(s.reference for s in mine), sum(s.false_alarm for s in mine),
                 sum(s.missed for s in mine), sum(s.confusion for s in mine))


def table(scores: list[Score]) -> str:
    """One row per file and task, then the totals; error columns named for what was scored
    (detection error rate for VAD/OSD, DER with its confusion for diarization)."""
    tasks = [t for t in TASKS if any(s.task == t for s in scores)]
    diarization = "diarization" in tasks
    rows = scores + [overall(scores, t) for t in tasks]
    width = max([16] + [len(s.uri) for s in rows])
    rate = "DER %" if diarization else "DetER %"
    header = f"{'uri':<{width}} {'task':<11} {'ref s':>8} {'FA s':>7} {'miss s':>7} "
    lines = [header + (f"{'conf s':>7} " if diarization else "") + f"{rate:>7}"]
    for s in rows:
        line = f"{s.uri:<{width}} {s.task:<11} {s.reference:8.2f} {s.false_alarm:7.2f} " \
            f"{s.missed:7.2f} "
        lines.append(line + (f"{s.confusion:7.2f} " if diarization else "") +
                     f"{100 * s.error_rate:7.2f}")
    return "\n".join(lines) + "\n"
