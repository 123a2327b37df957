"""``Embedder`` on real audio: the diarization reference's CAM++ embeddings, whole utterances,
and bad chunks and masks as typed errors (bad audio, options and model files, as for every
pipeline: tests/contracts/test_pipelines.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from helpers import MIN_COSINE, SHARED, cosine
from powerseg import Embedder, EmbedderOptions
from powerseg.errors import AudioError, OptionError
from powerseg.runtime.embedding.embedder import _runs, mask_frames
from powerseg.samples import sample_path

RATE = 16000
CHUNK_SAMPLES, MASK_FRAMES = 160000, 589  # segmentation-3.0's window and its frames
DEFAULT_FILES = [("pyannote_sample", "sample"),  # two speakers, overlap
                 ("ami_pyannote_debug", "trn08"),  # a pair with 2 frames: NaN by one frame
                 ("librispeech_sim_a", "sim1_02")]  # a pair with exactly 3 frames: embedded


def reference_files() -> list[tuple[str, str]]:
    """Every file of the four sets whose reference holds embeddings (all but AMI trn01, where
    the pipeline found no speech and stored segmentation only)."""
    root = SHARED / "reference" / "diarization"
    found = []
    for path in sorted(root.glob("*/*.npz")) if root.is_dir() else []:
        with np.load(path) as data:
            if "embeddings" in data.files:
                found.append((path.parent.name, path.stem))
    return found


def pipeline_inputs(shared: Path, name: str, uri: str):
    """The chunks and the exact masks the reference pipeline embedded, and its npz.

    Chunk c is samples [16000 c, 16000 c + 160000) zero-padded; each local speaker's mask is its
    binarized activity, or where the reference used the overlap-free mask, that activity on
    frames with fewer than two active speakers.
    """
    with np.load(shared / "reference" / "diarization" / name / f"{uri}.npz") as data:
        ref = dict(data)
    samples, rate = sf.read(str(shared / "audio" / name / "wav" / f"{uri}.wav"), dtype="float32")
    assert rate == RATE
    binarized = ref["binarized"].astype(np.float32)  # (chunks, 589, speakers)
    chunks = np.zeros((len(binarized), CHUNK_SAMPLES), np.float32)
    for c in range(len(chunks)):
        part = samples[RATE * c:RATE * c + CHUNK_SAMPLES]
        chunks[c, :len(part)] = part
    clean = binarized * (binarized.sum(axis=-1, keepdims=True) < 2)
    masks = np.where(ref["used_clean_mask"][:, None, :], clean, binarized).transpose(0, 2, 1)
    return chunks, masks, ref


@pytest.fixture(scope="module")
def embedder(shared) -> Embedder:
    return Embedder(providers="cpu")


def check_against_reference(embedder: Embedder, shared: Path, name: str, uri: str) -> None:
    chunks, masks, ref = pipeline_inputs(shared, name, uri)
    result = embedder.embed_chunks(chunks, masks)
    expected = ref["embeddings"]
    assert result.vectors.shape == expected.shape and result.vectors.dtype == np.float32
    np.testing.assert_array_equal(result.num_frames, ref["num_fbank_frames"])
    nan = np.isnan(expected).any(-1)
    np.testing.assert_array_equal(np.isnan(result.vectors).any(-1), nan)
    assert np.isnan(result.vectors[nan]).all()
    assert cosine(result.vectors[~nan], expected[~nan]).min() >= MIN_COSINE, uri


@pytest.mark.parametrize("name, uri", DEFAULT_FILES, ids=[u for _, u in DEFAULT_FILES])
def test_chunk_embeddings_match_reference(embedder, shared, name, uri):
    check_against_reference(embedder, shared, name, uri)


@pytest.mark.slow
@pytest.mark.parametrize("name, uri", reference_files(), ids=[u for _, u in reference_files()])
def test_chunk_embeddings_match_reference_all_files(embedder, shared, name, uri):
    check_against_reference(embedder, shared, name, uri)


@pytest.fixture(scope="module")
def sample_chunks(shared):
    chunks, masks, _ = pipeline_inputs(shared, "pyannote_sample", "sample")
    return chunks[:6], masks[:6]


def test_repeated_chunks_share_one_fbank_and_equal_the_3d_layout(embedder, sample_chunks):
    """(n, 589) masks on a chunk repeated per speaker give exactly the (n, speakers, 589) result."""
    chunks, masks = sample_chunks
    grouped = embedder.embed_chunks(chunks, masks)
    flat = embedder.embed_chunks(np.repeat(chunks, 3, axis=0), masks.reshape(-1, MASK_FRAMES))
    np.testing.assert_array_equal(flat.vectors, grouped.vectors.reshape(-1, 192))
    np.testing.assert_array_equal(flat.num_frames, grouped.num_frames.reshape(-1))
    assert _runs(np.repeat(chunks[:3], [2, 1, 3], axis=0)) == [(0, [0, 1]), (2, [2]), (3, [3, 4, 5])]


def test_full_mask_is_the_whole_chunk(embedder, sample_chunks):
    """A mask on every frame keeps all 998 fbank frames: the chunk's utterance embedding."""
    chunk = sample_chunks[0][2]
    result = embedder.embed_chunks(chunk[None], np.ones((1, MASK_FRAMES)))
    assert result.num_frames.tolist() == [998]
    whole = embedder.embed(chunk, sample_rate=RATE)
    assert whole.num_frames == 998
    np.testing.assert_array_equal(result.vectors[0], whole.vector)


def test_mask_frames_map_to_fbank_frames_by_nearest_rule(embedder, sample_chunks):
    """fbank frame j follows mask frame floor(j * 589 / 998); soft masks count above 0.5."""
    chunk = sample_chunks[0][2][None]
    mask = np.zeros((1, MASK_FRAMES))
    mask[0, 100:110] = 1  # mask frames 100..109 -> fbank frames j with 100 <= 589 j // 998 <= 109
    expected = sum(100 <= j * 589 // 998 <= 109 for j in range(998))
    assert embedder.embed_chunks(chunk, mask).num_frames.tolist() == [expected] == [17]
    soft = np.where(mask > 0, 0.51, 0.5)  # 0.5 itself is off, as torch's "> 0.5"
    np.testing.assert_array_equal(embedder.embed_chunks(chunk, soft).vectors,
                                  embedder.embed_chunks(chunk, mask).vectors)


def test_fewer_than_three_frames_give_nan(embedder, sample_chunks):
    chunk = sample_chunks[0][2][None]
    masks = np.zeros((1, 4, MASK_FRAMES), np.float32)
    masks[0, 1, 200] = 1  # 1 or 2 fbank frames
    masks[0, 2, 200:202] = 1  # 3 or 4 fbank frames
    masks[0, 3, 200:206] = 1
    result = embedder.embed_chunks(chunk, masks)
    frames = result.num_frames[0]
    finite = np.isfinite(result.vectors[0]).all(-1)
    assert frames[0] == 0 and not finite[0]
    np.testing.assert_array_equal(finite, frames >= 3)
    assert frames[1] < 3 <= frames[2]


def test_whole_utterance_matches_torch_with_torchaudio_front_end(embedder, shared):
    """embed() on 10 s of speech against the torch rebuild fed torchaudio's fbank.

    Measured cosine 0.9999999 (max |difference| 3e-5); bound 0.99999 covers the fbank's float32
    rounding (<= 4e-4 per value) and the ONNX model's (<= 3e-4 at any length).
    """
    import torch
    from torchaudio_kaldi import reference_fbank

    from powerseg.export.campplus_checkpoint import load_campplus

    samples, _ = sf.read(str(shared / "audio" / "librispeech_sim_a" / "wav" / "sim1_01.wav"),
                         dtype="float32")
    samples = samples[:CHUNK_SAMPLES]
    feats = reference_fbank(samples)
    feats -= feats.mean(axis=0)
    model = load_campplus(shared / "checkpoints" / "campplus" / "campplus_cn_en_common.pt")
    with torch.inference_mode():
        expected = model(torch.from_numpy(feats)[None]).numpy()[0]
    got = embedder.embed(samples, sample_rate=RATE)
    assert got.num_frames == 998 and got.duration == 10.0
    assert cosine(got.vector, expected) >= 0.99999


def test_file_array_and_other_rates_agree(embedder, tmp_path):
    path = sample_path()
    from_file = embedder.embed(path)
    samples, _ = sf.read(str(path), dtype="float32")
    from_array = embedder.embed(samples, sample_rate=RATE)
    np.testing.assert_array_equal(from_file.vector, from_array.vector)
    assert from_file.num_frames == 2998 and from_file.vector.dtype == np.float32
    resampled = soxr.resample(samples, RATE, 44100, quality="HQ").astype(np.float32)
    assert cosine(embedder.embed(resampled, sample_rate=44100).vector, from_file.vector) >= 0.999
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([samples, samples], axis=1), RATE, subtype="FLOAT")
    np.testing.assert_allclose(embedder.embed(stereo).vector, from_file.vector, atol=1e-6)


def test_short_utterances(embedder):
    noise = np.random.default_rng(0).normal(0, 0.1, 720).astype(np.float32)
    three = embedder.embed(noise, sample_rate=RATE)
    assert three.num_frames == 3 and np.isfinite(three.vector).all()
    two = embedder.embed(noise[:719], sample_rate=RATE)
    assert two.num_frames == 2 and np.isnan(two.vector).all() and two.vector.shape == (192,)
    assert embedder.embed(noise[:100], sample_rate=RATE).num_frames == 0


def test_results_carry_options_and_threads_do_not_change_them(embedder, sample_chunks):
    chunks, masks = sample_chunks
    result = embedder.embed_chunks(chunks, masks)
    assert result.options == EmbedderOptions(providers="cpu") and result.provider == "CPUExecutionProvider"
    assert result.metadata["kind"] == "speaker_embedding"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.options.model = "other"
    one = Embedder(threads=1, providers="cpu")
    assert one.model.workers == 1
    np.testing.assert_array_equal(one.embed_chunks(chunks, masks).vectors, result.vectors)


def test_mask_frames_round_as_torch_nearest_interpolation():
    """The masks are resized to the fbank frames as pyannote resizes them (torch's nearest
    interpolation), for the shipped geometry and any other."""
    torch = pytest.importorskip("torch")
    for frames, num_fbank in [(589, 998), (293, 498), (100, 333), (7, 14), (998, 589)]:
        x = torch.arange(frames, dtype=torch.float32)[None, None]
        expected = torch.nn.functional.interpolate(x, size=num_fbank, mode="nearest")
        np.testing.assert_array_equal(mask_frames(frames, num_fbank), expected[0, 0].long())


def test_chunk_geometry_comes_from_the_inputs(embedder, shared):
    """A segmentation with other windows (5 s here, 293 frames) works the same way: a mask
    keeping every frame embeds what the whole chunk as an utterance embeds."""
    samples, rate = sf.read(shared / "audio" / "pyannote_sample" / "wav" / "sample.wav",
                            dtype="float32")
    chunk = samples[rate * 3:rate * 8]
    pair = embedder.embed_chunks(chunk[None], np.ones((1, 293))).vectors[0]
    np.testing.assert_array_equal(pair, embedder.embed(chunk, sample_rate=rate).vector)


# --- bad chunks and masks: typed errors naming what is wrong -----------------------------------

def test_bad_chunks(embedder):
    masks = np.ones((2, MASK_FRAMES))
    with pytest.raises(AudioError, match=r"^chunks: expected shape \(n, samples\), at least one "
                       r"fbank frame \(400 samples\) each, got \(2, 100\)"):
        embedder.embed_chunks(np.zeros((2, 100), np.float32), masks)
    with pytest.raises(AudioError, match=r"got \(160000,\)"):
        embedder.embed_chunks(np.zeros(CHUNK_SAMPLES, np.float32), masks[0])
    with pytest.raises(AudioError, match="expected float samples.*int16"):
        embedder.embed_chunks(np.zeros((2, CHUNK_SAMPLES), np.int16), masks)
    bad = np.zeros((2, CHUNK_SAMPLES), np.float32)
    bad[1, 19744] = np.nan
    with pytest.raises(AudioError, match=r"^chunks\[1\]: NaN sample at 1.234 s \(sample 19744\)"):
        embedder.embed_chunks(bad, masks)


@pytest.mark.parametrize("masks, pattern", [
    (np.ones((2, 0)), r"^masks: expected shape \(n, frames\) or \(n, speakers, frames\), got \(2, 0\)"),
    (np.ones((2, 3, 4, 589)), r"got \(2, 3, 4, 589\)"),
    (np.ones(589), r"got \(589,\)"),
    (np.ones((3, 589)), "^masks: 3 masks for 2 chunks"),
    (np.ones((0, 589)), "masks: 0 masks for 2 chunks"),
    (np.full((2, 589), np.nan), "masks: NaN or infinite values"),
    (np.array([["on"] * 589] * 2), "masks: expected numbers or booleans, got dtype <U2"),
])
def test_bad_masks(embedder, masks, pattern):
    with pytest.raises(OptionError, match=pattern):
        embedder.embed_chunks(np.zeros((2, CHUNK_SAMPLES), np.float32), masks)


def test_no_chunks_is_an_empty_result(embedder):
    result = embedder.embed_chunks(np.zeros((0, CHUNK_SAMPLES), np.float32), np.zeros((0, 3, 589)))
    assert result.vectors.shape == (0, 3, 192) and result.num_frames.shape == (0, 3)
