"""Shared fixtures: the real checkpoint, audio and pyannote references in ../shared (plain values
and functions are in helpers.py).

Tests marked ``slow`` run in CI (CI=true) or with --run-slow; the default local run skips them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import CHECKPOINT, SHARED, CachedModel


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
