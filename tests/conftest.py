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
