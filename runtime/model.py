"""The ONNX model: an onnxruntime session plus the geometry read from its metadata."""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from powerseg.errors import ModelError, ModelNotFoundError
from powerseg.models import model_path

from .providers import CPU, resolve_providers

log = logging.getLogger("powerseg")

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


def resolve_model(model: str | os.PathLike) -> Path:
    """A shipped variant name ("fp32", "int8", ...) or a path to an .onnx file."""
    if not isinstance(model, (str, os.PathLike)):
        raise ModelError(f"model must be a variant name (fp32, int8) or the path of an .onnx "
                         f"file, got {model!r}")
    if isinstance(model, str) and "/" not in model and not model.endswith(".onnx"):
        return model_path(model)
    path = Path(model)
    if not path.exists():
        raise ModelNotFoundError(f"{path}: no such model file")
    if not path.is_file():
        raise ModelError(f"{path}: not a file (give the path of an .onnx model file)")
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: empty model file (0 bytes); re-download or re-export it")
    return path


class OnnxModel:
    """Runs fixed-size windows through onnxruntime: (batch, window) -> (batch, frames, classes)."""

    def __init__(self, model: str | os.PathLike = "fp32", threads: int | None = None,
                 providers: str | list = "auto"):
        self.path = resolve_model(model)
        options = ort.SessionOptions()
        # EXTENDED, not ALL: the layout pass ALL adds gains nothing here (measured) and
        # crashes onnxruntime 1.32 on the fp16 model.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        chosen = resolve_providers(providers)
        # On CPU, one single-threaded run per core beats one run spread over the cores: this
        # model's small LSTM matrix products gain little from intra-op threads (measured 14%
        # faster at 2 cores). GPUs get the batches one after another.
        on_cpu = chosen[0] == CPU
        self.workers = (threads or os.cpu_count() or 1) if on_cpu else 1
        if on_cpu or threads:
            options.intra_op_num_threads = 1 if on_cpu else threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=chosen)
        except Exception as error:  # onnxruntime raises its own untyped exceptions
            raise ModelError(f"{self.path}: onnxruntime cannot load this model "
                             f"({_ort_reason(error)}); the file is corrupt, truncated or not an "
                             "ONNX model: re-download it or re-export it with `powerseg export`"
                             ) from None
        self.spec = ModelSpec.from_metadata(self.session.get_modelmeta().custom_metadata_map,
                                            str(self.path))
        self._check_io()
        self.provider = self.session.get_providers()[0]
        wanted = [p[0] if isinstance(p, tuple) else p for p in chosen]
        if wanted[0] != self.provider:
            log.warning("powerseg: %s could not start, running on %s", wanted[0], self.provider)
        self._pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None

    def run_batches(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Several (batch, window_samples) arrays at once, one per worker; outputs in order."""
        if self._pool is None or len(batches) < 2:
            return [self(batch) for batch in batches]
        return list(self._pool.map(self, batches))

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
        try:
            out = self.session.run(None, {self._input: feed})[0].astype(np.float32, copy=False)
        except Exception as error:  # onnxruntime's own untyped runtime errors
            raise ModelError(f"{self.path}: onnxruntime failed to run the model "
                             f"({_ort_reason(error)})") from None
        # Finite audio in, so NaN (or a log-probability of +inf) out means damaged weights;
        # -inf is a legitimate log(0), which fp16 log_softmax does produce.
        if np.isnan(out).any() or np.isposinf(out).any():
            raise ModelError(f"{self.path}: the model produced NaN from finite audio; its "
                             "weights are corrupt: re-download it or re-export it with "
                             "`powerseg export`")
        return out


def _ort_reason(error: BaseException) -> str:
    """onnxruntime's message, without its "[ONNXRuntimeError] : 7 : ... failed:" preamble."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    text = text.split(" failed:", 1)[-1] if "[ONNXRuntimeError]" in text else text
    return text.strip()[:200] or type(error).__name__
