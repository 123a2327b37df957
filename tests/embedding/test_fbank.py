"""The numpy Kaldi fbank against torchaudio's ``compliance.kaldi.fbank`` on real audio."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
from torchaudio_kaldi import reference_fbank

from powerseg.errors import ModelError
from powerseg.runtime.embedding.fbank import FbankOptions, fbank, features
from powerseg.samples import sample_path

# Max |log-mel difference| allowed against torchaudio. Both compute in float32, with different
# FFTs: rounding is relative to a frame's loudest bins, so bins ~15 nats below them differ by up to
# 3.7e-4 (measured on the bundled recording; <= 1.1e-4 on AMI and LibriSpeech audio), while the
# median difference is ~1e-6. A wrong window, pre-emphasis or filter edge moves values by > 1e-2.
TOLERANCE = 1e-3
LOG_FLOOR = float(np.log(np.float32(np.finfo(np.float32).eps)))  # -15.9424: log of zero energy


def read(path) -> np.ndarray:
    data, rate = sf.read(str(path), dtype="float32")
    assert rate == 16000 and data.ndim == 1
    return data


@pytest.fixture(scope="module")
def signals(shared) -> dict[str, np.ndarray]:
    """Real 16 kHz speech: 10 s chunks, a zero-padded last chunk, whole files, edge lengths."""
    sample = read(sample_path())
    ami = read(shared / "audio" / "ami_pyannote_debug" / "wav" / "dev00.wav")
    libri = read(shared / "audio" / "librispeech_sim_a" / "wav" / "sim1_00.wav")
    padded = np.zeros(160000, np.float32)
    padded[:48000] = sample[-48000:]  # the last 3 s, then 7 s of digital silence
    return {"sample 10 s": sample[:160000], "ami 10 s": ami[16000:176000],
            "libri 10 s": libri[:160000], "padded chunk": padded, "sample whole 30 s": sample,
            "one frame": sample[80000:80400], "two frames": sample[80000:80719],
            "three frames": sample[80000:80720], "odd length": ami[:12345]}


def test_matches_torchaudio_on_real_audio(signals):
    for name, samples in signals.items():
        expected = reference_fbank(samples)
        got = fbank(samples)
        assert got.dtype == np.float32 and got.shape == expected.shape, name
        assert np.abs(got - expected).max() <= TOLERANCE, name
        assert np.median(np.abs(got - expected)) <= 1e-5, name


def test_frame_counts_follow_snip_edges(signals):
    options = FbankOptions()
    assert [options.num_frames(n) for n in (0, 399, 400, 559, 560, 719, 720, 160000)] == \
        [0, 0, 1, 1, 2, 2, 3, 998]
    assert len(fbank(signals["sample 10 s"])) == 998
    assert fbank(signals["sample 10 s"][:399]).shape == (0, 80)


def test_zero_padding_reaches_the_log_floor_exactly(signals):
    """Digital silence: energy 0, so every bin is log(float32 eps), as in torchaudio."""
    got = fbank(signals["padded chunk"])
    silent = got[(48000 // 160) + 3:]  # frames wholly inside the zeros
    assert np.all(silent == np.float32(LOG_FLOOR))
    np.testing.assert_array_equal(silent, reference_fbank(signals["padded chunk"])[len(got) - len(silent):])


def test_mean_normalised_features(signals):
    samples = signals["padded chunk"]
    expected = reference_fbank(samples)
    expected -= expected.mean(axis=0)
    got = features(samples)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert np.abs(got.mean(axis=0, dtype=np.float64)).max() <= 1e-4  # float32 rounding of |values| <= 16


def test_at_least_as_close_as_kaldi_native_fbank(signals):
    """Why numpy and not kaldi-native-fbank: it lands closer to torchaudio on every signal."""
    knf = pytest.importorskip("kaldi_native_fbank")
    options = knf.FbankOptions()
    options.frame_opts.dither, options.frame_opts.samp_freq, options.mel_opts.num_bins = 0, 16000, 80
    for name, samples in signals.items():
        if len(samples) < 400:
            continue
        computer = knf.OnlineFbank(options)
        computer.accept_waveform(16000, samples.tolist())
        computer.input_finished()
        theirs = np.stack([computer.get_frame(i) for i in range(computer.num_frames_ready)])
        expected = reference_fbank(samples)
        assert np.abs(fbank(samples) - expected).max() <= np.abs(theirs - expected).max(), name


def test_options_round_trip_through_metadata():
    options = FbankOptions()
    meta = options.metadata()
    assert meta["fbank_window"] == "povey" and meta["fbank_snip_edges"] == "1"
    assert meta["fbank_waveform_scale"] == "1.0" and meta["fbank_dither"] == "0.0"
    assert FbankOptions.from_metadata(meta, "m.onnx") == options


@pytest.mark.parametrize("key, value, pattern", [
    ("fbank_window", "hamming", "unusable fbank metadata.*only window povey"),
    ("fbank_snip_edges", "0", "unusable fbank metadata"),
    ("fbank_dither", "1.0", "unusable fbank metadata"),
    ("fbank_num_mel_bins", "eighty", "unusable fbank metadata"),
    ("fbank_high_freq", "9000", r"unusable fbank metadata \(inconsistent fbank settings"),
])
def test_unsupported_settings_are_refused(key, value, pattern):
    meta = {**FbankOptions().metadata(), key: value}
    with pytest.raises(ModelError, match=f"^m.onnx: {pattern}"):
        FbankOptions.from_metadata(meta, "m.onnx")


def test_missing_settings_are_named():
    meta = FbankOptions().metadata()
    del meta["fbank_preemphasis"]
    with pytest.raises(ModelError, match="lacks fbank_preemphasis; not a powerseg speaker-embedding"):
        FbankOptions.from_metadata(meta, "m.onnx")


def test_waveform_scale_multiplies_the_samples(signals):
    """A model trained on int16-scaled audio (x32768) gets exactly that input."""
    samples = signals["ami 10 s"]
    scaled = fbank(samples, dataclasses.replace(FbankOptions(), waveform_scale=32768.0))
    np.testing.assert_array_equal(scaled, fbank(samples * np.float32(32768)))


@pytest.mark.parametrize("bins, low", [(80, 20.0), (23, 20.0), (64, 0.0), (128, 0.0)])
def test_filter_by_filter_product_is_the_dense_one(bins, low):
    """The mel product skips BLAS (runtime/embedding/fbank.py says why); it must still be the
    dense product of the filterbank, float64 rounding aside, for any filter count (128 at
    0 Hz has an empty filter)."""
    from powerseg.runtime.embedding.fbank import _mel_banks, _mel_energies

    options = FbankOptions(num_mel_bins=bins, low_freq=low)
    power = np.random.default_rng(bins).exponential(1.0, (50, 257)).astype(np.float32)
    dense = power.astype(np.float64) @ _mel_banks(options).astype(np.float64)
    ours = _mel_energies(power, options)
    assert ours.shape == (50, bins) and ours.dtype == np.float32
    # float32 sums of up to ~20 positive terms: a few ulps (measured <= 3e-7)
    np.testing.assert_allclose(ours, dense, rtol=2e-6, atol=0)


@pytest.mark.parametrize("settings", [dict(dither=1.0), dict(window="hamming"),
                                      dict(low_freq=9000.0), dict(num_mel_bins=0)])
def test_unsupported_fbank_settings_are_option_errors(settings):
    from powerseg.errors import OptionError

    with pytest.raises(OptionError, match="only window povey|inconsistent fbank settings"):
        FbankOptions(**settings)
