"""Shared fixtures: the real checkpoint, audio and pyannote references in ../shared.

Tests marked ``slow`` run in CI (CI=true) or with --run-slow; the default local run skips them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POWERSEG_SHARED", ROOT.parent / "shared"))
CHECKPOINT = SHARED / "checkpoints" / "segmentation-3.0" / "pytorch_model.bin"
AUDIO_SETS = ("pyannote_sample", "ami_pyannote_debug", "librispeech_sim_a")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason="slow: runs in CI or with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _require_shared() -> None:
    if not SHARED.is_dir():
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"CI needs the shared data at {SHARED}")
        pytest.skip(f"no shared data at {SHARED}")


def recordings() -> list[tuple[str, str]]:
    """(set, uri) of every shared recording that has a pyannote reference."""
    if not SHARED.is_dir():
        return []
    out = []
    for name in AUDIO_SETS:
        index = SHARED / "reference" / name / "index.json"
        out += [(name, uri) for uri in sorted(json.loads(index.read_text()))]
    return out


RECORDINGS = recordings()
RECORDING_IDS = [uri for _, uri in RECORDINGS]


def wav(name: str, uri: str) -> Path:
    return SHARED / "audio" / name / "wav" / f"{uri}.wav"


def reference(name: str, uri: str) -> dict[str, np.ndarray]:
    with np.load(SHARED / "reference" / name / f"{uri}.npz") as data:
        return dict(data)


@pytest.fixture(scope="session")
def shared() -> Path:
    _require_shared()
    return SHARED


@pytest.fixture(scope="session")
def checkpoint(shared: Path) -> Path:
    return CHECKPOINT


@pytest.fixture(scope="session")
def torch_model(checkpoint: Path):
    from powerseg.export import load_checkpoint

    return load_checkpoint(checkpoint)


@pytest.fixture(scope="session")
def segmenter():
    from powerseg import Segmenter

    return Segmenter(providers="cpu")


class CachedModel:
    """The real ONNX model, computing each distinct window once (keyed by its inputs' bytes);
    a ``runtime.contracts.WindowModel``.

    Not a mock: every output comes from onnxruntime, and the windows themselves (front rows
    included) are made by the real model's window source; a caller that built different
    windows misses the cache and gets the model's answer for them.
    """

    def __init__(self, model):
        self.model, self.spec, self.provider, self.front = (model, model.spec, model.provider,
                                                           model.front)
        self.workers = 1
        self.cache: dict[bytes, np.ndarray] = {}

    def windows(self, step_samples: int):
        return self.model.windows(step_samples)

    def accepts_step(self, step_samples: int) -> bool:
        return self.model.accepts_step(step_samples)

    def infer_async(self, batch: dict[str, np.ndarray]):
        from concurrent.futures import Future

        done = Future()
        done.set_result(self.infer(batch))
        return done

    infer_lone = infer_async

    def infer(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        import hashlib

        count = len(next(iter(batch.values())))
        keys = [hashlib.sha1(b"".join(np.ascontiguousarray(v[i]).tobytes()
                                      for v in batch.values())).digest() for i in range(count)]
        todo = [i for i, key in enumerate(keys) if key not in self.cache]
        if todo:
            for i, out in zip(todo, self.model.infer({k: v[todo] for k, v in batch.items()})):
                self.cache[keys[i]] = out
        return np.stack([self.cache[key] for key in keys])


@pytest.fixture(scope="session")
def sample(shared: Path) -> Path:
    """pyannote's sample (30 s, two speakers)."""
    return shared / "audio" / "pyannote_sample" / "wav" / "sample.wav"


@pytest.fixture(scope="session")
def sample_diarization(sample: Path):
    """The sample diarized once on CPU: the API result that CLI and transcript tests compare with."""
    from powerseg import Diarizer

    return Diarizer(providers="cpu")(sample)


@pytest.fixture(scope="module")
def cached(shared):
    """A Segmenter whose real model runs each distinct window once per test module."""
    from powerseg import Segmenter

    real = Segmenter(providers="cpu")
    return Segmenter.with_model(CachedModel(real.model), real.options)
