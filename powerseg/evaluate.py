"""Detection error rate of VAD and OSD against reference RTTM (and UEM), per file and overall."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from powerseg.errors import AudioError, PowersegError
from powerseg.runtime import BinarizeOptions, Region, Segmenter
from powerseg.runtime.metrics import Detection, detection_error, read_rttm, read_uem
from powerseg.runtime.writers import uri_of

TASKS = ("vad", "osd")


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

    @property
    def error_rate(self) -> float:
        return Detection(self.reference, self.false_alarm, self.missed).error_rate

    def as_dict(self) -> dict:
        return {**asdict(self), "error_rate": self.error_rate}


def pyannote_metric(reference: list[Region], hypothesis: list[Region],
                    uem: list[tuple[float, float]] | None) -> Detection:
    """The same quantities computed by pyannote.metrics' DetectionErrorRate (collar 0)."""
    try:
        from pyannote.core import Segment, Timeline
        from pyannote.metrics.detection import DetectionErrorRate
    except ImportError:
        raise PowersegError("--metric pyannote needs pyannote.metrics: "
                            "pip install 'powerseg[eval]'") from None
    from powerseg.interop import to_annotation

    metric = DetectionErrorRate(collar=0.0, skip_overlap=False)
    scope = Timeline([Segment(s, e) for s, e in uem]) if uem else None
    parts = metric(to_annotation(reference), to_annotation(hypothesis), uem=scope, detailed=True)
    return Detection(parts["total"], parts["false alarm"], parts["miss"])


def evaluate(segmenter: Segmenter, audio: list[Path], references: list[Path],
             uem: Path | None = None, tasks: tuple[str, ...] = TASKS,
             options: BinarizeOptions = BinarizeOptions(), metric: str = "powerseg") -> list[Score]:
    """Per-file scores; recordings are matched to RTTM/UEM entries by file stem (the URI)."""
    truth: dict[str, list[Region]] = {}
    for path in references:
        for uri, regions in read_rttm(path).items():
            truth.setdefault(uri, []).extend(regions)
    scopes = read_uem(uem) if uem else {}
    measure = pyannote_metric if metric == "pyannote" else detection_error
    scores = []
    for path in audio:
        uri = uri_of(path)
        if uri not in truth:
            raise AudioError(f"{path}: no reference for URI {uri!r} in "
                             f"{', '.join(str(r) for r in references)}")
        result = segmenter(path, activations=False)
        scope = scopes.get(uri) or [(0.0, result.duration)]
        for task in tasks:
            reference = truth[uri] if task == "vad" else overlapped(truth[uri])
            hypothesis = result.vad(options) if task == "vad" else result.osd(options)
            d = measure(reference, hypothesis, scope)
            scores.append(Score(uri, task, d.reference, d.false_alarm, d.missed))
    return scores


def overall(scores: list[Score], task: str) -> Score:
    """Totals over files: the error rate of the sums, not the mean of the rates."""
    mine = [s for s in scores if s.task == task]
    return Score("TOTAL", task, sum(s.reference for s in mine), sum(s.false_alarm for s in mine),
                 sum(s.missed for s in mine))


def table(scores: list[Score]) -> str:
    rows = [f"{'uri':<16} {'task':<4} {'ref s':>8} {'FA s':>7} {'miss s':>7} {'DER %':>7}"]
    tasks = [t for t in TASKS if any(s.task == t for s in scores)]
    for s in scores + [overall(scores, t) for t in tasks]:
        rows.append(f"{s.uri:<16} {s.task:<4} {s.reference:8.2f} {s.false_alarm:7.2f} "
                    f"{s.missed:7.2f} {100 * s.error_rate:7.2f}")
    return "\n".join(rows) + "\n"
