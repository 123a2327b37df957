"""Loading the real CAM++ checkpoint without running pickle code, and each refusal's typed error."""

from __future__ import annotations

import os
import zipfile

import pytest
import torch

from powerseg.errors import CheckpointError, CheckpointNotFoundError
from powerseg.export.campplus_checkpoint import (CAMPPLUS_SHA256, campplus_from_state,
                                                 load_campplus)


@pytest.fixture(scope="module")
def campplus_checkpoint(shared):
    return shared / "checkpoints" / "campplus" / "campplus_cn_en_common.pt"


@pytest.fixture(scope="module")
def state(campplus_checkpoint) -> dict:
    return torch.load(campplus_checkpoint, map_location="cpu", weights_only=True)


def test_loads_real_checkpoint(campplus_checkpoint):
    model = load_campplus(campplus_checkpoint)
    assert model.checkpoint_sha256 == CAMPPLUS_SHA256
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == 6_848_544  # PROVENANCE.md's count
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 80))  # the shortest input with a finite std pooling
    assert out.shape == (2, 192) and torch.isfinite(out).all()
    with torch.inference_mode(), pytest.warns(UserWarning, match="degrees of freedom"):
        assert torch.isnan(model(torch.randn(1, 2, 80))).all()  # why 3 frames is the minimum


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="no such checkpoint"):
        load_campplus(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="not a file"):
        load_campplus(tmp_path)


def test_not_a_zip(tmp_path):
    path = tmp_path / "campplus.pt"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match=f"^{path}: not a torch checkpoint"):
        load_campplus(path)


def test_truncated(tmp_path, campplus_checkpoint):
    path = tmp_path / "campplus.pt"
    path.write_bytes(campplus_checkpoint.read_bytes()[:10_000_000])
    with pytest.raises(CheckpointError, match=f"^{path}: "):
        load_campplus(path)


def test_damaged_known_file_fails_sha256(tmp_path, campplus_checkpoint):
    data = bytearray(campplus_checkpoint.read_bytes())
    data[-5000] ^= 0xFF  # same size as the published file, one byte flipped
    path = tmp_path / "campplus.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 .* is not the expected 92f29b94e694"):
        load_campplus(path)


def test_explicit_sha256_mismatch(campplus_checkpoint):
    with pytest.raises(CheckpointError, match="sha256"):
        load_campplus(campplus_checkpoint, expected_sha256="0" * 64)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_is_refused_before_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"head.conv1.weight": torch.zeros(1), "payload": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        load_campplus(path)
    assert not marker.exists()


def test_hand_written_pickle_global_is_refused(tmp_path):
    """Protocol-2 opcodes calling posix.system, no torch.save involved."""
    marker = tmp_path / "pwned"
    legit = tmp_path / "legit.pt"
    torch.save({}, legit)
    arg = f"touch {marker}".encode()
    payload = (b"\x80\x02cposix\nsystem\nX" + len(arg).to_bytes(4, "little") + arg + b"\x85R.")
    path = tmp_path / "crafted.pt"
    with zipfile.ZipFile(legit) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info, payload if info.filename.endswith("/data.pkl") else src.read(info))
    with pytest.raises(CheckpointError, match=f"^{path}: refused to unpickle"):
        load_campplus(path)
    assert not marker.exists()


def test_segmentation_checkpoint_is_refused(checkpoint):
    """pyannote's checkpoint names pyannote classes: none is allowed for CAM++."""
    with pytest.raises(CheckpointError, match=r"refused to unpickle: its pickle names \S+, outside "
                       r"the allow-list \(nothing in it was run\)$"):
        load_campplus(checkpoint)


def test_training_checkpoint_and_non_tensors(tmp_path, state):
    with pytest.raises(CheckpointError, match="a training checkpoint with a 'state_dict'"):
        campplus_from_state({"state_dict": state, "epoch": 3})
    with pytest.raises(CheckpointError, match="not a state dict"):
        campplus_from_state({**state, "epoch": 3})
    with pytest.raises(CheckpointError, match="not a state dict"):
        campplus_from_state([1, 2, 3])


def test_missing_and_unexpected_keys(state):
    broken = dict(state)
    del broken["xvector.dense.linear.weight"]
    broken["xvector.block4.tdnnd1.linear1.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="missing.*dense.linear.weight.*unexpected.*block4"):
        campplus_from_state(broken)


def test_other_sizes_are_another_architecture(state):
    """An embedding of 512 (3D-Speaker's default CAMPPlus) is not this model."""
    broken = dict(state)
    broken["xvector.dense.linear.weight"] = torch.zeros(512, 1024, 1)
    with pytest.raises(CheckpointError, match=r"shapes do not match.*\(512, 1024, 1\) != \(192, 1024, 1\)"):
        campplus_from_state(broken)


def test_float64_weights_are_refused(state):
    broken = {k: (v.double() if v.is_floating_point() else v) for k, v in state.items()}
    with pytest.raises(CheckpointError, match="not float32: head.conv1.weight"):
        campplus_from_state(broken)
