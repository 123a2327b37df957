"""One set of refusals over every checkpoint loader (segmentation-3.0, CAM++): a missing,
foreign, truncated or damaged file, and pickles that would run code, each a CheckpointError
naming the file, and nothing in a pickle ever run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from helpers import CAMPPLUS_CHECKPOINT, CHECKPOINT, with_pickle

from powerseg.errors import CheckpointError, CheckpointNotFoundError
from powerseg.export.campplus_checkpoint import CAMPPLUS_SHA256, load_campplus
from powerseg.export.checkpoint import SEGMENTATION_3_SHA256, load_checkpoint


@dataclass(frozen=True)
class Loader:
    name: str
    load: Callable[..., torch.nn.Module]
    path: Path  # the real checkpoint in ../shared
    sha256: str
    truncate_at: int  # bytes kept of the real file: a cut inside its tensors


LOADERS = [
    Loader("segmentation-3.0", load_checkpoint, CHECKPOINT, SEGMENTATION_3_SHA256, 3_000_000),
    Loader("CAM++", load_campplus, CAMPPLUS_CHECKPOINT, CAMPPLUS_SHA256, 10_000_000),
]


@pytest.fixture(params=LOADERS, ids=lambda loader: loader.name)
def loader(request, shared) -> Loader:
    return request.param


def test_missing_file_and_directory(loader, tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="no such checkpoint"):
        loader.load(tmp_path / "nope.bin")
    assert issubclass(CheckpointNotFoundError, FileNotFoundError)
    with pytest.raises(CheckpointError, match=f"^{tmp_path}: not a file"):
        loader.load(tmp_path)


def test_not_a_zip(loader, tmp_path):
    path = tmp_path / "model.bin"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match=f"^{path}: not a torch checkpoint"):
        loader.load(path)


def test_truncated(loader, tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(loader.path.read_bytes()[:loader.truncate_at])
    with pytest.raises(CheckpointError, match=f"^{path}: "):
        loader.load(path)


def test_damaged_known_file_fails_sha256(loader, tmp_path):
    data = bytearray(loader.path.read_bytes())
    data[-5000] ^= 0xFF  # same size as the published file, one byte flipped
    path = tmp_path / "model.bin"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"sha256 .* is not the expected {loader.sha256[:12]}"):
        loader.load(path)


def test_explicit_sha256_mismatch(loader):
    with pytest.raises(CheckpointError, match="sha256"):
        loader.load(loader.path, expected_sha256="0" * 64)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_is_refused_before_running(loader, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    torch.save({"state_dict": {}, "payload": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match=f"^{path}: refused to unpickle"):
        loader.load(path)
    assert not marker.exists()


def test_crafted_eval_global_is_refused(loader, tmp_path):
    class _Eval:
        def __reduce__(self):
            return (eval, ("__import__('os').getcwd()",))

    path = tmp_path / "evil.bin"
    torch.save({"state_dict": {}, "x": _Eval()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        loader.load(path)


@pytest.mark.parametrize("module, name", [("posix", "system"), ("os", "system"),
                                          ("subprocess", "Popen"), ("builtins", "exec")])
def test_hand_crafted_pickle_globals_are_refused(loader, tmp_path, module, name):
    """Protocol-2 opcodes calling module.name("touch MARKER"), no torch.save involved."""
    marker = tmp_path / "pwned"
    argument = f"touch {marker}" if name != "exec" else f"open({str(marker)!r}, 'w')"
    arg = argument.encode()
    payload = (b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X" + len(arg).to_bytes(4, "little")
               + arg + b"\x85R.")  # PROTO 2, GLOBAL, BINUNICODE, TUPLE1, REDUCE, STOP
    path = with_pickle(tmp_path, "crafted.bin", payload)
    with pytest.raises(CheckpointError, match=f"^{path}: refused to unpickle"):
        loader.load(path)
    assert not marker.exists()
