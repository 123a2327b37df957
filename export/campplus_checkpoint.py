"""Load the CAM++ state dict safely: weights-only unpickling with nothing added to the allow-list.

The checkpoint is a plain ``state_dict`` (tensors in a dict), so unlike pyannote's it needs no
stand-in classes: any global at all in its pickle is refused before it can run.
"""

from __future__ import annotations

from pathlib import Path

import torch

from powerseg.errors import CheckpointError
from powerseg.models import sha256

from .campplus import CAMPPlus
from .checkpoint import check_state, unpickle

# campplus_cn_en_common.pt (3D-Speaker zh_en "common advanced", ModelScope revision v1.0.0)
CAMPPLUS_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
CAMPPLUS_SIZE = 28_044_640
WHOSE = "a CAM++ state dict's"


def load_campplus(checkpoint: str | Path, expected_sha256: str | None = None) -> CAMPPlus:
    """CAMPPlus in eval mode with the checkpoint's weights; ``checkpoint_sha256`` set on it.

    The sha256 is checked against ``expected_sha256`` when given, else against the published
    file's when the size is that file's (a damaged copy is caught before its weights are used).
    """
    path = Path(checkpoint)
    digest = sha256(path) if path.is_file() else ""  # else unpickle says what the path is
    if digest:
        if expected_sha256 is None and path.stat().st_size == CAMPPLUS_SIZE:
            expected_sha256 = CAMPPLUS_SHA256
        if expected_sha256 is not None and digest != expected_sha256:
            raise CheckpointError(f"{path}: sha256 {digest[:12]}... is not the expected "
                                  f"{expected_sha256[:12]}...; the file is damaged or another one")
    state = unpickle(path, [], WHOSE)
    model = campplus_from_state(state, str(path))
    model.checkpoint_sha256 = digest
    return model


def campplus_from_state(state: object, source: str = "checkpoint") -> CAMPPlus:
    """CAMPPlus from a state dict whose keys, shapes and dtypes are exactly the architecture's."""
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        raise CheckpointError(f"{source}: a training checkpoint with a 'state_dict' entry, not "
                              "CAM++'s plain state dict (a pyannote checkpoint? give it to "
                              "--checkpoint instead)")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{source}: not a state dict (a mapping of names to tensors); "
                              "expected 3D-Speaker's CAM++ checkpoint")
    model = CAMPPlus()
    expected = model.state_dict()
    check_state(state, expected, source, "CAM++ (feat_dim 80, embedding 192)")
    floats = [k for k, v in expected.items() if v.is_floating_point() and state[k].dtype != v.dtype]
    if floats:
        raise CheckpointError(f"{source}: tensors not float32: {', '.join(floats[:5])}")
    model.load_state_dict(state, strict=True)
    return model.eval()
