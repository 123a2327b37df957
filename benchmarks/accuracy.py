"""Accuracy each variant keeps vs fp32 ONNX: chunk agreement and VAD on tiled audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from timing import log


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
