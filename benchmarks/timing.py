"""Timing helpers shared by every benchmark: interleaved rounds, robust stats, the matmul peak."""

from __future__ import annotations

import time

import numpy as np


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


def interleave(contenders: dict, rounds: int, warmup: int = 1,
               pause: float = 0.0) -> dict[str, list[float]]:
    """Call each contender once per round, in rotating order; seconds per call.

    ``pause`` seconds of sleep before each call let the previous contender's thread pools stop
    spinning (torch's OpenMP and onnxruntime's intra-op threads spin-wait after a call and took
    the cores from the next one), as a live stream's second between windows does.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(pause)
            t = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - t)
    return times


def matmul_peak_gflops(threads: int, size: int = 1024, reps: int = 20) -> dict:
    """Single-precision matrix-multiply rate numpy reaches here (GFLOP/s, best and median).

    The hardware ceiling the e2e rows are read against: measured in the same run and on the
    same cores, so load on a shared machine lowers both alike. ``threads`` caps BLAS's pool
    (threadpoolctl when installed; otherwise numpy's default pool, recorded as such).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    limiter, pool = None, "numpy default"
    try:
        from threadpoolctl import threadpool_limits
        limiter, pool = threadpool_limits(limits=threads, user_api="blas"), f"{threads} threads"
    except ImportError:
        pass
    try:
        a @ b  # warm-up: thread pool start, page faults
        seconds = []
        for _ in range(reps):
            t = time.perf_counter()
            a @ b
            seconds.append(time.perf_counter() - t)
    finally:
        if limiter is not None:
            limiter.unregister()
    flop = 2.0 * size ** 3
    s = np.asarray(seconds)
    return {"size": size, "reps": reps, "blas_threads": pool,
            "best_gflops": float(flop / s.min() / 1e9),
            "median_gflops": float(flop / np.median(s) / 1e9)}
