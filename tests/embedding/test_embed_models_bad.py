"""Bad or wrong-kind model files for Embedder (and the embedding model given to Segmenter), made
for real from the shipped ONNX files: each a ModelError naming the file and what to do. Files
that are no model at all (truncated, empty, missing), for every pipeline alike, are checked in
tests/contracts/test_pipelines.py."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import edited
from onnx import numpy_helper

from powerseg import Embedder, Segmenter
from powerseg.errors import ModelError, PowersegError
from powerseg.models import SPEAKER_EMBEDDING, model_path

CAMPPLUS = model_path("campplus", SPEAKER_EMBEDDING)


@pytest.fixture(scope="module")
def proto() -> onnx.ModelProto:
    return onnx.load(str(CAMPPLUS))


def refused(model, pattern: str, error: type = ModelError) -> str:
    with pytest.raises(error, match=pattern) as info:
        Embedder(model=model, providers="cpu")
    message = str(info.value)
    assert isinstance(info.value, PowersegError) and "\n" not in message
    return message


def test_segmentation_model_is_not_an_embedding_model():
    path = model_path("fp32")
    message = refused(path, "a segmentation model, not a speaker-embedding model; give Embedder")
    assert message.startswith(f"{path}: ")
    refused("fp32", r"unknown model 'fp32' \('fp32' is the segmentation model, for Segmenter\): "
            "use one of campplus")


def test_embedding_model_is_not_a_segmentation_model():
    with pytest.raises(ModelError, match=f"^{CAMPPLUS}: a speaker-embedding model, not a "
                       "segmentation model; give Segmenter"):
        Segmenter(model=CAMPPLUS, providers="cpu")
    with pytest.raises(ModelError, match=r"'campplus' is the speaker-embedding model, for Embedder"):
        Segmenter(model="campplus", providers="cpu")


def test_a_model_of_the_wrong_type_is_refused():
    refused(3.5, r"model must be a variant name \(campplus\)")


def test_no_kind_in_metadata(proto, tmp_path):
    path = edited(proto, tmp_path, "nometa.onnx", lambda m: m.ClearField("metadata_props"))
    refused(path, "not a powerseg export \\(its metadata has no 'kind'\\), not a speaker-embedding")


def _drop(key):
    def edit(model):
        kept = [p for p in model.metadata_props if p.key != key]
        model.ClearField("metadata_props")
        model.metadata_props.extend(kept)
    return edit


def _set(key, value):
    def edit(model):
        for prop in model.metadata_props:
            if prop.key == key:
                prop.value = value
    return edit


@pytest.mark.parametrize("edit, pattern", [
    (_drop("embedding_dim"), "metadata lacks embedding_dim; not a powerseg speaker-embedding"),
    (_drop("fbank_num_mel_bins"), "metadata lacks fbank_num_mel_bins"),
    (_set("embedding_dim", "many"), "malformed ONNX metadata"),
    (_set("min_frames", "0"), "must be positive"),
    (_set("embedding_dim", "512"), r"output shape \['batch', 192\] is not \(batch, 512\)"),
    (_set("fbank_num_mel_bins", "64"), r"input shape \['batch', 'frames', 80\] is not "
                                       r"\(batch, frames, 64\)"),
    (_set("fbank_window", "hann"), "unusable fbank metadata"),
    (_set("kind", "vocoder"), "a 'vocoder' model, not a speaker-embedding model"),
])
def test_bad_metadata(proto, tmp_path, edit, pattern):
    message = refused(edited(proto, tmp_path, "bad.onnx", edit), pattern)
    assert "bad.onnx: " in message


def test_fixed_frame_count_is_refused(proto, tmp_path):
    def fix(model):
        model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 998

    refused(edited(proto, tmp_path, "fixed.onnx", fix), "with any number of frames")


def test_nan_weights_are_caught_at_run_time(proto, tmp_path):
    def poison(model):
        for init in model.graph.initializer:
            values = numpy_helper.to_array(init)
            if values.dtype == np.float32 and values.size > 1000:
                init.CopyFrom(numpy_helper.from_array(np.full_like(values, np.nan), init.name))
                return

    embedder = Embedder(model=edited(proto, tmp_path, "nan.onnx", poison), providers="cpu")
    noise = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    with pytest.raises(ModelError, match="nan.onnx: the model produced NaN or Inf from finite "
                       "features; its weights are corrupt"):
        embedder.embed(noise, sample_rate=16000)
