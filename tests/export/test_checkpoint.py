"""Loading the real checkpoint safely, and every refusal with its own clear error."""

from __future__ import annotations

import copy
import os
import shutil

import pytest
import torch

from powerseg.errors import CheckpointError, CheckpointNotFoundError, PowersegError
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


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.bin")
    assert issubclass(CheckpointNotFoundError, FileNotFoundError)


def test_not_a_zip(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="not a torch checkpoint"):
        load_checkpoint(path)


def test_truncated(tmp_path, checkpoint):
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(checkpoint.read_bytes()[: 3_000_000])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_damaged_known_file_fails_sha256(tmp_path, checkpoint):
    data = bytearray(checkpoint.read_bytes())
    data[-100] ^= 0xFF  # same size as the published file, one byte flipped
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(path)


def test_explicit_sha256_mismatch(checkpoint):
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(checkpoint, expected_sha256="0" * 64)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_is_refused_before_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    torch.save({"state_dict": {}, "payload": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_crafted_eval_global_is_refused(tmp_path):
    class _Eval:
        def __reduce__(self):
            return (eval, ("__import__('os').getcwd()",))

    path = tmp_path / "evil.bin"
    torch.save({"state_dict": {}, "x": _Eval()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)


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


def _with_pickle(tmp_path, name: str, payload: bytes):
    """A real torch zip checkpoint whose data.pkl is replaced by hand-written pickle bytes."""
    import zipfile

    legit = tmp_path / "legit.bin"
    torch.save({"state_dict": {}}, legit)
    path = tmp_path / name
    with zipfile.ZipFile(legit) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = payload if info.filename.endswith("/data.pkl") else src.read(info)
            dst.writestr(info, data)
    return path


@pytest.mark.parametrize("module, name", [("posix", "system"), ("os", "system"),
                                          ("subprocess", "Popen"), ("builtins", "exec")])
def test_hand_crafted_pickle_globals_are_refused(tmp_path, module, name):
    """Protocol-2 opcodes calling module.name("touch MARKER"), no torch.save involved."""
    marker = tmp_path / "pwned"
    argument = f"touch {marker}" if name != "exec" else f"open({str(marker)!r}, 'w')"
    arg = argument.encode()
    payload = (b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X" + len(arg).to_bytes(4, "little")
               + arg + b"\x85R.")  # PROTO 2, GLOBAL, BINUNICODE, TUPLE1, REDUCE, STOP
    path = _with_pickle(tmp_path, "crafted.bin", payload)
    with pytest.raises(CheckpointError, match=f"^{path}: refused to unpickle"):
        load_checkpoint(path)
    assert not marker.exists()


def test_allowed_class_with_unexpected_arguments_is_a_typed_error(tmp_path):
    """An allow-listed stand-in called with arguments: torch raises TypeError, we a CheckpointError."""
    specs = b"cpyannote.audio.core.task\nSpecifications\n"
    payload = b"\x80\x02}X\x05\x00\x00\x00specs" + specs + b"K\x01K\x02\x86Rs."
    path = _with_pickle(tmp_path, "odd.bin", payload)
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
