"""The model itself, on every shared recording: torch rebuild and shipped ONNX vs pyannote.audio."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import RECORDING_IDS, RECORDINGS, reference, wav
from powerseg.export.verify import compare, onnx_logprobs, torch_logprobs
from powerseg.runtime.audio import load_audio
from powerseg.runtime.framing import Framing
from powerseg.runtime.segmentation.model import SegmentationModel


@pytest.fixture(scope="module")
def fp32() -> SegmentationModel:
    return SegmentationModel("fp32", providers="cpu")


def windows(model: SegmentationModel, name: str, uri: str) -> np.ndarray:
    return Framing(model.spec, 1.0).windows(load_audio(wav(name, uri), model.spec.sample_rate))


# The torch rebuild is the same computation as pyannote's, but float32 kernels round differently
# from one CPU to another (AVX2 vs AVX-512 torch, onnxruntime's MLAS), and the LSTM amplifies a
# last-bit difference on the few frames where the model is near a tie. Measured: on the machine
# that made the reference (AVX-512) torch is within 3e-7 everywhere; on an AVX2 Zen 3, trn09 is
# 1.24e-3 off at worst, sim1_02 5.4e-5, the rest <= 1.1e-5, with no argmax change. onnxruntime,
# a further rounding of the same graph, is a measured bound for any such CPU: 99.6 % of all frames
# within 1e-5, >= 99.75 % of each file's within 1e-4, worst 2.2e-3, so the bars below hold for any
# x86-64 float32 implementation, and a wrong computation (one bias off, a swapped weight) breaks
# them by orders of magnitude. What must not move at all is the decision: argmax on every frame.
TIGHT, TIGHT_SHARE = 1e-5, 0.99  # pooled over all recordings
PER_FILE, PER_FILE_SHARE = 1e-4, 0.995
WORST = 1e-2


@pytest.fixture(scope="module")
def torch_vs_pyannote(torch_model, fp32) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per recording: pyannote's and torch's log-probabilities (chunks, frames, classes)."""
    out = {}
    for name, uri in RECORDINGS:
        out[uri] = reference(name, uri)["logprobs"], torch_logprobs(torch_model,
                                                                    windows(fp32, name, uri))
    return out


def probability_differences(pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The largest of the 7 probability differences, per frame."""
    expected, got = pair
    return np.abs(np.exp(got) - np.exp(expected)).max(axis=-1)


@pytest.mark.parametrize("uri", RECORDING_IDS)
def test_torch_reproduces_pyannote(uri, torch_vs_pyannote):
    expected, got = torch_vs_pyannote[uri]
    assert got.shape == expected.shape
    assert (got.argmax(-1) == expected.argmax(-1)).all()
    diff = probability_differences((expected, got))
    assert (diff <= PER_FILE).mean() >= PER_FILE_SHARE
    assert diff.max() <= WORST


def test_torch_reproduces_pyannote_all_recordings(torch_vs_pyannote):
    diff = np.concatenate([probability_differences(p).ravel() for p in torch_vs_pyannote.values()])
    assert diff.size > 300_000
    assert (diff <= TIGHT).mean() >= TIGHT_SHARE


@pytest.fixture(scope="module")
def onnx_vs_pyannote(fp32) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for name, uri in RECORDINGS:
        out[uri] = reference(name, uri)["logprobs"], onnx_logprobs(fp32, windows(fp32, name, uri))
    return out


@pytest.mark.parametrize("uri", RECORDING_IDS)
def test_onnx_fp32_each_recording(uri, onnx_vs_pyannote):
    expected, got = onnx_vs_pyannote[uri]
    assert got.shape == expected.shape
    parity = compare(expected, got)
    # float32 rounding differs between torch's and onnxruntime's LSTM and is amplified on a
    # few frames: a handful of frames per file may pass 1e-3, none may pass 2e-2.
    assert parity.within_tolerance >= 0.999
    assert parity.worst <= 2e-2
    assert parity.argmax_agreement >= 0.9999


def test_onnx_fp32_all_recordings(onnx_vs_pyannote):
    expected = np.concatenate([e for e, _ in onnx_vs_pyannote.values()])
    got = np.concatenate([g for _, g in onnx_vs_pyannote.values()])
    parity = compare(expected, got)
    assert parity.frames > 300_000
    assert parity.within_tolerance >= 0.9999  # frames whose 7 probabilities agree within 1e-3
    assert parity.worst <= 2e-2
    assert parity.argmax_agreement >= 0.9999
