"""The export stage: shipped files are self-describing, verified, and reproducible from the checkpoint."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from powerseg.errors import VerificationError
from powerseg.export.onnx_export import export_onnx
from powerseg.export.verify import compare, verify
from powerseg.models import model_path, sha256
from powerseg.runtime.audio import load_audio
from powerseg.runtime.framing import Framing
from powerseg.runtime.segmentation.model import SegmentationModel
from powerseg.samples import sample_path

KEYS = ("kind", "sample_rate", "window_samples", "frame_start_samples", "frame_step_samples",
        "frame_duration_samples", "num_speakers", "max_speakers_per_frame", "powerset",
        "checkpoint_sha256", "producer", "producer_version")


def metadata_of(proto: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


@pytest.mark.parametrize("variant", ["fp32", "int8", "fp16"])
def test_shipped_model_is_self_describing(variant):
    proto = onnx.load(str(model_path(variant)))
    onnx.checker.check_model(proto, full_check=True)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    meta = metadata_of(proto)
    assert set(KEYS) <= set(meta)
    assert (meta["kind"], meta["variant"]) == ("segmentation", variant)
    assert (meta["sample_rate"], meta["window_samples"]) == ("16000", "160000")
    assert (meta["frame_step_samples"], meta["frame_duration_samples"]) == ("270", "991")
    assert json.loads(meta["powerset"]) == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1],
                                            [1, 1, 0], [1, 0, 1], [0, 1, 1]]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [1, 160000]


def test_manifest_checksums_match_shipped_files():
    manifest = json.loads((model_path("fp32").parent / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        assert sha256(model_path("fp32").parent / name) == entry["sha256"], name


def test_verify_catches_a_wrong_export(tmp_path, torch_model):
    path = export_onnx(torch_model, tmp_path / "m.onnx")
    assert verify(path, torch_model, [sample_path()]).argmax_agreement >= 0.9999
    broken = type(torch_model)()  # same architecture, one bias off by 0.5
    broken.load_state_dict(torch_model.state_dict())
    with torch.no_grad():
        broken.classifier.bias[0] += 0.5
    broken.eval()
    with pytest.raises(VerificationError, match="disagree"):
        verify(path, broken, [sample_path()])


@pytest.mark.slow
def test_export_command_reproduces_shipped_models(tmp_path, checkpoint):
    from powerseg.cli import main
    from powerseg.models import shared_tail_path
    from powerseg.export.verify import window_logprobs

    out = tmp_path / "segmentation-3.0.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--output", str(out),
                 "--quantize", "int8", "fp16"]) == 0
    signal = load_audio(sample_path(), 16000)
    framing = Framing(SegmentationModel("fp32").spec, 1.0)
    windows = framing.windows(signal)
    for shipped_path, name in ((model_path("fp32"), out.name),
                               (model_path("int8"), "segmentation-3.0.int8.onnx"),
                               (model_path("fp16"), "segmentation-3.0.fp16.onnx"),
                               (shared_tail_path("fp32"), "segmentation-3.0.tail.onnx"),
                               (shared_tail_path("int8"), "segmentation-3.0.int8.tail.onnx"),
                               (shared_tail_path("fp32").with_name("segmentation-3.0.front.onnx"),
                                "segmentation-3.0.front.onnx")):
        shipped, regenerated = onnx.load(str(shipped_path)), onnx.load(str(out.parent / name))
        # Same graph, same weights; the sinc filters are computed by torch's trig kernels, whose
        # last bits can differ between CPUs (and int8 rounds weights that sit on a .5 boundary),
        # so the promise is the verification's parity, not identical bytes: the filter sums and
        # the front's checksum in a tail's metadata may differ in those bits too.
        a, b = metadata_of(shipped), metadata_of(regenerated)
        assert a.keys() == b.keys(), name
        for key in set(a) - {"front_model", "sinc_filter_sums"}:
            assert a[key] == b[key], (name, key)
        if "sinc_filter_sums" in a:
            np.testing.assert_allclose(json.loads(a["sinc_filter_sums"]),
                                       json.loads(b["sinc_filter_sums"]), rtol=0, atol=1e-6)
        assert [n.op_type for n in shipped.graph.node] == [n.op_type for n in regenerated.graph.node]
        if a.get("role") == "shared_front":
            continue  # judged through its tails
        run = (lambda m: window_logprobs(m, signal, framing)) if a.get("role") == "shared_tail" \
            else (lambda m: m(windows))
        parity = compare(run(SegmentationModel(shipped_path, providers="cpu")),
                         run(SegmentationModel(out.parent / name, providers="cpu")))
        assert parity.within_tolerance >= 0.9999 and parity.argmax_agreement >= 0.9999, name
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["files"]["segmentation-3.0.onnx"]["parity_vs_torch"]["argmax_agreement"] >= 0.9999
    assert manifest["files"]["segmentation-3.0.tail.onnx"]["parity_vs_full"]["argmax_agreement"] \
        >= 0.9999


@pytest.fixture(scope="module")
def shared_windows(shared):
    """Every 1 s-step window of every shared recording, per recording."""
    from helpers import RECORDINGS, wav
    from powerseg.export.verify import audio_windows

    fp32 = SegmentationModel("fp32", providers="cpu")
    return {uri: audio_windows(fp32, [wav(name, uri)]) for name, uri in RECORDINGS}


@pytest.mark.slow
def test_int8_decisions_within_fp32_noise_floor(shared_windows):
    """int8 keeps more of fp32's frame decisions than fp32 keeps of its own under 4-LSB
    (-78 dBFS) noise, and >= 99 % of them up to the order of each window's speaker slots.

    Both bars are CPU-independent: the floor is measured on the same machine in the same run, and
    the 7-bit weights keep onnxruntime's u8 x s8 products exact with or without AVX-512 VNNI.
    Measured (AVX-512 VNNI): int8 99.00 % raw, 99.30 % up to slot order; fp32 under 4 LSB
    98.5 %. fp32 with just 1 LSB of noise falls under 99 % raw on one recording (trn09, whose
    one near-tie window swaps its speaker slots), which is why a raw per-recording 99 % bar
    measures that near-tie, not the quantization.
    """
    from powerseg.export.verify import dithered, onnx_logprobs, speaker_order_agreement

    fp32, int8 = SegmentationModel("fp32", providers="cpu"), SegmentationModel("int8", providers="cpu")
    windows = np.concatenate(list(shared_windows.values()))
    reference = onnx_logprobs(fp32, windows)
    quantized = onnx_logprobs(int8, windows)
    kept = (quantized.argmax(-1) == reference.argmax(-1)).mean()
    floor = (onnx_logprobs(fp32, dithered(windows, lsb=4)).argmax(-1) == reference.argmax(-1)).mean()
    assert kept >= floor
    assert speaker_order_agreement(reference, quantized, fp32.spec.mapping) >= 0.99
    one_lsb = onnx_logprobs(fp32, dithered(windows, lsb=1)).argmax(-1) == reference.argmax(-1)
    sizes = np.cumsum([len(w) for w in shared_windows.values()])[:-1]
    assert min(part.mean() for part in np.split(one_lsb, sizes)) < 0.99


def test_int8_weights_are_seven_bit():
    """Full-range s8 weights saturate onnxruntime's AVX2 u8 x s8 kernel (VPMADDUBSW sums two
    products in int16); 7-bit weights keep 255 * 64 * 2 = 32640 < 32767, exact on every x86-64 CPU."""
    from onnx import numpy_helper

    proto = onnx.load(str(model_path("int8")))
    quantized = [numpy_helper.to_array(t) for t in proto.graph.initializer
                 if t.name.endswith("_quantized")]
    assert len(quantized) >= 8  # input and recurrent weights of the 4 LSTM layers
    for weights in quantized:
        assert weights.dtype == np.int8
        assert np.abs(weights.astype(np.int32)).max() <= 64  # symmetric 7-bit range


def test_int8_output_does_not_depend_on_batching():
    """Dynamic int8 scales span the whole input: the runtime runs its windows one by one."""
    windows = Framing(SegmentationModel("fp32").spec, 2.0).windows(load_audio(sample_path(), 16000))[:4]
    int8 = SegmentationModel("int8", providers="cpu")
    assert int8.spec.windows_per_run == 1
    alone = np.concatenate([int8(windows[i:i + 1]) for i in range(len(windows))])
    np.testing.assert_array_equal(int8(windows), alone)
    raw = int8.session.run(None, {int8.session.get_inputs()[0].name: windows[:, None]})[0]
    assert np.abs(np.exp(raw) - np.exp(alone)).max() > 1e-3  # what batching did before
