"""One check over the table of options that apply in one mode of a command only
(``powerseg.modes.MODES``): each such option given in the other mode is refused before any
work, in one line naming it as typed, with the usage exit code and nothing written."""

from __future__ import annotations

import argparse
import re

import pytest

from powerseg.cli import build_parser, main
from powerseg.modes import MODEL, MODES, REGIONS, SPEAKERS, VOICES, long_options
from powerseg.samples import sample_path

SAMPLE = str(sample_path())
# What each command needs to parse at all, and a value each moded option can take.
BASE = {"vad": [SAMPLE], "osd": [SAMPLE], "diarize": [SAMPLE], "scores": [SAMPLE],
        "embed": [SAMPLE], "stream": [SAMPLE], "plot": [SAMPLE, "-o", "p.png"],
        "eval": [SAMPLE, "--reference", "r.rttm"], "enroll": [],
        "transcript": [SAMPLE, "--words", "w.json", "-o", "t.json"]}
VALUES = {"--ray": "auto", "--preset": "fast", "--events": "speech", "--format": "jsonl",
          "--task": "vad", "--model": "int8", "--embedding": "e.onnx", "--provider": "cpu",
          "--onset": "0.6", "--offset": "0.4", "--voice-threshold": "0.6", "--threshold": "0.5",
          "--batch-size": "4"}
OUTPUT_REQUIRED = ("scores", "embed")  # -o or --output-dir, one of them
# a mode whose switch needs another's to be given at all
CONTEXT = {"--ray": ["--output-dir", "out"]}


def actions(command: str) -> dict[str, argparse.Action]:
    return long_options(build_parser(), command)


def typed(command: str, option: str) -> list[str]:
    """``option`` as a user would type it, with a value where it takes one."""
    action = actions(command)[option]
    return [option] if action.nargs == 0 else [option, VALUES.get(option, "2")]


def cases() -> list:
    out = []
    for mode in MODES:
        for option in mode.needs:
            out.append(pytest.param(mode.command, [*CONTEXT.get(mode.switch, []),
                                                   *typed(mode.command, option)], option,
                                    f"only with {mode.switch}",
                                    id=f"{mode.command}{option}-without{mode.switch}"))
        for option in mode.excludes:
            out.append(pytest.param(mode.command, [*CONTEXT.get(mode.switch, []),
                                                   *typed(mode.command, mode.switch),
                                                   *typed(mode.command, option)], option,
                                    f"not apply with {mode.switch}",
                                    id=f"{mode.command}{option}-with{mode.switch}"))
    return out


def test_the_tables_option_groups_are_the_parsers():
    """SPEAKERS, VOICES, REGIONS and MODEL restate argparse groups: an option added to a group
    must join its row too, or it would be ignored where the group does not apply."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    groups = {"speakers": set(SPEAKERS), "named speakers": set(VOICES), "regions": set(REGIONS),
              "model": set(MODEL)}
    seen = set()
    for command, parser in sub.choices.items():
        for group in parser._action_groups:
            if group.title in groups and command in {m.command for m in MODES}:
                flags = {a.option_strings[0] for a in group._group_actions}
                flags -= {"--soft", "--embeddings"}  # rows of their own where they apply
                assert flags == groups[group.title], (command, group.title)
                seen.add(group.title)
    assert seen == set(groups)


def test_every_option_in_the_table_is_one_of_its_command():
    for mode in MODES:
        known = actions(mode.command)
        assert {mode.switch, *mode.needs, *mode.excludes} <= set(known), mode


@pytest.mark.parametrize("command, argv, option, words", cases())
def test_an_option_outside_its_mode_is_refused(tmp_path, monkeypatch, capsys, command, argv,
                                               option, words):
    monkeypatch.chdir(tmp_path)
    if command in OUTPUT_REQUIRED and "--output-dir" not in argv:
        argv = [*argv, "-o", "out.npz"]
    assert main([command, *BASE[command], *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"powerseg: error: {option} ") and err.count("\n") == 1
    if words not in err:  # an earlier row of the table refused the same option first
        other = re.search(r"(only with|not apply with) (--[a-z-]+)", err)
        assert other and any(m.command == command and m.switch == other[2] and
                             option in (*m.needs, *m.excludes) for m in MODES), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["stream", SAMPLE, "--latency", "3"], "--latency applies only with --diarization"),
    (["stream", SAMPLE, "--diarization", "--onset", "0.6", "--events", "speech"],
     "--events, --onset do not apply with --diarization (speaker turns are printed, not "
     "regions)"),
    (["vad", SAMPLE, "--jobs", "2"], "--jobs applies only with --output-dir"),
    (["diarize", SAMPLE, "--output-dir", "out", "--ray", "auto", "--jobs", "2"],
     "--jobs does not apply with --ray (the cluster's workers run the files)"),
    (["transcript", SAMPLE, "--words", "w.json", "-o", "t.json", "--rttm", "r.rttm", "--preset",
      "fast", "--threads", "1"], "--preset, --threads do not apply with --rttm (it gives a "
     "finished diarization: no model runs)"),
    (["enroll", "--list", "v.voices", "--model", "int8"], "--model does not apply with --list"),
])
def test_refusals_name_the_options_and_the_mode(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"powerseg: error: {message}")
