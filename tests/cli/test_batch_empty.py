"""Nothing to do is an error: a folder without audio, an empty list (exit 1, nothing written);
and ``scores --output-dir``: one npz per input, the same bytes on every run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from powerseg.cli import main
from powerseg.samples import sample_path


@pytest.mark.parametrize("command", ["vad", "osd", "diarize", "scores"])
def test_empty_folder_is_an_error(tmp_path, capsys, command):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    assert main([command, str(empty), "--output-dir", str(out)]) == 1
    assert "no audio files in this folder" in capsys.readouterr().err
    assert not out.exists()


def test_folder_without_audio_and_empty_list_are_errors(tmp_path, capsys):
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "readme.md").write_text("no audio here\n")
    (folder / "sub" / "x.wav").mkdir()  # a folder named like audio is not audio
    assert main(["vad", str(folder)]) == 1
    captured = capsys.readouterr()
    assert "no audio files in this folder" in captured.err and captured.out == ""
    listing = tmp_path / "files.txt"
    listing.write_text("# nothing yet\n\n")
    assert main(["vad", str(listing), "--output-dir", str(tmp_path / "out")]) == 1
    assert "names no audio files" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_scores_batch_one_npz_per_input_same_bytes(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample_path(), inputs / "a.flac")
    (inputs / "bad.wav").write_bytes(b"RIFF" + bytes(40))
    out = tmp_path / "out"
    assert main(["scores", str(inputs), "--output-dir", str(out)]) == 1
    assert "1 done, 0 skipped (output exists), 1 failed" in capsys.readouterr().err
    first = (out / "a.npz").read_bytes()
    single = tmp_path / "single.npz"
    assert main(["scores", str(inputs / "a.flac"), "-o", str(single)]) == 0
    with np.load(out / "a.npz") as batch, np.load(single) as one:
        assert sorted(batch) == sorted(one)
        for key in one:
            np.testing.assert_array_equal(batch[key], one[key])
    assert main(["scores", str(inputs / "a.flac"), "--output-dir", str(out), "--overwrite"]) == 0
    assert (out / "a.npz").read_bytes() == first  # no time of writing in the file
    assert main(["scores", str(inputs), "-o", str(single)]) == 2  # two inputs, one output
    assert "--output-dir" in capsys.readouterr().err
