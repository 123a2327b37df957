"""Batch-1 latency of one 10 s chunk, contenders interleaved."""

from __future__ import annotations

import numpy as np
from timing import interleave, stats


def section_latency(contenders: dict, chunks: np.ndarray, rounds: int,
                    live: dict | None = None) -> dict:
    """Batch-1 forward of one chunk per contender, and ``live`` zero-argument calls (a live
    stream's window and its parts), all interleaved."""
    one = chunks[:1]
    calls = {name: (lambda f=f: f(one)) for name, f in contenders.items()}
    calls.update(live or {})
    times = interleave(calls, rounds, warmup=3, pause=0.05)
    return {name: stats(np.array(t) * 1000) for name, t in times.items()}
