"""Diarization error and speed of the presets (and any settings), on every ../shared set.

A larger step segments and embeds fewer chunks; what that costs in DER is measured here
against the ground truth (collar 0, overlap scored, UEM), next to the default (pyannote's
settings). One process, every configuration loaded first, then the files in turn with every
configuration run on each file before the next (interleaved, so a change of load on a shared
machine falls on all of them alike); wall time is the sum over the files.

    python benchmarks/presets.py                          # pyannote, fast, fastest
    python benchmarks/presets.py --configs pyannote step=2,min_cluster_size=6

A configuration is a preset name or ``key=value,...`` options (step, min_cluster_size,
threshold). Prints a table (the README's) and writes benchmarks/results/presets.json.
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


def options_of(config: str):
    """A preset name, or "step=2,min_cluster_size=6" -> its DiarizerOptions."""
    from powerseg import DiarizerOptions
    from powerseg.runtime.diarization.presets import PRESETS

    if config in PRESETS:
        return DiarizerOptions.preset(config, providers="cpu")
    values = {}
    for part in config.split(","):
        key, value = part.split("=")
        values[key] = int(value) if key == "min_cluster_size" else float(value)
    return DiarizerOptions(providers="cpu", **values)


def main(argv=None) -> int:
    from powerseg.runtime.diarization.presets import PRESETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(PRESETS))
    args = parser.parse_args(argv)
    from powerseg import Diarizer
    from powerseg.evaluate import evaluate_diarization, overall

    diarizers = {config: Diarizer(options=options_of(config)) for config in args.configs}
    scores = {config: {name: [] for name in SETS} for config in args.configs}
    wall = dict.fromkeys(args.configs, 0.0)
    for name in SETS:
        folder = SHARED / "audio" / name
        references = sorted((folder / "rttm").glob("*.rttm"))
        uem = next(iter(sorted((folder / "uem").glob("*.uem"))), None)
        for wav in sorted((folder / "wav").glob("*.wav")):
            for config, diarizer in diarizers.items():
                start = time.perf_counter()
                scores[config][name] += evaluate_diarization(diarizer, [wav], references, uem)
                wall[config] += time.perf_counter() - start
    rows = []
    for config in args.configs:
        options = diarizers[config].options
        every = [s for name in SETS for s in scores[config][name]]
        rows.append({"config": config, "step": options.step,
                     "min_cluster_size": options.min_cluster_size,
                     "threshold": options.clustering_threshold,
                     "sets": {n: overall(scores[config][n], "diarization").error_rate
                              for n in SETS},
                     "total": overall(every, "diarization").error_rate,
                     "wall_s": wall[config], "speedup_vs_first": wall[args.configs[0]] /
                     wall[config]})
    print("| settings | " + " | ".join(SETS) + " | all | wall |")
    print("| --- " * (len(SETS) + 3) + "|")
    for row in rows:
        print(f"| {row['config']} (step {row['step']:g} s, min_cluster_size "
              f"{row['min_cluster_size']}) | "
              + " | ".join(f"{100 * row['sets'][n]:.2f} %" for n in SETS)
              + f" | {100 * row['total']:.2f} % | {row['wall_s']:.1f} s "
              f"({row['speedup_vs_first']:.2f}x) |")
    write_results(RESULTS, {"configs": args.configs, "interleaved": "file by file",
                            "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
