"""Regenerate the shipped models: export, verify, quantize, and write their manifest."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import onnxruntime

from powerseg import __version__
from powerseg.models import SEGMENTATION, SEGMENTATION_FRONT, sha256
from powerseg.runtime.audio import load_audio
from powerseg.runtime.framing import Framing
from powerseg.runtime.segmentation.model import SegmentationModel
from powerseg.samples import sample_path

from .campplus_onnx import build_embedding
from .checkpoint import load_checkpoint
from .fp16 import convert_fp16
from .onnx_export import export_onnx
from .quantize import quantize_int8
from .shared_front import export_pair, verify_pair
from .verify import (DITHER_LSB, audio_windows, compare, dithered, onnx_logprobs, require_parity,
                     speaker_order_agreement, torch_logprobs, window_logprobs)


def build(checkpoint: str | Path, output: str | Path, variants: list[str] = (),
          audio: list[Path] | None = None, token: str | None = None,
          command: str | None = None, embedding_checkpoint: str | Path | None = None) -> dict:
    """Export ``checkpoint`` to ``output`` (fp32) plus sibling ``variants``, and the shared
    front-end pair beside them (``.front``/``.tail``, and ``.int8.tail`` with int8, verified
    against the full model); write manifest.json.

    ``audio`` (default: the bundled recording) is what the export is verified on and
    what the variants' agreement with fp32 is measured on. ``embedding_checkpoint`` (CAM++)
    adds campplus.onnx beside them, verified against torch on the same audio.
    """
    output = Path(output)
    audio = [Path(p) for p in audio] if audio else [sample_path()]
    model = load_checkpoint(checkpoint, token=token)
    export_onnx(model, output)
    fp32_model = SegmentationModel(output, providers="cpu")
    framing = Framing(fp32_model.spec, 1.0)
    windows = audio_windows(fp32_model, audio)
    fp32_logprobs = onnx_logprobs(fp32_model, windows)
    parity = require_parity(output, torch_logprobs(model, windows), fp32_logprobs)
    files = {output.name: {"variant": "fp32", "parity_vs_torch": parity.as_dict()}}
    floor = compare(fp32_logprobs, onnx_logprobs(fp32_model, dithered(windows)))
    files[output.name]["fp32_under_dither"] = {"dither_lsb": DITHER_LSB, **floor.as_dict()}
    front, tail = _sibling(output, "front"), _sibling(output, "tail")
    export_pair(model, front, tail)
    files[front.name] = {"kind": SEGMENTATION_FRONT, "variant": "fp32", "role": "shared_front"}
    files[tail.name] = {"variant": "fp32", "role": "shared_tail", "front": front.name,
                        "parity_vs_full": verify_pair(output, tail, audio).as_dict()}

    def agreement(logprobs):
        found = compare(fp32_logprobs, logprobs).as_dict()
        found["speaker_order_agreement"] = speaker_order_agreement(
            fp32_logprobs, logprobs, fp32_model.spec.mapping)
        return found

    for variant in variants:
        path = _sibling(output, variant)
        if variant == "int8":
            quantize_int8(output, path)
            int8_tail = _sibling(output, "int8.tail")
            quantize_int8(tail, int8_tail)
            pair = SegmentationModel(int8_tail, providers="cpu")
            pair_logprobs = np.concatenate([window_logprobs(
                pair, load_audio(p, pair.spec.sample_rate), framing) for p in audio])
            files[int8_tail.name] = {"variant": variant, "role": "shared_tail", "front": front.name,
                                     "parity_vs_fp32": agreement(pair_logprobs)}
        else:
            convert_fp16(output, path)
        files[path.name] = {"variant": variant, "parity_vs_fp32": agreement(
            onnx_logprobs(SegmentationModel(path, providers="cpu"), windows))}
    files = {name: {"kind": SEGMENTATION, **entry} for name, entry in files.items()}
    if embedding_checkpoint is not None:
        files.update(build_embedding(embedding_checkpoint, output.parent, audio))
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


def _sibling(output: Path, suffix: str) -> Path:
    """``name.onnx`` -> ``name.<suffix>.onnx`` beside it."""
    return output.with_name(output.name.replace(".onnx", f".{suffix}.onnx"))
