"""Cold start and peak RSS of ``powerseg vad``, each in a fresh child process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from timing import fmt, log, stats

HERE = Path(__file__).resolve().parent


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
