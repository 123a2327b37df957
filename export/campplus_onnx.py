"""torch CAM++ -> self-describing ONNX file (dynamic batch and frames), verified on real speech."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from powerseg import __version__
from powerseg.errors import VerificationError
from powerseg.models import EMBEDDINGS, SPEAKER_EMBEDDING
from powerseg.runtime.audio import load_audio
from powerseg.runtime.embedding.embedder import EmbeddingModel
from powerseg.runtime.embedding.fbank import FbankOptions, features

from .campplus import MIN_FRAMES, CAMPPlus
from .campplus_checkpoint import load_campplus
from .onnx_export import OPSET, set_metadata

INPUT_NAME = "features"
OUTPUT_NAME = "embeddings"
MODEL = "3D-Speaker CAM++ (iic/speech_campplus_sv_zh_en_16k-common_advanced)"
LICENSE = ("Apache-2.0, 3D-Speaker CAM++ weights (campplus_cn_en_common.pt); see "
           "LICENSE.campplus")
# Crops of each file's features, in frames: the shortest input, the CAM segment edges (100
# frames; 200 after the strided TDNN), a typical masked speaker, a whole 10 s chunk.
LENGTHS = (3, 4, 10, 99, 100, 101, 199, 200, 201, 350, 600, 998)
# onnxruntime (graph optimisation ALL, as the runtime opens it) vs torch on these crops of all
# 19 shared recordings: worst |difference| 2.9e-4 (at 4 frames, where the pooled std of 2 frames
# amplifies rounding; <= 1.4e-5 from 99 frames on), embedding values up to about 4.3, lowest
# cosine 0.99999976. The bounds leave 3x room for other CPUs' kernels; a wrong weight moves
# embeddings far more (tests/export/test_embed_export.py).
MAX_ABS_DIFF = 1e-3
MIN_COSINE = 0.99999


def metadata(model: CAMPPlus, fbank: FbankOptions = FbankOptions()) -> dict[str, str]:
    """Everything the runtime needs to make the model's input and read its output, as strings."""
    return {
        "kind": SPEAKER_EMBEDDING,
        "model": MODEL,
        "variant": "fp32",
        "sample_rate": str(fbank.sample_rate),
        "embedding_dim": str(model.embedding_dim),
        "min_frames": str(MIN_FRAMES),
        "min_samples": str(fbank.frame_length_samples + (MIN_FRAMES - 1) * fbank.frame_shift_samples),
        "input": f"{INPUT_NAME} (batch, frames, {fbank.num_mel_bins}) mean-normalised log-mel fbank",
        "output": f"{OUTPUT_NAME} (batch, {model.embedding_dim}), not L2-normalised; compare "
                  "with cosine similarity",
        **fbank.metadata(),
        "checkpoint_sha256": getattr(model, "checkpoint_sha256", ""),
        "producer": "powerseg",
        "producer_version": __version__,
        "license": LICENSE,
    }


def export_campplus(model: CAMPPlus, output: str | Path, opset: int = OPSET) -> Path:
    """Write ``model`` as ONNX: (batch, frames, 80) float32 -> (batch, 192) float32."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 200, model.feat_dim)
    tmp = output.with_suffix(".tmp.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's notes on batch norm in eval mode
        torch.onnx.export(
            model.eval(), (example,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 1: "frames"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset, do_constant_folding=True, dynamo=False,
        )
    proto = onnx.load(str(tmp))
    tmp.unlink()
    proto.producer_name, proto.producer_version = "powerseg", __version__
    set_metadata(proto, metadata(model))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(output))
    return output


@dataclass(frozen=True)
class EmbeddingParity:
    inputs: int  # feature crops compared
    frames: list[int]  # their lengths, fewest to most
    max_abs_diff: float  # largest |onnx - torch| of any embedding value
    min_cosine: float  # lowest cosine similarity of an onnx embedding with torch's

    def as_dict(self) -> dict:
        return asdict(self)


def verification_inputs(audio: list[Path], fbank: FbankOptions = FbankOptions()) -> list[np.ndarray]:
    """Real features: each file's first 10 s chunk cropped to ``LENGTHS``, and the whole file."""
    out = []
    for path in audio:
        samples = load_audio(path, fbank.sample_rate)
        chunk = np.zeros(160000, np.float32)
        chunk[:min(len(samples), 160000)] = samples[:160000]
        feats = features(chunk, fbank)
        out += [feats[:n] for n in LENGTHS if n <= len(feats)]
        out.append(features(samples, fbank))
    return out


def compare(torch_model: CAMPPlus, onnx_model: EmbeddingModel,
            inputs: list[np.ndarray]) -> EmbeddingParity:
    worst, cosine = 0.0, 1.0
    with torch.inference_mode():
        for feats in inputs:
            expected = torch_model(torch.from_numpy(feats)[None]).numpy()[0]
            got = onnx_model(feats[None])[0]
            worst = max(worst, float(np.abs(got - expected).max()))
            cosine = min(cosine, float(np.dot(got, expected) /
                                       (np.linalg.norm(got) * np.linalg.norm(expected))))
    return EmbeddingParity(len(inputs), sorted({len(f) for f in inputs}), worst, cosine)


def verify_campplus(onnx_path: Path, torch_model: CAMPPlus, audio: list[Path]) -> EmbeddingParity:
    """Raise VerificationError unless the ONNX file gives torch's embeddings on ``audio``."""
    parity = compare(torch_model, EmbeddingModel(onnx_path, providers="cpu"),
                     verification_inputs(audio))
    if parity.max_abs_diff > MAX_ABS_DIFF or parity.min_cosine < MIN_COSINE:
        raise VerificationError(
            f"{onnx_path}: ONNX and torch embeddings disagree on {parity.inputs} real inputs of "
            f"{parity.frames[0]} to {parity.frames[-1]} frames: max |difference| "
            f"{parity.max_abs_diff:.2e} (allowed {MAX_ABS_DIFF:.0e}), lowest cosine "
            f"{parity.min_cosine:.8f} (allowed {MIN_COSINE})")
    return parity


def build_embedding(checkpoint: str | Path, folder: Path, audio: list[Path]) -> dict[str, dict]:
    """Export the CAM++ ``checkpoint`` as ``folder``/campplus.onnx, verified on ``audio``.

    Returns its manifest entry (sha256 added by the caller with the others').
    """
    model = load_campplus(checkpoint)
    path = export_campplus(model, folder / EMBEDDINGS["campplus"])
    parity = verify_campplus(path, model, audio)
    return {path.name: {"kind": SPEAKER_EMBEDDING, "variant": "fp32", "model": MODEL,
                        "checkpoint_sha256": model.checkpoint_sha256, "license": LICENSE,
                        "parity_vs_torch": parity.as_dict()}}
