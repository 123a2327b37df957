"""Loading the real segmentation checkpoint, and the refusals of its own format (the refusals
every loader shares: tests/contracts/test_checkpoints.py)."""

from __future__ import annotations

import copy
import shutil

import pytest
import torch
from helpers import with_pickle

from powerseg.errors import CheckpointError, PowersegError
from powerseg.export.checkpoint import (HUB_ID, SEGMENTATION_3_SHA256, build_model,
                                        load_checkpoint, read_checkpoint)


@pytest.fixture(scope="module")
def content(checkpoint):
    return read_checkpoint(checkpoint)


def test_loads_real_checkpoint_without_pyannote(torch_model):
    with pytest.raises(ImportError):
        import pyannote.audio  # noqa: F401  (the point: it is not needed)
    assert torch_model.checkpoint_sha256 == SEGMENTATION_3_SHA256
    assert not torch_model.training
    out = torch_model(torch.zeros(2, 1, 160000))
    assert out.shape == (2, 589, 7)
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, 589), atol=1e-5)


def test_geometry_from_architecture(torch_model):
    g = torch_model.geometry
    assert (g.num_frames, g.frame_start, g.frame_step, g.frame_duration) == (589, 0, 270, 991)


def test_not_a_lightning_checkpoint(tmp_path):
    path = tmp_path / "weights.bin"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="state_dict"):
        load_checkpoint(path)


def test_missing_and_unexpected_keys(content):
    broken = copy.copy(content)
    broken["state_dict"] = dict(content["state_dict"])
    del broken["state_dict"]["classifier.bias"]
    broken["state_dict"]["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="missing.*classifier.bias.*unexpected.*extra"):
        build_model(broken)


def test_wrong_shapes(content):
    broken = copy.copy(content)
    broken["state_dict"] = dict(content["state_dict"])
    broken["state_dict"]["classifier.weight"] = torch.zeros(5, 128)
    with pytest.raises(CheckpointError, match="shapes"):
        build_model(broken)


def test_other_architecture(content):
    broken = copy.deepcopy({k: v for k, v in content.items() if k != "state_dict"})
    broken["state_dict"] = content["state_dict"]
    broken["pyannote.audio"]["architecture"] = {"module": "pyannote.audio.models.segmentation",
                                                "class": "SSeRiouSS"}
    with pytest.raises(CheckpointError, match="not PyanNet"):
        build_model(broken)


def test_not_powerset(content):
    broken = copy.deepcopy({k: v for k, v in content.items() if k != "state_dict"})
    broken["state_dict"] = content["state_dict"]
    broken["pyannote.audio"]["specifications"].powerset = False
    with pytest.raises(CheckpointError, match="powerset"):
        build_model(broken)


def test_errors_share_one_base():
    assert issubclass(CheckpointError, PowersegError) and issubclass(CheckpointError, ValueError)


def test_hub_id_from_offline_cache(tmp_path, checkpoint, monkeypatch):
    pytest.importorskip("huggingface_hub")
    revision = "e66f3d3b9eb0873085418a7b813d3b369bf160bb"
    repo = tmp_path / "models--pyannote--segmentation-3.0"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    shutil.copy(checkpoint, snapshot / "pytorch_model.bin")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    model = load_checkpoint(HUB_ID)
    assert model.checkpoint_sha256 == SEGMENTATION_3_SHA256


def test_allowed_class_with_unexpected_arguments_is_a_typed_error(tmp_path):
    """An allow-listed stand-in called with arguments: torch raises TypeError, we a CheckpointError."""
    specs = b"cpyannote.audio.core.task\nSpecifications\n"
    payload = b"\x80\x02}X\x05\x00\x00\x00specs" + specs + b"K\x01K\x02\x86Rs."
    path = with_pickle(tmp_path, "odd.bin", payload)
    with pytest.raises(CheckpointError, match=f"^{path}: malformed checkpoint"):
        read_checkpoint(path)


def test_malformed_specifications_are_a_typed_error(content):
    broken = copy.deepcopy({k: v for k, v in content.items() if k != "state_dict"})
    broken["state_dict"] = content["state_dict"]
    del broken["pyannote.audio"]["specifications"].classes
    with pytest.raises(CheckpointError, match="malformed checkpoint hyper-parameters"):
        build_model(broken, source="ckpt.bin")
    broken["hyper_parameters"] = "not a dict"
    with pytest.raises(CheckpointError, match="^ckpt.bin: malformed"):
        build_model(broken, source="ckpt.bin")
