"""Peak memory and time of the clustering stage on long recordings, today's path against scipy's.

What grows with a recording in diarization is clustering: its linkage over the N kept
embeddings (N ~ 1.5 per second of conversation). Diarizing 10 h takes about an hour of CPU,
so the clustering stage is measured alone here, on the stages of a real run tiled to each
length: pyannote's embeddings and binarized segmentation of the libri_conv_a conversations
(../shared/reference/diarization), repeated chunk by chunk, each copy's embeddings moved by
a little Gaussian noise (0.5 % of their norm) so that no two are equal, as in a real recording.

Each (length, path) runs in a fresh child process; its peak RSS comes from ``os.wait4`` and
includes the input arrays (embeddings float32, binarized float32 as the Diarizer passes them),
reported apart. Paths: ``powerseg`` (runtime/diarization/clustering.py as it is) and ``scipy`` (the same
stage with scipy's ``linkage`` and the whole-array float64 computations, as before bounded
memory). Where both run, their hard clusters are compared: equal means the same RTTM.

    python benchmarks/clustering_memory.py                       # 10 min .. 10 h, scipy up to 4 h
    python benchmarks/clustering_memory.py --minutes 10 60 --scipy-minutes 60

Prints a table and writes benchmarks/results/clustering.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import SHARED, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "clustering.json"
SOURCE = SHARED / "reference" / "diarization" / "libri_conv_a"
NOISE = 0.005

CHILD = r"""
import json, resource, sys, time
import numpy as np
minutes, path, hard_out = float(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path.insert(0, sys.argv[4])
from clustering_memory import tiled_stages
embeddings, binarized = tiled_stages(minutes)
from powerseg.runtime.diarization import clustering
if path == "scipy":
    from scipy.cluster.hierarchy import linkage
    clustering.centroid_linkage = lambda unit, budget: linkage(unit, "centroid", "euclidean")
    clustering.BLOCK_CHUNKS = clustering.BLOCK_ROWS = 1 << 40  # whole arrays at once
inputs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
result = clustering.cluster(embeddings, binarized, 0.86, 12)
seconds = time.perf_counter() - start
np.save(hard_out, result.hard)
print(json.dumps({"seconds": seconds, "inputs_peak_mib": inputs, "chunks": len(embeddings),
                  "kept": len(result.train_chunks), "clusters": int(result.hard.max()) + 1}))
"""


def tiled_stages(minutes: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings float32, binarized float32) of ``minutes`` of chunks (one per second) tiled
    from the libri_conv_a conversations, each copy's embeddings moved by noise."""
    parts = []
    for npz in sorted(SOURCE.glob("*.npz")):
        with np.load(npz) as data:
            parts.append((data["embeddings"], data["binarized"]))
    per_round = sum(len(e) for e, _ in parts)
    chunks = int(round(minutes * 60))
    rng = np.random.default_rng(seed)
    embeddings = np.empty((chunks, *parts[0][0].shape[1:]), np.float32)
    binarized = np.empty((chunks, *parts[0][1].shape[1:]), np.float32)
    at = 0
    for round_ in range(chunks // per_round + 1):
        for e, b in parts:
            take = min(len(e), chunks - at)
            if take <= 0:
                break
            moved = e[:take]
            if round_:  # the first round is the real run itself
                norm = np.linalg.norm(moved, axis=-1, keepdims=True)
                moved = moved + NOISE * norm / np.sqrt(e.shape[-1]) * \
                    rng.standard_normal(moved.shape).astype(np.float32)
            embeddings[at:at + take] = moved
            binarized[at:at + take] = b[:take]
            at += take
    return embeddings, binarized


def run(minutes: float, path: str, folder: Path) -> dict:
    hard = folder / f"hard-{minutes:g}-{path}.npy"
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(minutes), path, str(hard),
                                  str(Path(__file__).resolve().parent)], stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        out.seek(0)
        err.seek(0)
        if status != 0:
            return {"minutes": minutes, "path": path,
                    "failed": err.read().decode()[-400:].strip()}
        doc = json.loads(out.read().decode().strip().splitlines()[-1])
    return {"minutes": minutes, "path": path, "peak_rss_mib": usage.ru_maxrss / 1024, **doc}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60, 120, 240, 600])
    parser.add_argument("--scipy-minutes", type=float, nargs="*", default=[10, 60, 120, 240],
                        help="lengths also run on scipy's path (its N^2 memory: 4 h ~ 4 GiB)")
    args = parser.parse_args(argv)
    if not SOURCE.is_dir():
        sys.exit(f"no reference stages under {SOURCE}")
    doc = {"what": __doc__.splitlines()[0], "machine": {"nproc": os.cpu_count(),
           "loadavg_at_start": os.getloadavg()}, "runs": []}
    print(f"{'audio':>7} {'path':8} {'chunks':>6} {'kept':>6} {'seconds':>8} {'inputs MiB':>10} "
          f"{'peak MiB':>9}  same hard clusters as scipy", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for minutes in args.minutes:
            paths = ["powerseg"] + (["scipy"] if minutes in args.scipy_minutes else [])
            runs = [run(minutes, path, Path(folder)) for path in paths]
            if len(runs) == 2 and all("failed" not in r for r in runs):
                same = np.array_equal(*(np.load(Path(folder) / f"hard-{minutes:g}-{p}.npy")
                                        for p in paths))
                runs[0]["same_as_scipy"] = bool(same)
            for r in runs:
                doc["runs"].append(r)
                if "failed" in r:
                    print(f"{minutes:5g} m {r['path']:8} failed: {r['failed']}", flush=True)
                    continue
                print(f"{minutes:5g} m {r['path']:8} {r['chunks']:6d} {r['kept']:6d} "
                      f"{r['seconds']:8.1f} {r['inputs_peak_mib']:10.0f} "
                      f"{r['peak_rss_mib']:9.0f}  {r.get('same_as_scipy', '')}", flush=True)
    write_results(RESULTS, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
