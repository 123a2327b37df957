"""Live diarization: accuracy against latency, compute against offline, delay at real-time pace,
and memory over a long stream. Prints tables and writes benchmarks/results/live.json.

    python benchmarks/live.py                    # every part (about an hour on 2 cores)
    python benchmarks/live.py --parts accuracy   # the DER table only
    python benchmarks/live.py --parts accuracy --new-speaker-factors 0.6 1.0 1.4 1.8 2.6
    python benchmarks/live.py --parts memory --minutes 10 60

- accuracy: every shared file diarized offline once; ``powerseg.runtime.diarization.live.replay`` gives
  what a live stream at each latency emits for the same windows and embeddings (the tests show
  any push sizes give those turns). DER against the ground truth (collar 0, overlap scored,
  the sets' UEM), per set and pooled, next to the offline DER; agreement of live and final
  speakers (share of the final speaker time the live output gives the same speaker, after
  the best one-to-one mapping).
- compute: CPU seconds per second of audio of a live stream (0.1 s pushes, as fast as
  possible) against the offline Diarizer on the same tiled audio, interleaved in one run;
  and a live stream on one thread (one core) as real-time factor and headroom.
- delay: a stream paced at real time; for every 0.1 s of speech in an emitted turn, the wall
  time from that audio's arrival to the turn's emission (p50, p99), after the first window.
- memory: peak RSS of ``powerseg stream --diarization`` child processes on tiled audio, read
  just before the flush (the final clustering is the offline Diarizer's, measured by
  benchmarks/memory.py), so 10 min and 1 h can be compared.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from memory import read_mono, tiled, write_results  # benchmarks/ is on sys.path
from timing import log, stats

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POWERSEG_SHARED", ROOT.parent / "shared"))
RESULTS = ROOT / "benchmarks" / "results" / "live.json"
SETS = ("pyannote_sample", "ami_pyannote_debug", "librispeech_sim_a", "libri_conv_a")
LATENCIES = (1.0, 2.0, 5.0, 10.0)
RATE = 16000
BLOCK = 1600  # 0.1 s pushes

# The child of the memory part: stream a file live, report VmHWM before the flush.
CHILD = """
import sys, numpy as np, soundfile as sf
from powerseg import Diarizer
stream = Diarizer().stream(latency=float(sys.argv[2]))
with sf.SoundFile(sys.argv[1]) as f:
    for block in f.blocks(blocksize=1600, dtype="float32"):
        stream.push(block)
status = open("/proc/self/status").read()
print(next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM")))
stream.flush()
"""


def cpu() -> str:
    """The CPU's model, cores and the features that pick onnxruntime's kernels."""
    from powerseg.runtime.cpu import cpu_info, cpu_model

    return f"{cpu_model()} ({os.cpu_count()} cores; {' '.join(cpu_info().features)})"


def accuracy(factors: list[float]) -> dict:
    """The DER table at the shipped new-speaker factor; with ``factors``, the pooled DER at
    each latency for each factor too (the sweep that chose it), on the same offline runs."""
    from powerseg import Diarizer
    from powerseg.runtime.diarization import live as live_module
    from powerseg.runtime.binarize import Region
    from powerseg.runtime.diarization.live import replay
    from powerseg.runtime.metrics import diarization_error, read_rttm, read_uem

    diarizer = Diarizer()
    shipped = live_module.NEW_SPEAKER_FACTOR
    totals: dict = {}

    def add(key, error) -> None:
        errors = totals.setdefault(key, np.zeros(2))
        errors += (error.false_alarm + error.missed + error.confusion, error.reference)

    for name in SETS:
        folder = SHARED / "audio" / name
        uem = read_uem(folder / "uem" / "all.uem")
        for wav in sorted((folder / "wav").glob("*.wav")):
            uri = wav.stem
            truth = read_rttm(folder / "rttm" / f"{uri}.rttm").get(uri, [])
            result = diarizer(wav)
            final = [Region(*t) for t in result.turns()]
            add((name, "offline"), diarization_error(truth, final, uem.get(uri)))
            for factor in dict.fromkeys([shipped, *factors]):
                live_module.NEW_SPEAKER_FACTOR = factor
                for latency in LATENCIES:
                    live = [Region(*t) for t in replay(diarizer, result, latency)]
                    error = diarization_error(truth, live, uem.get(uri))
                    add(("factor", factor, latency), error)
                    if factor == shipped:
                        add((name, latency), error)
                        same = diarization_error(final, live)
                        agree = totals.setdefault(("agreement", latency), np.zeros(2))
                        agree += (same.reference - same.missed - same.confusion, same.reference)
            live_module.NEW_SPEAKER_FACTOR = shipped
            log(f"  {name}/{uri}")
    rows = {}
    for key in ["offline", *LATENCIES]:
        per_set = {name: 100 * totals[(name, key)][0] / totals[(name, key)][1] for name in SETS}
        pooled = sum(totals[(name, key)] for name in SETS)
        row = {"der_percent": per_set, "pooled_der_percent": 100 * pooled[0] / pooled[1]}
        if key != "offline":
            agreement = totals[("agreement", key)]
            row["agreement_percent"] = 100 * agreement[0] / agreement[1]
        rows["offline" if key == "offline" else f"{key:g}s"] = row
    log("\n| latency | " + " | ".join(SETS) + " | pooled DER | agreement with final |")
    log("| --- " * (len(SETS) + 3) + "|")
    for key, row in rows.items():
        log(f"| {key} | " + " | ".join(f"{row['der_percent'][n]:.1f} %" for n in SETS) +
            f" | {row['pooled_der_percent']:.1f} % | " +
            (f"{row['agreement_percent']:.1f} % |" if "agreement_percent" in row else "- |"))
    sweep = {f"{factor:g}": {f"{latency:g}s": 100 * totals[("factor", factor, latency)][0] /
                             totals[("factor", factor, latency)][1] for latency in LATENCIES}
             for factor in dict.fromkeys([shipped, *factors])}
    if factors:
        log("\nnew-speaker factor: pooled DER at " + ", ".join(f"{latency:g} s" for latency in LATENCIES))
        for factor, row in sweep.items():
            log(f"  {factor}: " + ", ".join(f"{v:.1f} %" for v in row.values()))
    return {"by_latency": rows, "pooled_der_by_new_speaker_factor": sweep}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def compute(minutes: float, folder: Path, rounds: int) -> dict:
    from powerseg import Diarizer

    path = tiled(minutes, folder)
    audio = read_mono(path)
    seconds = len(audio) / RATE
    diarizer, single = Diarizer(), Diarizer(threads=1)

    def live(d) -> None:
        stream = d.stream(latency=5.0)
        for begin in range(0, len(audio), BLOCK):
            stream.push(audio[begin:begin + BLOCK])
        stream.flush()

    runs = {"offline": lambda: diarizer(path), "live": lambda: live(diarizer),
            "live, 1 thread": lambda: live(single)}
    cpu_per_s: dict = {name: [] for name in runs}
    wall: dict = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start_cpu, start = _cpu_seconds(), time.perf_counter()
            runs[name]()
            cpu_per_s[name].append((_cpu_seconds() - start_cpu) / seconds)
            wall[name].append(time.perf_counter() - start)
    out = {name: {"cpu_s_per_audio_s": stats(cpu_per_s[name]), "wall_s": stats(wall[name]),
                  "rtf": stats(np.array(wall[name]) / seconds)} for name in runs}
    ratio = [a / b for a, b in zip(cpu_per_s["live"], cpu_per_s["offline"])]
    out["live_over_offline_cpu"] = stats(ratio)
    one = out["live, 1 thread"]["rtf"]["median"]
    log(f"\n{minutes:g} min, {rounds} interleaved rounds: CPU s per audio s: offline "
        f"{out['offline']['cpu_s_per_audio_s']['median']:.4f}, live "
        f"{out['live']['cpu_s_per_audio_s']['median']:.4f} (x{stats(ratio)['median']:.2f}); "
        f"live on one thread: RTF {one:.3f}, headroom x{1 / one:.1f}")
    return out


def delay(seconds: float, latency: float) -> dict:
    from powerseg import Diarizer
    from powerseg.samples import sample_path

    files = sorted((SHARED / "audio" / "libri_conv_a" / "wav").glob("*.wav")) or [sample_path()]
    audio = read_mono(files[0])[:round(seconds * RATE)]
    stream = Diarizer().stream(latency=latency)
    delays, computes = [], []  # computes: the pushes that complete a window (one step's work)
    begun = time.monotonic()
    for begin in range(0, len(audio), BLOCK):
        time.sleep(max(0.0, begun + begin / RATE - time.monotonic()))
        pushed = time.monotonic()
        turns = stream.push(audio[begin:begin + BLOCK])
        now = time.monotonic()
        if begin + BLOCK >= 10 * RATE and (begin + BLOCK) // RATE > begin // RATE:
            computes.append(now - pushed)
        for turn in turns:  # each 0.1 s of the turn: heard at begun + t, labelled now
            heard = np.arange(max(turn.start, 10.0), turn.end, 0.1)
            delays += list(now - (begun + heard + 0.1))
    stream.flush()
    out = {"latency_s": latency, "audio_s": seconds, "delay_s": stats(delays),
           "step_compute_s": stats(computes)}
    log(f"\ndelay at real-time pace, latency {latency:g} s ({seconds:g} s of audio, after the "
        f"first window): p50 {out['delay_s']['median']:.2f} s, p99 {out['delay_s']['p99']:.2f} s; "
        f"one step's compute (a push that completes a window): p50 "
        f"{out['step_compute_s']['median']:.3f} s, p99 {out['step_compute_s']['p99']:.3f} s")
    return out


def memory(minutes: list[float], folder: Path) -> dict:
    out = {}
    for m in minutes:
        path = tiled(m, folder)
        run = subprocess.run([sys.executable, "-c", CHILD, str(path), "5"], capture_output=True,
                             text=True, check=True)
        out[f"{m:g}min"] = {"peak_rss_before_flush_mib": round(int(run.stdout.split()[0]) / 1024, 1)}
        log(f"\nlive stream, {m:g} min: peak RSS before the flush "
            f"{out[f'{m:g}min']['peak_rss_before_flush_mib']} MiB")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["accuracy", "compute", "delay", "memory"],
                        choices=["accuracy", "compute", "delay", "memory"])
    parser.add_argument("--compute-minutes", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delay-seconds", type=float, default=120)
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    parser.add_argument("--new-speaker-factors", type=float, nargs="*", default=[],
                        help="also replay with these new-speaker factors (the sweep that chose "
                        "runtime.diarization.live.NEW_SPEAKER_FACTOR)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp"))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    doc: dict = {"cpu": cpu(), "python": platform.python_version()}
    log(f"CPU: {doc['cpu']}")
    if "accuracy" in args.parts:
        doc["accuracy"] = accuracy(args.new_speaker_factors)
    if "compute" in args.parts:
        doc["compute"] = compute(args.compute_minutes, args.cache, args.rounds)
    if "delay" in args.parts:
        doc["delay"] = [delay(args.delay_seconds, latency) for latency in (2.0, 5.0)]
    if "memory" in args.parts:
        doc["memory"] = memory(args.minutes, args.cache)
    write_results(args.output, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
