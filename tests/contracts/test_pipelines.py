"""The same checks over every pipeline's Python API (``PIPELINES``): bad audio files, arrays and
sample rates are typed errors naming what is wrong, bad providers, threads and model files are
refused alike, results carry the options and provider that made them, and live streams refuse
misuse alike. Real models and the bundled recording throughout.

Where a pipeline is left out of a check, the table or the check says why.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from powerseg import (Diarizer, DiarizerOptions, Embedder, EmbedderOptions, Segmenter,
                      SegmenterOptions)
from powerseg.errors import (AudioError, AudioNotFoundError, ModelError, ModelNotFoundError,
                             OptionError, PowersegError, ProviderError, StreamClosedError)
from powerseg.models import SPEAKER_EMBEDDING, model_path
from powerseg.runtime.audio import load_audio
from powerseg.samples import sample_path

RATE = 16000
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class Pipeline:
    """One way in to the models, as a caller uses it."""

    name: str
    make: Callable[..., Any]  # the constructor, given keywords
    options: type  # its frozen Options
    run: Callable[..., Any]  # (pipeline, audio, **keywords) -> its result
    # Results on the segmentation's frame grid: audio shorter than one output frame is an error.
    frames: bool = True
    # Live streams (``.stream()``): what an empty flush says (a flushed one raises
    # StreamClosedError).
    empty_flush: str | None = None


PIPELINES = [
    Pipeline("Segmenter", Segmenter, SegmenterOptions, lambda p, audio, **kw: p(audio, **kw),
             empty_flush="no samples were pushed"),
    # Whole-utterance embeddings have no frame grid: audio shorter than a segmentation frame
    # embeds (NaN below 3 fbank frames: test_embedder's test_short_utterances). No stream.
    Pipeline("Embedder", Embedder, EmbedderOptions, lambda p, audio, **kw: p.embed(audio, **kw),
             frames=False),
    Pipeline("Diarizer", Diarizer, DiarizerOptions, lambda p, audio, **kw: p(audio, **kw),
             empty_flush="no samples were pushed"),
]


def each(keep: Callable[[Pipeline], bool] = lambda p: True) -> list:
    return [pytest.param(p, id=p.name) for p in PIPELINES if keep(p)]


@pytest.fixture(scope="module")
def built() -> Callable[[Pipeline], Any]:
    """Each pipeline on CPU, made once per module on first use."""
    made: dict[str, Any] = {}

    def get(pipeline: Pipeline) -> Any:
        if pipeline.name not in made:
            made[pipeline.name] = pipeline.make(providers="cpu")
        return made[pipeline.name]

    return get


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """15 s of the bundled recording (5 to 20 s: two speakers), 16 kHz mono float32."""
    data, rate = sf.read(sample_path(), dtype="float32")
    assert rate == RATE and data.ndim == 1
    return data[5 * RATE:20 * RATE]


# ---- bad files: each a typed error naming the file and the problem -------------------------

def wav_header(rate: int, channels: int, frames: int, bits: int = 16) -> bytes:
    """A hand-made PCM WAV file (header + silent data), for headers soundfile refuses to write."""
    data = bytes(frames * channels * bits // 8)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * channels * bits // 8) & 0xFFFFFFFF,
                      channels * bits // 8, bits)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + fmt + b"data" + struct.pack("<I", len(data)) + data)


def _missing(tmp_path, speech):
    return tmp_path / "missing.wav"


def _directory(tmp_path, speech):
    path = tmp_path / "folder.wav"
    path.mkdir()
    return path


def _empty(tmp_path, speech):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    return path


def _text(tmp_path, speech):
    path = tmp_path / "notes.wav"
    path.write_text("meeting notes, not audio\n" * 20)
    return path


def _truncated_header(tmp_path, speech):
    whole = tmp_path / "whole.wav"
    sf.write(whole, speech[:RATE], RATE)
    path = tmp_path / "truncated.wav"
    path.write_bytes(whole.read_bytes()[:30])  # stops inside the fmt chunk
    return path


def _corrupt_header(tmp_path, speech):
    whole = tmp_path / "whole.wav"
    sf.write(whole, speech[:RATE], RATE)
    data = bytearray(whole.read_bytes())
    data[8:16] = b"JUNKJUNK"  # "WAVEfmt " overwritten
    path = tmp_path / "corrupt.wav"
    path.write_bytes(bytes(data))
    return path


def _header_only(tmp_path, speech):
    whole = tmp_path / "whole.wav"
    sf.write(whole, speech[:RATE], RATE)
    path = tmp_path / "header_only.wav"
    path.write_bytes(whole.read_bytes()[:44])  # a valid header, the data cut off entirely
    return path


def _truncated_flac(tmp_path, speech):
    whole = tmp_path / "whole.flac"
    sf.write(whole, speech, RATE)
    path = tmp_path / "cut.flac"
    path.write_bytes(whole.read_bytes()[:20000])  # cut in the middle of a frame
    return path


def _zero_samples(tmp_path, speech):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, np.float32), RATE)
    return path


def _shorter_than_a_frame(tmp_path, speech):
    path = tmp_path / "blip.wav"
    sf.write(path, speech[7 * RATE:7 * RATE + 500], RATE)  # 31 ms < one 62 ms frame
    return path


def _implausible_rate(tmp_path, speech):
    path = tmp_path / "rate1.wav"
    path.write_bytes(wav_header(rate=1, channels=1, frames=1000))  # would upsample to 1000 s
    return path


BAD_FILES = {
    "missing": (_missing, AudioNotFoundError, "no such file"),
    "directory": (_directory, AudioError, "is a directory"),
    "empty": (_empty, AudioError, "empty file"),
    "text named .wav": (_text, AudioError, "cannot decode audio: Format not recognised.*non-audio"),
    "truncated header": (_truncated_header, AudioError, "cannot decode audio.*repair or convert"),
    "corrupt header": (_corrupt_header, AudioError, "cannot decode audio.*repair or convert"),
    "header only": (_header_only, AudioError, "decodes to zero samples"),
    "truncated flac": (_truncated_flac, AudioError, "corrupt or truncated audio data.*re-encode"),
    "zero samples": (_zero_samples, AudioError, "decodes to zero samples"),
    "shorter than a frame": (_shorter_than_a_frame, AudioError,
                             r"31\.2 ms of audio is shorter than one output frame \(61\.9 ms\)"),
    "implausible sample rate": (_implausible_rate, AudioError, "implausible sample rate 1 Hz"),
}


@pytest.mark.parametrize("pipeline, case", [
    # the aarch64 job (.ci/arm64) runs these through the Segmenter: its one model loads fastest
    pytest.param(p, case, id=f"{p.name}-{case}",
                 marks=[pytest.mark.arm64] if p.name == "Segmenter" else [])
    for p in PIPELINES for case in BAD_FILES if p.frames or case != "shorter than a frame"])
def test_bad_files_are_typed_errors_naming_them(pipeline, case, tmp_path, speech, built):
    make, error_type, pattern = BAD_FILES[case]
    path = make(tmp_path, speech)
    with pytest.raises(error_type, match=pattern) as info:
        pipeline.run(built(pipeline), path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert isinstance(info.value, PowersegError) and isinstance(info.value, ValueError)
    if case != "shorter than a frame":  # the loader alone refuses all but this one
        with pytest.raises(error_type, match=pattern):
            load_audio(path, RATE)


@pytest.mark.parametrize("pipeline", each())
def test_a_missing_file_is_also_file_not_found(pipeline, tmp_path, built):
    with pytest.raises(FileNotFoundError):
        pipeline.run(built(pipeline), tmp_path / "nope.flac")


# ---- bad arrays and sample rates -----------------------------------------------------------

@pytest.mark.parametrize("pipeline", each())
def test_non_finite_arrays_are_refused_naming_the_first_bad_time(pipeline, speech, built):
    data = speech[:3 * RATE].copy()
    data[RATE + RATE // 2] = np.inf
    with pytest.raises(AudioError, match=r"^array: infinite sample at 1\.500 s"):
        pipeline.run(built(pipeline), data, sample_rate=RATE)
    with pytest.raises(AudioError, match="infinite sample"):  # beyond float32's range
        pipeline.run(built(pipeline), np.full(RATE, 1e300), sample_rate=RATE)


UNUSABLE_ARRAYS = {
    "empty": (np.zeros(0, np.float32), r"^array: expected a non-empty 1-D or 2-D array"),
    "3-D": (np.zeros((2, 3, 4), np.float32), r"^array: expected a non-empty 1-D or 2-D array"),
    "text": (np.array(["a", "b"]), "^array: expected numeric samples"),
    "100 samples": (np.zeros(100, np.float32), "^array: .* shorter than one output frame"),
}


@pytest.mark.parametrize("pipeline, case", [
    pytest.param(p, case, id=f"{p.name}-{case}") for p in PIPELINES for case in UNUSABLE_ARRAYS
    if p.frames or case != "100 samples"])
def test_unusable_arrays_are_refused(pipeline, case, built):
    bad, pattern = UNUSABLE_ARRAYS[case]
    with pytest.raises(AudioError, match=pattern):
        pipeline.run(built(pipeline), bad, sample_rate=RATE)


@pytest.mark.parametrize("pipeline", each())
@pytest.mark.parametrize("rate", [0, -16000, 1, 16000.0, True, 10**9])
def test_an_array_sample_rate_must_be_plausible(pipeline, rate, speech, built):
    with pytest.raises(AudioError, match="sample_rate must be an integer"):
        pipeline.run(built(pipeline), speech[:RATE], sample_rate=rate)


@pytest.mark.parametrize("pipeline", each())
def test_a_sample_rate_goes_with_arrays_only(pipeline, speech, built):
    with pytest.raises(OptionError, match="sample_rate is required"):
        pipeline.run(built(pipeline), speech[:RATE])
    with pytest.raises(OptionError, match="only for arrays"):
        pipeline.run(built(pipeline), sample_path(), sample_rate=RATE)


# ---- options, providers and model files ----------------------------------------------------

@pytest.mark.parametrize("pipeline", each())
@pytest.mark.parametrize("providers, pattern", [
    ("gpu", "unknown provider 'gpu'"), ("FooExecutionProvider", "not available"),
    (["FooExecutionProvider"], "not available"), ([], "empty provider list"),
    (3, "providers must be"), ([3], "provider entries must be"),
])
def test_unknown_providers_are_refused(pipeline, providers, pattern):
    with pytest.raises(ProviderError, match=pattern):
        pipeline.make(providers=providers)


@pytest.mark.parametrize("pipeline", each())
def test_threads_must_be_a_whole_number(pipeline):
    with pytest.raises(OptionError, match="threads must be a whole number >= 1"):
        pipeline.make(threads=0)


@pytest.mark.parametrize("pipeline", each())
def test_results_carry_their_options_and_provider(pipeline, speech, built):
    made = built(pipeline)
    result = pipeline.run(made, speech[:8 * RATE], sample_rate=RATE)
    assert result.options == made.options == pipeline.options(providers="cpu")
    assert result.provider == CPU
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.options.threads = 1


SEGMENTATION, EMBEDDING = model_path("fp32"), model_path("campplus", SPEAKER_EMBEDDING)
# Every constructor argument that takes a model file, and the shipped file of that kind.
MODEL_SLOTS = {
    "Segmenter": (lambda model: Segmenter(model=model, providers="cpu"), SEGMENTATION),
    "Embedder": (lambda model: Embedder(model=model, providers="cpu"), EMBEDDING),
    "Diarizer-segmentation": (lambda model: Diarizer(segmentation=model, providers="cpu"),
                              SEGMENTATION),
    "Diarizer-embedding": (lambda model: Diarizer(embedding=model, providers="cpu"), EMBEDDING),
}


def refused(slot: str, model: str | Path, pattern: str, error: type = ModelError) -> str:
    make, _ = MODEL_SLOTS[slot]
    with pytest.raises(error, match=pattern) as info:
        make(model)
    message = str(info.value)
    assert isinstance(info.value, PowersegError) and "\n" not in message
    return message


def written(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("slot", MODEL_SLOTS)
@pytest.mark.parametrize("keep", [0.5, 0.1, 0.999])
def test_a_truncated_model_is_refused_naming_it(slot, keep, tmp_path):
    shipped = MODEL_SLOTS[slot][1].read_bytes()
    path = written(tmp_path, "truncated.onnx", shipped[:int(len(shipped) * keep)])
    message = refused(slot, path, "onnxruntime cannot load this model")
    assert message.startswith(f"{path}: ") and "re-download" in message
    assert "[ONNXRuntimeError]" not in message  # onnxruntime's preamble is trimmed


@pytest.mark.parametrize("slot", MODEL_SLOTS)
def test_corrupt_model_bytes_are_refused(slot, tmp_path):
    data = bytearray(MODEL_SLOTS[slot][1].read_bytes())
    data[:64] = bytes(range(64))  # the protobuf's opening fields overwritten
    path = written(tmp_path, "corrupt.onnx", bytes(data))
    assert refused(slot, path, "corrupt, truncated or not an ONNX model").startswith(f"{path}: ")


@pytest.mark.parametrize("slot", MODEL_SLOTS)
@pytest.mark.parametrize("name, data", [("text.onnx", b"this is not a model\n" * 10),
                                        ("random.onnx", bytes(np.random.default_rng(0).integers(
                                            0, 256, 4096, dtype=np.uint8)))])
def test_what_is_not_a_model_is_refused(slot, name, data, tmp_path):
    path = written(tmp_path, name, data)
    assert refused(slot, path, "cannot load this model").startswith(f"{path}: ")


@pytest.mark.parametrize("slot", MODEL_SLOTS)
def test_an_empty_model_file_is_refused(slot, tmp_path):
    path = written(tmp_path, "empty.onnx", b"")
    assert refused(slot, path, "empty model file") == f"{path}: empty model file (0 bytes); " \
                                                      "re-download or re-export it"


@pytest.mark.parametrize("slot", MODEL_SLOTS)
def test_a_missing_model_or_a_folder_is_refused(slot, tmp_path):
    path = tmp_path / "nope.onnx"
    refused(slot, str(path), f"^{path}: no such model file", ModelNotFoundError)
    with pytest.raises(FileNotFoundError):
        MODEL_SLOTS[slot][0](path)  # os.PathLike works too
    refused(slot, str(tmp_path), "not a file")


# ---- live streams --------------------------------------------------------------------------

@pytest.mark.parametrize("pipeline", each(lambda p: p.empty_flush is not None))
@pytest.mark.filterwarnings("ignore:.*no speaker found:UserWarning")  # the Diarizer's, on silence
def test_stream_misuse_is_refused_clearly(pipeline, built):
    made = built(pipeline)
    stream = made.stream()
    with pytest.raises(AudioError, match=pipeline.empty_flush):
        stream.flush()
    with pytest.raises(StreamClosedError, match="already flushed"):
        stream.push(np.zeros(10, np.float32))
    stream = made.stream()
    stream.push(np.zeros(RATE, np.float32))
    stream.flush()
    with pytest.raises(StreamClosedError, match="already flushed"):
        stream.push(np.zeros(10, np.float32))
    with pytest.raises(StreamClosedError, match="already flushed"):
        stream.flush()
    stream = made.stream()
    with pytest.raises(AudioError, match="1-D"):
        stream.push(np.zeros((RATE, 2), np.float32))
    with pytest.raises(AudioError, match="dtype"):
        stream.push(np.array(["a", "b"]))
    with pytest.raises(AudioError, match="NaN sample at 0.500 s"):
        stream.push(np.r_[np.zeros(RATE // 2), np.nan])
    for rate in (0, -16000, 16000.0, True):
        with pytest.raises(OptionError, match="sample_rate"):
            made.stream(sample_rate=rate)
    assert len(stream.push(np.zeros(0, np.float32))) == 0
    stream.push(np.zeros(RATE, np.float32))  # a refused push leaves the stream as it was
    stream.flush()
