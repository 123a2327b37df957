"""powerseg speed and accuracy benchmark: prints a table, writes JSON.

    python benchmarks/run.py                       # full run (about 20 min on 2 cores)
    python benchmarks/run.py --quick               # about 3 min: fewer repetitions, no 1 h rows
    python benchmarks/run.py --provider cuda       # onnxruntime-gpu + a GPU (torch on cuda too)
    python benchmarks/run.py --threads 2 --output benchmarks/results/latest.json

Every comparison is measured in one process, the contenders interleaved round by round,
so that load from other processes on a shared machine hits all of them alike. Rows:

- latency of one 10 s chunk at batch 1 (p50/p90/p99 after warm-up), per shipped variant and
  for the torch forward of the same model (needs the ``export`` extra) and pyannote.audio's
  ``Inference`` (reported "not installed" when it is not importable);
- throughput in ms per chunk at batch sizes 1..64;
- end-to-end ``powerseg vad`` (``powerseg.cli.main`` in-process) real-time factor on 10 min
  (and 1 h unless --quick) of tiled real speech at step 1 s and 5 s, next to the torch forward
  passes alone on the same chunks (batch 32);
- cold start (process start to written output, ``python -m powerseg vad`` on 1 s of audio) and
  peak RSS of ``powerseg vad`` on 10 min (child processes; RSS via benchmarks/memory.measure);
- accuracy each variant keeps vs fp32 (argmax agreement, max |p| difference, VAD difference);
- onnxruntime levers (graph optimisation level, threads, execution mode, arena, IO binding,
  fixed batch shape, pre-optimised graph), each against the shipped settings.

Audio: /work/shared/audio/ami_pyannote_debug/wav/*.wav (or $POWERSEG_SHARED/audio/...), tiled
into /tmp; without it, the bundled sample recording is tiled instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from accuracy import section_accuracy
from contenders import (live_stream, load_pyannote, load_torch, one_shot, onnx_model,
                         pair_parts, pyannote_status)
from e2e import section_end_to_end
from footprint import section_cold_start, section_peak_rss
from latency import section_latency
from levers import section_levers
from memory import read_mono, write_results
from throughput import section_throughput
from tiling import RATE, chunk_batches, sources, tiled
from timing import fmt, interleave, log, matmul_peak_gflops, stats

HERE = Path(__file__).resolve().parent
__all__ = ["fmt", "interleave", "log", "machine", "main", "stats", "table"]  # embedding.py uses them

VARIANTS = ("fp32", "int8", "fp16")
TARGETS = {"e2e_fp32_vs_torch": 2.0, "e2e_int8_vs_torch": 3.0, "latency_fp32_vs_torch": 0.75,
           "cold_start_s": 1.0, "peak_rss_mb": 250.0}
QUOTED = {"torch batch-1 latency (issue)": "29.5 ms", "naive ONNX export batch-1 (issue)": "41 ms",
          "fp32 arithmetic floor (issue)": "about 12 ms per chunk (2.64 GFLOP)"}


def machine(threads: int, provider: str) -> dict:
    import onnxruntime as ort

    import powerseg
    from powerseg.runtime.cpu import cpu_model

    info = {"nproc": os.cpu_count(), "cpu": cpu_model(), "threads": threads, "provider": provider,
            "python": platform.python_version(), "platform": platform.platform(),
            "numpy": np.__version__, "onnxruntime": ort.__version__,
            "onnxruntime_providers": ort.get_available_providers(),
            "powerseg": powerseg.__version__, "pyannote.audio": pyannote_status()}
    with contextlib.suppress(ImportError):
        import torch
        info["torch"] = torch.__version__
    with contextlib.suppress(OSError):
        info["loadavg_at_start"] = os.getloadavg()
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 3 min: fewer repetitions, "
                        "no 1 h rows")
    parser.add_argument("--provider", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch intra-op threads (default: --threads). On a machine shared "
                        "with other jobs, torch's OpenMP barriers stall at 2 threads (seen: 46 s "
                        "for one batch-1 chunk); 1 keeps the torch rows measurable")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()) / "powerseg-bench")
    parser.add_argument("--e2e-reps", type=int, default=None,
                        help="repetitions of each end-to-end row (default 1 quick, 3 full)")
    parser.add_argument("--merge", action="store_true", help="update the sections of an "
                        "existing --output file instead of replacing it")
    parser.add_argument("--skip", nargs="*", default=[], choices=(
        "latency", "throughput", "e2e", "cold", "rss", "accuracy", "levers"))
    args = parser.parse_args(argv)
    q = args.quick
    args.tmp.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    files, audio_source = sources()
    minutes = [10] if q else [10, 60]
    audio = {int(m * 60): tiled(m * 60, args.tmp, files) for m in minutes}
    path1s = tiled(1, args.tmp, files)
    path10 = audio[600]
    # distinct real-speech chunks (step 1 s) for latency/throughput/accuracy rows
    distinct = np.concatenate([read_mono(f) for f in files])
    chunks = np.concatenate(list(chunk_batches(distinct, RATE, 64)))
    log(f"audio: {audio_source}; {len(chunks)} distinct chunks; tiled {minutes} min in {args.tmp}")

    info = machine(args.threads, args.provider)
    info["torch_threads"] = args.torch_threads or args.threads
    log(f"machine: {info['nproc']} x {info['cpu']}, {args.threads} threads, provider "
        f"{args.provider}, onnxruntime {info['onnxruntime']}, torch {info.get('torch', '-')}, "
        f"pyannote.audio {info['pyannote.audio']}, load {info.get('loadavg_at_start')}")

    # fp16 runs only on GPUs at useful speed: on CPU it is in the accuracy rows only
    speed_variants = ["fp32", "int8"] + (["fp16"] if args.provider == "cuda" else [])
    models = {v: onnx_model(v, args.threads, args.provider) for v in VARIANTS}
    torch_fwd, torch_desc = load_torch(args.torch_threads or args.threads, args.provider)
    pyannote = load_pyannote(args.threads, args.provider)
    contenders = {f"onnx {v}": models[v] for v in speed_variants}
    if torch_fwd is not None:
        contenders["torch"] = torch_fwd
    if pyannote is not None:
        contenders["pyannote.audio"] = pyannote

    doc = {"what": "powerseg benchmark (benchmarks/run.py)", "command": " ".join(
        ["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "quick": q, "machine": info, "torch": torch_desc, "audio": audio_source,
        "targets": {}, "quoted_not_measured": QUOTED,
        "pyannote.audio": info["pyannote.audio"],
        "fp16_speed": "GPU only" if args.provider != "cuda" else "measured"}
    if args.merge and args.output.exists():
        old = json.loads(args.output.read_text())
        old.update({k: v for k, v in doc.items() if k not in ("targets",)})
        old.setdefault("commands", []).append(doc["command"])
        doc = old
    doc["errors"] = {}

    def section(name: str, key: str, fn):
        """Run one section; a failure is recorded and the others still run."""
        if name in args.skip:
            return
        try:
            doc[key] = fn()
        except Exception as error:  # noqa: BLE001 - keep the other rows
            log(f"  {name} failed: {type(error).__name__}: {error}")
            doc["errors"][name] = f"{type(error).__name__}: {error}"
        write_results(args.output, doc, quiet=True)

    log("latency, one 10 s chunk at batch 1, and a live stream's window (ms): median [min-max]")
    live = {}
    if "latency" not in args.skip and args.provider == "cpu":
        for v in ("fp32", "int8"):
            live[f"stream {v}: 1 s push, pair"] = live_stream(v, args.threads, args.provider,
                                                              distinct)
            live.update(pair_parts(v, args.threads, args.provider, distinct))
        live["stream fp32: 1 s push, full model"] = live_stream(
            "fp32", args.threads, args.provider, distinct, shared_front=False)
        live["Segmenter() on one 10 s array"] = one_shot(args.threads, args.provider, chunks[0])
    section("latency", "latency_batch1_ms",
            lambda: section_latency(contenders, chunks, 40 if q else 200, live))
    for n, s in doc.get("latency_batch1_ms", {}).items() if "latency" not in args.skip else ():
            log(f"  {n:16s} p50 {s['median']:.1f}  p90 {s['p90']:.1f}  p99 {s['p99']:.1f}  "
                f"min {s['min']:.1f}  max {s['max']:.1f}  n {s['n']}")

    log("throughput (ms per chunk): median [min-max]")
    sub = chunks[:64] if q else chunks[:128]
    batches = [1, 4, 16, 32, 64] if q else [1, 2, 4, 8, 16, 32, 64]
    section("throughput", "throughput_ms_per_chunk",
            lambda: section_throughput(contenders, sub, batches, 1 if q else 3))

    log("end to end: powerseg vad (in-process CLI) vs torch forward passes alone (batch 32)")
    if "e2e" not in args.skip:
        doc["matmul_peak"] = matmul_peak_gflops(args.threads)
        log(f"  numpy float32 matmul peak, {doc['matmul_peak']['blas_threads']}: "
            f"{doc['matmul_peak']['best_gflops']:.1f} GFLOP/s best, "
            f"{doc['matmul_peak']['median_gflops']:.1f} median (the e2e rows' ceiling)")
    e2e_audio = audio if not q else {600: path10}
    section("e2e", "end_to_end", lambda: section_end_to_end(
        e2e_audio, speed_variants, torch_fwd, [1.0, 5.0], args.e2e_reps or (1 if q else 3), args.threads,
        args.provider, args.tmp, full_model=("fp32", "int8") if args.provider == "cpu" else ()))

    log("cold start: python -m powerseg vad on 1 s of audio, process start to written output")
    section("cold", "cold_start", lambda: section_cold_start(
        path1s, ["fp32", "int8"], 3 if q else 7, args.threads, args.provider, args.tmp))

    log("peak RSS: powerseg vad on 10 min (child process, benchmarks/memory.py)")
    section("rss", "peak_rss_10min", lambda: section_peak_rss(
        path10, ["fp32", "int8"], ["on", "off"], args.threads, args.provider, 1 if q else 2))

    log("accuracy vs fp32 ONNX: argmax agreement on distinct chunks, VAD on tiled audio")
    acc_chunks = chunks[::4] if q else chunks
    vad_audio = tiled(120, args.tmp, files) if q else path10
    section("accuracy", "accuracy", lambda: section_accuracy(
        models, torch_fwd, acc_chunks, None, vad_audio, args.threads, args.provider))

    if args.provider == "cpu":
        log("levers (fp32 model, batch 32 ms/chunk and batch 1 ms; x = vs shipped settings)")
        section("levers", "levers", lambda: section_levers(chunks, args.threads, 3 if q else 12,
                                                           args.tmp, path10, not q))

    # targets
    t = doc["targets"]
    e2e = {(r["audio_s"], r["step"], r["contender"]): r for r in doc.get("end_to_end", [])}
    for v, key in (("fp32", "e2e_fp32_vs_torch"), ("int8", "e2e_int8_vs_torch")):
        row = e2e.get((600, 1.0, f"powerseg vad {v}"))
        if row and row.get("speedup_vs_torch_forward"):
            got = row["speedup_vs_torch_forward"]
            t[key] = {"target": f">= {TARGETS[key]}x", "measured": round(got, 2),
                      "met": bool(got >= TARGETS[key])}
    lat = doc.get("latency_batch1_ms", {})
    if "stream fp32: 1 s push, pair" in lat and "torch" in lat:
        got = lat["stream fp32: 1 s push, pair"]["median"] / lat["torch"]["median"]
        t["latency_fp32_vs_torch"] = {
            "target": f"<= {TARGETS['latency_fp32_vs_torch']}x torch's batch-1",
            "measured": round(got, 2), "met": bool(got <= TARGETS["latency_fp32_vs_torch"])}
    cold = doc.get("cold_start", {}).get("fp32")
    if cold:
        got = cold["wall_s"]["median"]
        t["cold_start_s"] = {"target": "<= 1.0 s", "measured": round(got, 3), "met": bool(got <= 1.0)}
    rss = [r for r in doc.get("peak_rss_10min", []) if r["variant"] == "fp32" and r["arena"] == "on"]
    if rss:
        got = rss[0]["peak_rss_mb"]["median"]
        t["peak_rss_mb"] = {"target": "<= 250 MB", "measured": round(got, 1), "met": bool(got <= 250)}
    acc = doc.get("accuracy", {}).get("int8")
    if acc:
        t["int8_keeps_99pct"] = {"target": ">= 99 % argmax agreement",
                                 "measured": round(100 * acc["argmax_agreement"], 2),
                                 "met": bool(acc["argmax_agreement"] >= 0.99)}
    doc["elapsed_s"] = round(time.perf_counter() - started, 1)
    with contextlib.suppress(OSError):
        doc["machine"]["loadavg_at_end"] = os.getloadavg()

    log("\n" + table(doc))
    log(f"{doc['elapsed_s']:.0f} s in all")
    write_results(args.output, doc)
    return 0


def gflops(row: dict) -> str:
    """``, N GFLOP/s`` for an e2e row (older JSON files lack it)."""
    got = row.get("effective_gflops")
    return f", {got:.1f} GFLOP/s" if got else ""


def table(doc: dict) -> str:
    """The summary table (markdown), as pasted into benchmarks/README.md."""
    lines = ["| row | " + " | ".join(["onnx fp32", "onnx int8", "onnx fp16", "torch",
                                         "pyannote.audio"]) + " |",
             "| --- | --- | --- | --- | --- | --- |"]
    pa = doc["pyannote.audio"]
    na = "not installed" if pa == "not installed" else "-"
    gpu = doc.get("fp16_speed") == "GPU only"

    def cells(get, speed=True):
        out = []
        for key in ("onnx fp32", "onnx int8", "onnx fp16", "torch", "pyannote.audio"):
            if key == "onnx fp16" and gpu and speed:
                out.append("GPU only")
            elif key == "pyannote.audio" and pa == "not installed":
                out.append(na)
            else:
                out.append(get(key))
        return out

    lat = doc.get("latency_batch1_ms", {})
    if lat:
        for p in ("median", "p90", "p99"):
            lines.append(f"| batch-1 latency {p if p != 'median' else 'p50'} (ms) | " + " | ".join(
                cells(lambda k: f"{lat[k][p]:.1f}" if k in lat else "-")) + " |")

        def live(k, name):
            v = k.split()[-1] if k.startswith("onnx") else None
            return fmt(lat[name.format(v)]) if v and name.format(v) in lat else "-"
        for label, name in (("live stream, 1 s push, pair (ms)", "stream {}: 1 s push, pair"),
                            ("live stream, 1 s push, full model (ms)",
                             "stream {}: 1 s push, full model"),
                            ("pair: tail alone, one window (ms)", "{} pair: tail alone, one window"),
                            ("pair: front, 1 s of audio (ms)", "{} pair: front, 1 s of audio")):
            lines.append(f"| {label} | " + " | ".join(
                cells(lambda k, name=name: live(k, name))) + " |")
    thr = doc.get("throughput_ms_per_chunk", {})
    if thr:
        for b in next(iter(thr.values())):
            lines.append(f"| ms/chunk at batch {b} | " + " | ".join(cells(
                lambda k: fmt(thr[k][b]) if k in thr else "-")) + " |")
    e2e: dict[str, dict] = {}
    mm = doc.get("matmul_peak")
    peak = f"{mm['best_gflops']:.0f}" if mm else "unmeasured"
    for row in doc.get("end_to_end", []):
        full = row["contender"].endswith("full model")
        label = (f"e2e vad {row['audio_s'] / 60:g} min step {row['step']:g} s"
                 f"{', full model (--no-shared-front)' if full else ''}: wall s (RTF), "
                 f"GFLOP/s of {peak} matmul peak "
                 f"[{row['chunks']} chunks]")
        vals = e2e.setdefault(label, {})
        wall, rtf = row["wall_s"]["median"], row["rtf"]["median"]
        if row["contender"] == "torch forward only":
            vals["torch"] = f"{wall:.2f} ({rtf:.4f}) forward only" + gflops(row)
        else:
            speedup = row.get("speedup_vs_torch_forward")
            vals["onnx " + row["contender"].split()[2]] = f"{wall:.2f} ({rtf:.4f})" + gflops(row) + (
                f", x{speedup:.2f} vs torch" if speedup else "")
    for label, vals in e2e.items():
        lines.append(f"| {label} | " + " | ".join(cells(lambda k: vals.get(k, "-"))) + " |")
    cold = doc.get("cold_start", {})
    if cold:
        lines.append("| cold `powerseg vad` 1 s audio (s) | " + " | ".join(cells(
            lambda k: fmt(cold[k.split()[-1]]["wall_s"], digits=2)
            if k.startswith("onnx") and k.split()[-1] in cold else "-")) + " |")
    rss = doc.get("peak_rss_10min", [])
    if rss:
        def rss_cell(k):
            got = [r for r in rss if k == f"onnx {r['variant']}"]
            return ", ".join(f"{r['peak_rss_mb']['median']:.0f} (arena {r['arena']})"
                             for r in got) or "-"
        lines.append("| peak RSS vad 10 min (MB) | " + " | ".join(cells(rss_cell)) + " |")
    acc = doc.get("accuracy", {})
    if acc:
        def acc_cell(k):
            name = "torch" if k == "torch" else k.split()[-1]
            if name not in acc:
                return "-"
            r = acc[name]
            s = f"{100 * r['argmax_agreement']:.2f} % argmax, max dp {r['max_abs_prob_diff']:.1e}"
            if "vad_error_vs_fp32" in r:
                s += f", VAD diff {100 * r['vad_error_vs_fp32']:.2f} %"
            return s
        lines.append("| accuracy vs onnx fp32 | " + " | ".join(cells(acc_cell, speed=False))
                     + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
