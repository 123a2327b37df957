"""ms per chunk at each batch size, contenders interleaved."""

from __future__ import annotations

import numpy as np
from timing import fmt, interleave, log, stats


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
