"""Options that apply in one mode of a command only, as one table.

An option given where it does nothing (``stream --latency`` without ``--diarization``,
``transcript --rttm ... --preset fast``) would be ignored without a word; the CLI refuses it
instead, naming both options as typed, before any work.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from powerseg.errors import OptionError

SPEAKERS = ("--num-speakers", "--min-speakers", "--max-speakers", "--threshold",
            "--min-cluster-size", "--preset", "--embedding")
VOICES = ("--voices", "--voice-threshold")
REGIONS = ("--onset", "--offset", "--min-duration-on", "--min-duration-off", "--pad-onset",
           "--pad-offset")
MODEL = ("--model", "--step", "--batch-size", "--threads", "--provider", "--no-shared-front")
BATCH_COMMANDS = ("vad", "osd", "diarize", "scores", "embed")


@dataclass(frozen=True)
class Mode:
    """In ``command``, the options that apply only with ``switch`` (``needs``) and those that
    apply only without it (``excludes``, refused saying ``why``)."""

    command: str
    switch: str
    needs: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    why: str = ""


MODES: tuple[Mode, ...] = (
    *(Mode(c, "--output-dir", needs=("--jobs", "--overwrite", "--ray")) for c in BATCH_COMMANDS),
    *(Mode(c, "--ray", needs=("--ray-workers", "--ray-cpus-per-worker", "--ray-gpus-per-worker"),
           excludes=("--jobs",), why="the cluster's workers run the files")
      for c in BATCH_COMMANDS),
    *(Mode(c, "--voices", needs=("--voice-threshold",))
      for c in ("diarize", "stream", "transcript")),
    Mode("stream", "--diarization",
         needs=("--latency", "--format", "--final-output", *SPEAKERS, *VOICES),
         excludes=("--events", "--soft", *REGIONS), why="speaker turns are printed, not regions"),
    Mode("plot", "--diarization", needs=("--reference", "--min-duration-off", *SPEAKERS),
         excludes=("--soft",), why="pyannote's pipeline decodes the segmentation hard"),
    Mode("eval", "--diarization", needs=("--exclusive", *SPEAKERS),
         excludes=("--task", "--soft", *REGIONS), why="speaker turns are scored, not regions"),
    Mode("transcript", "--rttm",
         excludes=("--exclusive", "--min-duration-off", *SPEAKERS, *VOICES, *MODEL),
         why="it gives a finished diarization: no model runs"),
    Mode("enroll", "--list", excludes=("--name", "--output", "--replace", "--from-diarization",
                                       "--speaker", "--model", "--embedding", "--threads",
                                       "--provider"), why="it only prints a bank"),
    Mode("enroll", "--from-diarization", needs=("--speaker",),
         excludes=("--model", "--embedding", "--threads", "--provider"),
         why="the speaker's embedding is read from the file: no model runs"),
)


def long_options(parser: argparse.ArgumentParser, command: str) -> dict[str, argparse.Action]:
    """``command``'s options by their long name (``--min-speakers``)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.option_strings[0]: a for a in sub.choices[command]._actions
            if a.option_strings and a.option_strings[0].startswith("--")}


def check_modes(actions: dict[str, argparse.Action], args: argparse.Namespace) -> None:
    """Refuse an option given (a value other than its default) in a mode of its command it
    does not apply to; ``actions``: the command's ``long_options``."""
    options = {flag for flag, action in actions.items()
               if getattr(args, action.dest, action.default) != action.default}
    for mode in MODES:
        if mode.command != args.command:
            continue
        if mode.switch in options:
            refused = [o for o in mode.excludes if o in options]
            if refused:
                because = f" ({mode.why})" if mode.why else ""
                raise OptionError(f"{', '.join(refused)} {'does' if len(refused) == 1 else 'do'} "
                                  f"not apply with {mode.switch}{because}")
        else:
            lacking = [o for o in mode.needs if o in options]
            if lacking:
                raise OptionError(f"{', '.join(lacking)} {'applies' if len(lacking) == 1 else 'apply'} "
                                  f"only with {mode.switch}")
