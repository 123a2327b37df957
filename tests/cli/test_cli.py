"""The command line on the bundled recording and the shipped model: what each command writes
(bad inputs, options, batches and writers, for every command alike:
tests/contracts/test_commands.py)."""

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
