"""What a new user met (issue 25): speaker bounds past what the audio allows, output modes,
warnings, help and option checks, progress on a terminal, eval's inputs, reprs, pyannote-style
inputs, result writers, the diarize JSON. Real models and shared audio throughout."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import SHARED

from powerseg.cli import build_parser, main

SAMPLE_SET = SHARED / "audio" / "pyannote_sample"
SAMPLE = SAMPLE_SET / "wav" / "sample.wav"
RATE = 16000


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """powerseg in a subprocess, its stdout and stderr captured."""
    return subprocess.run([sys.executable, "-m", "powerseg", *args], text=True,
                          capture_output=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def excerpt(shared) -> tuple[np.ndarray, int]:
    """The first 15 s of the sample: 6 chunks, both speakers."""
    samples, rate = sf.read(SAMPLE, dtype="float32")
    return samples[:15 * rate], rate


# ---- speaker bounds from 1 to far beyond the chunks ------------------------------------------

@pytest.fixture(scope="module")
def windows(excerpt):
    """The excerpt's windows run once: the segmentation and each round's arrays."""
    from powerseg import Diarizer

    diarizer = Diarizer(providers="cpu")
    rounds = diarizer.rounds()
    samples, rate = excerpt
    segmentation = diarizer.segmenter(samples, sample_rate=rate, activations=False,
                                      on_windows=rounds)
    return diarizer, segmentation, list(rounds.binarized), list(rounds.vectors)


def _finish(windows, **bounds):
    """``Diarizer.__call__``'s stages after the windows, on the saved rounds."""
    diarizer, segmentation, binarized, vectors = windows
    rounds = diarizer.rounds()
    rounds.binarized[:], rounds.vectors[:] = binarized, vectors
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = diarizer.finish(segmentation, rounds, **bounds)
    return result, [str(w.message) for w in caught]


@pytest.mark.parametrize("name", ["num_speakers", "min_speakers", "max_speakers"])
def test_speaker_bounds_from_one_to_far_beyond_the_chunks(windows, name):
    chunks = sum(len(b) for b in windows[2])
    assert chunks == 6
    for bound in [*range(1, 2 * chunks + 2), 100, 255, 256, 1000, 10**6]:
        result, said = _finish(windows, **{name: bound})
        if name != "min_speakers":  # never more speakers at once, or in all, than allowed
            assert result.count.max() <= bound and len(result.speakers) <= bound, bound
        if bound > 7 and name != "max_speakers":  # past the 7 embeddings: closest, and why
            assert len(said) == 1 and said[0].startswith("array: ") and \
                "embeddings to cluster" in said[0] and "the result is the closest" in said[0]
        if name == "max_speakers" or bound <= 2:
            assert said == [], (bound, said)  # the 2 speakers heard meet these
        assert result.turns(), bound


def test_cli_num_speakers_1000_warns_once_naming_the_file(shared, tmp_path):
    out = tmp_path / "sample.rttm"
    done = _run("diarize", str(SAMPLE), "-o", str(out), "--num-speakers", "1000",
                "--provider", "cpu")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"powerseg: warning: {SAMPLE}: "), lines
    assert "1000 were asked for" in lines[0] and "Warning" not in lines[0]
    assert out.read_text().count("SPEAKER sample") > 0


# ---- output files get open()'s mode ---------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_outputs_get_the_mode_open_gives(shared, tmp_path, umask):
    from powerseg.runtime.writers import atomic_output
    from powerseg.runtime.writers import umask as current

    old = os.umask(umask)
    try:
        assert current() == umask
        with atomic_output(tmp_path / "a.rttm") as f:
            f.write("x")
        with atomic_output(tmp_path / "b.npz", binary=True) as f:
            f.write(b"x")
        with open(tmp_path / "plain", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    mode = (tmp_path / "plain").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask
    for name in ("a.rttm", "b.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


# ---- messages, help and option checks --------------------------------------------------------

def test_every_option_has_help_and_no_code_names_leak():
    parser = build_parser()
    assert "``" not in parser.description
    sub = next(a for a in parser._actions if a.choices and "vad" in a.choices)
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.option_strings and action.dest not in ("help",):
                assert action.help, f"{name} {action.option_strings[0]} has no help"


@pytest.mark.parametrize("argv, words", [
    (["diarize", str(SAMPLE), "--min-speakers", "5", "--max-speakers", "2"],
     "--min-speakers (5) must not exceed --max-speakers (2)"),
    (["diarize", str(SAMPLE), "--num-speakers", "2", "--min-speakers", "3"],
     "--num-speakers (2) and --min-speakers (3) disagree"),
    (["diarize", str(SAMPLE), "--num-speakers", "3", "--max-speakers", "2"],
     "--num-speakers (3) and --max-speakers (2) disagree"),
])  # the options every command shares: tests/contracts/test_commands.py
def test_option_errors_in_the_words_typed(shared, argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--provider", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err == f"powerseg: error: {words}" + err[len(f"powerseg: error: {words}"):]
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_warnings_are_one_line_naming_the_file(shared, tmp_path):
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(3 * RATE, np.float32), RATE)
    done = _run("diarize", str(silence), "--provider", "cpu")
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr == (f"powerseg: warning: {silence}: no speaker found in 3.000 s of "
                           "audio; the diarization is empty\n")


def test_a_fifth_of_a_second_of_speech_is_diarized(excerpt):
    from powerseg import Diarizer, Segmenter

    samples, rate = excerpt
    short = samples[round(6.7 * rate):round(6.9 * rate)]  # 0.2 s inside the first word
    speech = Segmenter(providers="cpu")(short, sample_rate=rate).vad()
    turns = Diarizer(providers="cpu")(short, sample_rate=rate).turns()
    assert speech and turns and turns[0].start == pytest.approx(speech[0].start)


def test_info_says_the_pair_runs_by_default(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "runs as: on CPU, by default, the shared front/tail pair " \
        "(segmentation-3.0.tail.onnx" in out
    assert main(["info", "--model", "fp16"]) == 0
    assert "front/tail pair" not in capsys.readouterr().out  # fp16 has none


# ---- progress and errors on a terminal -------------------------------------------------------

def _on_a_terminal(*args: str) -> tuple[int, str]:
    """powerseg with stderr on a pseudo-terminal; (exit code, what the terminal got)."""
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "powerseg", *args], stderr=slave,
                               stdout=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed: powerseg ended
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return process.wait(timeout=600), b"".join(chunks).decode()


def test_terminal_progress_within_a_file_and_errors_on_their_own_lines(shared, tmp_path):
    audio = SHARED / "audio" / "libri_conv_a" / "wav" / "conva_00.wav"  # 181 s
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    listing = tmp_path / "files.txt"
    listing.write_text(f"{audio}\n{broken}\n")
    code, screen = _on_a_terminal("vad", str(listing), "--output-dir", str(tmp_path / "out"),
                                  "--step", "2.5", "--provider", "cpu")
    assert code == 1
    assert re.search(r"\[0/2\] conva_00\.wav \d+/181 s, [\d.]+x real time, \d+:\d\d left",
                     screen), screen[:500]
    lines = screen.replace("\r\n", "\n").split("\n")
    error = [line for line in lines if "powerseg: error:" in line]
    # the error on a line of its own: the status line erased before it, not run into
    assert len(error) == 1 and error[0].split("\r")[-1].startswith("\x1b[Kpowerseg: error: "
                                                                   f"{broken}")
    assert lines[-2] == "powerseg: 1 done, 0 skipped (output exists), 1 failed"


# ---- eval: its inputs named when wrong, UEMs merged, a table that fits -----------------------

@pytest.fixture(scope="module")
def uems(shared, tmp_path_factory) -> tuple[Path, Path]:
    """The sample's UEM split in two files: its first and second halves."""
    folder = tmp_path_factory.mktemp("uem")
    first, second = folder / "first.uem", folder / "second.uem"
    first.write_text("sample NA 0.000 15.000\n")
    second.write_text("sample NA 15.000 30.000\n")
    return first, second


def test_eval_merges_repeated_uems(shared, uems, tmp_path, capsys):
    first, second = uems
    ref = str(SAMPLE_SET / "rttm" / "sample.rttm")
    reports = []
    for flags in (["--uem", str(first), "--uem", str(second)], ["--uem", str(first)]):
        out = tmp_path / "der.json"
        assert main(["eval", str(SAMPLE), "--reference", ref, *flags, "--task", "vad",
                     "-o", str(out), "--provider", "cpu"]) == 0
        reports.append(json.loads(out.read_text())["files"][0])
    whole = tmp_path / "whole.json"
    assert main(["eval", str(SAMPLE), "--reference", ref, "--uem",
                 str(SAMPLE_SET / "uem" / "all.uem"), "--task", "vad", "-o", str(whole),
                 "--provider", "cpu"]) == 0
    expected = json.loads(whole.read_text())["files"][0]
    assert reports[0]["reference"] == pytest.approx(expected["reference"], abs=1e-6)
    assert reports[1]["reference"] < reports[0]["reference"]  # one half scores less
    capsys.readouterr()


def test_eval_warns_when_a_uem_misses_the_file(shared, tmp_path):
    other = tmp_path / "other.uem"
    other.write_text("someone_else NA 0.0 10.0\n")
    done = _run("eval", str(SAMPLE), "--reference", str(SAMPLE_SET / "rttm" / "sample.rttm"),
                "--uem", str(other), "--task", "vad", "--provider", "cpu")
    assert done.returncode == 0, done.stderr
    assert done.stderr == (f"powerseg: warning: {SAMPLE}: {other} has no line for URI "
                           "'sample'; the whole file is scored\n")


@pytest.mark.parametrize("flag, make, words", [
    ("--reference", lambda p: p.write_bytes(SAMPLE.read_bytes()[:4000]),
     "not a text RTTM file (binary data; audio given as the RTTM?)"),
    ("--reference", None, "no such RTTM file"),
    ("--uem", None, "no such UEM file"),
])
def test_eval_unreadable_inputs_are_one_line(shared, tmp_path, capsys, flag, make, words):
    path = tmp_path / ("ref.wav" if make else "missing")
    if make:
        make(path)
    args = ["eval", str(SAMPLE), "--task", "vad", "--provider", "cpu"]
    if flag == "--uem":
        args += ["--reference", str(SAMPLE_SET / "rttm" / "sample.rttm")]
    assert main([*args, flag, str(path)]) == 1
    assert capsys.readouterr().err == f"powerseg: error: {path}: {words}\n"


RTTM_LINE = "SPEAKER sample 1 {} {} <NA> <NA> A <NA> <NA>\n"


@pytest.mark.parametrize("flag, text, words", [
    ("--reference", "garbage\n", "malformed RTTM line (expected SPEAKER uri channel start "
                                 "duration <NA> <NA> speaker ...)"),
    ("--reference", "SPEAKER sample 1 0.5 1.0\n", "malformed RTTM line (expected SPEAKER"),
    ("--reference", RTTM_LINE.format("x", "1.0"), "malformed RTTM line (start 'x' and duration "
                                                  "'1.0' must be numbers of seconds)"),
    ("--reference", RTTM_LINE.format("0.5", "-1.0"), "malformed RTTM line (start 0.5 and "
                                                     "duration -1 must be finite seconds, "
                                                     "neither negative)"),
    ("--reference", RTTM_LINE.format("nan", "1.0"), "start nan and duration 1 must be finite"),
    ("--uem", "sample 1 5.0 2.0\n", "malformed UEM line (start 5 and end 2 must be finite "
                                    "seconds, end not before start)"),
    ("--uem", "sample 1 0.0\n", "malformed UEM line (expected uri channel start end)"),
])
def test_eval_malformed_reference_lines_are_refused(shared, tmp_path, capsys, flag, text, words):
    """A line that is no RTTM record, or a turn no recording can have, names its file and
    line: nothing is skipped. Other record types and ;; comments are passed over."""
    path = tmp_path / "bad"
    args = ["eval", str(SAMPLE), "--task", "vad", "--provider", "cpu"]
    passed_over = [";; a comment"]
    if flag == "--uem":
        args += ["--reference", str(SAMPLE_SET / "rttm" / "sample.rttm")]
    else:
        passed_over.append("SPKR-INFO sample 1 <NA> <NA> <NA> unknown A <NA> <NA>")
    path.write_text("".join(f"{line}\n" for line in passed_over) + text)
    assert main([*args, flag, str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"powerseg: error: {path}:{len(passed_over) + 1}: ")
    assert words in err and err.count("\n") == 1


def test_eval_table_columns_fit_the_task_and_long_names():
    from powerseg.evaluate import Score, table

    uri = "a_recording_name_longer_than_sixteen"
    detection = table([Score(uri, "vad", 10.0, 1.0, 2.0), Score("b", "vad", 5.0, 0.0, 1.0)])
    lines = detection.splitlines()
    assert "conf s" not in lines[0] and "DER %" not in lines[0] and "DetER %" in lines[0]
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header
    assert [line.split()[-1] for line in lines[1:]] == ["30.00", "20.00", "26.67"]
    diarization = table([Score(uri, "diarization", 10.0, 1.0, 2.0, 0.5)])
    lines = diarization.splitlines()
    assert "conf s" in lines[0] and lines[0].endswith("DER %")
    assert len({len(line) for line in lines}) == 1


# ---- results: short reprs, writers of their own, pyannote's inputs ---------------------------

@pytest.fixture(scope="module")
def diarized(shared):
    from powerseg import Diarizer

    diarizer = Diarizer(providers="cpu")
    return diarizer, diarizer(SAMPLE)


def test_reprs_are_short(diarized):
    from powerseg import Embedder, Segmenter

    diarizer, result = diarized
    segmenter = Segmenter(providers="cpu")
    embedder = Embedder()
    segmentation = segmenter(SAMPLE)
    stream = segmenter.stream()
    frames = stream.push(np.zeros(12 * RATE, np.float32))
    for thing in (diarizer, result, segmenter, segmentation, embedder, embedder.embed(SAMPLE),
                  embedder.embed_chunks(np.zeros((2, 160000), np.float32), np.ones((2, 589))),
                  frames):
        text = repr(thing)
        assert len(text) < 400 and " object at 0x" not in text and "array(" not in text, text
    assert repr(result).startswith("Diarization(30.000 s, 2 speakers ['SPEAKER_00', "
                                   "'SPEAKER_01'], 13 turns, 21 chunks, threshold=0.86")


def test_to_rttm_and_to_json_are_the_cli_bytes(diarized, tmp_path):
    from powerseg import Segmenter

    _, result = diarized
    for exclusive, suffix in ((False, "rttm"), (True, "json")):
        out = tmp_path / f"sample.{suffix}"
        flags = ["--exclusive"] if exclusive else []
        assert main(["diarize", str(SAMPLE), "-o", str(out), "--provider", "cpu",
                     *flags]) == 0
        made = result.to_rttm("sample", exclusive) if suffix == "rttm" else \
            result.to_json("sample", exclusive)
        assert made == out.read_text()
    out = tmp_path / "vad.json"
    assert main(["osd", str(SAMPLE), "-o", str(out), "--provider", "cpu"]) == 0
    assert Segmenter(providers="cpu")(SAMPLE).to_json("sample", osd=True) == out.read_text()


def test_diarize_json_records_what_decided_it(diarized):
    _, result = diarized
    document = json.loads(result.to_json("sample", exclusive=True))
    assert document["exclusive"] is True and document["threshold"] == 0.86
    assert document["options"]["threshold"] is None  # as asked; the one used beside it
    assert (document["model"], document["variant"]) == ("pyannote/segmentation-3.0", "fp32")
    assert document["embedding_model"].startswith("3D-Speaker CAM++")
    assert sorted(document["centroids"]) == ["SPEAKER_00", "SPEAKER_01"]
    for speaker, centroid in zip(result.speakers, result.centroids):
        assert np.array_equal(np.float32(document["centroids"][speaker]),
                              centroid.astype(np.float32))


def test_pyannote_style_inputs(shared):
    from powerseg import Embedder, Segmenter
    from powerseg.errors import OptionError

    segmenter = Segmenter(providers="cpu")
    expected = segmenter(SAMPLE).speech
    samples, rate = sf.read(SAMPLE, dtype="float32")
    with open(SAMPLE, "rb") as f:
        inputs = [{"waveform": samples[None], "sample_rate": rate},
                  {"audio": SAMPLE, "uri": "sample"}, f, io.BytesIO(SAMPLE.read_bytes())]
        for audio in inputs:
            assert np.array_equal(segmenter(audio).speech, expected), type(audio)
    vector = Embedder().embed(SAMPLE).vector
    assert np.array_equal(Embedder().embed(io.BytesIO(SAMPLE.read_bytes())).vector, vector)
    with pytest.raises(OptionError, match="binary mode"), open(SAMPLE) as text:
        segmenter(text)
    with pytest.raises(OptionError, match=r"'waveform' and 'sample_rate'.*Accepted: a path"):
        segmenter({"audio": SAMPLE, "channel": 0})
    with pytest.raises(OptionError, match=r"required with an array input \(audio: a path, "):
        segmenter(samples)  # an array without its rate


# ---- plot: no seam between touching turns, the reference under the hypothesis ----------------

def test_touching_turns_are_one_bar():
    from powerseg.runtime import Turn

    from powerseg.plot import spans

    turns = [Turn(1.0, 2.0, "A"), Turn(2.0, 3.5, "A"), Turn(4.0, 5.0, "A")]
    assert spans(turns, 0.0, 10.0) == [(1.0, 2.5), (4.0, 1.0)]
    assert spans(turns, 4.5, 10.0) == [(4.0, 1.0)]


def test_plot_reference_under_the_hypothesis(diarized, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "turns.png"
    ref = SAMPLE_SET / "rttm" / "sample.rttm"
    assert main(["plot", str(SAMPLE), "--diarization", "--reference", str(ref), "-o", str(out),
                 "--provider", "cpu"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()
    other = tmp_path / "other.rttm"
    other.write_text("SPEAKER elsewhere 1 0.0 1.0 <NA> <NA> A <NA> <NA>\n")
    assert main(["plot", str(SAMPLE), "--diarization", "--reference", str(other), "-o",
                 str(tmp_path / "x.png"), "--provider", "cpu"]) == 2
    assert "no turns for URI 'sample'" in capsys.readouterr().err


def _umask() -> int:
    from powerseg.runtime.writers import umask

    return umask()
