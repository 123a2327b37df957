"""Peak RSS of ``powerseg vad`` (and ``powerseg stream``) on long recordings made by tiling shared audio.

Each run is a fresh child process; its peak RSS comes from ``os.wait4`` (ru_maxrss), so
the numbers include Python, numpy, onnxruntime and the model. Prints a table and writes
benchmarks/results/memory.json.

    python benchmarks/memory.py                      # 10 min and 1 h, batch sizes, arena on/off
    python benchmarks/memory.py --quick              # 10 min only, fewer configurations
    python benchmarks/memory.py --minutes 10 60 --batch-sizes 32 8 --arena on off

``--arena off`` runs with onnxruntime's ``SessionOptions.enable_cpu_mem_arena = False``
(patched into the child for the measurement; the default in runtime/segmentation/model.py is untouched).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POWERSEG_SHARED", ROOT.parent / "shared"))
RESULTS = ROOT / "benchmarks" / "results" / "memory.json"
RATE = 16000

# The child: the CPU memory arena as asked ("on": each session's own, "off": none, "shared": one
# process-wide arena every session is told to use), then the CLI.
CHILD = """
import sys
if sys.argv[1] != "on":
    import onnxruntime as ort
    if sys.argv[1] == "shared":
        ort.create_and_register_allocator(
            ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                              ort.OrtMemType.DEFAULT), ort.OrtArenaCfg(0, -1, -1, -1))
    _Options = ort.SessionOptions
    def _options():
        options = _Options()
        if sys.argv[1] == "off":
            options.enable_cpu_mem_arena = False
        else:
            options.add_session_config_entry("session.use_env_allocators", "1")
        return options
    ort.SessionOptions = _options
from powerseg.cli import main
sys.exit(main(sys.argv[2:]))
"""


def read_mono(path: Path) -> np.ndarray:
    """A recording as mono float32 at 16 kHz (resampled with soxr when needed)."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    data = data.mean(axis=1)
    if rate != RATE:
        import soxr
        data = soxr.resample(data, rate, RATE).astype(np.float32)
    return data


def write_tiled(path: Path, seconds: float, sources: list[Path], raw: bool = False) -> Path:
    """``sources`` back to back to ``seconds`` (float32 WAV, or s16le raw), cached at ``path``."""
    if path.exists():
        return path
    total, want = 0, int(round(seconds * RATE))
    tmp = path.with_suffix(".partial")
    with open(tmp, "wb") if raw else sf.SoundFile(tmp, "w", RATE, 1, subtype="FLOAT",
                                                   format="WAV") as out:
        while total < want:  # written source by source: this script's memory stays small too
            for source in sources:
                data = read_mono(source)[:want - total]
                if raw:
                    out.write((np.clip(data, -1, 32767 / 32768) * 32768).astype("<i2").tobytes())
                else:
                    out.write(data)
                total += len(data)
                if total >= want:
                    break
    tmp.rename(path)
    return path


def tiled(minutes: float, folder: Path, raw: bool = False) -> Path:
    """Shared recordings back to back (float32 WAV, or s16le raw) to ``minutes``; cached in folder."""
    sources = sorted((SHARED / "audio").glob("*/wav/*.wav"))
    if not sources:
        sys.exit(f"no shared audio under {SHARED / 'audio'}")
    path = folder / (f"powerseg-tiled-{minutes:g}min." + ("raw" if raw else "wav"))
    return write_tiled(path, minutes * 60, sources, raw)


def measure(args: list[str], arena: str, stdin: Path | None = None,
            env: dict[str, str] | None = None) -> dict:
    """Run the CLI in a child (``env`` added to this environment); its peak RSS (MiB), wall
    time and exit status."""
    start = time.perf_counter()
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as source:
        child = subprocess.Popen([sys.executable, "-c", CHILD, arena, *args], stdin=source,
                                 env={**os.environ, **(env or {})},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        err = child.stderr.read().decode()
        child.stderr.close()
    if status != 0:
        raise RuntimeError(f"powerseg {' '.join(args)} failed: {err.strip()}")
    # ru_maxrss is KiB on Linux
    return {"peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "wall_s": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=None)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--arena", choices=("on", "off"), nargs="+", default=None)
    parser.add_argument("--full-sweep-minutes", type=float, default=10,
                        help="the duration on which every batch size x arena runs")
    parser.add_argument("--lean-batch", type=int, default=8,
                        help="batch size run with the arena off on the longer durations too")
    parser.add_argument("--no-stream", action="store_true", help="skip `powerseg stream -`")
    parser.add_argument("--models", nargs="+", default=["fp32"],
                        help="segmentation variants (default fp32)")
    parser.add_argument("--append", action="store_true",
                        help="keep the runs already in the output (same configuration: replaced)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    minutes = args.minutes or ([10] if args.quick else [10, 60])
    batches = args.batch_sizes or ([32, 8] if args.quick else [32, 16, 8, 4, 1])
    arenas = args.arena or ["on", "off"]

    runs = json.loads(args.output.read_text())["runs"] if args.append and args.output.exists() \
        else []
    # every configuration on the sweep duration; on others, the default and the lean one
    plan = [(m, b, a, "vad", v) for v in args.models for m in minutes for b in batches
            for a in arenas
            if m == args.full_sweep_minutes or (b, a) in ((32, "on"), (args.lean_batch, "off"))]
    if not args.no_stream:  # pushes of 0.1 s: windows run one at a time whatever --batch-size
        plan += [(minutes[0], 32, "on", "stream", v) for v in args.models]
    print(f"{'command':8} {'model':5} {'audio':>7} {'batch':>5} {'arena':>5} {'peak RSS MiB':>12} "
          f"{'wall s':>7}", flush=True)
    for m, batch, arena, command, variant in plan:
        common = ["--provider", "cpu", "--batch-size", str(batch), "--model", variant]
        if command == "vad":
            result = measure(["vad", str(tiled(m, args.tmp)), *common], arena)
        else:
            result = measure(["stream", "-", *common], arena, stdin=tiled(m, args.tmp, raw=True))
        config = {"command": command, "model": variant, "minutes": m, "batch_size": batch,
                  "arena": arena}
        runs = [r for r in runs if {k: r.get(k) for k in config} != config] + \
            [{**config, **result}]
        print(f"{command:8} {variant:5} {m:5g} m {batch:5d} {arena:>5} "
              f"{result['peak_rss_mib']:12.1f} {result['wall_s']:7.1f}", flush=True)
        write(args.output, runs)  # after each run: a long sweep cut short keeps what it measured
    print(f"wrote {args.output}")


def write(output: Path, runs: list[dict]) -> None:
    import onnxruntime

    doc = {"what": "peak RSS (ru_maxrss of the child) of the powerseg CLI on tiled shared audio",
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "onnxruntime": onnxruntime.__version__, "platform": platform.platform()},
           "runs": sorted(runs, key=lambda r: (r["command"], r.get("model", "fp32"),
                                               r["minutes"], -r["batch_size"], r["arena"]))}
    write_results(output, doc, quiet=True)


def write_results(output: Path, doc: dict, quiet: bool = False) -> None:
    """A benchmark's JSON document (folders made as needed), and a line saying where."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(doc, indent=1) + "\n")
    if not quiet:
        print(f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


if __name__ == "__main__":
    main()
