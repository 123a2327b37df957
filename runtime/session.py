"""One onnxruntime session opened the powerseg way, for every kind of shipped model.

Path resolution, provider choice, threading, load/run error wrapping and the metadata's
``kind`` check live here once; the segmentation and speaker-embedding models add their own
metadata and input/output checks on top.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnxruntime as ort

from powerseg.errors import ModelError, ModelNotFoundError
from powerseg.models import (SEGMENTATION, SEGMENTATION_FRONT, SHIPPED, SPEAKER_EMBEDDING, USER,
                             model_path)

from .providers import CPU, resolve_providers

log = logging.getLogger("powerseg")
T = TypeVar("T")
R = TypeVar("R")

KIND_NAMES = {SEGMENTATION: "segmentation", SEGMENTATION_FRONT: "segmentation front-end",
              SPEAKER_EMBEDDING: "speaker-embedding"}


def resolve_model(model: str | os.PathLike, kind: str = SEGMENTATION) -> Path:
    """A shipped model name of ``kind`` ("fp32", "campplus", ...) or a path to an .onnx file."""
    if not isinstance(model, (str, os.PathLike)):
        raise ModelError(f"model must be a variant name ({', '.join(SHIPPED[kind])}) or the "
                         f"path of an .onnx file, got {model!r}")
    if isinstance(model, str) and "/" not in model and not model.endswith(".onnx"):
        return model_path(model, kind)
    path = Path(model)
    if not path.exists():
        raise ModelNotFoundError(f"{path}: no such model file")
    if not path.is_file():
        raise ModelError(f"{path}: not a file (give the path of an .onnx model file)")
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: empty model file (0 bytes); re-download or re-export it")
    return path


def model_kind(metadata: dict[str, str]) -> str | None:
    """The metadata's ``kind``. Every shipped file has it; segmentation files exported before
    it existed (powerseg 0.1.0 before 2026-12) are known by their ``powerset`` key."""
    return metadata.get("kind") or (SEGMENTATION if "powerset" in metadata else None)


class OnnxSession:
    """An onnxruntime session of a model of ``KIND``, with its metadata and a worker pool.

    On CPU, one single-threaded run per core beats one run spread over the cores: the
    segmentation model's small LSTM matrix products gain little from intra-op threads
    (measured 14% faster at 2 cores), and neither do CAM++'s (benchmarks/embedding.py).
    ``workers`` runs go at once through ``map``; GPUs get them one after another.
    """

    KIND = SEGMENTATION
    # EXTENDED, not ALL, for segmentation: the layout pass ALL adds gains nothing there
    # (measured) and crashes onnxruntime 1.32 on the fp16 segmentation model.
    OPTIMIZATION = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    # onnxruntime plans and keeps a memory pattern per input shape: right for fixed shapes,
    # a cache that grows with every new frame count for a model fed variable lengths.
    MEMORY_PATTERN = True

    def __init__(self, model: str | os.PathLike, threads: int | None = None,
                 providers: str | list = "auto"):
        self.path = resolve_model(model, self.KIND)
        self._providers = chosen = resolve_providers(providers)
        on_cpu = chosen[0] == CPU
        self.workers = (threads or os.cpu_count() or 1) if on_cpu else 1
        self.session = self._open(1 if on_cpu else threads)
        self._spread: ort.InferenceSession | None = None  # made by ``spread_session``
        self._spread_lock = threading.Lock()
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self._check_kind()
        # where it was loaded from, for the results' provenance (writers.py checksums it)
        self.metadata["file"] = str(self.path)
        self.provider = self.session.get_providers()[0]
        wanted = [p[0] if isinstance(p, tuple) else p for p in chosen]
        if wanted[0] != self.provider:
            log.warning("powerseg: %s could not start, running on %s", wanted[0], self.provider)
        self._pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None

    def _open(self, intra_threads: int | None) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.graph_optimization_level = self.OPTIMIZATION
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_mem_pattern = self.MEMORY_PATTERN
        if intra_threads:
            options.intra_op_num_threads = intra_threads
        if intra_threads and intra_threads > 1:
            # runs a second apart (a live stream's lone windows): threads that spin-wait after
            # each run burn CPU for nothing (a live diarization stream: +35 % CPU, measured)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(self.path), options, providers=self._providers)
        except Exception as error:  # onnxruntime raises its own untyped exceptions
            raise ModelError(f"{self.path}: onnxruntime cannot load this model "
                             f"({ort_reason(error)}); the file is corrupt, truncated or not an "
                             "ONNX model: re-download it or re-export it with `powerseg export`"
                             ) from None

    def spread_session(self) -> ort.InferenceSession:
        """The same model with one intra-op thread per worker, made on first use: one run over
        all the cores, for a lone run whose latency counts (a live stream's latest window)."""
        with self._spread_lock:
            if self._spread is None:
                self._spread = self._open(self.workers)
        return self._spread

    def _check_kind(self) -> None:
        kind = model_kind(self.metadata)
        if kind is None and self.KIND == SEGMENTATION:
            return  # the segmentation spec names the keys it lacks
        if kind != self.KIND:
            what = f"a {KIND_NAMES.get(kind, repr(kind))} model" if kind else \
                "not a powerseg export (its metadata has no 'kind')"
            raise ModelError(f"{self.path}: {what}, not a {KIND_NAMES[self.KIND]} model; give "
                             f"{USER[self.KIND]} a "
                             f"{KIND_NAMES[self.KIND]} model (a shipped name or an export of "
                             "`powerseg export`)")

    def map(self, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``function`` over ``items``, ``workers`` at a time; results in order."""
        items = list(items)
        if self._pool is None or len(items) < 2:
            return [function(item) for item in items]
        return list(self._pool.map(function, items))

    def submit(self, function: Callable[[T], R], item: T) -> Future:
        """``function(item)`` on a worker, for its result later; at once without workers."""
        if self._pool is not None:
            return self._pool.submit(function, item)
        return completed(function, item)

    def release_memory(self) -> None:
        """Give the memory arena's free blocks back to the system, with one smallest run.

        onnxruntime keeps the arena at the peak of all runs so far (concurrent workers'
        included) and has no call to shrink it but a run option; the diarizer calls this
        before clustering, whose distance matrix is the largest thing it holds.
        """
        if self.provider != CPU:
            return
        options = ort.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.run(self._smallest_feed(), options)

    def _smallest_feed(self) -> dict[str, np.ndarray]:
        """Zeros of each input's shape, its free dimensions at 1."""
        types = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
        return {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape],
                                 types.get(i.type, np.float32))
                for i in self.session.get_inputs()}

    def run(self, feed: dict[str, np.ndarray], options: ort.RunOptions | None = None,
            session: ort.InferenceSession | None = None) -> np.ndarray:
        """The first output of one run (on ``session``, default the per-worker one), as float32;
        onnxruntime's errors as ModelError."""
        try:
            out = (session or self.session).run(None, feed, options)[0]
        except Exception as error:  # onnxruntime's own untyped runtime errors
            raise ModelError(f"{self.path}: onnxruntime failed to run the model "
                             f"({ort_reason(error)})") from None
        return out.astype(np.float32, copy=False)


def completed(function: Callable[[T], R], item: T) -> Future:
    """``function(item)`` run now, as a done future (its exception raised by ``result``)."""
    done: Future = Future()
    try:
        done.set_result(function(item))
    except Exception as error:  # noqa: BLE001 - handed over, raised by .result()
        done.set_exception(error)
    return done


def trim_heap() -> None:
    """glibc's ``malloc_trim``: free heap pages back to the system (10 min of diarization:
    22 MiB after the arenas' release). Other C libraries keep theirs; nothing to do there."""
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):  # no C library by that name (Windows)
        return
    trim(0)


def ort_reason(error: BaseException) -> str:
    """onnxruntime's message, without its "[ONNXRuntimeError] : 7 : ... failed:" preamble."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    text = text.split(" failed:", 1)[-1] if "[ONNXRuntimeError]" in text else text
    return text.strip()[:200] or type(error).__name__
