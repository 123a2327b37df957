"""The front of a shared front-end pair: the sinc convolution once over the signal, not per window.

Windows 1 s apart share 9 s of their 10 s, and the sinc convolution of the raw signal does not
depend on the window (export/shared_front.py has the algebra). The front runs on fixed blocks of
signal, so the same samples always meet the same computation whatever the push sizes, and
returns time-major rows for each of the 3 pooling phases; a window's slice of one phase's rows,
with its mean and variance, gives the full model's first pooled block (``FirstBlock``), which
the tail takes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from powerseg.errors import ModelError, OptionError
from powerseg.models import SEGMENTATION_FRONT, sha256

from ..buffer import RowBuffer
from ..session import OnnxSession
from ..windows import Window

TAIL_INPUT = "first"  # the tail's one input: a window's first pooled block, time-major
RUN_BLOCKS = 8  # front blocks per onnxruntime run
# The front runs once over every sample, the full model's own sinc convolution once per window:
# the pair pays while windows overlap enough. Measured at 2 cores: step 1 s, 1.15-1.2x faster end
# to end; step 5 s, fp32 even and int8 1.2x slower. So a shipped pair runs for steps up to a
# quarter of a window (2.5 s), the full model beyond.
PAIR_MAX_STEP = 0.25  # of a window


@dataclass(frozen=True)
class FrontSpec:
    """Block geometry of a front, read from its ONNX metadata."""

    stride: int  # samples between conv frames
    kernel: int  # samples one conv frame spans
    pool: int  # width (and stride) of the first max-pooling: the number of phases
    block_frames: int  # conv frames whose rows one block gives
    block_samples: int  # samples one block reads (its frames plus pool - 1 more)
    row_shape: tuple[int, ...]  # values per row and phase: (2, filters), max of c and of -c

    @property
    def hop(self) -> int:
        """Samples between block starts."""
        return self.block_frames * self.stride

    @property
    def rows_per_block(self) -> int:
        return self.block_frames // self.pool

    def window_rows(self, window_samples: int) -> int:
        """Rows of one phase a window takes: its conv frames over the pooling width."""
        return (1 + (window_samples - self.kernel) // self.stride) // self.pool


@dataclass(frozen=True)
class FirstBlock:
    """A window's first pooled block, ``maxpool3(|conv(norm(x))|)``, from the front's rows.

    With the window's mean ``mu`` and ``s = sqrt(var + eps)`` it is ``a * max(M + d, N - d)``:
    ``M``, ``N`` the rows' 3-wide max of ``c`` and of ``-c``, ``a = gamma / s``,
    ``d = sums * (beta * s / gamma - mu)`` (export/shared_front.py). The constants come from
    the tail's metadata.
    """

    gamma: float  # the waveform InstanceNorm's weight (> 0) and bias, and its eps
    beta: float
    eps: float
    sums: np.ndarray  # (filters,) float64: each sinc filter's taps summed

    @classmethod
    def from_metadata(cls, props: dict[str, str], source: str) -> FirstBlock:
        try:
            gamma, beta, eps = (float(props[k]) for k in
                                ("wav_norm_gamma", "wav_norm_beta", "wav_norm_eps"))
            sums = np.asarray(json.loads(props["sinc_filter_sums"]), np.float64)
        except (KeyError, ValueError, TypeError) as error:
            raise ModelError(f"{source}: tail metadata lacks or garbles {error}; re-export the "
                             "pair with `powerseg export`") from None
        if not gamma > 0 or sums.ndim != 1:
            raise ModelError(f"{source}: tail metadata wav_norm_gamma {gamma} / sinc_filter_sums "
                             f"shape {sums.shape} do not allow a shared front-end; re-export the "
                             "pair with `powerseg export`")
        return cls(gamma, beta, eps, sums)

    def __call__(self, parts: list[np.ndarray], mean: float, var: float) -> np.ndarray:
        """One phase's rows, (rows, 2, filters) in consecutive parts -> (rows, filters) float32."""
        s = np.sqrt(var + self.eps)
        d = (self.sums * (self.beta * s / self.gamma - mean)).astype(np.float32)
        out = np.empty((sum(len(p) for p in parts), len(d)), np.float32)
        at = 0
        for rows in parts:
            part = out[at:at + len(rows)]
            np.subtract(rows[:, 1], d, out=part)
            np.maximum(part, rows[:, 0] + d, out=part)
            at += len(rows)
        out *= np.float32(self.gamma / s)
        return out


class FrontModel(OnnxSession):
    """onnxruntime front: (blocks, 1, block_samples) -> (blocks, rows, pool, *row_shape)."""

    KIND = SEGMENTATION_FRONT

    def __init__(self, model: str | os.PathLike, threads: int | None = None,
                 providers: str | list = "auto"):
        super().__init__(model, threads, providers)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        try:
            ints = {key: int(self.metadata[key]) for key in
                    ("sinc_stride", "sinc_kernel", "pool", "block_frames", "block_samples")}
        except (KeyError, ValueError) as error:
            raise ModelError(f"{self.path}: front metadata lacks or garbles {error}; re-export "
                             "the pair with `powerseg export`") from None
        out = outputs[0].shape if len(outputs) == 1 else []
        row_shape = tuple(out[3:])
        self.spec = FrontSpec(ints["sinc_stride"], ints["sinc_kernel"], ints["pool"],
                              ints["block_frames"], ints["block_samples"], row_shape)
        s = self.spec
        if len(inputs) != 1 or inputs[0].shape[1:] != [1, s.block_samples] or \
                out[1:3] != [s.rows_per_block, s.pool] or \
                not row_shape or not all(isinstance(d, int) for d in row_shape) or \
                s.block_frames % s.pool or \
                s.block_samples != s.stride * (s.block_frames + s.pool - 2) + s.kernel:
            raise ModelError(f"{self.path}: inputs {[i.shape for i in inputs]} / output {out} do "
                             "not match "
                             f"the block geometry its metadata gives ({ints}); re-export the pair "
                             "with `powerseg export`")
        self._input = inputs[0].name

    @classmethod
    def of_tail(cls, tail: OnnxSession, providers: str | list) -> FrontModel:
        """The front a tail names in its metadata (a file beside it, checked by sha256); one
        worker: it runs on the stream's thread, beside the tail's workers."""
        try:
            ref = json.loads(tail.metadata["front_model"])
            path = Path(tail.path).with_name(ref["file"])
        except (KeyError, ValueError, TypeError) as error:
            raise ModelError(f"{tail.path}: tail metadata 'front_model' is missing or malformed "
                             f"({error}); re-export the pair with `powerseg export`") from None
        if not path.is_file():
            raise ModelError(f"{tail.path}: its front {path.name} is not beside it; keep the "
                             "pair's two files together")
        if sha256(path) != ref.get("sha256"):
            raise ModelError(f"{path}: not the front {tail.path.name} was exported with (sha256 "
                             "differs); re-export the pair with `powerseg export`")
        return cls(path, 1, providers)

    def rows(self, blocks: np.ndarray) -> Iterator[np.ndarray]:
        """(n, block_samples) signal blocks -> (rows, pool, *row_shape) rows, a run of at most
        ``RUN_BLOCKS`` blocks at a time.

        On the calling thread: the front is ~5 % of the work, and running it beside the
        workers' tails, in small runs, keeps its memory small.
        """
        for i in range(0, len(blocks), RUN_BLOCKS):
            out = self.run({self._input: np.ascontiguousarray(blocks[i:i + RUN_BLOCKS])[:, None]})
            yield out.reshape(-1, self.spec.pool, *self.spec.row_shape)


class FrontWindows:
    """Windows for a pair's tail: front rows computed block by block as samples arrive.

    Holds the rows of about one window (16x the bytes of its samples) and the window's samples,
    which give its mean and variance and are what the window hook sees. A window is handed out as
    soon as its samples are in, as the full model's are: when the block holding its last conv
    frame still lacks samples (those after the window), that block runs on zeros past them,
    provisionally. The rows the window uses are exact (each conv frame reads only its own 251
    samples, in the same block position); it runs again once complete.
    """

    def __init__(self, front: FrontModel, first: FirstBlock, window_samples: int,
                 step_samples: int):
        s = front.spec
        if step_samples % s.stride:
            raise OptionError(f"a step of {step_samples} samples is not a whole number of the "
                              f"front's {s.stride}-sample conv stride")
        self.front, self.first, self.spec = front, first, s
        self.window, self.step = window_samples, step_samples
        self.window_rows = s.window_rows(window_samples)
        self.samples = RowBuffer()
        # complete blocks' rows, then provisional ones (room for a window to start)
        self.rows = RowBuffer((s.pool, *s.row_shape), self.window_rows + 2 * s.rows_per_block)
        self.blocks = 0  # complete front blocks run so far
        self.next_start = 0  # first sample of the next window

    def append(self, samples: np.ndarray) -> None:
        self.samples.append(samples)
        self._run_front()

    def _run_front(self) -> None:
        """Every block whose samples are all in (provisional rows go: they run again)."""
        s = self.spec
        self.rows.truncate(self.blocks * s.rows_per_block)
        count = (self.samples.stop - s.block_samples) // s.hop + 1 - self.blocks
        if count > 0:
            self._run_blocks(self.samples.take(self.blocks * s.hop,
                                               (count - 1) * s.hop + s.block_samples))
            self.blocks += count
        self.samples.drop_before(min(self.blocks * s.hop, self.next_start))

    def _run_blocks(self, signal: np.ndarray) -> None:
        blocks = np.lib.stride_tricks.sliding_window_view(signal, self.spec.block_samples)
        for rows in self.front.rows(blocks[::self.spec.hop]):
            self.rows.append(rows)

    def _first_row(self) -> tuple[int, int]:
        """(row, phase) where the next window's rows start."""
        return divmod(self.next_start // self.spec.stride, self.spec.pool)

    def next(self, early: bool = True) -> Window | None:
        """The next window once its samples are in; with ``early`` False, once the front
        blocks it needs are complete too (when more samples are coming anyway)."""
        if self.samples.stop < self.next_start + self.window:
            return None
        row, _ = self._first_row()
        need, held = row + self.window_rows, self.rows.stop
        if held < need:  # the blocks up to the window's last row, zeros past the samples
            if not early:
                return None
            s = self.spec
            count = -(-need // s.rows_per_block) - held // s.rows_per_block
            start = held // s.rows_per_block * s.hop
            self._run_blocks(self.samples.take(start, (count - 1) * s.hop + s.block_samples))
        return self._take()

    def rest(self, count: int) -> list[Window]:
        """The last ``count`` windows: the front runs on zeros past the end of the audio until
        its blocks cover them (a full window's own frames are all audio; the padded last
        window's are zeros past the end, as pyannote pads)."""
        if count < 1:
            return []
        last = self.next_start + (count - 1) * self.step
        row = last // self.spec.stride // self.spec.pool
        blocks = -(-(row + self.window_rows) // self.spec.rows_per_block)
        end = max((blocks - 1) * self.spec.hop + self.spec.block_samples, last + self.window)
        if end > self.samples.stop:
            self.samples.append(np.zeros(end - self.samples.stop, np.float32))
            self._run_front()
        return [self._take() for _ in range(count)]

    def _take(self) -> Window:
        row, phase = self._first_row()
        samples = self.samples.take(self.next_start, self.window)
        # float64 sums (the centred squares in float32 first: 6x faster, 3e-9 off in variance)
        mean = samples.sum(dtype=np.float64) / len(samples)
        var = np.square(samples - np.float32(mean)).sum(dtype=np.float64) / len(samples)
        first = self.first([part[:, phase] for part in self.rows.segments(row, self.window_rows)],
                           mean, var)
        self.next_start += self.step
        self.rows.drop_before(min(self._first_row()[0], self.blocks * self.spec.rows_per_block))
        self.samples.drop_before(min(self.blocks * self.spec.hop, self.next_start))
        return Window(samples, {TAIL_INPUT: first})
