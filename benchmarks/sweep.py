"""Clustering settings against DER, the expensive stages computed once per step.

95 % of diarization time is segmentation + embeddings; clustering and reconstruction are pure
functions of their arrays. So each shared file's embeddings and binarized segmentation are
cached once per step (npz in ``--cache``, with the time they took), and the sweep re-clusters
the cache for every (min_cluster_size, threshold) setting in seconds. ``min_cluster_size`` is
given absolute or by a rule relative to the number of embeddings (``min_size``).

    python benchmarks/sweep.py cache --steps 1 2 3 4 5
    python benchmarks/sweep.py sweep --steps 1 2 3 4 5 --sizes 12 6 4 3 2 c12 f0.01 s8 --thresholds 0.86

Prints one DER line per setting (pooled over the shared sets and per set) and writes
benchmarks/results/sweep.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import SHARED, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "sweep.json"
SETS = ("pyannote_sample", "ami_pyannote_debug", "librispeech_sim_a", "libri_conv_a")


def recordings() -> list[tuple[str, Path]]:
    return [(name, wav) for name in SETS
            for wav in sorted((SHARED / "audio" / name / "wav").glob("*.wav"))]


def cache_path(cache: Path, name: str, wav: Path, step: float) -> Path:
    return cache / f"{name}-{wav.stem}-step{step:g}.npz"


def fill_cache(cache: Path, steps: list[float]) -> None:
    """Diarize every shared file once per step; keep what clustering needs, and the time."""
    from powerseg import Diarizer

    cache.mkdir(parents=True, exist_ok=True)
    for step in steps:
        diarizer = Diarizer(providers="cpu", step=step)
        for name, wav in recordings():
            out = cache_path(cache, name, wav, step)
            if out.exists():
                continue
            start = time.perf_counter()
            result = diarizer(wav)
            seconds = time.perf_counter() - start
            np.savez(out.with_suffix(".partial.npz"), embeddings=result.embeddings,
                     binarized=result.segmentation.activations, duration=result.duration,
                     seconds=seconds)
            out.with_suffix(".partial.npz").rename(out)
            print(f"step {step:g} {name}/{wav.stem}: {seconds:.1f} s", flush=True)


def turns_of(embeddings: np.ndarray, binarized: np.ndarray, step: float, threshold: float,
             min_cluster_size: int) -> list:
    """The Diarizer's stages after the embeddings (no speaker bounds), on cached arrays."""
    from powerseg.runtime.binarize import Region
    from powerseg.runtime.diarization.clustering import cluster
    from powerseg.runtime.framing import Framing
    from powerseg.runtime.segmentation.model import SegmentationModel
    from powerseg.runtime.diarization.reconstruct import column_turns, reconstruct, speaker_count

    framing = Framing(SegmentationModel("fp32", providers="cpu").spec, step)
    count = speaker_count(binarized, framing)
    if count.max(initial=0) == 0:
        return []
    clusters = cluster(embeddings, binarized, threshold, min_cluster_size)
    discrete = reconstruct(binarized, clusters.hard, count, framing)
    return [Region(s, e, str(c)) for s, e, c in column_turns(discrete, framing)]


def min_size(setting: str, kept: int, duration: float, step: float) -> int:
    """A min_cluster_size rule: ``12`` absolute; ``c12`` 12 chunks at 1 s, scaled to the chunk
    rate (round(12 / step)); ``f0.01`` a fraction of the kept embeddings; ``s8`` the kept
    embeddings of 8 s of this recording (8 x kept / duration). At least 1."""
    kind, value = setting[0], setting[1:]
    if kind == "c":
        return max(1, round(float(value) / step))
    if kind == "f":
        return max(1, round(float(value) * kept))
    if kind == "s":
        return max(1, round(float(value) * kept / duration))
    return int(setting)


def sweep(cache: Path, steps: list[float], sizes: list[str], thresholds: list[float]) -> dict:
    from powerseg.evaluate import Score, overall
    from powerseg.runtime.diarization.clustering import training_pairs
    from powerseg.runtime.metrics import diarization_error, read_rttm, read_uem

    truth, scopes = {}, {}
    for name in SETS:
        folder = SHARED / "audio" / name
        for rttm in (folder / "rttm").glob("*.rttm"):
            truth.update(read_rttm(rttm))
        for uem in (folder / "uem").glob("*.uem"):
            scopes.update(read_uem(uem))
    rows = []
    for step in steps:
        files = []
        for name, wav in recordings():
            with np.load(cache_path(cache, name, wav, step)) as data:
                files.append((name, wav.stem, dict(data)))
        seconds = sum(float(f["seconds"]) for _, _, f in files)
        for threshold in thresholds:
            for setting in sizes:
                scores: dict[str, list] = {name: [] for name in SETS}
                for name, uri, f in files:
                    binarized = f["binarized"].astype(np.float32)
                    kept = len(training_pairs(f["embeddings"], binarized)[0])
                    size = min_size(setting, kept, float(f["duration"]), step)
                    hyp = turns_of(f["embeddings"], binarized, step, threshold, size)
                    d = diarization_error(truth[uri], hyp,
                                          scopes.get(uri) or [(0.0, float(f["duration"]))])
                    scores[name].append(Score(uri, "diarization", d.reference, d.false_alarm,
                                              d.missed, d.confusion))
                every = [s for name in SETS for s in scores[name]]
                row = {"step": step, "threshold": threshold, "min_cluster_size": setting,
                       "der": overall(every, "diarization").error_rate,
                       "sets": {name: overall(scores[name], "diarization").error_rate
                                for name in SETS},
                       "seg_emb_seconds": seconds}
                rows.append(row)
                print(f"step {step:g} thr {threshold:.3f} size {setting:>6}: DER "
                      f"{100 * row['der']:6.2f} %  "
                      + "  ".join(f"{100 * v:6.2f}" for v in row["sets"].values())
                      + f"  ({seconds:.0f} s to segment + embed)", flush=True)
    return {"rows": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("cache", "sweep"))
    parser.add_argument("--steps", type=float, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--sizes", nargs="+", default=["12", "6", "4", "3", "2", "1"])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.86])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/powerseg-sweep"))
    args = parser.parse_args(argv)
    if args.what == "cache":
        fill_cache(args.cache, args.steps)
    else:
        write_results(RESULTS, sweep(args.cache, args.steps, args.sizes, args.thresholds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
