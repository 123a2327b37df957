"""The command line on the bundled recording and the shipped model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from powerseg.cli import main
from powerseg.samples import sample_path


def test_vad_prints_rttm(capsys):
    assert main(["vad", str(sample_path()), "--provider", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "SPEAKER sample 1 6.730 0.473 <NA> <NA> SPEECH <NA> <NA>"  # pyannote's RTTM
    assert len(lines) == 4


def test_osd_json(tmp_path):
    out = tmp_path / "osd.json"
    assert main(["osd", str(sample_path()), "--output", str(out), "--min-duration-on", "0.3"]) == 0
    doc = json.loads(out.read_text())
    assert doc["uri"] == "sample" and doc["duration"] == 30.0
    assert [r["label"] for r in doc["regions"]] == ["OVERLAP"] * 3  # 0.219 s region dropped
    assert doc["options"]["step"] == 1.0


def test_scores_and_segment_npz(tmp_path):
    assert main(["scores", str(sample_path()), "-o", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as s:
        assert s["speech"].shape == s["overlap"].shape == (1779,)
        assert float(s["frame_step"]) == 270 / 16000
    assert main(["segment", str(sample_path()), "-o", str(tmp_path / "a.npz"), "--step", "5"]) == 0
    with np.load(tmp_path / "a.npz") as a:
        assert a["activations"].shape == (5, 589, 3)
        assert float(a["chunk_step"]) == 5.0


def test_one_npz_writer_same_bytes_alone_and_in_a_batch(tmp_path):
    """Single-file and batch outputs share one deterministic npz writer: the same scores give
    the same bytes, whenever written."""
    import time

    assert main(["scores", str(sample_path()), "-o", str(tmp_path / "one.npz")]) == 0
    time.sleep(2.1)  # a zip entry's time has 2 s steps: a writer that stored it would differ
    assert main(["scores", str(sample_path()), "--output-dir", str(tmp_path / "out")]) == 0
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "out" / "sample.npz").read_bytes()


def test_several_inputs_one_bad(tmp_path, capsys):
    out = tmp_path / "vad.rttm"
    code = main(["vad", str(sample_path()), str(tmp_path / "missing.wav"), "-o", str(out)])
    assert code == 1
    assert "missing.wav: no such file" in capsys.readouterr().err
    assert out.read_text().count("SPEECH") == 4  # the good file's regions are kept


@pytest.mark.arm64
def test_bad_input_leaves_no_output(tmp_path, capsys):
    bad = tmp_path / "text.wav"
    bad.write_text("not audio")
    out = tmp_path / "vad.rttm"
    assert main(["vad", str(bad), "-o", str(out)]) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]
    err = capsys.readouterr().err
    assert err.startswith("powerseg: error:") and "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    assert main(["vad", str(sample_path()), "--step", "11"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["vad", str(sample_path()), "--batch-size", "0"])
    assert exit_info.value.code == 2


@pytest.mark.arm64
def test_info_and_sample(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "frame_step_samples: 270" in out and "provider used: CPUExecutionProvider" in out
    assert main(["sample"]) == 0
    assert capsys.readouterr().out.strip() == str(sample_path())


@pytest.mark.arm64
def test_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "powerseg", "--version"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.startswith("powerseg ")


def test_json_outputs_share_one_envelope_naming_every_model_file(tmp_path):
    """vad and diarize JSON start alike: schema, powerseg version, and each model file used
    (a shared front-end pair's two) with the sha256 of the very file."""
    import hashlib
    import json

    from powerseg import __version__
    from powerseg.models import model_path

    folder = model_path("fp32").parent
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.onnx")}
    documents = {}
    for command in ("vad", "diarize"):
        out = tmp_path / f"{command}.json"
        assert main([command, str(sample_path()), "-o", str(out), "--provider", "cpu"]) == 0
        documents[command] = json.loads(out.read_text())
    for command, document in documents.items():
        assert list(document)[:3] == ["schema", "powerseg", "models"], command
        assert (document["schema"], document["powerseg"]) == (1, __version__)
        for model in document["models"]:
            assert model["sha256"] == digest[model["file"]], (command, model)
    kinds = [[m["kind"] for m in d["models"]] for d in documents.values()]
    assert kinds == [["segmentation", "segmentation_front"],
                     ["segmentation", "segmentation_front", "speaker_embedding"]]
