"""Execution-provider selection: "auto", "cpu", "cuda", or onnxruntime's own provider list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import onnxruntime as ort

from powerseg.errors import ProviderError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# TF32 matmuls moved pyannote's results on Ampere+ GPUs; keep fp32 arithmetic exact.
CUDA_OPTIONS = {"use_tf32": "0", "cudnn_conv_algo_search": "DEFAULT"}

Provider = Union[str, tuple[str, dict]]


def resolve_providers(providers: str | Sequence[Provider]) -> list[Provider]:
    """The provider list to give onnxruntime, or a ProviderError saying what is missing."""
    available = ort.get_available_providers()
    if isinstance(providers, str):
        choice = providers.lower()
        if choice == "cpu":
            return [CPU]
        if choice == "cuda":
            if CUDA not in available:
                raise ProviderError(
                    "CUDA was asked for, but this onnxruntime has no CUDAExecutionProvider "
                    f"(available: {', '.join(available)}); install the GPU build: "
                    "pip uninstall onnxruntime && pip install 'powerseg[gpu]'")
            return [(CUDA, dict(CUDA_OPTIONS)), CPU]
        if choice == "auto":
            return [(CUDA, dict(CUDA_OPTIONS)), CPU] if CUDA in available else [CPU]
        if choice.endswith("executionprovider"):
            providers = [providers]
        else:
            raise ProviderError(f"unknown provider {providers!r}: use auto, cpu, cuda "
                                "or onnxruntime provider names")
    if not isinstance(providers, Sequence):
        raise ProviderError(f"providers must be auto, cpu, cuda or a list of onnxruntime provider "
                            f"names, got {providers!r}")
    chosen = list(providers)
    for entry in chosen:
        name = entry[0] if isinstance(entry, tuple) and entry else entry
        if not isinstance(name, str):
            raise ProviderError(f"provider entries must be names or (name, options) pairs, "
                                f"got {entry!r}")
        if name not in available:
            raise ProviderError(f"provider {name!r} is not available in this onnxruntime "
                                f"(available: {', '.join(available)})")
    if not chosen:
        raise ProviderError("empty provider list")
    return chosen
