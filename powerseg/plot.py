"""Pictures of what the model sees: the model card's figure for one window, scores and regions beyond.

Needs the optional ``plot`` extra (matplotlib).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from powerseg.errors import OptionError, PowersegError
from powerseg.runtime import Diarizer, Segmenter
from powerseg.runtime.audio import load_audio
from powerseg.runtime.powerset import to_multilabel

SIZE_INCHES, DPI = (12.0, 6.0), 100
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
         segmenter: Segmenter | None = None, diarizer: Diarizer | None = None) -> Path:
    """Write a PNG of ``audio`` between ``start`` and ``end`` seconds (default: 10 s from start).

    Up to one window long: waveform, powerset class per frame, per-speaker activations
    (the model card's figure). Longer: waveform, aggregated speech/overlap scores, VAD/OSD regions.
    With a ``diarizer``: waveform and one row of turns per speaker (default: the whole file).
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
    if diarizer:
        fig = _diarization_figure(plt, diarizer, samples, start, end)
    elif end - start <= spec.window:
        fig = _window_figure(plt, segmenter, samples[lo:hi], start)
    else:
        fig = _timeline_figure(plt, segmenter, samples, start, end)
    fig.suptitle(f"{Path(audio).name}  {start:.2f}-{end:.2f} s")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=DPI)
    plt.close(fig)
    return output


def _window_figure(plt, segmenter: Segmenter, excerpt: np.ndarray, start: float):
    spec = segmenter.spec
    window = np.zeros(spec.window_samples, dtype=np.float32)
    window[:len(excerpt)] = excerpt
    logprobs = segmenter.model(window[None])[0]
    frames = spec.frame_start + np.arange(spec.num_frames) * spec.frame_step + \
        spec.frame_duration / 2 + start
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
    times = result.frame_times + result.frame_duration / 2
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


def _diarization_figure(plt, diarizer: Diarizer, samples: np.ndarray, start: float, end: float):
    rate = diarizer.segmenter.spec.sample_rate
    result = diarizer(samples, sample_rate=rate)
    speakers = result.speakers
    fig, axes = plt.subplots(2, 1, figsize=SIZE_INCHES, sharex=True,
                             gridspec_kw={"height_ratios": [1, max(1, len(speakers)) * 0.5]})
    _waveform(axes[0], samples, rate, start, end)
    palette = plt.get_cmap("tab10")
    for row, speaker in enumerate(speakers):
        spans = [(t.start, t.duration) for t in result.turns()
                 if t.speaker == speaker and t.end > start and t.start < end]
        axes[1].broken_barh(spans, (len(speakers) - 1 - row + 0.1, 0.8), color=palette(row % 10))
    axes[1].set_yticks([len(speakers) - 0.5 - row for row in range(len(speakers))], speakers)
    axes[1].set_ylim(0, max(1, len(speakers)))
    axes[1].set_xlim(start, end)
    axes[1].set_xlabel("time (s)")
    return fig


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
