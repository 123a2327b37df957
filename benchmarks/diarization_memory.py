"""What holds the peak RSS of `powerseg diarize` on 10 min of conversation: fresh children, one
per setting and round, interleaved; the RTTM bytes of every run compared with the default's.

Settings: the default (one single-threaded model run per core); one worker (``--threads 1``);
one onnxruntime CPU arena shared by both models' sessions (a process-wide allocator, patched into
the child for the measurement, each session told to use it); glibc's malloc arenas capped at two
(``MALLOC_ARENA_MAX=2``). Prints a table, writes benchmarks/results/diarization_memory.json.

    python benchmarks/diarization_memory.py [--minutes 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

from live import cpu  # benchmarks/ is on sys.path
from memory import ROOT, SHARED, measure, write_results, write_tiled
from timing import fmt, stats

RESULTS = ROOT / "benchmarks" / "results" / "diarization_memory.json"

SETTINGS = {  # name -> (arena mode of memory.py's child, extra CLI arguments, extra environment)
    "default": ("on", [], {}),
    "--threads 1": ("on", ["--threads", "1"], {}),
    "shared arena": ("shared", [], {}),
    "MALLOC_ARENA_MAX=2": ("on", [], {"MALLOC_ARENA_MAX": "2"}),
}


def run(audio: Path, out: Path, arena: str, extra: list[str], env: dict) -> dict:
    """One child: peak RSS, wall seconds, and the sha256 of its RTTM."""
    result = measure(["diarize", str(audio), "-o", str(out), "--provider", "cpu", *extra], arena,
                     env=env)
    return {**result, "rttm_sha256": hashlib.sha256(out.read_bytes()).hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    sources = sorted((SHARED / "audio" / "libri_conv_a" / "wav").glob("*.wav"))
    if not sources:
        sys.exit(f"no libri_conv_a audio under {SHARED / 'audio'}")
    audio = write_tiled(args.tmp / f"powerseg-conv-{args.minutes:g}min.wav", args.minutes * 60,
                        sources)
    runs: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, (arena, extra, env) in SETTINGS.items():
            runs[name].append(run(audio, args.tmp / "powerseg-diarization-memory.rttm", arena,
                                  extra, env))
    default = runs["default"][0]["rttm_sha256"]
    rows = {name: {"peak_rss_mib": stats([r["peak_rss_mib"] for r in got]),
                   "wall_s": stats([r["wall_s"] for r in got]),
                   "same_rttm": all(r["rttm_sha256"] == default for r in got)}
            for name, got in runs.items()}
    machine = cpu()
    print(f"powerseg diarize, {args.minutes:g} min of libri_conv_a tiled, {args.rounds} rounds; "
          f"{machine}")
    print(f"{'setting':20} {'peak RSS MiB':>22} {'wall s':>22} same RTTM")
    for name, row in rows.items():
        print(f"{name:20} {fmt(row['peak_rss_mib']):>22} {fmt(row['wall_s']):>22} "
              f"{'yes' if row['same_rttm'] else 'NO'}")
    write_results(args.output, {"what": __doc__.splitlines()[0], "minutes": args.minutes,
                                "rounds": args.rounds, "cpu": machine, "settings": rows})


if __name__ == "__main__":
    main()
