"""Speed and memory of ``powerseg diarize`` on long multi-speaker recordings.

Recordings are the libri_conv_a conversations of ../shared tiled to 10 min, 1 h, 2 h. Each
run is a fresh child process (peak RSS from ``os.wait4``) that reports the wall time of
each stage: segmentation (model runs, decoding, overlap-add), embeddings (fbank + CAM++),
clustering and reconstruction. Side by side, in the same run on the same 10 min:

- ``torch``: the same pipeline with both models swapped for their torch rebuilds (PyanNet and
  CAM++ from the checkpoints, ``--torch-threads`` intra-op threads): the computation pyannote.audio's
  ``SpeakerDiarization`` runs, without its Python overheads, so a lower bound of its time;
- ``pyannote.audio``'s own pipeline when it is importable (it is not a dependency).

    python benchmarks/diarization.py                  # 10 min, 1 h, 2 h; torch on 10 min
    python benchmarks/diarization.py --minutes 10 --torch-minutes 0

Prints a table and writes benchmarks/results/diarization.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import SHARED, write_results, write_tiled  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "diarization.json"
SEGMENTATION_CHECKPOINT = SHARED / "checkpoints" / "segmentation-3.0" / "pytorch_model.bin"
CAMPPLUS_CHECKPOINT = SHARED / "checkpoints" / "campplus" / "campplus_cn_en_common.pt"

# The child: one Diarizer run with its stages timed (instance attributes wrapped, nothing in
# the package changed), optionally on the torch rebuilds of both models (stand-ins of the
# runtime/contracts.py Protocols, given to Diarizer.with_models).
CHILD = r"""
import json, sys, time
import numpy as np
path, backend = sys.argv[1], sys.argv[2]
start = time.perf_counter()
from powerseg import Diarizer
from powerseg.runtime.diarization.diarizer import DiarizerOptions
diarizer = Diarizer(providers="cpu")
if backend == "torch":
    import torch
    torch.set_num_threads(int(sys.argv[5]))
    from powerseg.export import load_checkpoint
    from powerseg.export.campplus_checkpoint import load_campplus

    from powerseg.runtime.windows import SampleWindows

    class TorchSegmentation:
        def __init__(self, model, onnx):
            self.model, self.spec, self.provider, self.workers = model, onnx.spec, "torch", 1
            self.front = None
        def windows(self, step_samples):
            return SampleWindows("waveforms", self.spec.window_samples, step_samples)
        def accepts_step(self, step_samples):
            return True
        def infer_async(self, batch):
            from concurrent.futures import Future
            done = Future()
            with torch.inference_mode():
                done.set_result(self.model(torch.from_numpy(batch["waveforms"])).numpy())
            return done
        infer_lone = infer_async

    class TorchEmbedding:
        def __init__(self, model, onnx):
            self.model, self.spec, self.provider = model, onnx.spec, "torch"
        def __call__(self, feats):
            with torch.inference_mode():
                return self.model(torch.from_numpy(np.ascontiguousarray(feats))).numpy()
        def map(self, function, items):
            return [function(item) for item in items]

    diarizer = Diarizer.with_models(
        TorchSegmentation(load_checkpoint(sys.argv[3]), diarizer.segmenter.model),
        TorchEmbedding(load_campplus(sys.argv[4]).eval(), diarizer.embedder.model),
        DiarizerOptions(segmentation="torch", embedding="torch", providers="cpu"))
loaded = time.perf_counter()
spent = {"embeddings": 0.0}
embed_chunks = diarizer.embedder.embed_chunks
def timed_embed(*args, **kwargs):
    t = time.perf_counter()
    try:
        return embed_chunks(*args, **kwargs)
    finally:
        spent["embeddings"] += time.perf_counter() - t
diarizer.embedder.embed_chunks = timed_embed
segment = diarizer.segmenter.__call__
marks = {}
def timed_segment(*args, **kwargs):
    try:
        return segment(*args, **kwargs)
    finally:
        marks["segmented"] = time.perf_counter()
diarizer.segmenter = type("Timed", (), {"__call__": staticmethod(timed_segment),
                                        "spec": diarizer.segmenter.spec,
                                        "model": diarizer.segmenter.model,
                                        "framing": diarizer.segmenter.framing})()
t = time.perf_counter()
result = diarizer(path)
done = time.perf_counter()
segmentation = marks["segmented"] - t - spent["embeddings"]
kept = 0 if result.clusters is None else len(result.clusters.train_chunks)
print(json.dumps({"load_s": loaded - start, "wall_s": done - t, "duration_s": result.duration,
                  "segmentation_s": segmentation, "embeddings_s": spent["embeddings"],
                  "clustering_s": done - marks["segmented"], "chunks": len(result.embeddings),
                  "pairs_embedded": int(np.isfinite(result.embeddings).all(-1).sum()),
                  "kept_pairs": kept, "speakers": len(result.speakers),
                  "turns": [[t.start, t.end, t.speaker] for t in result.turns()]}))
"""


def run_child(path: Path, backend: str, torch_threads: int = 1) -> dict:
    args = [sys.executable, "-c", CHILD, str(path), backend, str(SEGMENTATION_CHECKPOINT),
            str(CAMPPLUS_CHECKPOINT), str(torch_threads)]
    # output to files, not pipes: a long recording's turns fill a pipe, and the child then
    # blocks on it while os.wait4 waits for the child (2 h hung so)
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(args, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read().decode(), stderr.read().decode()
    if status != 0:
        sys.exit(f"{backend} on {path.name} failed:\n{err[-2000:]}")
    doc = json.loads(out.strip().splitlines()[-1])
    doc["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux: KiB
    doc["rtf"] = doc["wall_s"] / doc["duration_s"]
    return doc


def pyannote_status() -> str:
    try:
        import pyannote.audio  # noqa: F401
    except Exception as error:  # not installed, or torch/torchaudio mismatch
        return f"not importable ({type(error).__name__}: {str(error)[:80]})"
    return "importable (its pipeline needs a CAM++ wrapper; see shared/reference/diarization)"


def der(reference: list, hypothesis: list) -> float:
    from powerseg.runtime.binarize import Region
    from powerseg.runtime.metrics import diarization_error

    ref = [Region(s, e, k) for s, e, k in reference]
    hyp = [Region(s, e, k) for s, e, k in hypothesis]
    return diarization_error(ref, hyp).error_rate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60, 120])
    parser.add_argument("--torch-minutes", type=float, default=10,
                        help="duration of the torch side-by-side run (0: none)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per duration")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads (1, as the pyannote reference ran; 2 threads "
                        "stall under load on this machine)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the JSON to write")
    args = parser.parse_args(argv)
    sources = sorted((SHARED / "audio" / "libri_conv_a" / "wav").glob("*.wav"))
    if not sources:
        sys.exit(f"no libri_conv_a audio under {SHARED / 'audio'}")
    folder = Path(tempfile.gettempdir())
    from powerseg.runtime.cpu import cpu_model

    doc = {"machine": {"cpu": cpu_model(), "nproc": os.cpu_count(),
                       "loadavg_at_start": os.getloadavg()},
           "torch_threads": args.torch_threads,
           "pyannote.audio": pyannote_status(), "runs": []}
    wanted = sorted(set(args.minutes) | ({args.torch_minutes} if args.torch_minutes else set()))
    for minutes in wanted:
        path = write_tiled(folder / f"powerseg-conv-{minutes:g}min.wav", minutes * 60, sources)
        backends = (["powerseg"] if minutes in args.minutes else []) + \
            (["torch"] if minutes == args.torch_minutes else [])
        for backend in backends:
            for repeat in range(args.repeats if backend == "powerseg" else 1):
                run = {"backend": backend, "minutes": minutes,
                       **run_child(path, backend, args.torch_threads)}
                doc["runs"].append(run)
                print(f"{backend:>8} {minutes:6g} min  wall {run['wall_s']:7.1f} s  "
                      f"RTF {run['rtf']:.4f}  seg {run['segmentation_s']:6.1f}  "
                      f"emb {run['embeddings_s']:6.1f}  clu {run['clustering_s']:5.1f}  "
                      f"RSS {run['peak_rss_mib']:6.0f} MiB", flush=True)
    if args.torch_minutes:
        same = [r for r in doc["runs"] if r["minutes"] == args.torch_minutes]
        ours = [r for r in same if r["backend"] == "powerseg"]
        theirs = [r for r in same if r["backend"] == "torch"]
        if ours and theirs:
            doc["speedup_vs_torch"] = theirs[0]["wall_s"] / min(r["wall_s"] for r in ours)
            doc["der_powerseg_vs_torch"] = der(theirs[0]["turns"], ours[0]["turns"])
            print(f"powerseg vs torch pipeline, {args.torch_minutes:g} min: "
                  f"{doc['speedup_vs_torch']:.2f}x faster, DER between them "
                  f"{100 * doc['der_powerseg_vs_torch']:.3f} %")
    for run in doc["runs"]:
        del run["turns"]
    write_results(args.output, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
