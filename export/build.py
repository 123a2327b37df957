"""Regenerate the shipped models: export, verify, quantize, and write their manifest."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import onnxruntime

from powerseg import __version__
from powerseg.runtime.model import OnnxModel
from powerseg.samples import sample_path

from .checkpoint import load_checkpoint, sha256
from .onnx_export import export_onnx
from .quantize import quantize_int8
from .verify import audio_windows, compare, onnx_logprobs, verify


def build(checkpoint: str | Path, output: str | Path, quantize: str | None = None,
          audio: list[Path] | None = None, token: str | None = None,
          command: str | None = None) -> dict:
    """Export ``checkpoint`` to ``output`` (fp32), optionally its int8 sibling; write manifest.json.

    ``audio`` (default: the bundled recording) serves both to verify the export
    and to calibrate the quantizer, so the result depends only on these inputs.
    """
    output = Path(output)
    audio = [Path(p) for p in audio] if audio else [sample_path()]
    model = load_checkpoint(checkpoint, token=token)
    export_onnx(model, output)
    files = {output.name: {"variant": "fp32", "parity_vs_torch": verify(output, model, audio).as_dict()}}
    if quantize == "int8":
        int8 = output.with_name(output.name.replace(".onnx", ".int8.onnx"))
        fp32_model = OnnxModel(output, providers="cpu")
        windows = audio_windows(fp32_model, audio)
        quantize_int8(output, int8, calibration=list(windows))
        agreement = compare(onnx_logprobs(fp32_model, windows),
                            onnx_logprobs(OnnxModel(int8, providers="cpu"), windows))
        files[int8.name] = {"variant": "int8", "parity_vs_fp32": agreement.as_dict()}
    for name, entry in files.items():
        entry["sha256"] = sha256(output.parent / name)
    manifest = {
        "model": "pyannote/segmentation-3.0",
        "checkpoint_sha256": model.checkpoint_sha256,
        "license": "MIT, Copyright (c) 2020 CNRS (see LICENSE)",
        "producer": f"powerseg {__version__}",
        "onnxruntime": onnxruntime.__version__,
        "command": command or " ".join(shlex.quote(a) for a in sys.argv),
        "verified_on": [p.name for p in audio],
        "files": files,
    }
    (output.parent / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
