"""The shipped CAM++ ONNX file: self-describing, equal to the torch rebuild on real speech, and what
``powerseg export --embedding-checkpoint`` produces."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from powerseg.errors import VerificationError
from powerseg.export.campplus_checkpoint import CAMPPLUS_SHA256, load_campplus
from powerseg.export.campplus_onnx import (LENGTHS, MAX_ABS_DIFF, MIN_COSINE, compare, verification_inputs,
                                           verify_campplus)
from powerseg.models import SPEAKER_EMBEDDING, model_path
from powerseg.runtime.embedding.embedder import EmbeddingModel
from powerseg.samples import sample_path

SHIPPED = model_path("campplus", SPEAKER_EMBEDDING)


@pytest.fixture(scope="module")
def campplus(shared):
    return load_campplus(shared / "checkpoints" / "campplus" / "campplus_cn_en_common.pt")


def metadata(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def test_shipped_model_is_self_describing():
    proto = onnx.load(str(SHIPPED))
    onnx.checker.check_model(proto, full_check=True)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["kind"] == "speaker_embedding" and meta["variant"] == "fp32"
    assert (meta["sample_rate"], meta["embedding_dim"]) == ("16000", "192")
    assert (meta["min_frames"], meta["min_samples"]) == ("3", "720")
    fbank = {k: v for k, v in meta.items() if k.startswith("fbank_")}
    assert fbank == {
        "fbank_sample_rate": "16000", "fbank_num_mel_bins": "80",
        "fbank_frame_length_samples": "400", "fbank_frame_shift_samples": "160",
        "fbank_fft_size": "512", "fbank_window": "povey", "fbank_preemphasis": "0.97",
        "fbank_remove_dc_offset": "1", "fbank_dither": "0.0", "fbank_low_freq": "20.0",
        "fbank_high_freq": "8000.0", "fbank_snip_edges": "1",
        "fbank_log_floor": str(float(np.finfo(np.float32).eps)),
        "fbank_waveform_scale": "1.0", "fbank_mean_normalization": "1"}
    assert meta["checkpoint_sha256"] == CAMPPLUS_SHA256
    assert meta["license"].startswith("Apache-2.0") and "LICENSE.campplus" in meta["license"]
    assert meta["producer"] == "powerseg"
    dims = [[d.dim_param or d.dim_value for d in io.type.tensor_type.shape.dim]
            for io in (proto.graph.input[0], proto.graph.output[0])]
    assert dims == [["batch", "frames", 80], ["batch", 192]]


def test_licence_ships_beside_the_model():
    text = (SHIPPED.parent / "LICENSE.campplus").read_text()
    assert "Apache License" in text and "3D-Speaker" in text and "CAM++" in text


def test_manifest_entry():
    manifest = json.loads((SHIPPED.parent / "manifest.json").read_text())
    assert {entry["kind"] for entry in manifest["files"].values()} == {
        "segmentation", "segmentation_front", "speaker_embedding"}
    entry = manifest["files"][SHIPPED.name]
    assert entry["kind"] == "speaker_embedding" and entry["checkpoint_sha256"] == CAMPPLUS_SHA256
    parity = entry["parity_vs_torch"]
    assert parity["max_abs_diff"] <= MAX_ABS_DIFF and parity["min_cosine"] >= MIN_COSINE
    assert parity["frames"][0] == 3 and parity["frames"][-1] > 998  # shortest input to whole files
    assert "--embedding-checkpoint" in manifest["command"]


def test_onnx_matches_torch_rebuild_on_real_speech(campplus):
    """Crops of 3 to 998 frames of the bundled recording and the whole 30 s (2998 frames)."""
    inputs = verification_inputs([sample_path()])
    assert sorted(len(f) for f in inputs) == [*LENGTHS, 2998]
    parity = compare(campplus, EmbeddingModel(SHIPPED, providers="cpu"), inputs)
    assert parity.max_abs_diff <= MAX_ABS_DIFF and parity.min_cosine >= MIN_COSINE


def test_batches_of_equal_length_match_single_runs(campplus):
    """The batch axis is exact: pairs of equal frame counts may run together."""
    feats = verification_inputs([sample_path()])[-1]
    batch = np.stack([feats[:400], feats[1000:1400], feats[2000:2400]])
    model = EmbeddingModel(SHIPPED, providers="cpu")
    single = np.concatenate([model(b[None]) for b in batch])
    np.testing.assert_allclose(model(batch), single, atol=1e-5)


def test_verify_catches_a_wrong_model(campplus, tmp_path):
    """(The right model passing is the parity test above, which runs the same comparison.)"""
    import soundfile as sf

    excerpt = tmp_path / "excerpt.wav"  # 4 s of speech: the padded chunk's crops and all 398 frames
    sf.write(excerpt, sf.read(str(sample_path()), dtype="float32")[0][96000:160000], 16000)
    broken = type(campplus)()
    broken.load_state_dict(campplus.state_dict())
    with torch.no_grad():
        broken.xvector.block2.tdnnd5.nonlinear1.batchnorm.bias[3] += 0.5  # one value of 6.8 M
    broken.eval()
    with pytest.raises(VerificationError, match="embeddings disagree on 13 real inputs of 3 to 998"):
        verify_campplus(SHIPPED, broken, [excerpt])


@pytest.mark.slow
def test_export_command_reproduces_shipped_model(tmp_path, checkpoint, shared):
    """The command that makes the segmentation files makes campplus.onnx beside them.

    The graph is the same node for node. Its constants are not bit-equal across machines: torch
    folds each batch norm into its convolution with the CPU's own vector kernels, so an AVX-512
    Xeon and the machine that made the shipped file differ by a few ulps (measured 7.2e-7 on
    weights up to 50). Through 2261 nodes that gives up to 2.9e-5 on embedding values of up to
    about 4; 1e-4 bounds it, 10x under the 1e-3 the export's own verification allows.
    """
    from powerseg.cli import main

    campplus_pt = shared / "checkpoints" / "campplus" / "campplus_cn_en_common.pt"
    out = tmp_path / "segmentation-3.0.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--output", str(out),
                 "--embedding-checkpoint", str(campplus_pt)]) == 0
    made = tmp_path / SHIPPED.name
    assert metadata(made) == metadata(SHIPPED)
    graphs = [onnx.load(str(p)).graph for p in (SHIPPED, made)]
    assert [n.op_type for n in graphs[0].node] == [n.op_type for n in graphs[1].node]
    constants = [{i.name: onnx.numpy_helper.to_array(i) for i in g.initializer} for g in graphs]
    assert constants[0].keys() == constants[1].keys()
    for name, value in constants[0].items():
        np.testing.assert_allclose(constants[1][name], value, atol=2e-6, rtol=1e-6, err_msg=name)
    inputs = verification_inputs([sample_path()])
    shipped, regenerated = (EmbeddingModel(p, providers="cpu") for p in (SHIPPED, made))
    for feats in inputs:
        np.testing.assert_allclose(regenerated(feats[None]), shipped(feats[None]), atol=1e-4, rtol=0)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["files"][made.name]["kind"] == "speaker_embedding"
    assert manifest["files"][out.name]["kind"] == "segmentation"
