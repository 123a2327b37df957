"""Pictures of what the model sees: the model card's figure for one window, scores and regions beyond.

Needs the optional ``plot`` extra (matplotlib).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from powerseg.errors import OptionError, PowersegError
from powerseg.runtime import Diarizer, Region, Segmenter
from powerseg.runtime.audio import load_audio
from powerseg.runtime.metrics import read_rttm
from powerseg.runtime.segmentation.powerset import to_multilabel
from powerseg.runtime.writers import atomic_output, uri_of

SIZE_INCHES, DPI = (12.0, 6.0), 100
SEAM = 1e-6  # seconds: turns closer than this are one bar
COLORS = ("tab:blue", "tab:orange", "tab:green")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PowersegError("plots need matplotlib: pip install 'powerseg[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def class_names(mapping: np.ndarray) -> list[str]:
    """'none', 'spk1', 'spk1+spk2'... from the powerset table."""
    return ["+".join(f"spk{s + 1}" for s in np.flatnonzero(row)) or "none" for row in mapping]


def plot(audio: str | Path, output: str | Path, start: float = 0.0, end: float | None = None,
         segmenter: Segmenter | None = None, diarizer: Diarizer | None = None,
         reference: str | Path | None = None, **speakers) -> Path:
    """Write a PNG of ``audio`` between ``start`` and ``end`` seconds (default: 10 s from start).

    Up to one window long: waveform, powerset class per frame, per-speaker activations
    (the model card's figure). Longer: waveform, aggregated speech/overlap scores, VAD/OSD regions.
    With a ``diarizer``: waveform and one row of turns per speaker (default: the whole file;
    ``speakers``: num/min/max_speakers), and under it the turns of ``reference`` (an RTTM)
    for this file, to compare.
    """
    segmenter = diarizer.segmenter if diarizer else segmenter or Segmenter(providers="cpu")
    spec = segmenter.spec
    samples = load_audio(audio, spec.sample_rate)
    duration = len(samples) / spec.sample_rate
    default_end = duration if diarizer else min(duration, start + spec.window)
    end = default_end if end is None else min(end, duration)
    if not 0 <= start < end:
        raise OptionError(f"{audio}: need 0 <= start < end <= {duration:.2f} s, "
                          f"got start={start}, end={end}")
    plt = _pyplot()
    lo, hi = round(start * spec.sample_rate), round(end * spec.sample_rate)
    truth = _reference_turns(reference, audio) if reference is not None else None
    if diarizer:
        fig = _diarization_figure(plt, diarizer, samples, start, end, truth, speakers)
    elif end - start <= spec.window:
        fig = _window_figure(plt, segmenter, samples[lo:hi], start)
    else:
        fig = _timeline_figure(plt, segmenter, samples, start, end)
    fig.suptitle(f"{Path(audio).name}  {start:.2f}-{end:.2f} s")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    output = Path(output)
    try:
        with atomic_output(output, binary=True) as f:
            fig.savefig(f, dpi=DPI, format="png")
    finally:
        plt.close(fig)
    return output


def _window_figure(plt, segmenter: Segmenter, excerpt: np.ndarray, start: float):
    spec = segmenter.spec
    window = np.zeros(spec.window_samples, dtype=np.float32)
    window[:len(excerpt)] = excerpt
    logprobs = segmenter.model(window[None])[0]
    frames = spec.grid.times(spec.num_frames) + spec.grid.duration / 2 + start
    fig, axes = plt.subplots(3, 1, figsize=SIZE_INCHES, sharex=True)
    t = start + np.arange(len(window)) / spec.sample_rate
    axes[0].plot(t, window, linewidth=0.3, color="black")
    axes[0].set_ylabel("waveform")
    names = class_names(spec.mapping)
    onehot = np.eye(len(names))[logprobs.argmax(-1)].T
    axes[1].imshow(onehot, aspect="auto", interpolation="nearest", cmap="Greys",
                   extent=(frames[0], frames[-1], len(names) - 0.5, -0.5))
    axes[1].set_yticks(range(len(names)), names)
    axes[1].set_ylabel("powerset class")
    active = to_multilabel(logprobs, spec.mapping)
    for s in range(active.shape[1]):
        axes[2].fill_between(frames, s + 0.1, s + 0.1 + 0.8 * active[:, s], step="mid",
                             color=COLORS[s % len(COLORS)])
    axes[2].set_yticks(np.arange(active.shape[1]) + 0.5,
                       [f"spk{s + 1}" for s in range(active.shape[1])])
    axes[2].set_ylabel("speakers")
    axes[2].set_xlabel("time (s)")
    return fig


def _timeline_figure(plt, segmenter: Segmenter, samples: np.ndarray, start: float, end: float):
    spec = segmenter.spec
    result = segmenter(samples, sample_rate=spec.sample_rate, activations=False)
    fig, axes = plt.subplots(3, 1, figsize=SIZE_INCHES, sharex=True)
    _waveform(axes[0], samples, spec.sample_rate, start, end)
    times = result.frame_times + result.grid.duration / 2
    keep = (times >= start) & (times <= end)
    axes[1].plot(times[keep], result.speech[keep], label="speech", color="tab:blue")
    axes[1].plot(times[keep], result.overlap[keep], label="overlap", color="tab:red")
    axes[1].axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axes[1].set_ylim(-0.05, 1.05)
    axes[1].set_ylabel("score")
    axes[1].legend(loc="upper right")
    for row, (regions, color) in enumerate(((result.vad(), "tab:blue"), (result.osd(), "tab:red"))):
        spans = [(r.start, r.duration) for r in regions if r.end > start and r.start < end]
        axes[2].broken_barh(spans, (1 - row + 0.1, 0.8), color=color)
    axes[2].set_yticks([1.5, 0.5], ["VAD", "OSD"])
    axes[2].set_xlim(start, end)
    axes[2].set_xlabel("time (s)")
    return fig


def _reference_turns(reference: str | Path, audio: str | Path) -> dict[str, list[Region]]:
    """The reference RTTM's turns for ``audio`` (matched by URI), by speaker."""
    uri = uri_of(audio)
    regions = read_rttm(reference).get(uri)
    if regions is None:
        raise OptionError(f"--reference {reference}: no turns for URI {uri!r} (the audio "
                          "file's name without extension)")
    by_speaker: dict[str, list[Region]] = {}
    for region in sorted(regions):
        by_speaker.setdefault(region.label, []).append(region)
    return by_speaker


def spans(turns, start: float, end: float) -> list[tuple[float, float]]:
    """(start, duration) bars of one speaker's turns inside [start, end], turns that touch
    joined into one bar: drawn apart, antialiasing leaves a white seam between them."""
    out: list[list[float]] = []
    for t in sorted(turns, key=lambda t: t.start):
        if t.end <= start or t.start >= end:
            continue
        if out and t.start <= out[-1][1] + SEAM:
            out[-1][1] = max(out[-1][1], t.end)
        else:
            out.append([t.start, t.end])
    return [(a, b - a) for a, b in out]


def _diarization_figure(plt, diarizer: Diarizer, samples: np.ndarray, start: float, end: float,
                        truth: dict[str, list[Region]] | None = None,
                        speakers: dict | None = None):
    rate = diarizer.segmenter.spec.sample_rate
    result = diarizer(samples, sample_rate=rate, **(speakers or {}))
    names = result.speakers
    rows = [(name, [t for t in result.turns() if t.speaker == name]) for name in names]
    heights = [1, max(1, len(rows)) * 0.5] + ([max(1, len(truth)) * 0.5] if truth is not None
                                               else [])
    fig, axes = plt.subplots(len(heights), 1, figsize=SIZE_INCHES, sharex=True,
                             gridspec_kw={"height_ratios": heights})
    _waveform(axes[0], samples, rate, start, end)
    palette = plt.get_cmap("tab10")
    _rows(axes[1], rows, start, end, [palette(i % 10) for i in range(len(rows))])
    axes[1].set_ylabel("powerseg")
    if truth is not None:
        _rows(axes[2], list(truth.items()), start, end, ["dimgrey"] * len(truth))
        axes[2].set_ylabel("reference")
    axes[-1].set_xlim(start, end)
    axes[-1].set_xlabel("time (s)")
    return fig


def _rows(axis, rows: list[tuple[str, list]], start: float, end: float, colors: list) -> None:
    """One row of bars per (name, turns), the first at the top."""
    for row, ((name, turns), color) in enumerate(zip(rows, colors)):
        axis.broken_barh(spans(turns, start, end), (len(rows) - 1 - row + 0.1, 0.8),
                         color=color, linewidth=0)
    axis.set_yticks([len(rows) - 0.5 - row for row in range(len(rows))],
                    [name for name, _ in rows])
    axis.set_ylim(0, max(1, len(rows)))


def _waveform(axis, samples: np.ndarray, rate: int, start: float, end: float) -> None:
    lo, hi = round(start * rate), round(end * rate)
    envelope = _envelope(samples[lo:hi], 2000)
    t = np.linspace(start, end, len(envelope))
    axis.fill_between(t, envelope[:, 0], envelope[:, 1], color="black", linewidth=0)
    axis.set_ylabel("waveform")


def _envelope(samples: np.ndarray, points: int) -> np.ndarray:
    """(points, 2) min/max per slice: a faithful waveform outline at any length."""
    points = max(1, min(points, len(samples)))
    slices = np.array_split(samples, points)
    return np.array([[s.min(), s.max()] for s in slices])
