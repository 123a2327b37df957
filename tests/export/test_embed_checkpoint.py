"""Loading the real CAM++ checkpoint, and the refusals of its own format (the refusals every
loader shares: tests/contracts/test_checkpoints.py)."""

from __future__ import annotations

import pytest
import torch
from helpers import CAMPPLUS_CHECKPOINT

from powerseg.errors import CheckpointError
from powerseg.export.campplus_checkpoint import (CAMPPLUS_SHA256, campplus_from_state,
                                                 load_campplus)


@pytest.fixture(scope="module")
def campplus_checkpoint(shared):
    return CAMPPLUS_CHECKPOINT


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
