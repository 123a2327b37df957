"""The ONNX model: an onnxruntime session plus the geometry read from its metadata."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from powerseg.errors import ModelError
from powerseg.models import SEGMENTATION

from .session import OnnxSession

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
    def frame_start(self) -> float:
        return self.frame_start_samples / self.sample_rate

    @property
    def frame_step(self) -> float:
        return self.frame_step_samples / self.sample_rate

    @property
    def frame_duration(self) -> float:
        return self.frame_duration_samples / self.sample_rate

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


class OnnxModel(OnnxSession):
    """Runs fixed-size windows through onnxruntime: (batch, window) -> (batch, frames, classes)."""

    KIND = SEGMENTATION

    def __init__(self, model: str | os.PathLike = "fp32", threads: int | None = None,
                 providers: str | list = "auto"):
        super().__init__(model, threads, providers)
        self.spec = ModelSpec.from_metadata(self.metadata, str(self.path))
        self._check_io()

    def run_batches(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Several (batch, window_samples) arrays at once, one per worker; outputs in order."""
        return self.map(self, batches)

    def _check_io(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.path}: expected one input and one output")
        shape, spec = inputs[0].shape, self.spec
        if len(shape) != 3 or shape[1] != 1 or shape[2] != spec.window_samples:
            raise ModelError(f"{self.path}: input shape {shape} is not (batch, 1, "
                             f"{spec.window_samples}) as its metadata says; not a usable "
                             "segmentation model (re-export it with `powerseg export`)")
        out = outputs[0].shape
        if len(out) != 3 or out[1] != spec.num_frames or out[2] != len(spec.mapping):
            raise ModelError(f"{self.path}: output shape {out} is not (batch, {spec.num_frames}, "
                             f"{len(spec.mapping)}) as its metadata says; not a usable "
                             "segmentation model (re-export it with `powerseg export`)")
        self._input, self._input_type = inputs[0].name, inputs[0].type

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """(batch, window_samples) float32 -> (batch, num_frames, classes) log-probabilities."""
        per_run = self.spec.windows_per_run
        if per_run and len(windows) > per_run:
            return np.concatenate([self(windows[i:i + per_run])
                                   for i in range(0, len(windows), per_run)])
        dtype = np.float16 if self._input_type == "tensor(float16)" else np.float32
        feed = np.ascontiguousarray(windows[:, None, :], dtype=dtype)
        out = self.run({self._input: feed})
        # Finite audio in, so NaN (or a log-probability of +inf) out means damaged weights;
        # -inf is a legitimate log(0), which fp16 log_softmax does produce.
        if np.isnan(out).any() or np.isposinf(out).any():
            raise ModelError(f"{self.path}: the model produced NaN from finite audio; its "
                             "weights are corrupt: re-download it or re-export it with "
                             "`powerseg export`")
        return out
