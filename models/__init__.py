"""The shipped ONNX models, found as package data (works from a wheel, not only a checkout)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from powerseg.errors import ModelError, ModelNotFoundError

SEGMENTATION, SPEAKER_EMBEDDING = "segmentation", "speaker_embedding"  # metadata "kind"

VARIANTS = {
    "fp32": "segmentation-3.0.onnx",
    "int8": "segmentation-3.0.int8.onnx",
    "fp16": "segmentation-3.0.fp16.onnx",  # for GPUs
}
EMBEDDINGS = {
    "campplus": "campplus.onnx",  # 3D-Speaker CAM++, 192-dim speaker embeddings
}
SHIPPED = {SEGMENTATION: VARIANTS, SPEAKER_EMBEDDING: EMBEDDINGS}
USER = {SEGMENTATION: "Segmenter", SPEAKER_EMBEDDING: "Embedder"}


def model_path(variant: str, kind: str = SEGMENTATION) -> Path:
    """Path of a shipped model of ``kind``: "fp32", "int8", "fp16" or, for embeddings, "campplus"."""
    names = SHIPPED[kind]
    if variant not in names:
        other = next((k for k, n in SHIPPED.items() if variant in n), None)
        hint = f" ({variant!r} is the {other.replace('_', '-')} model, for {USER[other]})" \
            if other else ""
        raise ModelError(f"unknown model {variant!r}{hint}: use one of {', '.join(names)} "
                         "or the path of an .onnx file")
    path = Path(str(files(__name__).joinpath(names[variant])))
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: shipped model {variant!r} is missing from this install")
    return path
