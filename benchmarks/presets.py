"""Diarization error and speed of faster settings than pyannote's, on every ../shared set.

A larger step embeds and segments fewer chunks (step 2 s: half of them). What that costs in
DER is measured here against the ground truth, next to the default (pyannote's settings),
in one process, the configurations run in turn on the same files.

    python benchmarks/presets.py                       # default, step 2, step 2 + smaller clusters
    python benchmarks/presets.py --configs step=1 step=2.5

Prints a table and writes benchmarks/results/presets.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import SHARED, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "presets.json"
SETS = ("pyannote_sample", "ami_pyannote_debug", "librispeech_sim_a", "libri_conv_a")
DEFAULT_CONFIGS = ("step=1", "step=2", "step=2,min_cluster_size=6")


def parse(config: str) -> dict:
    """"step=2,min_cluster_size=6" -> {"step": 2.0, "min_cluster_size": 6}."""
    out = {}
    for part in config.split(","):
        key, value = part.split("=")
        out[key] = int(value) if key == "min_cluster_size" else float(value)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    args = parser.parse_args(argv)
    from powerseg import Diarizer
    from powerseg.evaluate import evaluate_diarization, overall

    doc = {"configs": args.configs}
    rows = []
    for config in args.configs:
        diarizer = Diarizer(providers="cpu", **parse(config))
        every, wall = [], 0.0
        row = {"config": config, "sets": {}}
        for name in SETS:
            folder = SHARED / "audio" / name
            files = sorted((folder / "wav").glob("*.wav"))
            uem = next(iter(sorted((folder / "uem").glob("*.uem"))), None)
            start = time.perf_counter()
            scores = evaluate_diarization(diarizer, files, sorted((folder / "rttm").glob("*.rttm")),
                                          uem)
            wall += time.perf_counter() - start
            row["sets"][name] = overall(scores, "diarization").error_rate
            every.extend(scores)
        total = overall(every, "diarization").error_rate
        row.update(total=total, wall_s=wall)
        rows.append(row)
        print(f"{config:32s} total DER {100 * total:6.2f} %  "
              + "  ".join(f"{n} {100 * v:.2f}" for n, v in row["sets"].items())
              + f"  wall {wall:6.1f} s", flush=True)
    base = rows[0]["wall_s"]
    for row in rows:
        row["speedup_vs_first"] = base / row["wall_s"]
    doc["rows"] = rows
    write_results(RESULTS, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
