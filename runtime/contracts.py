"""What the pipelines ask of their models, as Protocols.

The onnxruntime sessions (``model.SegmentationModel``, ``embedder.EmbeddingModel``) implement them;
so can anything else that computes the same thing: the torch rebuilds the benchmarks time, a
caching wrapper in the tests. ``Segmenter.with_model``, ``Embedder.with_model`` and
``Diarizer.with_models`` take such an object instead of loading an ONNX file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from powerseg.errors import OptionError

T = TypeVar("T")
R = TypeVar("R")
# Stage hook: ``hook(stage, payload)`` after each stage and each round of windows, the payload
# saying how far the work is in seconds of audio ({"seconds": done, "total": all or None}).
# One that raises stops the work at once: the exception propagates, no window left queued.
StageHook = Callable[[str, dict], None]


@runtime_checkable
class WindowModel(Protocol):
    """A segmentation model: windows of samples in, per-frame powerset log-probabilities out."""

    spec: Any  # model.ModelSpec: the frame geometry and the powerset table
    provider: str  # where it runs, as results report it
    workers: int  # runs that may go at once
    front: Any  # a shared front-end pair's front (model.FrontModel), else None

    def windows(self, step_samples: int) -> Any:
        """The ``windows.WindowSource`` that makes this model's inputs from pushed samples."""

    def accepts_step(self, step_samples: int) -> bool:
        """Whether windows ``step_samples`` apart can be made for it."""

    def infer_async(self, batch: dict[str, np.ndarray]) -> Future:
        """(windows, frames, classes) log-probabilities of a batch, when done."""

    def infer_lone(self, batch: dict[str, np.ndarray]) -> Future:
        """The same for a lone batch whose latency counts (a live stream's latest window)."""


@runtime_checkable
class EmbeddingModel(Protocol):
    """A speaker-embedding model: fbank features in, one embedding out."""

    spec: Any  # embedder.EmbeddingSpec: its fbank settings, dimension and shortest input
    provider: str

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        """(1, frames, mel bins) float32 -> (1, dimension) float32."""

    def map(self, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``function`` over ``items`` as this model's workers allow; results in order."""


def check(model: object, contract: type, where: str) -> None:
    """An OptionError naming what ``model`` lacks of ``contract``."""
    if not isinstance(model, contract):
        members = [name for name in (*contract.__annotations__, *_methods(contract))
                   if not hasattr(model, name)]
        raise OptionError(f"{where}: {type(model).__name__} is not a {contract.__name__} "
                          f"(it lacks {', '.join(members) or 'a member'}; runtime/contracts.py)")


def _methods(contract: type) -> list[str]:
    return [name for name, value in vars(contract).items()
            if callable(value) and (not name.startswith("_") or name == "__call__")]
