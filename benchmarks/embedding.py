"""CAM++ speaker-embedding speed (and int8/fp16 accuracy) benchmark: prints a table, writes JSON.

    python benchmarks/embedding.py                 # about 5 min on 2 cores
    python benchmarks/embedding.py --rounds 5      # quicker, noisier

Every comparison runs in one process, contenders interleaved round by round (so load from other
processes hits them alike); each row gives the median [min-max] in ms. Rows:

- one (chunk, speaker) pair at batch 1, fp32, one thread: fbank of the 10 s chunk, the frames of a
  typical mask (the median pair of the diarization reference, 373 of 998 frames), the model;
  onnxruntime (as the runtime opens it) next to the torch rebuild (export/campplus.py) on the
  same features, and the fbank alone;
- a whole 10 s utterance (998 frames), the same contenders;
- ``Embedder.embed_chunks`` on every chunk of a real recording, ms per embedded pair, with one
  worker per core (the default) and with one worker;
- levers measured against the runtime's choices: batching pairs of equal frame counts, one run
  on 2 intra-op threads instead of 2 single-threaded runs at once, graph optimisation EXTENDED
  instead of ALL;
- variants: dynamic int8 (onnxruntime's quantize_dynamic) and fp16, speed on CPU and cosine
  similarity to fp32 on all embedded pairs of the test recordings (no variant is shipped).

Audio: the diarization reference of ../shared (or $POWERSEG_SHARED): its chunks and masks, the
exact inputs the pipeline embeds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from run import fmt, interleave, log, machine, stats  # noqa: E402

SHARED = Path(os.environ.get("POWERSEG_SHARED", ROOT.parent / "shared"))
RATE, CHUNK = 16000, 160000
FILES = [("pyannote_sample", "sample"), ("ami_pyannote_debug", "dev00"),
         ("librispeech_sim_a", "sim1_00")]
TYPICAL_FRAMES = 373  # median gathered frames of the 3,398 embedded pairs of the reference


def pipeline_inputs(name: str, uri: str) -> tuple[np.ndarray, np.ndarray]:
    """Chunks (C, 160000) and the masks (C, 3, 589) the reference pipeline embedded."""
    with np.load(SHARED / "reference" / "diarization" / name / f"{uri}.npz") as data:
        binarized, clean_used = data["binarized"].astype(np.float32), data["used_clean_mask"]
    samples, _ = sf.read(str(SHARED / "audio" / name / "wav" / f"{uri}.wav"), dtype="float32")
    chunks = np.zeros((len(binarized), CHUNK), np.float32)
    for c in range(len(chunks)):
        part = samples[RATE * c:RATE * c + CHUNK]
        chunks[c, :len(part)] = part
    clean = binarized * (binarized.sum(axis=-1, keepdims=True) < 2)
    return chunks, np.where(clean_used[:, None, :], clean, binarized).transpose(0, 2, 1)


def session(path: Path, threads: int = 1, level: str = "ALL"):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f"ORT_ENABLE_{level}")
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return lambda feats: s.run(None, {name: feats})[0]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def row(times: dict[str, list[float]], per: int = 1) -> dict:
    return {name: stats(np.asarray(t) / per) for name, t in times.items()}


def print_rows(title: str, rows: dict) -> None:
    log(f"\n{title}")
    for name, s in rows.items():
        log(f"  {name:<44} {fmt(s, 1000):>24} ms")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "embedding.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    import torch

    from powerseg.export.campplus_checkpoint import load_campplus
    from powerseg.models import SPEAKER_EMBEDDING, model_path
    from powerseg.runtime import Embedder
    from powerseg.runtime.embedding.fbank import features

    torch.set_num_threads(1)  # one thread, as each onnxruntime run; 2 stall on a shared machine
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    fp32_path = model_path("campplus", SPEAKER_EMBEDDING)
    torch_model = load_campplus(SHARED / "checkpoints" / "campplus" / "campplus_cn_en_common.pt")
    onnx_run = session(fp32_path)

    def torch_run(feats: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return torch_model(torch.from_numpy(feats)).numpy()

    inputs = {uri: pipeline_inputs(name, uri) for name, uri in FILES}
    chunks, masks = inputs["sample"]
    embedder = Embedder(providers="cpu")
    found = embedder.embed_chunks(chunks, masks).num_frames
    c, s = np.unravel_index(np.abs(found - TYPICAL_FRAMES).argmin(), found.shape)
    chunk, mask = chunks[c], masks[c, s]
    keep = (mask[np.arange(998) * 589 // 998] > 0.5)
    feats = features(chunk)
    pair, whole = feats[keep][None], feats[None]
    log(f"machine load at start: {os.getloadavg()}; typical pair: chunk {c} speaker {s}, "
        f"{pair.shape[1]} frames")
    doc = {"what": "CAM++ embedding benchmark (benchmarks/embedding.py)",
           "command": " ".join(["python", "benchmarks/embedding.py", *(argv or sys.argv[1:])]),
           "machine": machine(1, "cpu"), "torch": f"{torch.__version__}, 1 thread",
           "typical_pair_frames": int(pair.shape[1])}
    r = args.rounds

    doc["pair_batch1"] = row(interleave({
        "onnx fp32 (fbank + gather + model)": lambda: onnx_run(features(chunk)[keep][None]),
        "torch rebuild (fbank + gather + model)": lambda: torch_run(features(chunk)[keep][None]),
        "onnx fp32 model only": lambda: onnx_run(pair),
        "torch model only": lambda: torch_run(pair),
        "fbank of one 10 s chunk (numpy)": lambda: features(chunk)}, r))
    print_rows(f"one pair ({pair.shape[1]} frames), batch 1, one thread [ms]", doc["pair_batch1"])

    doc["utterance_10s"] = row(interleave({
        "onnx fp32 (Embedder.embed)": lambda: embedder.embed(chunk, sample_rate=RATE),
        "torch rebuild (same fbank)": lambda: torch_run(features(chunk)[None]),
        "onnx fp32 model only": lambda: onnx_run(whole)}, r))
    print_rows("whole 10 s utterance (998 frames), batch 1, one thread [ms]", doc["utterance_10s"])

    one = Embedder(providers="cpu", threads=1)
    doc["embed_chunks"] = {}
    for uri, (ch, ms) in inputs.items():
        pairs = int((embedder.embed_chunks(ch, ms).num_frames >= 3).sum())
        times = interleave({f"{uri}: {embedder.model.workers} workers (default)":
                            lambda: embedder.embed_chunks(ch, ms),
                            f"{uri}: 1 worker": lambda: one.embed_chunks(ch, ms)}, max(3, r // 5))
        doc["embed_chunks"].update(row(times, pairs))
        doc["embed_chunks"][f"{uri}: pairs embedded / chunks"] = f"{pairs} / {len(ch)}"
    print_rows("embed_chunks, whole recording, ms per embedded pair (wall)",
               {k: v for k, v in doc["embed_chunks"].items() if isinstance(v, dict)})

    two = session(fp32_path, threads=2)
    pool = ThreadPoolExecutor(2)
    same = np.concatenate([pair, features(chunks[c + 1])[keep][None]])
    levers = {
        "2 pairs: 2 single-thread runs at once (runtime)":
            lambda: list(pool.map(onnx_run, [same[:1], same[1:]])),
        "2 pairs: one batch of 2, one thread": lambda: onnx_run(same),
        "2 pairs: one batch of 2, 2 intra-op threads": lambda: two(same),
        "2 pairs: one after the other, 2 intra-op threads": lambda: [two(same[:1]), two(same[1:])],
        "1 pair, graph optimisation ALL (runtime)": lambda: onnx_run(pair),
        "1 pair, graph optimisation EXTENDED": (lambda run: lambda: run(pair))(
            session(fp32_path, level="EXTENDED")),
    }
    doc["levers"] = row(interleave(levers, r, warmup=3))
    print_rows("levers [ms per call]", doc["levers"])

    doc["variants"] = variants(fp32_path, onnx_run, pair, inputs, r)
    log("\nvariants (CPU, one thread): ms per typical pair, cosine to fp32 over all pairs")
    for name, v in doc["variants"].items():
        log(f"  {name:<8} {fmt(v['ms'], 1000):>24} ms  size {v['mb']:.1f} MB  cosine min "
            f"{v['cosine_min']:.6f} median {v['cosine_median']:.7f} ({v['pairs']} pairs)")

    doc["wall_s"] = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=1) + "\n")
    log(f"\nwrote {args.output} ({doc['wall_s']:.0f} s)")
    return 0


def variants(fp32_path: Path, fp32_run, pair: np.ndarray, inputs: dict, rounds: int) -> dict:
    """int8 (dynamic) and fp16 copies: speed on one pair, agreement with fp32 on every pair."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from powerseg.runtime.embedding.fbank import features

    folder = Path(tempfile.mkdtemp(prefix="campplus-variants-"))
    int8, fp16 = folder / "campplus.int8.onnx", folder / "campplus.fp16.onnx"
    quantize_dynamic(str(fp32_path), str(int8), weight_type=QuantType.QInt8)
    onnx.save(convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True), str(fp16))
    runs = {"fp32": fp32_run, "int8": session(int8), "fp16": session(fp16)}
    times = interleave({name: (lambda run: lambda: run(pair))(run) for name, run in runs.items()},
                       rounds)
    gathered = []
    for chunks, masks in inputs.values():
        for c, chunk in enumerate(chunks):
            feats = features(chunk)
            for mask in masks[c]:
                keep = mask[np.arange(998) * 589 // 998] > 0.5
                if keep.sum() >= 3:
                    gathered.append(feats[keep][None])
    reference = np.concatenate([fp32_run(f) for f in gathered])
    out = {}
    for name, run in runs.items():
        cos = cosine(np.concatenate([run(f) for f in gathered]), reference)
        path = {"fp32": fp32_path, "int8": int8, "fp16": fp16}[name]
        out[name] = {"ms": stats(times[name]), "mb": path.stat().st_size / 1e6,
                     "cosine_min": float(cos.min()), "cosine_median": float(np.median(cos)),
                     "pairs": len(gathered)}
    return out


if __name__ == "__main__":
    sys.exit(main())
