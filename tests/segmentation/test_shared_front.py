"""The shared front-end pair (front once over the signal, tail per window) against the full model.

The pair is the default path on CPU for fp32 and int8. Bars from the performance issue: pair vs
full model, probabilities within 1e-3 on >= 99.99 % of frames and the same argmax on >= 99.99 %,
VAD/OSD regions identical on the shared audio; the int8 pair within 1 % of fp32's speech and
3 % of its overlap, and >= 98.5 % of frame decisions up to the order of each window's speakers
(test_runtime_parity.py, where int8 runs as shipped: on its pair).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from helpers import RECORDINGS, wav

from powerseg import Segmenter
from powerseg.errors import ModelError, OptionError, VerificationError
from powerseg.export.verify import compare, window_logprobs
from powerseg.models import model_path, sha256, shared_tail_path
from powerseg.runtime.audio import load_audio
from powerseg.runtime.framing import Framing
from powerseg.runtime.segmentation.model import SegmentationModel
from powerseg.runtime.windows import stack
from powerseg.samples import sample_path

RATE = 16000
FAST = {"sample", "dev00", "sim1_00"}
ALL = [pytest.param(name, uri, id=uri, marks=() if uri in FAST else pytest.mark.slow)
       for name, uri in RECORDINGS]


def metadata_of(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


@pytest.fixture(scope="module")
def models():
    return {"full": SegmentationModel("fp32", providers="cpu"),
            "pair": SegmentationModel(shared_tail_path("fp32"), providers="cpu")}


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_shipped_pair_is_self_describing(variant):
    tail = metadata_of(shared_tail_path(variant))
    full = metadata_of(model_path(variant))
    assert tail["role"] == "shared_tail" and tail["variant"] == variant
    for key in ("sample_rate", "window_samples", "num_frames", "frame_start_samples",
                "frame_step_samples", "frame_duration_samples", "powerset", "checkpoint_sha256"):
        assert tail[key] == full[key], key
    assert tail.get("windows_per_run") == full.get("windows_per_run")
    ref = json.loads(tail["front_model"])
    front_path = shared_tail_path(variant).with_name(ref["file"])
    assert sha256(front_path) == ref["sha256"]
    front = metadata_of(front_path)
    assert front["role"] == "shared_front" and front["kind"] == "segmentation_front"
    assert (front["sinc_stride"], front["sinc_kernel"], front["pool"]) == ("10", "251", "3")
    # the block reads its frames plus 2 (pooling phases) of the stride-10, 251-tap conv
    assert int(front["block_samples"]) == 10 * (int(front["block_frames"]) + 1) + 251


@pytest.mark.parametrize(("name", "uri"), ALL)
@pytest.mark.parametrize("step", [1.0, 2.5])
def test_pair_matches_full_model(models, name, uri, step):
    signal = load_audio(wav(name, uri), RATE)
    framing = Framing(models["full"].spec, step)
    full = models["full"](framing.windows(signal))
    pair = window_logprobs(models["pair"], signal, framing)
    parity = compare(full, pair)
    # measured over all shared audio at 1 s: 1 frame of 328,662 flips, worst 1.8e-3
    assert parity.within_tolerance >= 0.9999 and parity.argmax_agreement >= 0.9999, parity


@pytest.mark.parametrize(("name", "uri"), ALL)
def test_pair_gives_the_full_models_regions(name, uri):
    pair, full = Segmenter(providers="cpu"), Segmenter(providers="cpu", shared_front=False)
    assert pair.shared_front and not full.shared_front
    a, b = pair(wav(name, uri)), full(wav(name, uri))
    assert a.vad() == b.vad() and a.osd() == b.osd()
    for key in ("speech", "overlap"):  # one flipped frame of one chunk moves its frame's score
        assert (np.abs(getattr(a, key) - getattr(b, key)) <= 1e-3).mean() >= 0.999, key


def test_a_window_alone_matches_the_full_model(models):
    """``model(windows)``: each window's own front rows, last 10 samples unused by the conv."""
    windows = Framing(models["full"].spec, 3.0).windows(load_audio(sample_path(), RATE))
    parity = compare(models["full"](windows), models["pair"](windows))
    assert parity.within_tolerance >= 0.9999 and parity.argmax_agreement == 1.0


def test_push_sizes_do_not_change_a_single_input_byte(models):
    """Front blocks sit on a fixed grid: any push sizes give byte-identical windows."""
    signal = load_audio(sample_path(), RATE)[:23 * RATE + 1234]
    framing = Framing(models["full"].spec, 1.0)

    def windows(pushes):
        source, made, at = models["pair"].windows(framing.step_samples), [], 0
        for size in pushes:
            source.append(signal[at:at + size])
            at += size
            made += [stack([w]) for w in iter(source.next, None)]  # copies: views move on append
        full, has_last = framing.num_chunks(len(signal))
        return made + [stack([w]) for w in source.rest(full + has_last - len(made))]

    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 9000, 400)
    expected = windows([len(signal)])
    assert len(expected) == 15  # 14 full windows and the padded last one
    for got in (windows(sizes), windows([1] * 3000 + [len(signal)])):
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            for key in b:
                np.testing.assert_array_equal(a[key], b[key])


def test_steps_the_pair_cannot_take_use_the_full_model():
    assert Segmenter(step=1.0).shared_front and Segmenter(model="int8").shared_front
    assert not Segmenter(step=1.2345).shared_front  # 19752 samples: not whole conv strides
    assert Segmenter(step=2.5).shared_front and not Segmenter(step=3.0).shared_front  # pays to 2.5 s
    assert not Segmenter(model="fp16").shared_front  # for GPUs: no pair
    assert not Segmenter(model=str(model_path("fp32"))).shared_front  # a path is what it names
    tail = Segmenter(model=str(shared_tail_path("fp32")))
    assert tail.shared_front and tail.options.model.endswith(".tail.onnx")
    with pytest.raises(OptionError, match="whole number of 10-sample conv strides"):
        Segmenter(model=str(shared_tail_path("fp32")), step=1.2345)


def test_a_tail_without_its_front_is_refused(tmp_path):
    tail = tmp_path / "segmentation-3.0.tail.onnx"
    tail.write_bytes(shared_tail_path("fp32").read_bytes())
    with pytest.raises(ModelError, match="is not beside it"):
        SegmentationModel(tail, providers="cpu")
    front = tmp_path / json.loads(metadata_of(tail)["front_model"])["file"]
    front.write_bytes(model_path("fp32").with_name(front.name).read_bytes()[:-1] + b"\0")
    with pytest.raises(ModelError, match="sha256 differs"):
        SegmentationModel(tail, providers="cpu")


def test_export_time_check_passes_and_catches_a_mismatch(tmp_path, torch_model):
    from powerseg.export.shared_front import export_pair, verify_pair

    front, tail = tmp_path / "m.front.onnx", tmp_path / "m.tail.onnx"
    export_pair(torch_model, front, tail)
    audio = [sample_path()]
    assert verify_pair(model_path("fp32"), tail, audio).argmax_agreement >= 0.9999
    with pytest.raises(VerificationError, match="disagree"):  # int8 is not what this pair computes
        verify_pair(model_path("int8"), tail, audio)


def _edited_pair(tmp_path, variant="fp32", front_meta=None, tail_meta=None):
    """A copy of a shipped pair with metadata entries changed (None: deleted)."""
    from powerseg.export.onnx_export import set_metadata
    from powerseg.export.shared_front import front_reference

    tail_src = shared_tail_path(variant)
    front_src = tail_src.with_name(json.loads(metadata_of(tail_src)["front_model"])["file"])
    front, tail = tmp_path / front_src.name, tmp_path / tail_src.name
    for src, dst, changes in ((front_src, front, front_meta), (tail_src, tail, tail_meta)):
        proto = onnx.load(str(src))
        props = {p.key: p.value for p in proto.metadata_props}
        for key, value in (changes or {}).items():
            if value is None:
                props.pop(key, None)
            else:
                props[key] = value
        if dst == tail:
            props["front_model"] = front_reference(front)
        set_metadata(proto, props)
        onnx.save(proto, str(dst))
    return tail


@pytest.mark.parametrize(("front_meta", "tail_meta", "pattern"), [
    ({"block_frames": None}, None, "front metadata lacks or garbles 'block_frames'"),
    ({"block_samples": "2660"}, None, "do not match the block geometry"),
    (None, {"sinc_filter_sums": None}, "tail metadata lacks or garbles 'sinc_filter_sums'"),
    (None, {"wav_norm_gamma": "-0.5"}, "do not allow a shared front-end"),
    (None, {"sinc_filter_sums": "[1.0, 2.0]"}, "is not first"),
])
def test_a_pair_with_wrong_metadata_is_refused(tmp_path, front_meta, tail_meta, pattern):
    tail = _edited_pair(tmp_path, front_meta=front_meta, tail_meta=tail_meta)
    with pytest.raises(ModelError, match=pattern) as info:
        Segmenter(model=str(tail), providers="cpu")
    assert str(info.value).startswith(str(tmp_path)) and "re-export" in str(info.value)


def test_the_options_say_which_path_ran(tmp_path):
    from powerseg import Diarizer
    from powerseg.cli import main

    a, b = tmp_path / "pair.json", tmp_path / "full.json"
    assert main(["vad", str(sample_path()), "-o", str(a), "--provider", "cpu"]) == 0
    assert main(["vad", str(sample_path()), "-o", str(b), "--provider", "cpu",
                 "--no-shared-front"]) == 0
    pair, full = json.loads(a.read_text()), json.loads(b.read_text())
    assert pair["options"]["shared_front"] is True and full["options"]["shared_front"] is False
    assert pair["regions"] == full["regions"]
    assert not Diarizer(shared_front=False, providers="cpu").segmenter.shared_front


@pytest.mark.parametrize("seconds", [10.0, 4.0])
def test_an_array_of_one_window_runs_the_full_model(seconds):
    """For one window the pair's block runs cost more than the full model's own front
    (benchmarks/README.md): a one-window array takes the full model, with its exact scores;
    a longer one keeps the pair."""
    audio = load_audio(sample_path(), RATE)
    one, longer = audio[:round(seconds * RATE)], audio[:15 * RATE]
    seg, full = Segmenter(soft=True), Segmenter(soft=True, shared_front=False)
    assert seg.shared_front
    a, b = seg(one, sample_rate=RATE), full(one, sample_rate=RATE)
    np.testing.assert_array_equal(a.speech, b.speech)
    np.testing.assert_array_equal(a.activations, b.activations)
    assert seg._whole is not None and seg._whole.path == model_path("fp32")
    pair = Segmenter(soft=True)
    pair(longer, sample_rate=RATE)
    assert pair._whole is None


def test_the_diarizer_keeps_the_pair_for_one_window():
    """A live diarization stream runs the pair: its offline result must too, however short."""
    from powerseg import Diarizer

    diarizer = Diarizer(providers="cpu")
    audio = load_audio(sample_path(), RATE)[:10 * RATE]
    stream = diarizer.stream(latency=2.0)
    stream.push(audio)
    end = stream.flush()
    offline = diarizer(audio, sample_rate=RATE)
    assert diarizer.segmenter._whole is None
    assert end.diarization.to_rttm("x") == offline.to_rttm("x")
