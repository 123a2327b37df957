"""``Segmenter``: audio in, aggregated speech/overlap scores and per-chunk speaker activations out."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from powerseg.errors import AudioError, OptionError
from powerseg.models import shared_tail_path

from ..audio import ACCEPTED, audio_input, blocks, duration_of, prepare
from ..binarize import BinarizeOptions, Region, binarize
from ..contracts import StageHook, WindowModel, check
from ..framing import FrameGrid, Framing
from ..options import Check, integer, keywords_or_options, number, options_repr, validate
from ..providers import CPU, resolve_providers
from .auto_model import AUTO, Choice, choose_variant
from .front import PAIR_MAX_STEP
from .model import SegmentationModel
from .stream import FrameParts, Stream, WindowHook


@dataclass(frozen=True)
class SegmenterOptions:
    """Everything that decides a result; returned with it, so a result says how it was made."""

    model: str = "fp32"  # "fp32", "int8", "auto" (the faster on this CPU) or an .onnx path
    step: float = 1.0  # seconds between window starts (pyannote's default for this model)
    batch_size: int = 2  # windows per model call; one call per core runs at once (memory)
    threads: int | None = None  # onnxruntime intra-op threads; None = one per core
    providers: str | tuple = "auto"  # "auto", "cpu", "cuda" or onnxruntime provider list
    soft: bool = False  # powerset decoding: False = argmax (pyannote), True = probabilities
    # run a shipped variant's shared front-end pair on CPU (sinc convolution once over the
    # signal, not per window; the same scores within float32 rounding) where the step allows
    shared_front: bool = True

    CHECKS: ClassVar[dict[str, Check]] = {"step": number(unit="seconds"), "batch_size": integer(),
                                          "threads": integer(none=True)}

    def __post_init__(self) -> None:
        validate(self, self.CHECKS)


@dataclass(frozen=True)
class Segmentation:
    """Scores on the frame grid (frame ``i`` at ``grid.start + i * grid.step``, ``grid.duration``
    long)."""

    speech: np.ndarray  # (frames,) float32: aggregated voice-activity score
    overlap: np.ndarray  # (frames,) float32: aggregated overlapped-speech score
    count: np.ndarray  # (frames,) uint8: estimated number of active speakers
    activations: np.ndarray | None  # (chunks, frames_per_chunk, speakers) per-chunk activations
    grid: FrameGrid
    chunk_step: float
    chunk_duration: float
    duration: float  # seconds of audio
    options: SegmenterOptions
    provider: str
    metadata: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        chunks = "no" if self.activations is None else len(self.activations)
        return (f"Segmentation({self.duration:.3f} s, {self.num_frames} frames, {chunks} chunk "
                f"activations, model={self.options.model!r}, step={self.options.step:g}, "
                f"soft={self.options.soft}, provider={self.provider!r})")

    def to_rttm(self, uri: str = "audio", osd: bool = False,
                options: BinarizeOptions | None = None) -> str:
        """The RTTM ``powerseg vad`` (``osd=True``: ``powerseg osd``) writes."""
        from ..writers import rttm_lines

        return "".join(rttm_lines(uri, self.osd(options) if osd else self.vad(options)))

    def to_json(self, uri: str = "audio", osd: bool = False,
                options: BinarizeOptions | None = None) -> str:
        """The JSON ``powerseg vad -o X.json`` (``osd=True``: ``osd``) writes."""
        from ..writers import dumps_json, regions_json

        regions = self.osd(options) if osd else self.vad(options)
        return dumps_json(regions_json(uri, regions, self))

    @property
    def num_frames(self) -> int:
        return len(self.speech)

    @property
    def frame_times(self) -> np.ndarray:
        return self.grid.times(self.num_frames)

    def _regions(self, scores: np.ndarray, label: str, options: BinarizeOptions | None,
                 kwargs: dict) -> list[Region]:
        options = options or BinarizeOptions(**kwargs)
        return binarize(scores, self.grid, options, label)

    def vad(self, options: BinarizeOptions | None = None, **kwargs) -> list[Region]:
        """Speech regions (pyannote's VoiceActivityDetection); kwargs are BinarizeOptions fields."""
        return self._regions(self.speech, "SPEECH", options, kwargs)

    def osd(self, options: BinarizeOptions | None = None, **kwargs) -> list[Region]:
        """Overlapped-speech regions (pyannote's OverlappedSpeechDetection)."""
        return self._regions(self.overlap, "OVERLAP", options, kwargs)


class Segmenter:
    """pyannote/segmentation-3.0 over recordings of any length, with onnxruntime.

    Holds no per-call state: one instance can serve many threads at once.
    """

    @keywords_or_options(SegmenterOptions)
    def __init__(self, model: str | os.PathLike = "fp32", step: float = 1.0, batch_size: int = 2,
                 threads: int | None = None, providers: str | list | tuple = "auto",
                 soft: bool = False, shared_front: bool = True,
                 options: SegmenterOptions | None = None):
        self._start(options or SegmenterOptions(
            model=model, step=step, batch_size=batch_size, threads=threads, providers=providers,
            soft=soft, shared_front=shared_front))

    @classmethod
    def with_model(cls, model: WindowModel, options: SegmenterOptions | None = None
                   ) -> Segmenter:
        """A Segmenter on a model object (``contracts.WindowModel``: a torch rebuild, a
        caching wrapper) instead of an ONNX file; ``options.model`` only names it."""
        check(model, WindowModel, "Segmenter.with_model")
        segmenter = cls.__new__(cls)
        segmenter._start(options or SegmenterOptions(), model)
        return segmenter

    def _start(self, options: SegmenterOptions, model: WindowModel | None = None) -> None:
        self.options = options
        self.choice: Choice | None = None  # with model "auto": the variant it runs, and why
        if model is None and options.model == AUTO:  # the faster of fp32 and int8 here
            self.choice = choose_variant(options.providers, options.threads, options.batch_size)
        self.model = self._load() if model is None else model
        self._whole: SegmentationModel | None = None  # the full model, for one-window arrays
        self._whole_lock = threading.Lock()
        self.spec = self.model.spec
        # A window's frames span a little less than the window itself (589 frames of 16.875 ms
        # in 10 s): a larger step would leave frames between windows with no score at all.
        max_step = (self.spec.num_frames - 1) * self.spec.grid.step
        if self.options.step > max_step:
            raise OptionError(f"step ({self.options.step:g} s) must not exceed {max_step:g} s, the "
                              f"span of one {self.spec.window:g} s window's {self.spec.num_frames} "
                              "frames: frames between windows would be lost")
        if round(self.options.step * self.spec.sample_rate) < 1:
            raise OptionError(f"step ({self.options.step:g} s) is shorter than one sample")
        self.framing = Framing(self.spec, float(self.options.step))
        if not self.model.accepts_step(self.framing.step_samples):
            raise OptionError(f"{self.model.path} is the tail of a shared front-end pair: its "
                              f"step ({self.options.step:g} s) must be a whole number of "
                              f"{self.model.front.spec.stride}-sample conv strides; give the "
                              "full model for other steps")

    def _load(self) -> WindowModel:
        """A shipped variant's shared front-end pair on CPU when the step suits it (whole conv
        strides, at most ``PAIR_MAX_STEP`` of a window), else the model named (the full one:
        its own front per window)."""
        o, variant = self.options, self._variant()
        tail = shared_tail_path(variant) if o.shared_front and isinstance(variant, str) else None
        if tail is not None and resolve_providers(o.providers)[0] == CPU:
            pair = SegmentationModel(tail, o.threads, o.providers)
            step = round(o.step * pair.spec.sample_rate)
            if pair.accepts_step(step) and step <= PAIR_MAX_STEP * pair.spec.window_samples:
                return pair
        return SegmentationModel(variant, o.threads, o.providers)

    def _variant(self) -> str:
        """The model asked for, or the variant ``auto`` chose."""
        return self.choice.variant if self.choice else self.options.model

    def __repr__(self) -> str:
        return options_repr(self, f"provider={self.provider!r}, pair={self.shared_front}")

    @property
    def shared_front(self) -> bool:
        """Whether this runs a shared front-end pair (front once over the signal)."""
        return self.model.front is not None

    @property
    def provider(self) -> str:
        return self.model.provider

    def stream(self, keep_activations: bool = False, sample_rate: int | None = None,
               vad: BinarizeOptions | None = None, osd: BinarizeOptions | None = None,
               on_windows: WindowHook | None = None, hook: StageHook | None = None) -> Stream:
        """A live stream: ``push(samples)`` as audio arrives, ``flush()`` at its end.

        Each returns the ``FrameScores`` that became final; all of them together are the
        offline scores. ``vad``/``osd`` options add final SPEECH/OVERLAP regions as
        ``.events``; ``sample_rate`` other than the model's is resampled on the fly;
        ``on_windows`` sees each round of windows with their activations; ``hook(stage,
        payload)`` is told each round's progress (seconds of audio) and can stop the stream
        by raising.
        """
        return self._stream(self.model, keep_activations=keep_activations,
                            sample_rate=sample_rate, vad=vad, osd=osd, on_windows=on_windows,
                            hook=hook)

    def _stream(self, model: WindowModel, **arguments) -> Stream:
        """A Stream on ``model`` (this Segmenter's, or the full one for a lone window)."""
        return Stream(model, self.framing, self.options.batch_size, self.options.soft,
                      **arguments)

    def __call__(self, audio: str | os.PathLike | np.ndarray, sample_rate: int | None = None,
                 activations: bool = True, on_windows: WindowHook | None = None,
                 hook: StageHook | None = None) -> Segmentation:
        """Segment a file (read in blocks) or an array (``sample_rate`` required).

        ``hook(stage, payload)``: called after each round of windows and at the end with
        {"seconds": audio done, "total": the recording's seconds}; raising in it stops the
        work at once (the exception propagates)."""
        audio, sample_rate = audio_input(audio, sample_rate)
        total = duration_of(audio, sample_rate)
        progress = None if hook is None else \
            lambda stage, payload: hook(stage, {**payload, "total": total})
        parts = FrameParts()
        if isinstance(audio, (str, os.PathLike)):
            if sample_rate is not None:
                raise OptionError("sample_rate is only for arrays: files carry their own")
            stream = self.stream(keep_activations=activations, on_windows=on_windows,
                                 hook=progress)
            for block in blocks(Path(audio), self.spec.sample_rate):
                parts.add(stream.push(block, wait=False))
        else:
            if sample_rate is None:
                raise OptionError(f"sample_rate is required with an array input (audio: {ACCEPTED})")
            samples = prepare(audio, sample_rate, self.spec.sample_rate)
            one = None if on_windows is not None else self._one_window_model(len(samples))
            stream = self._stream(one or self.model, keep_activations=activations,
                                  on_windows=on_windows, hook=progress)
            parts.add(stream.push(samples, wait=False))
        self.check_length(stream, audio if isinstance(audio, (str, os.PathLike)) else "array")
        parts.add(stream.flush())
        result = self.result(parts, stream)
        if hook is not None:
            hook("segmentation", {"seconds": result.duration, "total": result.duration})
        return result

    def _one_window_model(self, samples: int) -> SegmentationModel | None:
        """The full model for an array of one window (made on first use), where a pair runs:
        the pair's front pays off over overlapping windows, and for one window its block
        runs cost more than the full model's own front (benchmarks/README.md). Not with a
        window hook (diarization): the caller's work per window dominates, and a live
        diarization stream, which runs the pair, must end in the offline result exactly."""
        if not self.shared_front or samples > self.spec.window_samples:
            return None
        with self._whole_lock:
            if self._whole is None:
                o = self.options
                self._whole = SegmentationModel(self._variant(), o.threads, o.providers)
        return self._whole

    def check_length(self, stream: Stream, source: str | os.PathLike) -> None:
        """An AudioError naming ``source`` when what was pushed cannot make one output frame."""
        if stream.samples_pushed == 0:
            raise AudioError(f"{source}: decodes to zero samples (the input holds no audio)")
        if stream.samples_pushed < self.spec.frame_duration_samples:
            rate = self.spec.sample_rate
            raise AudioError(f"{source}: {1000 * stream.samples_pushed / rate:.1f} ms of audio is "
                             f"shorter than one output frame ({1000 * self.spec.grid.duration:.1f}"
                             " ms); nothing to segment")

    def result(self, parts: FrameParts, stream: Stream) -> Segmentation:
        """The ``Segmentation`` of a stream: its final frame scores, in order, put together."""
        spec = self.spec
        speech, overlap, count = parts.arrays()
        acts = None
        if stream.activations is not None:
            acts = np.stack(stream.activations) if stream.activations else \
                np.zeros((0, spec.num_frames, spec.num_speakers), np.float32)
        return Segmentation(
            speech=speech, overlap=overlap, count=count,
            activations=acts,
            grid=spec.grid, chunk_step=self.options.step,
            chunk_duration=spec.window, duration=stream.samples_pushed / spec.sample_rate,
            options=self.options, provider=self.provider, metadata=dict(spec.metadata),
        )
