"""The ONNX model: an onnxruntime session plus the geometry read from its metadata."""

from __future__ import annotations

import json
import os
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from powerseg.errors import ModelError
from powerseg.models import SEGMENTATION

from ..framing import FrameGrid
from ..session import OnnxSession, completed
from ..windows import SampleWindows, WindowSource, stack
from .front import TAIL_INPUT, FirstBlock, FrontModel, FrontWindows

REQUIRED_METADATA = ("sample_rate", "window_samples", "num_frames", "frame_start_samples",
                     "frame_step_samples", "frame_duration_samples", "num_speakers",
                     "max_speakers_per_frame", "powerset")


@dataclass(frozen=True)
class ModelSpec:
    """Frame geometry and class table of a segmentation model, read from its ONNX metadata."""

    sample_rate: int
    window_samples: int
    num_frames: int
    frame_start_samples: int
    frame_step_samples: int
    frame_duration_samples: int
    mapping: np.ndarray  # (classes, speakers) 0/1: which speakers each powerset class holds
    metadata: dict[str, str]
    # Most windows one onnxruntime run may take, 0 for any number. Dynamic int8 models set 1:
    # their activation scales span the whole input tensor, so batched windows change each other.
    windows_per_run: int = 0

    @property
    def window(self) -> float:
        return self.window_samples / self.sample_rate

    @property
    def grid(self) -> FrameGrid:
        rate = self.sample_rate
        return FrameGrid(self.frame_start_samples / rate, self.frame_step_samples / rate,
                         self.frame_duration_samples / rate)

    @property
    def num_speakers(self) -> int:
        return self.mapping.shape[1]

    @classmethod
    def from_metadata(cls, props: dict[str, str], source: str) -> ModelSpec:
        missing = [key for key in REQUIRED_METADATA if key not in props]
        if missing:
            raise ModelError(f"{source}: ONNX metadata lacks {', '.join(missing)}; "
                             "not a powerseg export (re-export it with `powerseg export`)")
        try:
            ints = {key: int(props[key]) for key in REQUIRED_METADATA[:-1]}
            per_run = int(props.get("windows_per_run", 0))
            if per_run < 0:
                raise ValueError(f"windows_per_run is {per_run}")
            mapping = np.asarray(json.loads(props["powerset"]), dtype=np.float32)
        except (ValueError, TypeError) as error:
            raise ModelError(f"{source}: malformed ONNX metadata ({error}); re-export the model "
                             "with `powerseg export`") from None
        if mapping.ndim != 2 or mapping.shape[1] != ints["num_speakers"] or \
                mapping.sum(axis=1).max() != ints["max_speakers_per_frame"]:
            raise ModelError(f"{source}: metadata 'powerset' does not match num_speakers/"
                             "max_speakers_per_frame; re-export the model with `powerseg export`")
        return cls(ints["sample_rate"], ints["window_samples"], ints["num_frames"],
                   ints["frame_start_samples"], ints["frame_step_samples"],
                   ints["frame_duration_samples"], mapping, dict(props), per_run)


class SegmentationModel(OnnxSession):
    """A segmentation model: fixed-size windows in, (batch, frames, classes) log-probabilities out.

    Either the full model (a window's samples in), or the tail of a shared front-end pair
    (metadata ``role`` "shared_tail": front rows in), whose front is loaded from beside it.
    ``windows(step)`` makes what each takes from pushed samples; ``infer`` runs a batch of it.
    """

    KIND = SEGMENTATION

    def __init__(self, model: str | os.PathLike = "fp32", threads: int | None = None,
                 providers: str | list = "auto"):
        super().__init__(model, threads, providers)
        self.spec = ModelSpec.from_metadata(self.metadata, str(self.path))
        self.front, self.first_block = None, None
        if self.metadata.get("role") == "shared_tail":
            self.first_block = FirstBlock.from_metadata(self.metadata, str(self.path))
            self.front = FrontModel.of_tail(self, providers)
        self._check_io()

    def windows(self, step_samples: int) -> WindowSource:
        """A new source of this model's windows every ``step_samples``, for one stream."""
        if self.front is None:
            return SampleWindows(self._input, self.spec.window_samples, step_samples)
        return FrontWindows(self.front, self.first_block, self.spec.window_samples, step_samples)

    def accepts_step(self, step_samples: int) -> bool:
        """Whether windows can start every ``step_samples`` (a pair's: whole conv strides)."""
        return self.front is None or step_samples % self.front.spec.stride == 0

    def infer_async(self, batch: dict[str, np.ndarray]) -> Future:
        """``infer`` on a worker: the future of one batch's log-probabilities."""
        return self.submit(self.infer, batch)

    def infer_lone(self, batch: dict[str, np.ndarray]) -> Future:
        """One lone window whose latency counts (a live stream's latest): spread over the cores
        where that is faster. Measured at 2 cores: the fp32 tail 28.3 -> 19.7 ms (its LSTMs
        split their work); not the int8 tail (15.4 -> 15.9 ms: its quantized LSTM does not
        split) nor the full model (36.7 -> 43.5 ms), which keep one single-threaded run."""
        if self.workers > 1 and self.front is not None and not self.spec.windows_per_run:
            return completed(lambda b: self.infer(b, spread=True), batch)
        return self.infer_async(batch)

    def release_memory(self) -> None:
        super().release_memory()
        if self.front is not None:
            self.front.release_memory()

    def _check_io(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        spec = self.spec
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.path}: expected one input and one output")
        shape = inputs[0].shape
        if self.front is None:
            if len(shape) != 3 or shape[1] != 1 or shape[2] != spec.window_samples:
                raise ModelError(f"{self.path}: input shape {shape} is not (batch, 1, "
                                 f"{spec.window_samples}) as its metadata says; not a usable "
                                 "segmentation model (re-export it with `powerseg export`)")
        else:
            front = self.front.spec
            expected = [front.window_rows(spec.window_samples), front.row_shape[-1]]
            if inputs[0].name != TAIL_INPUT or shape[1:] != expected or \
                    len(self.first_block.sums) != front.row_shape[-1]:
                raise ModelError(f"{self.path}: input {inputs[0].name} {shape} is not "
                                 f"{TAIL_INPUT} (batch, {expected[0]}, {expected[1]}), the first "
                                 f"block made from {self.front.path.name}'s rows; re-export the "
                                 "pair with `powerseg export`")
        out = outputs[0].shape
        if len(out) != 3 or out[1] != spec.num_frames or out[2] != len(spec.mapping):
            raise ModelError(f"{self.path}: output shape {out} is not (batch, {spec.num_frames}, "
                             f"{len(spec.mapping)}) as its metadata says; not a usable "
                             "segmentation model (re-export it with `powerseg export`)")
        self._input = inputs[0].name
        self._dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """(batch, window_samples) float32 -> (batch, num_frames, classes) log-probabilities.

        Each window on its own: a pair's tail gets front rows computed from that window alone.
        """
        if self.front is None:
            return self.infer({self._input: windows[:, None, :]})
        made = []
        for window in windows:
            source = self.windows(self.spec.window_samples)
            source.append(window)
            made += source.rest(1)
        return self.infer(stack(made))

    def infer(self, batch: dict[str, np.ndarray], spread: bool = False) -> np.ndarray:
        """One batch of inputs, each with a leading window axis -> log-probabilities
        (``spread``: on the session with an intra-op thread per worker)."""
        per_run = self.spec.windows_per_run
        count = len(next(iter(batch.values())))
        if per_run and count > per_run:
            return np.concatenate([self.infer({name: value[i:i + per_run]
                                               for name, value in batch.items()}, spread)
                                   for i in range(0, count, per_run)])
        out = self.run({name: np.ascontiguousarray(value, dtype=self._dtype)
                        for name, value in batch.items()},
                       session=self.spread_session() if spread else None)
        # Finite audio in, so NaN (or a log-probability of +inf) out means damaged weights;
        # -inf is a legitimate log(0), which fp16 log_softmax does produce.
        if np.isnan(out).any() or np.isposinf(out).any():
            raise ModelError(f"{self.path}: the model produced NaN from finite audio; its "
                             "weights are corrupt: re-download it or re-export it with "
                             "`powerseg export`")
        return out

