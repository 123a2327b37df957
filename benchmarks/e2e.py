"""End to end: ``powerseg vad`` in-process next to the torch forward passes on the same chunks.

Each row also gives its effective GFLOP/s (2.64 GFLOP per window x windows / wall time), to
read against the numpy matmul peak measured in the same run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile as sf
from contenders import cli_vad
from tiling import RATE, chunk_batches, num_chunks
from timing import fmt, log, stats

GFLOP_PER_WINDOW = 2.64  # segmentation-3.0 forward of one 10 s window (multiply-adds x 2)


def section_end_to_end(audio: dict[int, Path], variants: list[str], torch_fwd, steps: list[float],
                       reps: int, threads: int, provider: str, tmp: Path,
                       full_model: tuple[str, ...] = ()) -> list[dict]:
    """``variants`` as shipped, and ``full_model`` ones again with ``--no-shared-front``."""
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
            for v in full_model:  # the same variant without its shared front-end pair
                calls[f"powerseg vad {v} full model"] = (lambda v=v: cli_vad(
                    path, tmp / f"e2e-{seconds}-{step:g}-{v}-full.rttm", v, step, threads,
                    provider, shared_front=False))
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
                       "ms_per_chunk": stats(np.array(times[n]) * 1000 / chunks),
                       "effective_gflops": GFLOP_PER_WINDOW * chunks / s["median"]}
                rows.append(row)
            base = np.median(times["torch forward only"]) if torch_fwd is not None else None
            for row in rows[-len(names):]:
                row["speedup_vs_torch_forward"] = (base / row["wall_s"]["median"]
                                                   if base else None)
                log(f"  {seconds / 60:5.0f} min step {step:g} s {row['contender']:22s} "
                    f"{fmt(row['wall_s'], digits=2)} s  RTF {row['rtf']['median']:.4f}  "
                    f"{row['ms_per_chunk']['median']:.1f} ms/chunk  "
                    f"{row['effective_gflops']:.1f} GFLOP/s"
                    + (f"  x{row['speedup_vs_torch_forward']:.2f} vs torch" if base else ""))
    return rows

