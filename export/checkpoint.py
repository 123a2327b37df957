"""Load pyannote's Lightning checkpoint without pyannote.audio and without running pickle code.

The checkpoint pickle names a few pyannote.audio classes. torch's weights-only
unpickler accepts only tensors, storages and plain containers; we extend its
allow-list with inert stand-ins for exactly those classes, so any other global
(``os.system``, ``builtins.eval``...) is refused before it can run.
"""

from __future__ import annotations

import enum
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch.torch_version import TorchVersion

from powerseg.errors import CheckpointError, CheckpointNotFoundError
from powerseg.models import sha256

from .pyannet import PyanNet

# sha256 of pyannote/segmentation-3.0's pytorch_model.bin (hub revision e66f3d3b).
SEGMENTATION_3_SHA256 = "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298"
SEGMENTATION_3_SIZE = 5_905_440
HUB_ID = "pyannote/segmentation-3.0"


class Problem(enum.Enum):
    """Stand-in for pyannote.audio.core.task.Problem (same values)."""

    BINARY_CLASSIFICATION = 0
    MONO_LABEL_CLASSIFICATION = 1
    MULTI_LABEL_CLASSIFICATION = 2
    REPRESENTATION = 3
    REGRESSION = 4


class Resolution(enum.Enum):
    """Stand-in for pyannote.audio.core.task.Resolution (same values)."""

    FRAME = 1
    CHUNK = 2


class Specifications:
    """Inert stand-in for pyannote.audio.core.task.Specifications: a bag of attributes."""


_TASK = "pyannote.audio.core.task"
_ALLOWED = [
    (Problem, f"{_TASK}.Problem"),
    (Resolution, f"{_TASK}.Resolution"),
    (Specifications, f"{_TASK}.Specifications"),
    TorchVersion,
]


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dictionary, unpickled through the allow-list only."""
    content = unpickle(path, _ALLOWED, "pyannote/segmentation-3.0's")
    if not isinstance(content, dict) or "state_dict" not in content:
        raise CheckpointError(f"{path}: no 'state_dict' in checkpoint; not a Lightning checkpoint")
    return content


def unpickle(path: str | Path, allowed: list, whose: str) -> Any:
    """torch.load with weights_only and ``allowed`` as the only extra globals; typed refusals.

    ``whose`` names the expected checkpoint in the message about a malformed pickle.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointNotFoundError(f"{path}: no such checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a torch checkpoint (expected a zip archive of pickles)")
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's weights-only unpickler refuses any global outside the allow-list.
        raise CheckpointError(f"{path}: refused to unpickle: {_refusal(error)}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint: {_first_line(error)}") from None
    except (TypeError, AttributeError, IndexError, OverflowError) as error:
        # an allowed class given arguments it does not take, and other malformed pickles
        raise CheckpointError(f"{path}: malformed checkpoint, not {whose}: "
                              f"{_first_line(error)}") from None


def _refusal(error: BaseException) -> str:
    """The global torch refused, without its advice to load with weights_only=False."""
    text = str(error)
    found = re.search(r"GLOBAL (\S+)", text)
    if found:
        return f"its pickle names {found.group(1)}, outside the allow-list (nothing in it was run)"
    found = re.search(r"WeightsUnpickler error: ([^\n]+)", text)
    return found.group(1).strip() if found else _first_line(error)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def build_model(content: dict[str, Any], source: str = "checkpoint") -> PyanNet:
    """PyanNet from the checkpoint's hyper-parameters, weights loaded, in eval mode."""
    try:
        return _build_model(content, source)
    except CheckpointError:
        raise
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as error:
        raise CheckpointError(f"{source}: malformed checkpoint hyper-parameters or specifications "
                              f"({type(error).__name__}: {_first_line(error)}); not a "
                              "pyannote/segmentation-3.0 checkpoint") from None


def _build_model(content: dict[str, Any], source: str) -> PyanNet:
    info = content.get("pyannote.audio", {})
    arch = info.get("architecture", {})
    if arch and arch.get("class") != "PyanNet":
        raise CheckpointError(f"{source}: architecture {arch.get('module')}.{arch.get('class')} "
                              "is not PyanNet; only PyanNet checkpoints can be exported")
    hp = content.get("hyper_parameters", {})
    spec = info.get("specifications")
    lstm, linear = hp.get("lstm", {}), hp.get("linear", {})
    if spec is None or not getattr(spec, "powerset", False):
        raise CheckpointError(f"{source}: not a powerset segmentation checkpoint "
                              "(specifications.powerset is missing or false)")
    if not lstm.get("monolithic", True) or not lstm.get("bidirectional", True):
        raise CheckpointError(f"{source}: only monolithic bidirectional LSTMs are supported")
    if hp.get("num_channels", 1) != 1:
        raise CheckpointError(f"{source}: only mono models are supported")
    model = PyanNet(
        sample_rate=int(hp.get("sample_rate", 16000)),
        sincnet_stride=int(hp.get("sincnet", {}).get("stride", 10)),
        lstm_hidden=int(lstm.get("hidden_size", 128)),
        lstm_layers=int(lstm.get("num_layers", 2)),
        linear_hidden=int(linear.get("hidden_size", 128)),
        linear_layers=int(linear.get("num_layers", 2)),
        num_speakers=len(spec.classes),
        max_speakers_per_frame=int(spec.powerset_max_classes),
        duration=float(spec.duration),
    )
    state = content["state_dict"]
    check_state(state, model.state_dict(), source, "PyanNet")
    model.load_state_dict(state)
    return model.eval()


def resolve(checkpoint: str | Path, token: str | None = None) -> Path:
    """A local path, or the hub id resolved through huggingface_hub (offline cache works too)."""
    if str(checkpoint) != HUB_ID or Path(checkpoint).exists():
        return Path(checkpoint)
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise CheckpointError(f"{HUB_ID}: install huggingface_hub to download it, "
                              "or pass the path of pytorch_model.bin") from None
    try:
        return Path(hf_hub_download(HUB_ID, "pytorch_model.bin", token=token))
    except Exception as error:  # the hub client raises many unrelated types
        raise CheckpointError(f"{HUB_ID}: could not get pytorch_model.bin from the hub "
                              f"(accept the model's conditions and pass a token): {error}") from None


def load_checkpoint(checkpoint: str | Path, token: str | None = None,
                    expected_sha256: str | None = None) -> PyanNet:
    """Load pyannote/segmentation-3.0 (a path or the hub id) as a torch PyanNet in eval mode.

    The sha256 is checked against ``expected_sha256`` when given, and against the
    published file's when the checkpoint comes from the hub or has its exact size
    (a damaged download of the known file is caught before its weights are used).
    """
    path = resolve(checkpoint, token)
    if path.is_file():
        digest = sha256(path)
        if expected_sha256 is None and (str(checkpoint) == HUB_ID
                                        or path.stat().st_size == SEGMENTATION_3_SIZE):
            expected_sha256 = SEGMENTATION_3_SHA256
        if expected_sha256 is not None and digest != expected_sha256:
            raise CheckpointError(f"{path}: sha256 {digest[:12]}... is not the expected "
                                  f"{expected_sha256[:12]}...; the file is damaged or another one")
    content = read_checkpoint(path)
    model = build_model(content, source=str(path))
    model.checkpoint_sha256 = digest
    return model


def check_state(state: dict, expected: dict, source: object, architecture: str) -> None:
    """Refuse a state dict whose names or shapes are not the rebuilt model's, naming the first
    few that differ: load_state_dict's own message is torch's, about module internals."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{source}: state dict does not match {architecture}: "
                              f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
             for k, v in expected.items() if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise CheckpointError(f"{source}: state dict shapes do not match {architecture}: "
                              f"{'; '.join(wrong[:5])}")
