"""Cold start: fresh processes of `python -c "import powerseg"` and `powerseg vad` on 1 s of audio,
interleaved, wall seconds (median and spread). Prints a table, writes benchmarks/results/cold_start.json.

    python benchmarks/cold_start.py                       # this checkout
    python benchmarks/cold_start.py --checkout OTHER_DIR  # and another checkout, in the same rounds
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from memory import write_results  # benchmarks/ is on sys.path
from timing import fmt, log, stats

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cold_start.json"


def commands(audio: Path, out: Path) -> dict[str, list[str]]:
    return {"import powerseg": [sys.executable, "-c", "import powerseg"],
            "powerseg vad, 1 s": [sys.executable, "-m", "powerseg", "vad", str(audio), "-o",
                                  str(out), "--provider", "cpu"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--checkout", type=Path, action="append", default=[],
                        help="another checkout to time in the same rounds (e.g. a git worktree)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from live import cpu  # the CPU model and flags, as every benchmark records them

    folder = Path(tempfile.mkdtemp())
    audio = folder / "one_second.wav"
    rng = np.random.default_rng(0)
    sf.write(audio, (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    runs = {}
    for checkout in [ROOT, *args.checkout]:
        for name, command in commands(audio, folder / "out.rttm").items():
            runs[(str(checkout), name)] = command
    seconds: dict = {key: [] for key in runs}
    for _ in range(args.rounds + 1):  # the first round warms the page cache, not counted
        for key, command in runs.items():
            begin = time.perf_counter()
            subprocess.run(command, cwd=key[0], check=True, capture_output=True,
                           env={**os.environ, "PYTHONPATH": key[0]})
            seconds[key].append(time.perf_counter() - begin)
    doc = {"cpu": cpu(), "rounds": args.rounds, "results": []}
    log(f"CPU: {doc['cpu']}\n\n| checkout | command | wall s, median [min-max] |\n| --- | --- | --- |")
    for (checkout, name), values in seconds.items():
        row = {"checkout": checkout, "command": name, "seconds": stats(values[1:])}
        doc["results"].append(row)
        log(f"| {checkout} | {name} | {fmt(row['seconds'], digits=3)} |")
    write_results(args.output, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
