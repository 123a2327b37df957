"""int8 against fp32 on this CPU, and what ``--model auto`` picks here.

Fresh `powerseg vad` processes on tiled shared audio, the variants interleaved round by round
(wall seconds; medians and spread), then the choice ``auto`` makes on this machine (measured
anew into a temporary cache, so the cost of that first measurement is timed too).

    python benchmarks/auto_model.py                  # 10 min, 3 rounds
    python benchmarks/auto_model.py --minutes 2 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live import cpu  # noqa: E402
from memory import ROOT, tiled, write_results  # noqa: E402
from timing import stats  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "auto_model.json"
VARIANTS = ("fp32", "int8")


def vad_seconds(path: Path, variant: str, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "powerseg", "vad", str(path), "--model", variant],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    path = tiled(args.minutes, args.tmp)
    print(f"CPU: {cpu()}")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "POWERSEG_CACHE_DIR": cache}
        walls: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for r in range(args.rounds):
            for variant in VARIANTS[r % 2:] + VARIANTS[:r % 2]:
                walls[variant].append(vad_seconds(path, variant, env))
        start = time.perf_counter()
        from powerseg.runtime.segmentation.auto_model import choose_variant

        os.environ["POWERSEG_CACHE_DIR"] = cache
        choice = choose_variant("cpu")
        first_use = time.perf_counter() - start
    ratio = [f / i for f, i in zip(walls["fp32"], walls["int8"])]
    doc = {"cpu": cpu(), "minutes": args.minutes, "rounds": args.rounds,
           "vad_wall_s": {v: stats(w) for v, w in walls.items()},
           "fp32_over_int8": stats(ratio),
           "auto": {"variant": choice.variant, "sample_seconds": choice.seconds,
                    "first_use_s": first_use}}
    print(f"\n`powerseg vad` on {args.minutes:g} min, {args.rounds} interleaved rounds: " +
          ", ".join(f"{v} {doc['vad_wall_s'][v]['median']:.2f} s" for v in VARIANTS) +
          f"; int8 is x{doc['fp32_over_int8']['median']:.2f} fp32's speed")
    print(f"--model auto here: {choice.describe()}; first use (measuring) took {first_use:.2f} s")
    write_results(args.output, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
