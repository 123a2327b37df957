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
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from memory import read_mono, write_tiled  # benchmarks/ is on sys.path when run as a script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SHARED = Path(os.environ.get("POWERSEG_SHARED", ROOT.parent / "shared"))
RATE = 16000
WINDOW = 160000
VARIANTS = ("fp32", "int8", "fp16")
TARGETS = {"e2e_fp32_vs_torch": 2.0, "e2e_int8_vs_torch": 3.0, "latency_fp32_ms": 20.0,
           "cold_start_s": 1.0, "peak_rss_mb": 250.0}
QUOTED = {"torch batch-1 latency (issue)": "29.5 ms", "naive ONNX export batch-1 (issue)": "41 ms",
          "fp32 arithmetic floor (issue)": "about 12 ms per chunk (2.64 GFLOP)"}


# ----------------------------------------------------------------------------- helpers

def stats(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return {"n": 0}
    return {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)),
            "p99": float(np.percentile(v, 99)), "min": float(v.min()), "max": float(v.max()),
            "n": int(len(v))}


def fmt(s: dict | None, scale: float = 1.0, digits: int = 1) -> str:
    if not s or not s.get("n"):
        return "-"
    return (f"{s['median'] * scale:.{digits}f} [{s['min'] * scale:.{digits}f}-"
            f"{s['max'] * scale:.{digits}f}]")


def log(*parts) -> None:
    print(*parts, flush=True)


def sources() -> tuple[list[Path], str]:
    wavs = sorted((SHARED / "audio" / "ami_pyannote_debug" / "wav").glob("*.wav"))
    if wavs:
        seconds = sum(sf.info(str(w)).duration for w in wavs)
        return wavs, (f"shared/audio/ami_pyannote_debug/wav ({len(wavs)} AMI excerpts, "
                      f"{seconds:.0f} s)")
    from powerseg.samples import sample_path
    return [sample_path()], "bundled sample (30 s, pyannote sample.wav)"


def tiled(seconds: float, folder: Path, files: list[Path]) -> Path:
    """Recordings back to back to ``seconds``, float32 WAV, cached in ``folder``."""
    return write_tiled(folder / f"tiled-{seconds:g}s-{files[0].stem}.wav", seconds, files)


def chunk_batches(signal: np.ndarray, step: int, batch: int):
    """pyannote's windows of ``signal`` (last one zero-padded) in batches, without holding all."""
    full = (len(signal) - WINDOW) // step + 1 if len(signal) >= WINDOW else 0
    has_last = len(signal) < WINDOW or (len(signal) - WINDOW) % step > 0
    starts = [i * step for i in range(full + has_last)]
    for i in range(0, len(starts), batch):
        out = np.zeros((len(starts[i:i + batch]), WINDOW), np.float32)
        for j, s in enumerate(starts[i:i + batch]):
            part = signal[s:s + WINDOW]
            out[j, :len(part)] = part
        yield out


def num_chunks(samples: int, step: int) -> int:
    full = (samples - WINDOW) // step + 1 if samples >= WINDOW else 0
    return full + (samples < WINDOW or (samples - WINDOW) % step > 0)


def interleave(contenders: dict, rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Call each contender once per round, in rotating order; seconds per call."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - t)
    return times


# ----------------------------------------------------------------------------- contenders

def load_torch(threads: int, provider: str):
    try:
        import torch
        from powerseg.export import load_checkpoint
    except ImportError as error:
        return None, f"not installed ({error.name})"
    ckpt = SHARED / "checkpoints" / "segmentation-3.0" / "pytorch_model.bin"
    if not ckpt.is_file():
        return None, f"no checkpoint at {ckpt}"
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    model = load_checkpoint(ckpt).eval()
    device = "cuda" if provider == "cuda" and torch.cuda.is_available() else "cpu"
    model = model.to(device)

    def forward(windows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(windows[:, None, :]).to(device)
            return model(x).cpu().numpy()
    return forward, f"torch {torch.__version__} ({device}, {threads} threads)"


def pyannote_status() -> str:
    try:
        import pyannote.audio  # noqa: F401
    except ImportError:
        return "not installed"
    return f"installed ({pyannote.audio.__version__})"


def load_pyannote(threads: int, provider: str):
    """pyannote.audio's Inference on the same checkpoint, as a chunk-batch callable."""
    if pyannote_status() == "not installed":
        return None
    try:
        import torch
        from pyannote.audio import Model
        ckpt = SHARED / "checkpoints" / "segmentation-3.0" / "pytorch_model.bin"
        model = Model.from_pretrained(str(ckpt)).eval()
        device = torch.device("cuda" if provider == "cuda" and torch.cuda.is_available() else "cpu")
        model.to(device)

        def infer(windows: np.ndarray) -> np.ndarray:  # Inference.infer is its forward + batching
            with torch.inference_mode():
                return model(torch.from_numpy(windows[:, None, :]).to(device)).cpu().numpy()
        return infer
    except Exception as error:  # noqa: BLE001 - report, do not fail the benchmark
        log(f"pyannote.audio present but unusable: {error}")
        return None


def onnx_model(variant: str, threads: int, provider: str):
    """The runtime's model as the runtime drives it: B windows split over its workers."""
    from powerseg.runtime.model import OnnxModel

    model = OnnxModel(variant, threads=threads, providers=provider)

    def forward(windows: np.ndarray) -> np.ndarray:
        parts = np.array_split(windows, min(model.workers, len(windows)))
        return np.concatenate(model.run_batches(parts))

    forward.spec, forward.workers = model.spec, model.workers
    return forward


# ----------------------------------------------------------------------------- sections

def section_latency(contenders: dict, chunks: np.ndarray, rounds: int) -> dict:
    one = chunks[:1]
    calls = {name: (lambda f=f: f(one)) for name, f in contenders.items()}
    times = interleave(calls, rounds, warmup=3)
    return {name: stats(np.array(t) * 1000) for name, t in times.items()}


def section_throughput(contenders: dict, chunks: np.ndarray, batches: list[int],
                       reps: int) -> dict:
    """ms per chunk running all of ``chunks`` in batches of each size."""
    out: dict[str, dict] = {name: {} for name in contenders}
    for b in batches:
        def run_all(f, b=b):
            for i in range(0, len(chunks) - b + 1, b):
                f(chunks[i:i + b])
        n = (len(chunks) // b) * b
        calls = {name: (lambda f=f: run_all(f)) for name, f in contenders.items()}
        times = interleave(calls, reps, warmup=1 if b <= 8 else 0)
        for name, t in times.items():
            out[name][b] = stats(np.array(t) * 1000 / n)
        log(f"  batch {b:3d}: " + "  ".join(f"{k} {fmt(out[k][b])}" for k in contenders))
    return out


def cli_vad(path: Path, out: Path, variant: str, step: float, threads: int, provider: str,
            batch: int | None = None) -> None:
    """``powerseg vad`` in-process; ``batch`` None keeps the CLI's own default batch size."""
    from powerseg.cli import main
    args = ["vad", str(path), "-o", str(out), "--model", variant, "--step", f"{step:g}",
            "--threads", str(threads), "--provider", provider]
    args += ["--batch-size", str(batch)] if batch else []
    with contextlib.redirect_stderr(io.StringIO()):
        status = main(args)
    if status != 0:
        raise RuntimeError(f"powerseg {' '.join(args)} exited {status}")


def section_end_to_end(audio: dict[int, Path], variants: list[str], torch_fwd, steps: list[float],
                       reps: int, threads: int, provider: str, tmp: Path) -> list[dict]:
    rows = []
    for seconds, path in audio.items():
        signal = None
        for step in steps:
            step_samples = round(step * RATE)
            chunks = num_chunks(sf.info(str(path)).frames, step_samples)
            calls = {}
            for v in variants:
                calls[f"powerseg vad {v}"] = (lambda v=v: cli_vad(
                    path, tmp / f"e2e-{seconds}-{step:g}-{v}.rttm", v, step, threads, provider))
            if torch_fwd is not None:
                if signal is None:
                    signal = sf.read(str(path), dtype="float32")[0]

                def torch_all(step_samples=step_samples):
                    for batch in chunk_batches(signal, step_samples, 32):
                        t = time.perf_counter()
                        torch_fwd(batch)
                        torch_all.forward += time.perf_counter() - t
                torch_all.forward = 0.0
                calls["torch forward only"] = torch_all
            # the torch row is timed on its forward passes alone (window slicing excluded)
            names = list(calls)
            times = {n: [] for n in names}
            for r in range(reps):
                for n in names[r % len(names):] + names[:r % len(names)]:
                    if n == "torch forward only":
                        calls[n].forward = 0.0
                        calls[n]()
                        times[n].append(calls[n].forward)
                    else:
                        t = time.perf_counter()
                        calls[n]()
                        times[n].append(time.perf_counter() - t)
            for n in names:
                s = stats(times[n])
                row = {"audio_s": seconds, "step": step, "chunks": chunks, "contender": n,
                       "batch_size": 32 if n == "torch forward only" else "CLI default",
                       "wall_s": s, "rtf": stats(np.array(times[n]) / seconds),
                       "ms_per_chunk": stats(np.array(times[n]) * 1000 / chunks)}
                rows.append(row)
            base = np.median(times["torch forward only"]) if torch_fwd is not None else None
            for row in rows[-len(names):]:
                row["speedup_vs_torch_forward"] = (base / row["wall_s"]["median"]
                                                   if base else None)
                log(f"  {seconds / 60:5.0f} min step {step:g} s {row['contender']:22s} "
                    f"{fmt(row['wall_s'], digits=2)} s  RTF {row['rtf']['median']:.4f}  "
                    f"{row['ms_per_chunk']['median']:.1f} ms/chunk"
                    + (f"  x{row['speedup_vs_torch_forward']:.2f} vs torch" if base else ""))
    return rows


# Children are started from this small launcher, not from the benchmark process itself: Linux
# carries the parent's RSS high-water mark into a forked (or vforked) child across exec, so a
# child of this big process would report at least this process's RSS as its own peak.
LAUNCHER = """
import json, os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
kind, args = sys.argv[2], json.loads(sys.argv[3])
if kind == "memory":
    import memory
    print(json.dumps(memory.measure(args[1:], args[0])))
else:
    t = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t
    err = child.stderr.read().decode()[-500:]
    print(json.dumps({"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "status": status,
                      "stderr": err}))
"""


def launch(kind: str, args: list[str]) -> dict:
    got = subprocess.run([sys.executable, "-c", LAUNCHER, str(HERE), kind, json.dumps(args)],
                         capture_output=True, text=True)
    if got.returncode != 0:
        raise RuntimeError(got.stderr.strip().splitlines()[-1] if got.stderr.strip() else
                           f"launcher exited {got.returncode}")
    return json.loads(got.stdout.strip().splitlines()[-1])


def section_cold_start(path1s: Path, variants: list[str], reps: int, threads: int,
                       provider: str, tmp: Path) -> dict:
    out = {}
    times: dict[str, list[float]] = {v: [] for v in variants}
    rss: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(reps):
        for v in variants:
            target = tmp / f"cold-{v}.rttm"
            target.unlink(missing_ok=True)
            args = [sys.executable, "-m", "powerseg", "vad", str(path1s), "-o", str(target),
                    "--model", v, "--threads", str(threads), "--provider", provider]
            got = launch("cold", args)
            if got["status"] != 0 or not target.exists():
                raise RuntimeError(f"cold start failed: {got['stderr']}")
            times[v].append(got["wall_s"])
            rss[v].append(got["peak_rss_mib"])
    for v in variants:
        out[v] = {"wall_s": stats(times[v]), "peak_rss_mib": stats(rss[v])}
        log(f"  cold powerseg vad 1 s ({v}): {fmt(out[v]['wall_s'], digits=3)} s, "
            f"peak RSS {np.median(rss[v]):.0f} MiB")
    return out


def section_peak_rss(path: Path, variants: list[str], arenas: list[str], threads: int,
                     provider: str, reps: int) -> list[dict]:
    rows = []
    for v in variants:
        for arena in arenas:
            got = [launch("memory", [arena, "vad", str(path), "--model", v, "--threads",
                                     str(threads), "--provider", provider])
                   for _ in range(reps)]
            mib = [g["peak_rss_mib"] for g in got]
            row = {"variant": v, "arena": arena, "peak_rss_mib": stats(mib),
                   "peak_rss_mb": stats(np.array(mib) * 1.048576),
                   "wall_s": stats([g["wall_s"] for g in got])}
            rows.append(row)
            log(f"  peak RSS vad 10 min {v} arena {arena}: {np.median(mib):.1f} MiB "
                f"({np.median(mib) * 1.048576:.1f} MB), wall {row['wall_s']['median']:.1f} s")
    return rows


def section_accuracy(models: dict, torch_fwd, chunks: np.ndarray, e2e_dir: Path | None,
                     vad_audio: Path, threads: int, provider: str) -> dict:
    """Chunk-level agreement vs fp32 ONNX (and torch vs fp32), VAD difference on 10 min."""
    from powerseg.runtime import Segmenter
    from powerseg.runtime.metrics import detection_error

    def run(f):
        return np.concatenate([f(chunks[i:i + 32]) for i in range(0, len(chunks), 32)])

    ref = run(models["fp32"])
    out = {}
    contenders = dict(models)
    if torch_fwd is not None:
        contenders["torch"] = torch_fwd
    speech = {}
    for name, f in contenders.items():
        got = ref if name == "fp32" else run(f)
        agree = float((got.argmax(-1) == ref.argmax(-1)).mean())
        diff = np.abs(np.exp(got) - np.exp(ref)).max(-1)
        row = {"chunks": len(chunks), "frames": int(diff.size), "argmax_agreement": agree,
               "max_abs_prob_diff": float(diff.max()),
               "frames_within_1e-3": float((diff <= 1e-3).mean())}
        if name in models:
            seg = Segmenter(model=name, threads=threads, providers=provider)
            result = seg(vad_audio, activations=False)
            speech[name] = (result.speech, result.vad())
            if name != "fp32":
                d = detection_error(speech["fp32"][1], speech[name][1])
                row["vad_frames_differing"] = float(
                    ((speech[name][0] > 0.5) != (speech["fp32"][0] > 0.5)).mean())
                row["vad_error_vs_fp32"] = float(d.error_rate)
                row["vad_audio_s"] = float(result.duration)
        out[name] = row
        log(f"  {name:6s} argmax {100 * agree:.3f} %  max|dp| {row['max_abs_prob_diff']:.2e}  "
            f"<=1e-3 {100 * row['frames_within_1e-3']:.3f} %"
            + (f"  VAD frames differing {100 * row['vad_frames_differing']:.3f} %, VAD error "
               f"vs fp32 {100 * row['vad_error_vs_fp32']:.3f} %" if "vad_error_vs_fp32" in row
               else ""))
    return out


def section_levers(chunks: np.ndarray, threads: int, reps: int, tmp: Path, path10: Path,
                   full: bool) -> dict:
    """onnxruntime options on the fp32 model, each vs the shipped settings, interleaved."""
    import onnx
    import onnxruntime as ort
    from powerseg.models import model_path
    fp32 = str(model_path("fp32"))
    G = ort.GraphOptimizationLevel

    def options(level=G.ORT_ENABLE_EXTENDED, intra=threads, inter=1,
                mode=ort.ExecutionMode.ORT_SEQUENTIAL, arena=True, spinning=True):
        o = ort.SessionOptions()
        o.graph_optimization_level, o.intra_op_num_threads = level, intra
        o.inter_op_num_threads, o.execution_mode, o.enable_cpu_mem_arena = inter, mode, arena
        o.log_severity_level = 3
        if not spinning:
            o.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return o

    # fixed batch shape: the same graph with batch 32 written into its input/output shapes
    fixed = tmp / "fp32-batch32.onnx"
    if not fixed.exists():
        proto = onnx.load(fp32)
        for value in list(proto.graph.input) + list(proto.graph.output):
            value.type.tensor_type.shape.dim[0].dim_value = 32
        onnx.save(proto, str(fixed))
    # pre-optimised graph: ORT's own ENABLE_EXTENDED output saved once, loaded with no passes
    preopt = tmp / "fp32-preoptimised.onnx"
    if not preopt.exists():
        o = options()
        o.optimized_model_filepath = str(preopt)
        ort.InferenceSession(fp32, o, providers=["CPUExecutionProvider"])

    par = ort.ExecutionMode.ORT_PARALLEL
    configs = {
        "shipped (EXTENDED, intra 2, inter 1, sequential, arena on)": (fp32, options()),
        "graph opt BASIC": (fp32, options(level=G.ORT_ENABLE_BASIC)),
        "graph opt ALL": (fp32, options(level=G.ORT_ENABLE_ALL)),
        "graph opt DISABLE_ALL": (fp32, options(level=G.ORT_DISABLE_ALL)),
        "intra-op 1 thread": (fp32, options(intra=1)),
        "parallel mode, inter 2, intra 1": (fp32, options(intra=1, inter=2, mode=par)),
        "parallel mode, inter 2, intra 2": (fp32, options(intra=threads, inter=2, mode=par)),
        "arena off": (fp32, options(arena=False)),
        "no spin-wait": (fp32, options(spinning=False)),
        "fixed batch 32 input shape": (str(fixed), options()),
        "pre-optimised graph, opt disabled": (str(preopt), options(level=G.ORT_DISABLE_ALL)),
    }
    sessions = {}
    for name, (path, o) in configs.items():
        try:
            sessions[name] = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001
            log(f"  lever {name}: cannot load ({str(error)[:100]})")
    base = sessions[next(iter(configs))]
    in_name = base.get_inputs()[0].name
    batch = np.ascontiguousarray(chunks[:32, None, :])
    one = np.ascontiguousarray(chunks[:1, None, :])

    def plain(s, x):
        return lambda: s.run(None, {in_name: x})

    def bound(s, x):
        binding = s.io_binding()
        binding.bind_cpu_input(in_name, x)
        out = np.empty((len(x), 589, 7), np.float32)
        binding.bind_output(s.get_outputs()[0].name, "cpu", 0, np.float32, out.shape,
                            out.ctypes.data)
        return lambda out=out: s.run_with_iobinding(binding)  # keeps ``out`` alive

    b32 = {n: plain(s, batch) for n, s in sessions.items()}
    b32["IO binding (input and preallocated output)"] = bound(base, batch)
    b1 = {n: plain(s, one) for n, s in sessions.items() if "fixed batch" not in n}
    b1["IO binding (input and preallocated output)"] = bound(base, one)
    t32 = interleave(b32, reps, warmup=1)
    t1 = interleave(b1, reps * 8, warmup=2)
    rows = {}
    for n in b32:
        rows[n] = {"batch32_ms_per_chunk": stats(np.array(t32[n]) * 1000 / 32),
                   "batch1_ms": stats(np.array(t1[n]) * 1000) if n in t1 else {"n": 0}}
    ref32 = rows[next(iter(configs))]["batch32_ms_per_chunk"]["median"]
    ref1 = rows[next(iter(configs))]["batch1_ms"]["median"]
    for n, row in rows.items():
        row["batch32_vs_shipped"] = row["batch32_ms_per_chunk"]["median"] / ref32
        if row["batch1_ms"].get("n"):
            row["batch1_vs_shipped"] = row["batch1_ms"]["median"] / ref1
        log(f"  {n:60s} b32 {fmt(row['batch32_ms_per_chunk'])} ms/chunk "
            f"(x{row['batch32_vs_shipped']:.2f})  b1 {fmt(row['batch1_ms'])} ms"
            + (f" (x{row['batch1_vs_shipped']:.2f})" if "batch1_vs_shipped" in row else ""))

    # audio decoding: what overlapping it with inference could save at most
    from powerseg.runtime.audio import blocks
    t = time.perf_counter()
    for _ in blocks(path10, RATE):
        pass
    seconds = time.perf_counter() - t
    rows["audio decoding of 10 min (upper bound of overlap gain)"] = {"seconds": seconds}
    log(f"  decoding 10 min WAV in blocks: {seconds:.3f} s")
    return rows


# ----------------------------------------------------------------------------- main

def machine(threads: int, provider: str) -> dict:
    import onnxruntime as ort

    import powerseg
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {"nproc": os.cpu_count(), "cpu": cpu, "threads": threads, "provider": provider,
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
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(doc, indent=1) + "\n")

    log("latency, one 10 s chunk at batch 1 (ms): median [min-max]")
    section("latency", "latency_batch1_ms",
            lambda: section_latency(contenders, chunks, 40 if q else 200))
    for n, s in doc.get("latency_batch1_ms", {}).items() if "latency" not in args.skip else ():
            log(f"  {n:16s} p50 {s['median']:.1f}  p90 {s['p90']:.1f}  p99 {s['p99']:.1f}  "
                f"min {s['min']:.1f}  max {s['max']:.1f}  n {s['n']}")

    log("throughput (ms per chunk): median [min-max]")
    sub = chunks[:64] if q else chunks[:128]
    batches = [1, 4, 16, 32, 64] if q else [1, 2, 4, 8, 16, 32, 64]
    section("throughput", "throughput_ms_per_chunk",
            lambda: section_throughput(contenders, sub, batches, 1 if q else 3))

    log("end to end: powerseg vad (in-process CLI) vs torch forward passes alone (batch 32)")
    e2e_audio = audio if not q else {600: path10}
    section("e2e", "end_to_end", lambda: section_end_to_end(
        e2e_audio, speed_variants, torch_fwd, [1.0, 5.0], args.e2e_reps or (1 if q else 3), args.threads,
        args.provider, args.tmp))

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
    lat = doc.get("latency_batch1_ms", {}).get("onnx fp32")
    if lat:
        t["latency_fp32_ms"] = {"target": "<= 20 ms", "measured": round(lat["median"], 1),
                                "met": bool(lat["median"] <= TARGETS["latency_fp32_ms"])}
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
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=1) + "\n")
    log(f"wrote {args.output} ({doc['elapsed_s']:.0f} s)")
    return 0


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
    thr = doc.get("throughput_ms_per_chunk", {})
    if thr:
        for b in next(iter(thr.values())):
            lines.append(f"| ms/chunk at batch {b} | " + " | ".join(cells(
                lambda k: fmt(thr[k][b]) if k in thr else "-")) + " |")
    e2e: dict[str, dict] = {}
    for row in doc.get("end_to_end", []):
        label = (f"e2e vad {row['audio_s'] / 60:g} min step {row['step']:g} s: wall s (RTF) "
                 f"[{row['chunks']} chunks]")
        vals = e2e.setdefault(label, {})
        wall, rtf = row["wall_s"]["median"], row["rtf"]["median"]
        if row["contender"] == "torch forward only":
            vals["torch"] = f"{wall:.2f} ({rtf:.4f}) forward only"
        else:
            speedup = row.get("speedup_vs_torch_forward")
            vals["onnx " + row["contender"].split()[-1]] = f"{wall:.2f} ({rtf:.4f})" + (
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
