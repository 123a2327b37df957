"""The shared sinc front-end pair (front + tail ONNX) agrees with the full model on real audio."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import wav
from powerseg.export.shared_front import export_pair, pair_logprobs, verify_pair
from powerseg.export.verify import compare
from powerseg.models import model_path
from powerseg.runtime.audio import load_audio
from powerseg.runtime.model import OnnxModel

from powerseg.errors import VerificationError

FILES = [("pyannote_sample", "sample"), ("ami_pyannote_debug", "dev00"),
         ("librispeech_sim_a", "sim1_00")]


@pytest.fixture(scope="module")
def pair(torch_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pair")
    front, tail = folder / "front.onnx", folder / "tail.onnx"
    export_pair(torch_model, front, tail)
    return front, tail


def test_pair_is_self_describing(pair):
    meta = {p.key: p.value for p in onnx.load(str(pair[1])).metadata_props}
    assert meta["role"] == "shared_tail" and meta["sinc_stride"] == "10"
    assert float(meta["wav_norm_gamma"]) > 0  # what makes the shared front-end exact


@pytest.mark.parametrize("step", [16000, 80000])
def test_pair_matches_full_model(pair, step):
    full = OnnxModel("fp32", providers="cpu")
    refs, outs = [], []
    for name, uri in FILES:
        signal = load_audio(wav(name, uri), 16000)
        signal = np.pad(signal, (0, max(0, 160000 - len(signal))))
        starts = list(range(0, len(signal) - 160000 + 1, step))
        windows = np.stack([signal[s:s + 160000] for s in starts])
        refs.append(full(windows))
        outs.append(pair_logprobs(*pair, windows, signal, starts))
    parity = compare(np.concatenate(refs), np.concatenate(outs))
    assert parity.within_tolerance >= 0.9999 and parity.argmax_agreement >= 0.9999, parity



def test_export_time_check_passes_and_catches_a_mismatch(pair):
    audio = [wav("pyannote_sample", "sample")]
    assert verify_pair(*pair, model_path("fp32"), audio).argmax_agreement >= 0.9999
    with pytest.raises(VerificationError):  # int8 is not what the fp32 pair computes
        verify_pair(*pair, model_path("int8"), audio)
