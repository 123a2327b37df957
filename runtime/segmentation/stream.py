"""The sliding-window engine: samples in, final frame scores out, in memory bounded by one window.

Offline calls are one push of the whole signal plus a flush; files are pushed
block by block; live audio is pushed as it arrives. All three run the same
code, so their scores agree (up to onnxruntime's batch-size rounding).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import soxr

from powerseg.errors import AudioError, OptionError, StreamClosedError

from ..aggregate import OverlapAdd
from ..audio import check_finite, to_float32
from ..binarize import BinarizeOptions, Region, RegionTracker
from ..framing import FrameGrid, Framing
from ..windows import Window, stack
from .powerset import active_speakers, overlap_score, speech_score, to_multilabel

if TYPE_CHECKING:
    from ..contracts import StageHook, WindowModel

# Called with each batch of windows, in order, and their per-speaker activations:
# (windows, window_samples) float32 and (windows, frames, speakers); what needs the audio of
# each chunk (speaker embeddings) works there, so no recording is ever held whole.
WindowHook = Callable[[np.ndarray, np.ndarray], None]
CLOSED = "stream already flushed: start a new one with .stream()"


@dataclass(frozen=True)
class FrameScores:
    """Final scores of consecutive output frames ``first, first + 1, ...``."""

    first: int
    speech: np.ndarray
    overlap: np.ndarray
    count: np.ndarray
    grid: FrameGrid
    # regions that became final with these frames (stream(vad=..., osd=...)), sorted by start
    events: tuple[Region, ...] = ()

    def __len__(self) -> int:
        return len(self.speech)

    def __repr__(self) -> str:
        start = self.grid.begin(self.first)
        return (f"FrameScores({len(self)} frames from frame {self.first} ({start:.3f} s), "
                f"{len(self.events)} events)")

    @property
    def times(self) -> np.ndarray:
        """Start time (seconds) of each frame."""
        return self.grid.times(len(self), self.first)


class FrameParts:
    """A stream's final frame scores, kept for its whole ``Segmentation``, in a few arrays:
    a live hour of 0.1 s pushes gives 36,000 parts, most of them empty, whose objects would
    outweigh their frames."""

    MERGE_EVERY = 64  # parts joined into one array this often (a copy per 64 s or so)

    def __init__(self) -> None:
        self._columns: tuple[list[np.ndarray], ...] = ([], [], [])  # speech, overlap, count

    def add(self, part: FrameScores) -> None:
        if not len(part):
            return
        for column, values in zip(self._columns, (part.speech, part.overlap, part.count)):
            column.append(values)
            if len(column) >= self.MERGE_EVERY:
                column[:] = [np.concatenate(column)]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(speech, overlap, count) of every frame added, in order."""
        empty = (np.float32, np.float32, np.uint8)
        return tuple(np.concatenate(c) if c else np.zeros(0, t)
                     for c, t in zip(self._columns, empty))


class Stream:
    """Push mono float samples as they arrive; get frames once no window can change them.

    A frame is final once the last window covering it has run: about one window
    (10 s) after it was heard, plus up to one step (1 s by default).

    ``sample_rate`` (or ``push(..., sample_rate=)``) other than the model's
    16 kHz is resampled incrementally with soxr (as files are); one stream has
    one input rate. ``vad``/``osd`` options turn on region events: each result's
    ``.events`` holds the SPEECH/OVERLAP regions that became final, and all of
    them together equal ``binarize`` on the offline scores.
    """

    def __init__(self, model: WindowModel, framing: Framing, batch_size: int = 2,
                 soft: bool = False, keep_activations: bool = False,
                 sample_rate: int | None = None, vad: BinarizeOptions | None = None,
                 osd: BinarizeOptions | None = None, on_windows: WindowHook | None = None,
                 hook: StageHook | None = None):
        self._model, self._soft = model, soft
        self.framing = framing
        spec = self.framing.spec
        self._step = self.framing.step_samples
        self._windows = self._model.windows(self._step)
        # windows per model call: ``batch_size``, or fewer where the model runs fewer at once
        self._batch = min(batch_size, spec.windows_per_run or batch_size)
        self._made = 0  # windows handed to the model so far
        # batches handed to the model, in order: the hook's samples (if any), future log-probs
        self._running: deque[tuple[np.ndarray | None, Future]] = deque()
        self._chunks = 0  # chunks whose scores are in
        self._total = 0  # samples pushed so far, at the model's rate
        self._closed = False
        self._scores = OverlapAdd(self.framing, 2, hamming=True)
        self._count = OverlapAdd(self.framing, 1, hamming=False)
        self.activations: list[np.ndarray] | None = [] if keep_activations else None
        self._on_windows = on_windows
        self._hook = hook
        self._rate: int | None = None  # input rate, fixed by the first rate given
        self._resampler: soxr.ResampleStream | None = None
        self._input = 0  # input samples (before resampling) seen, for error times
        if sample_rate is not None:
            self._set_rate(sample_rate)
        self._trackers: list[tuple[int, RegionTracker]] = []
        for channel, (options, label) in enumerate(((vad, "SPEECH"), (osd, "OVERLAP"))):
            if options is not None:
                if not isinstance(options, BinarizeOptions):
                    raise OptionError(f"{label.lower()} events need BinarizeOptions, got "
                                      f"{type(options).__name__}")
                self._trackers.append((channel, RegionTracker(options, label, spec.grid)))

    @property
    def samples_pushed(self) -> int:
        return self._total

    @property
    def sample_rate(self) -> int:
        """Rate of the pushed samples: the model's unless another was given."""
        return self._rate or self.framing.spec.sample_rate

    def _set_rate(self, rate: int) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise OptionError(f"sample_rate must be a positive integer, got {rate!r}")
        rate = int(rate)
        if self._rate is not None and rate != self._rate:
            raise OptionError(f"stream: sample_rate {rate} differs from this stream's {self._rate}"
                              " (one stream has one input rate)")
        if self._rate is None:
            self._rate = rate
            model_rate = self.framing.spec.sample_rate
            if rate != model_rate:
                self._resampler = soxr.ResampleStream(rate, model_rate, 1, dtype="float32",
                                                      quality="HQ")

    def _check(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise AudioError(f"stream: push mono samples as a 1-D array, got shape {samples.shape}"
                             " (downmix channels first)")
        if samples.dtype.kind not in "iuf":
            raise AudioError(f"stream: expected float (or integer PCM) samples, got dtype "
                             f"{samples.dtype}")
        return to_float32(samples)  # integer PCM scaled as for offline arrays

    def push(self, samples: np.ndarray, sample_rate: int | None = None,
             wait: bool = True) -> FrameScores:
        """Add mono samples (any block size); returns the frames that became final.

        ``sample_rate`` defaults to the stream's (the model's 16 kHz unless set);
        other rates are resampled incrementally. ``wait=False`` returns without waiting for
        the windows still running, whose frames come with a later push or the flush: for a
        recording fed in blocks, it keeps the model busy from one block to the next.
        """
        if self._closed:
            raise StreamClosedError(CLOSED)
        if sample_rate is not None:
            self._set_rate(sample_rate)
        samples = self._check(samples)
        check_finite(samples, self.sample_rate, "stream", offset=self._input)
        self._input += len(samples)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=False)
        chunks = self._chunks
        with self._or_abort():
            self._consume(samples, wait)
        if self._chunks == chunks:  # no window ran, so no frame became final (cheap path)
            empty = np.zeros((0, 2), np.float32)
            return self._frames(self._scores.released, empty, empty[:, :1])
        return self._release(self.framing.first_frame(self._chunks))

    def provisional(self) -> FrameScores:
        """Scores of the frames after the final ones that a window has already covered.

        For low-latency use: a frame gets a provisional score one step (plus the window's
        last frame) after it is heard, instead of about one window later. The values are
        the overlap-add of the windows run so far, so later windows still change them;
        the final ones come from ``push``/``flush`` as always. No region events.
        """
        if self._closed:
            raise StreamClosedError(CLOSED)
        return self._frames(self._scores.released, self._scores.peek(), self._count.peek())

    def _consume(self, samples: np.ndarray, wait: bool = True) -> None:
        """Samples in pieces of one batch, so neither windows nor front rows pile up in memory;
        each piece's windows go to the model before the next append.

        Windows are handed out early (before the front blocks past them are complete) only at
        the end of a push that waits: the latency a live stream needs, no recomputation
        otherwise.
        """
        piece = self._step * self._batch
        for begin in range(0, len(samples), piece):
            self._windows.append(samples[begin:begin + piece])
            self._total += min(piece, len(samples) - begin)
            last = begin + piece >= len(samples)
            early = wait and last
            self._submit(list(iter(lambda: self._windows.next(early), None)), last=early,
                         live=early)
        if wait:
            self._drain()

    def flush(self) -> FrameScores:
        """End of audio: run the zero-padded last window if pyannote would, return the rest."""
        if self._closed:
            raise StreamClosedError(CLOSED)
        self._closed = True
        with self._or_abort():
            if self._resampler is not None:
                self._consume(self._resampler.resample_chunk(np.zeros(0, np.float32),
                                                             last=True), wait=False)
            if self._total == 0:
                raise AudioError("stream: no samples were pushed")
            full, has_last = self.framing.num_chunks(self._total)
            self._submit(self._windows.rest(full + has_last - self._made), last=True)
            self._drain()
        num_frames = self.framing.num_frames(full + has_last, self._total, has_last)
        return self._release(num_frames, last=True)

    @contextmanager
    def _or_abort(self) -> Iterator[None]:
        """Any exception (a hook's, Ctrl-C, a model error) aborts the stream on its way out."""
        try:
            yield
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop for good: batches not yet started are dropped, running ones waited for (so no
        worker is left busy with this stream's windows), and the stream is closed."""
        self._closed = True
        running, self._running = self._running, deque()
        for _, future in running:
            future.cancel()
        wait([future for _, future in running])

    def _submit(self, windows: list[Window], last: bool, live: bool = False) -> None:
        """Windows in order to the model, in batches of ``batch_size``; the ``last`` ones of a
        push spread over the workers instead, for the lowest latency (and, ``live``, a lone one
        with nothing else running over all the cores where the model gains from it; not when
        ``on_windows`` follows, as a diarization stream's embeddings do: they take most of the
        window's time, and a run over two cores costs more CPU than on one).

        Batches run while the next samples are read and their windows made; results are taken
        in order once one more batch waits than there are workers (so a worker finds the next
        one ready), which bounds memory.
        """
        if not windows:
            return
        workers = self._model.workers
        size = min(self._batch, -(-len(windows) // workers)) if last else self._batch
        for i in range(0, len(windows), size):
            group = windows[i:i + size]
            samples = np.stack([w.samples for w in group]) if self._on_windows else None
            lone = live and len(windows) == 1 and not self._running and \
                self._on_windows is None
            infer = self._model.infer_lone if lone else self._model.infer_async
            self._running.append((samples, infer(stack(group))))
            self._made += len(group)
            while len(self._running) > workers + 1:
                self._finish()

    def _drain(self) -> None:
        while self._running:
            self._finish()

    def _finish(self) -> None:
        """The oldest batch's log-probabilities into the scores, the activations and the hook."""
        samples, logprobs = self._running.popleft()
        logprobs = logprobs.result()
        active = to_multilabel(logprobs, self.framing.spec.mapping, soft=self._soft)
        scores = np.stack([speech_score(active), overlap_score(active)], axis=-1)
        count = active_speakers(active)[..., None]
        for j in range(len(logprobs)):
            self._scores.add(self._chunks, scores[j])
            self._count.add(self._chunks, count[j])
            self._chunks += 1
        if self.activations is not None:
            self.activations.extend(active)
        if self._on_windows is not None:
            self._on_windows(samples, active)
        if self._hook is not None:
            spec = self.framing.spec
            end = (self._chunks - 1) * self._step + spec.window_samples  # of the last window
            self._hook("segmentation", {"seconds": min(end, self._total) / spec.sample_rate,
                                        "total": None})

    def _release(self, upto: int, last: bool = False) -> FrameScores:
        first = self._scores.released
        scores, count = self._scores.pop(upto), self._count.pop(upto)
        events: list[Region] = []
        for channel, tracker in self._trackers:
            events += tracker.push(scores[:, channel])
            if last:
                events += tracker.flush()
        return self._frames(first, scores, count, sorted(events, key=lambda r: (r.start, r.label)))

    def _frames(self, first: int, scores: np.ndarray, count: np.ndarray,
                events: list[Region] = ()) -> FrameScores:
        """Averaged (frames, 2) speech/overlap and (frames, 1) speaker count -> FrameScores."""
        spec = self.framing.spec
        return FrameScores(first, scores[:, 0], scores[:, 1],
                           np.rint(count[:, 0]).astype(np.uint8),
                           spec.grid, tuple(events))
