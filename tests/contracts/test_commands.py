"""The same checks over every command that runs a pipeline over audio files (``COMMANDS``): a bad
input or option is one line on stderr with its own exit code and nothing written, several inputs
keep the good ones, a batch (--output-dir) reports, resumes and sums up alike, and the writers
give the same bytes whenever and however they write, with open()'s mode.

Which commands a check covers follows from the command line itself (``takes``: the options each
command accepts), so a command gaining --output-dir or --format gains its checks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from powerseg import __version__
from powerseg.cli import _task, build_parser, main
from powerseg.models import SPEAKER_EMBEDDING, model_path
from powerseg.samples import sample_path

SAMPLE = sample_path()
RATE = 16000
CPU = "CPUExecutionProvider"
SEGMENTATION, EMBEDDING = model_path("fp32"), model_path("campplus", SPEAKER_EMBEDDING)
PAIR = ("segmentation", "segmentation_front")  # the shared front-end pair runs by default


@dataclass(frozen=True)
class Command:
    """A command of the table, and what its outputs hold."""

    name: str
    suffix: str  # what --output writes unless told otherwise
    models: tuple[tuple[str, Path], ...]  # option -> the shipped model file it takes
    # What the whole sample gives: regions, turns, npz rows (embed) or frames (scores); None
    # where no check below reads it (segment: one input, no --output-dir).
    sample_records: int | None
    json_kinds: tuple[str, ...] = ()  # the model kinds a JSON output names
    several: bool = True  # --output takes several inputs, one file holding them all


COMMANDS = [
    Command("vad", "rttm", (("--model", SEGMENTATION),), 4, PAIR),
    Command("osd", "rttm", (("--model", SEGMENTATION),), 4, PAIR),
    Command("scores", "npz", (("--model", SEGMENTATION),), 1779, several=False),
    Command("segment", "npz", (("--model", SEGMENTATION),), None, several=False),
    Command("diarize", "rttm", (("--model", SEGMENTATION), ("--embedding", EMBEDDING)), 13,
            (*PAIR, "speaker_embedding")),
    Command("embed", "npz", (("--model", EMBEDDING),), 1),
]


def _options() -> dict[str, dict[str, argparse.Action]]:
    """command -> {option string: its argparse action}."""
    sub = next(a for a in build_parser()._actions if a.choices and "vad" in a.choices)
    return {c.name: {s: a for a in sub.choices[c.name]._actions for s in a.option_strings}
            for c in COMMANDS}


OPTIONS = _options()


def takes(command: Command, option: str) -> bool:
    return option in OPTIONS[command.name]


def formats(command: Command) -> tuple[str, ...]:
    action = OPTIONS[command.name].get("--format")
    return tuple(action.choices) if action else (command.suffix,)


def each(keep: Callable[[Command], bool] = lambda c: True) -> list:
    return [pytest.param(c, id=c.name) for c in COMMANDS if keep(c)]


def batch(command: Command) -> bool:
    return takes(command, "--output-dir")


def records(path: Path) -> dict[str, int]:
    """URI -> what an output holds for it: RTTM lines, JSON regions or turns, npz rows (embed),
    or for the scores of one input, its frames."""
    if path.suffix == ".rttm":
        return dict(Counter(line.split()[1] for line in path.read_text().splitlines()))
    if path.suffix == ".json":
        documents = json.loads(path.read_text())
        return {d["uri"]: len(d["regions"] if "regions" in d else d["turns"])
                for d in (documents if isinstance(documents, list) else [documents])}
    with np.load(path) as data:
        if "uris" in data:
            return dict(Counter(data["uris"].tolist()))
        return {path.stem: len(data["speech"])}


def per_input(path: Path) -> dict[str, object]:
    """URI -> an output's part for it, comparable across outputs holding one input or several."""
    if path.suffix == ".rttm":
        parts: dict[str, list[str]] = {}
        for line in path.read_text().splitlines():
            parts.setdefault(line.split()[1], []).append(line)
        return parts
    if path.suffix == ".json":
        documents = json.loads(path.read_text())
        return {d["uri"]: d for d in (documents if isinstance(documents, list) else [documents])}
    with np.load(path) as data:
        return {uri: (data["embeddings"][row].tobytes(), int(data["num_frames"][row]))
                for row, uri in enumerate(data["uris"].tolist())}


def excerpt(path: Path, start: float, end: float) -> Path:
    samples, rate = sf.read(SAMPLE, dtype="float32")
    sf.write(path, samples[int(start * rate):int(end * rate)], rate)
    return path


# ---- one bad input: one line, its exit code, nothing written -------------------------------

@pytest.mark.parametrize("command", [
    pytest.param(c, id=c.name, marks=[pytest.mark.arm64] if c.name == "vad" else [])
    for c in COMMANDS])
def test_a_bad_input_is_one_line_and_writes_nothing(command, tmp_path, capsys):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    out = tmp_path / f"out.{command.suffix}"
    assert main([command.name, str(bad), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"powerseg: error: {bad}: cannot decode") and err.count("\n") == 1
    assert "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]  # no leftover temporary file


@pytest.mark.parametrize("command", each())
def test_debug_before_or_after_the_command_shows_the_traceback(command, tmp_path, capsys):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    out = str(tmp_path / f"out.{command.suffix}")
    for argv in (["--debug", command.name, str(bad), "-o", out],
                 [command.name, str(bad), "-o", out, "--debug"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("powerseg: error: ")
    assert list(tmp_path.iterdir()) == [bad]


@pytest.mark.parametrize("command", each())
def test_a_failed_run_keeps_an_existing_output_untouched(command, tmp_path, capsys):
    out = tmp_path / f"out.{command.suffix}"
    out.write_text("previous results\n")
    assert main([command.name, str(tmp_path / "missing.wav"), "-o", str(out)]) == 1
    assert out.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


@pytest.mark.parametrize("command", each())
def test_an_output_that_is_a_folder_is_refused(command, tmp_path, capsys):
    audio = excerpt(tmp_path / "a.wav", 6, 12)
    folder = tmp_path / "results"
    folder.mkdir()
    assert main([command.name, str(audio), "-o", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err == f"powerseg: error: {folder}: is a directory; give the output file's path\n"
    assert list(folder.iterdir()) == [] and not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("command, flag", [
    pytest.param(c, flag, id=f"{c.name}{flag}") for c in COMMANDS for flag, _ in c.models])
def test_a_bad_model_file_is_one_line_exit_1(command, flag, tmp_path, capsys):
    shipped = dict(command.models)[flag].read_bytes()
    path = tmp_path / "half.onnx"
    path.write_bytes(shipped[:len(shipped) // 2])
    out = tmp_path / f"out.{command.suffix}"
    assert main([command.name, str(SAMPLE), flag, str(path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"powerseg: error: {path}: onnxruntime cannot load this model")
    assert err.count("\n") == 1 and not out.exists()


# ---- bad options: one line, exit 2, nothing written ----------------------------------------

ARGUMENT_ERRORS = [  # argparse's refusals, in the words of the option's check
    (["--step", "0"], "--step: must be a number > 0, got 0.0"),
    (["--step", "-1"], "--step: must be a number > 0, got -1.0"),
    (["--step", "x"], "--step: must be a number > 0, got 'x'"),
    (["--step", "abc"], "--step: must be a number > 0, got 'abc'"),
    (["--step", "inf"], "--step: must be a number > 0, got inf"),
    (["--batch-size", "0"], "--batch-size: must be a whole number >= 1, got 0"),
    (["--threads", "0"], "--threads: must be a whole number >= 1, got 0"),
    (["--jobs", "2.5"], "--jobs: must be a whole number >= 1, got '2.5'"),
    (["--min-duration-on", "-1"], "--min-duration-on: must be a number >= 0, got -1.0"),
    (["--pad-offset", "-0.1"], "--pad-offset: must be a number >= 0, got -0.1"),
    (["--onset", "1.5"], "--onset: must be from 0 to below 1"),
    (["--onset", "-0.5"], "--onset: must be from 0 to below 1"),
    (["--format", "xml"], "--format: invalid choice: 'xml'"),
]


@pytest.mark.parametrize("command, argv, words", [
    pytest.param(c, argv, words, id=f"{c.name} {' '.join(argv)}")
    for c in COMMANDS for argv, words in ARGUMENT_ERRORS if takes(c, argv[0])])
def test_argument_errors_exit_2_saying_what_is_expected(command, argv, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command.name, str(SAMPLE), *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and words in err and "_positive" not in err


def option_errors(command: Command) -> list[tuple[list[str], str]]:
    """Values the options' own checks refuse, each with the words of the refusal."""
    name = command.name
    errors = [(["--provider", "gpu"], "unknown provider 'gpu'"),
              (["--step", "11"], "--step (11 s) must not exceed"),
              (["--onset", "0.5", "--offset", "0.7"], "--offset (0.7) must not exceed --onset (0.5)"),
              (["--onset", "0"], "--onset (0.0) must be above 0 and below 1"),
              (["-o", "v.rttm", "--format", "json"], "--format json and --output v.rttm disagree")]
    if command.suffix == "npz":
        errors += [(["-o", f"out.{suffix}"], f"--output out.{suffix}: {name} writes an npz")
                   for suffix in ("rttm", "json", "txt")]
    else:
        errors += [(["-o", "v.npz"], f"--output v.npz: {name} writes RTTM or JSON")]
    return [(argv, words) for argv, words in errors
            if all(takes(command, a) for a in argv if a.startswith("-"))]


@pytest.mark.parametrize("command, argv, words", [
    pytest.param(c, argv, words, id=f"{c.name} {' '.join(argv)}")
    for c in COMMANDS for argv, words in option_errors(c)])
def test_option_errors_are_one_line_exit_2_in_the_words_typed(command, argv, words, capsys,
                                                             tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    output = [] if "-o" in argv else ["-o", f"out.{command.suffix}"]
    provider = [] if "--provider" in argv else ["--provider", "cpu"]
    assert main([command.name, str(SAMPLE), *argv, *output, *provider]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"powerseg: error: {words}")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


# ---- several inputs to one output ----------------------------------------------------------

@pytest.mark.parametrize("command, fmt", [
    pytest.param(c, fmt, id=f"{c.name}-{fmt}") for c in COMMANDS if c.several
    for fmt in formats(c)])
def test_bad_inputs_are_reported_and_the_good_ones_kept(command, fmt, tmp_path, capsys):
    good_a = tmp_path / "a.wav"
    shutil.copy(SAMPLE, good_a)
    good_b = excerpt(tmp_path / "b.flac", 12, 20)  # speech and one overlap
    missing, empty, nan = tmp_path / "missing.wav", tmp_path / "empty.wav", tmp_path / "nan.wav"
    empty.write_bytes(b"")
    sf.write(nan, np.full(RATE, np.nan, np.float32), RATE, subtype="FLOAT")
    out = tmp_path / "out" / f"all.{fmt}"
    code = main([command.name, str(good_a), str(missing), str(empty), str(good_b), str(nan),
                 "-o", str(out)])
    assert code == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and f"{missing}: no such file" in err[0]
    assert f"{empty}: empty file" in err[1] and f"{nan}: NaN sample" in err[2]
    held = records(out)
    assert list(held) == ["a", "b"] and held["a"] == command.sample_records and held["b"] > 0
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]


@pytest.mark.parametrize("command", each(lambda c: c.several))
def test_all_inputs_bad_writes_nothing(command, tmp_path, capsys):
    out = tmp_path / f"out.{command.suffix}"
    assert main([command.name, str(tmp_path / "x.wav"), str(tmp_path / "y.wav"),
                 "-o", str(out)]) == 1
    assert len(capsys.readouterr().err.splitlines()) == 2 and not out.exists()


@pytest.mark.parametrize("command", each(lambda c: batch(c) and not c.several))
def test_several_inputs_to_one_output_file_need_output_dir(command, tmp_path, capsys):
    assert main([command.name, str(SAMPLE), str(SAMPLE),
                 "-o", str(tmp_path / f"out.{command.suffix}")]) == 2
    assert "--output-dir" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ---- batches: --output-dir -----------------------------------------------------------------

@pytest.fixture
def folder(tmp_path) -> Path:
    """in/: the whole sample (a.flac), 8 s of it (b.wav) and a broken file (bad.wav)."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(SAMPLE, inputs / "a.flac")
    excerpt(inputs / "b.wav", 12, 20)
    (inputs / "bad.wav").write_bytes(b"RIFF" + bytes(40))
    return inputs


@pytest.mark.parametrize("command", each(batch))
def test_a_batch_reports_bad_inputs_resumes_and_sums_up(command, folder, tmp_path, capsys):
    name, suffix, out = command.name, command.suffix, tmp_path / "out"
    assert main([name, str(folder), "--output-dir", str(out), "--jobs", "2"]) == 1
    written_at = time.monotonic()
    err = capsys.readouterr().err
    assert "bad.wav" in err and "2 done, 0 skipped (output exists), 1 failed" in err
    assert sorted(p.name for p in out.iterdir()) == \
        ["_powerseg_summary.json", f"a.{suffix}", f"b.{suffix}"]
    summary = json.loads((out / "_powerseg_summary.json").read_text())  # as a Ray run writes it
    assert [Path(p).name for p in summary["done"]] == ["a.flac", "b.wav"]
    assert [Path(f["input"]).name for f in summary["failed"]] == ["bad.wav"]
    assert "bad.wav" in summary["failed"][0]["error"] and not summary["skipped"]
    assert records(out / f"a.{suffix}") == {"a": command.sample_records}
    first = (out / f"a.{suffix}").read_bytes()

    (out / f"b.{suffix}").unlink()  # resume: one to redo, one finished
    listing = tmp_path / "files.txt"
    listing.write_text("in/a.flac\nin/b.wav\n")
    assert main([name, str(listing), "--output-dir", str(out)]) == 0
    assert "1 done, 1 skipped (output exists), 0 failed" in capsys.readouterr().err
    assert main([name, str(folder), "--output-dir", str(out)]) == 1  # the bad input again
    assert "0 done, 2 skipped (output exists), 1 failed" in capsys.readouterr().err
    assert (out / f"a.{suffix}").read_bytes() == first

    time.sleep(max(0.0, written_at + 2.1 - time.monotonic()))  # a zip entry's time: 2 s steps
    assert main([name, str(folder / "a.flac"), "--output-dir", str(out), "--overwrite"]) == 0
    assert (out / f"a.{suffix}").read_bytes() == first  # no time of writing in the file
    single = tmp_path / f"single.{suffix}"
    assert main([name, str(folder / "a.flac"), "-o", str(single)]) == 0
    assert single.read_bytes() == first  # one writer, alone or in a batch
    for fmt in set(formats(command)) - {suffix}:
        assert main([name, str(folder / "a.flac"), "--output-dir", str(out),
                     "--format", fmt]) == 0
        assert records(out / f"a.{fmt}") == {"a": command.sample_records}


@pytest.mark.parametrize("command, fmt", [
    pytest.param(c, fmt, id=f"{c.name}-{fmt}") for c in COMMANDS if batch(c) and c.several
    for fmt in formats(c)])
def test_one_output_holds_what_the_outputs_per_input_hold(command, fmt, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    # each with speech and an overlap, so that each has RTTM lines of its own
    for name, start, end in (("a.wav", 6, 12), ("b.wav", 12, 20), ("c.wav", 24, 30)):
        excerpt(inputs / name, start, end)
    (inputs / "broken.wav").write_bytes(b"not audio")
    together = tmp_path / f"all.{fmt}"
    assert main([command.name, str(inputs), "-o", str(together)]) == 1
    out = tmp_path / "out"
    extra = ["--format", fmt] if fmt != command.suffix else []
    assert main([command.name, str(inputs), "--output-dir", str(out), "--jobs", "2", *extra]) == 1
    assert "1 failed" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == \
        ["_powerseg_summary.json", *(f"{uri}.{fmt}" for uri in "abc")]
    alone = {}
    for uri in "abc":
        part = per_input(out / f"{uri}.{fmt}")
        assert list(part) == [uri]
        alone.update(part)
    assert per_input(together) == alone


@pytest.mark.parametrize("command", each(batch))
def test_nothing_to_do_is_an_error(command, tmp_path, capsys):
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([command.name, str(empty), "--output-dir", str(out)]) == 1
    assert "no audio files in this folder" in capsys.readouterr().err
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "readme.md").write_text("no audio here\n")
    (notes / "sub" / "x.wav").mkdir()  # a folder named like audio is not audio
    one = [] if command.suffix != "npz" else ["-o", str(tmp_path / "one.npz")]  # else stdout
    for where in (["--output-dir", str(out)], one):
        assert main([command.name, str(notes), *where]) == 1
        captured = capsys.readouterr()
        assert "no audio files in this folder" in captured.err and captured.out == ""
    listing = tmp_path / "files.txt"
    listing.write_text("# nothing yet\n\n")
    assert main([command.name, str(listing), "--output-dir", str(out)]) == 1
    assert "names no audio files" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "files.txt", "notes"]


@pytest.mark.parametrize("command", each(batch))
def test_a_name_clash_is_refused(command, tmp_path, capsys):
    (tmp_path / "x").mkdir()
    shutil.copy(SAMPLE, tmp_path / "x" / "a.flac")
    shutil.copy(SAMPLE, tmp_path / "a.flac")
    assert main([command.name, str(tmp_path / "a.flac"), str(tmp_path / "x"), "--output-dir",
                 str(tmp_path / "out")]) == 2
    assert "would both write" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---- what the writers write ----------------------------------------------------------------

@pytest.fixture(scope="module")
def document(tmp_path_factory):
    """command -> (its JSON output for the sample, the options its command line asked for);
    each command run once per module."""
    made: dict[str, tuple[dict, dict]] = {}

    def get(command: Command) -> tuple[dict, dict]:
        if command.name not in made:
            out = tmp_path_factory.mktemp(command.name) / "sample.json"
            argv = [command.name, str(SAMPLE), "-o", str(out), "--provider", "cpu",
                    "--batch-size", "8"]
            assert main(argv) == 0
            asked = asdict(_task(build_parser().parse_args(argv)).model)
            made[command.name] = (json.loads(out.read_text()),
                                  {k: list(v) if isinstance(v, tuple) else v
                                   for k, v in asked.items()})
        return made[command.name]

    return get


@pytest.mark.parametrize("command", each(lambda c: "json" in formats(c)))
def test_json_starts_with_one_envelope_naming_every_model_file(command, document):
    """schema, powerseg version, and each model file used (a shared front-end pair's two) with
    the sha256 of the very file."""
    folder = SEGMENTATION.parent
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.onnx")}
    doc, _ = document(command)
    assert list(doc)[:3] == ["schema", "powerseg", "models"]
    assert (doc["schema"], doc["powerseg"]) == (1, __version__)
    for model in doc["models"]:
        assert model["sha256"] == digest[model["file"]], model
    assert [m["kind"] for m in doc["models"]] == list(command.json_kinds)


@pytest.mark.parametrize("command", each(lambda c: "json" in formats(c)))
def test_json_echoes_the_options_asked_for_and_the_provider(command, document):
    doc, asked = document(command)
    assert doc["options"] == asked and asked["batch_size"] == 8
    assert doc["provider"] == CPU


@pytest.mark.parametrize("command, option", [
    pytest.param(c, option, id=f"{c.name}{option}") for c in COMMANDS
    for option in ("--output", "--output-dir") if takes(c, option)])
def test_each_output_gets_the_mode_open_gives(command, option, tmp_path):
    short = excerpt(tmp_path / "short.wav", 6, 14)
    target = tmp_path / (f"o.{command.suffix}" if option == "--output" else "dir")
    old = os.umask(0o027)
    try:
        assert main([command.name, str(short), option, str(target), "--provider", "cpu"]) == 0
    finally:
        os.umask(old)
    path = target if option == "--output" else target / f"short.{command.suffix}"
    assert path.stat().st_mode & 0o777 == 0o640
