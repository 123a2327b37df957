"""Execution providers: selection, errors, fallback notice, and the fp16 (GPU) variant."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
import pytest

from helpers import RECORDINGS, wav
from powerseg import ProviderError, Segmenter
from powerseg.cli import main
from powerseg.runtime.providers import CPU, CUDA, resolve_providers

HAS_CUDA = CUDA in ort.get_available_providers()


def test_cpu_and_auto_on_a_cpu_build():
    assert resolve_providers("cpu") == [CPU]
    assert resolve_providers("CPUExecutionProvider") == [CPU]
    assert resolve_providers(["CPUExecutionProvider"]) == [CPU]
    if not HAS_CUDA:
        assert resolve_providers("auto") == [CPU]


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has CUDA")
def test_cuda_unavailable_is_a_clear_error(capsys):
    with pytest.raises(ProviderError, match="onnxruntime-gpu|powerseg\\[gpu\\]"):
        Segmenter(providers="cuda")
    assert main(["vad", "x.wav", "--provider", "cuda"]) == 2
    assert "CUDA" in capsys.readouterr().err


@pytest.mark.parametrize("providers", ["tpu", ["NoSuchExecutionProvider"], []])
def test_unknown_providers(providers):
    with pytest.raises(ProviderError):
        resolve_providers(providers)


def test_cuda_options_keep_fp32_exact():
    if HAS_CUDA:
        name, options = resolve_providers("cuda")[0]
        assert name == CUDA and options["use_tf32"] == "0"


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider':UserWarning")
def test_auto_fallback_is_announced(monkeypatch, caplog):
    """A GPU build whose CUDA cannot start: onnxruntime falls back, and we say so."""
    if HAS_CUDA:
        pytest.skip("CUDA starts here")
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    with caplog.at_level(logging.WARNING, logger="powerseg"):
        seg = Segmenter(providers="auto")
    assert seg.provider == CPU
    assert any("CUDAExecutionProvider could not start" in r.message for r in caplog.records)


@pytest.mark.slow
def test_fp16_keeps_frame_decisions_on_cpu():
    """The GPU variant's arithmetic checked on CPU: >= 99.5% of fp32's argmax on all shared audio."""
    from powerseg.runtime.audio import load_audio
    from powerseg.runtime.framing import Framing
    from powerseg.runtime.segmentation.model import SegmentationModel

    fp32, fp16 = SegmentationModel("fp32", providers="cpu"), SegmentationModel("fp16", providers="cpu")
    same = total = 0
    for name, uri in RECORDINGS:
        windows = Framing(fp32.spec, 1.0).windows(load_audio(wav(name, uri), 16000))
        for i in range(0, len(windows), 16):
            a, b = fp32(windows[i:i + 16]).argmax(-1), fp16(windows[i:i + 16]).argmax(-1)
            same, total = same + int((a == b).sum()), total + a.size
    assert total > 300_000
    assert same / total >= 0.995


@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and a CUDA device")
def test_cuda_fp32_parity_with_cpu():
    from powerseg.samples import sample_path

    cpu = Segmenter(providers="cpu")(sample_path())
    gpu = Segmenter(providers="cuda")(sample_path())
    assert gpu.provider == CUDA
    assert (np.abs(gpu.speech - cpu.speech) <= 1e-3).mean() >= 0.999
    assert (np.abs(gpu.overlap - cpu.overlap) <= 1e-3).mean() >= 0.999
