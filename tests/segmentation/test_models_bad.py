"""Bad model files, made for real from the shipped ONNX model: each a ModelError that names the
file, says what is wrong and what to do; never a raw onnxruntime or numpy error. Files that are
no model at all (truncated, corrupt, empty, missing), for every pipeline and command alike, are
checked in tests/contracts/."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import edited
from onnx import numpy_helper

from powerseg import Segmenter
from powerseg.cli import main
from powerseg.errors import ModelError, PowersegError
from powerseg.models import model_path
from powerseg.runtime.segmentation.model import REQUIRED_METADATA, SegmentationModel

RATE = 16000


@pytest.fixture(scope="module")
def shipped() -> bytes:
    return model_path("fp32").read_bytes()


@pytest.fixture(scope="module")
def proto(shipped) -> onnx.ModelProto:
    return onnx.load_from_string(shipped)


def written(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def refused(model: str, pattern: str, error: type = ModelError) -> str:
    with pytest.raises(error, match=pattern) as info:
        Segmenter(model=model, providers="cpu")
    message = str(info.value)
    assert isinstance(info.value, PowersegError) and "\n" not in message
    return message


def test_shipped_model_loads(proto):
    model = SegmentationModel("fp32", providers="cpu")
    assert model.spec.num_frames == 589 and model.spec.frame_step_samples == 270
    assert {p.key for p in proto.metadata_props} >= set(REQUIRED_METADATA)


def test_unknown_variant_and_wrong_type():
    refused("fp64", "unknown model 'fp64': use one of fp32, int8")
    refused(42, "model must be a variant name")


def test_metadata_stripped(proto, tmp_path):
    path = edited(proto, tmp_path, "nometa.onnx", lambda m: m.ClearField("metadata_props"))
    message = refused(path, "ONNX metadata lacks sample_rate, window_samples")
    assert message.startswith(f"{path}: ") and "re-export it with `powerseg export`" in message


@pytest.mark.parametrize("key", ["powerset", "frame_step_samples"])
def test_one_metadata_key_missing(key, proto, tmp_path):
    def drop(model):
        kept = [p for p in model.metadata_props if p.key != key]
        model.ClearField("metadata_props")
        model.metadata_props.extend(kept)

    path = edited(proto, tmp_path, f"no_{key}.onnx", drop)
    refused(path, f"metadata lacks {key};")


@pytest.mark.parametrize("key, value, pattern", [
    ("num_frames", "many", "malformed ONNX metadata"),
    ("powerset", "[[0, 0, 0], [1, 0", "malformed ONNX metadata"),
    ("max_speakers_per_frame", "3", "'powerset' does not match"),
    ("windows_per_run", "-1", "malformed ONNX metadata"),
    ("windows_per_run", "one", "malformed ONNX metadata"),
])
def test_malformed_metadata(key, value, pattern, proto, tmp_path):
    def change(model):
        props = {prop.key: prop for prop in model.metadata_props}
        if key in props:
            props[key].value = value
        else:  # an optional key the fp32 file does not carry
            model.metadata_props.add(key=key, value=value)

    path = edited(proto, tmp_path, "badmeta.onnx", change)
    assert "re-export" in refused(path, pattern)


def test_wrong_input_shape(proto, tmp_path):
    def half_window(model):
        model.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 80000

    path = edited(proto, tmp_path, "5s.onnx", half_window)
    message = refused(path, r"input shape \['batch', 1, 80000\] is not \(batch, 1, 160000\)")
    assert message.startswith(f"{path}: ") and "re-export" in message


def test_wrong_input_rank(proto, tmp_path):
    def drop_channel(model):
        del model.graph.input[0].type.tensor_type.shape.dim[1]

    refused(edited(proto, tmp_path, "rank2.onnx", drop_channel), "input shape|cannot load")


def test_wrong_number_of_classes(proto, tmp_path):
    def five_classes(model):  # a classifier with 5 outputs, the metadata still says 7 classes
        for init in model.graph.initializer:
            if init.dims[-1] == 7:  # the classifier's weight (128, 7) and bias (7,)
                values = numpy_helper.to_array(init)[..., :5].copy()
                init.CopyFrom(numpy_helper.from_array(values, init.name))
        model.graph.output[0].type.tensor_type.shape.dim[2].dim_value = 5

    message = refused(edited(proto, tmp_path, "classes.onnx", five_classes),
                      r"output shape \['batch', 589, 5\] is not \(batch, 589, 7\)")
    assert "re-export" in message


def test_damaged_weights_are_caught_at_run_time(proto, tmp_path, capsys):
    def poison(model):
        init = next(t for t in model.graph.initializer if t.name == "classifier.bias")
        values = numpy_helper.to_array(init).copy()
        values[3] = np.nan
        init.CopyFrom(numpy_helper.from_array(values, init.name))

    path = edited(proto, tmp_path, "nan_weights.onnx", poison)
    segmenter = Segmenter(model=path, providers="cpu")  # loads: the structure is intact
    audio = np.random.default_rng(0).normal(0, 0.1, 11 * RATE).astype(np.float32)
    with pytest.raises(ModelError, match=f"^{path}: the model produced NaN from finite audio"):
        segmenter(audio, sample_rate=RATE)
    out = tmp_path / "scores.npz"
    assert main(["scores", "--model", path, "--provider", "cpu", "-o", str(out),
                 str(_wav(tmp_path, audio))]) == 1
    assert "weights are corrupt" in capsys.readouterr().err and not out.exists()


def _wav(tmp_path, audio):
    import soundfile as sf

    path = tmp_path / "noise.wav"
    sf.write(path, audio, RATE, subtype="FLOAT")
    return path


def test_info_on_a_bad_model_exits_1(shipped, tmp_path):
    path = written(tmp_path, "half.onnx", shipped[:len(shipped) // 2])
    assert main(["info", "--model", path]) == 1
