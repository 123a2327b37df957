"""onnxruntime levers on the fp32 model, each against the shipped settings, interleaved."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tiling import RATE
from timing import fmt, interleave, log, stats


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
