"""The shipped ONNX models, found as package data (works from a wheel, not only a checkout)."""

from __future__ import annotations

import functools
import hashlib
import os
from importlib.resources import files
from pathlib import Path

from powerseg.errors import ModelError, ModelNotFoundError

SEGMENTATION, SPEAKER_EMBEDDING = "segmentation", "speaker_embedding"  # metadata "kind"
SEGMENTATION_FRONT = "segmentation_front"  # the front of a shared front-end pair

VARIANTS = {
    "fp32": "segmentation-3.0.onnx",
    "int8": "segmentation-3.0.int8.onnx",
    "fp16": "segmentation-3.0.fp16.onnx",  # for GPUs
}
EMBEDDINGS = {
    "campplus": "campplus.onnx",  # 3D-Speaker CAM++, 192-dim speaker embeddings
}
# The tails of the shared front-end pairs (each names its front in its metadata): what a
# Segmenter runs on CPU for these variants (runtime/segmentation/front.py). fp16 is for GPUs: no pair.
SHARED_TAILS = {
    "fp32": "segmentation-3.0.tail.onnx",
    "int8": "segmentation-3.0.int8.tail.onnx",
}
SHIPPED = {SEGMENTATION: VARIANTS, SPEAKER_EMBEDDING: EMBEDDINGS}
USER = {SEGMENTATION: "Segmenter", SEGMENTATION_FRONT: "Segmenter", SPEAKER_EMBEDDING: "Embedder"}


def model_path(variant: str, kind: str = SEGMENTATION) -> Path:
    """Path of a shipped model of ``kind``: "fp32", "int8", "fp16" or, for embeddings, "campplus"."""
    names = SHIPPED[kind]
    if variant not in names:
        other = next((k for k, n in SHIPPED.items() if variant in n), None)
        hint = f" ({variant!r} is the {other.replace('_', '-')} model, for {USER[other]})" \
            if other else ""
        raise ModelError(f"unknown model {variant!r}{hint}: use one of {', '.join(names)} "
                         "or the path of an .onnx file")
    return _shipped(names[variant], variant)


def shared_tail_path(variant: str) -> Path | None:
    """The tail of a shipped variant's shared front-end pair, None for a variant without one."""
    return _shipped(SHARED_TAILS[variant], variant) if variant in SHARED_TAILS else None


def _shipped(name: str, variant: str) -> Path:
    path = Path(str(files(__name__).joinpath(name)))
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: shipped model {variant!r} is missing from this install")
    return path


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (the manifest's and the pair's checksums)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_sha256(path: str | Path) -> str:
    """``sha256`` of a model file, read once per version of the file (its size and time of
    change): results' provenance, voice banks and the ``auto`` cache key ask for it on every
    model they load."""
    stat = os.stat(path)
    return _sha256_of(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    return sha256(path)
