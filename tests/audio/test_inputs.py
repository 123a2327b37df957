"""Every kind of input, good and bad, through the real model and real audio.

Non-finite samples must raise a typed ``AudioError`` naming the first bad one; odd but valid
inputs (short, silent, clipped, other rates, channels, subtypes and formats) must work and give
sensible results. Bad files, arrays, sample rates and providers, for every pipeline alike, are
checked in tests/contracts/test_pipelines.py; the commands' in tests/contracts/test_commands.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from powerseg import Segmenter
from powerseg.cli import main
from powerseg.errors import AudioError, OptionError, OutputError
from powerseg.runtime.binarize import BinarizeOptions
from powerseg.runtime.writers import atomic_output
from powerseg.samples import sample_path

RATE = 16000


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    """15 s of the bundled recording (5 to 20 s: two speakers), 16 kHz mono float32."""
    data, rate = sf.read(sample_path(), dtype="float32")
    assert rate == RATE and data.ndim == 1
    return data[5 * RATE:20 * RATE]


@pytest.fixture(scope="module")
def seg() -> Segmenter:
    return Segmenter(providers="cpu", step=2.5)


@pytest.fixture(scope="module")
def reference(seg, sample):
    """The 16 kHz result every converted copy of the sample is compared with."""
    return seg(sample, sample_rate=RATE)


def spans(regions) -> list[tuple[float, float]]:
    return [(r.start, r.end) for r in regions]


def assert_regions_close(found, expected, tolerance: float) -> None:
    assert len(found) == len(expected), (spans(found), spans(expected))
    np.testing.assert_allclose(spans(found), spans(expected), atol=tolerance)


# --- non-finite samples: refused naming the first bad one -----------------------------------------

@pytest.mark.parametrize("value, kind, where", [(np.nan, "NaN", "2.000 s"),
                                                (np.inf, "infinite", "3.500 s"),
                                                (-np.inf, "infinite", "0.000 s")])
def test_non_finite_samples_are_refused_naming_the_first_bad_time(tmp_path, sample, seg, value,
                                                                  kind, where):
    data = sample[:5 * RATE].copy()
    at = int(float(where.split()[0]) * RATE)
    data[at] = value
    data[at + 100] = np.nan  # a later bad sample: the first one is named
    path = tmp_path / "bad.wav"
    sf.write(path, data, RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match=f"^{path}: {kind} sample at {where} \\(sample {at}\\)"):
        seg(path)


def test_non_finite_sample_in_one_channel_at_another_rate(tmp_path, sample, seg):
    mono48 = soxr.resample(sample[:3 * RATE], RATE, 48000)
    stereo = np.stack([mono48, mono48], axis=1)
    stereo[48000 * 2 + 7, 1] = np.nan  # second channel only, at 48 kHz: 2.000 s
    path = tmp_path / "stereo48.wav"
    sf.write(path, stereo, 48000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"NaN sample at 2\.000 s"):
        seg(path)


# --- odd but valid inputs: they work --------------------------------------------------------------

def test_shorter_than_a_window_is_padded_and_works(tmp_path, sample, seg):
    path = tmp_path / "three_seconds.wav"
    sf.write(path, sample[8 * RATE:11 * RATE], RATE)  # all speech, 3 s < the 10 s window
    result = seg(path)
    assert result.duration == 3.0
    assert result.num_frames == int(3.0 / result.grid.step) + 1  # cropped to the audio: 178
    assert result.activations.shape == (1, 589, 3)  # one zero-padded window
    regions = result.vad()
    assert len(regions) >= 1 and regions[0].start < 0.2 and regions[-1].end <= 3.0 + 0.07


def test_exactly_one_frame_of_audio_works(sample, seg):
    result = seg(sample[8 * RATE:8 * RATE + 991], sample_rate=RATE)
    assert result.num_frames >= 1 and np.isfinite(result.speech).all()


def test_silence_works_and_has_no_regions(tmp_path, seg):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(12 * RATE, np.float32), RATE)
    result = seg(path)
    assert result.duration == 12.0 and result.num_frames > 0
    assert result.vad() == [] and result.osd() == []
    assert not result.speech.any() and not result.count.any()


def test_clipped_audio_works(tmp_path, sample, seg, reference):
    path = tmp_path / "clipped.wav"
    clipped = np.clip(sample * 20.0, -1.0, 1.0)  # +26 dB, hard clipped
    assert np.mean(np.abs(clipped) == 1.0) > 0.04  # a fifth of the speech samples
    sf.write(path, clipped, RATE)
    result = seg(path)
    assert np.isfinite(result.speech).all() and result.num_frames == reference.num_frames
    assert np.mean((result.speech > 0.5) == (reference.speech > 0.5)) > 0.9
    float_path = tmp_path / "over_full_scale.wav"  # float wav: samples beyond +-1 are kept
    sf.write(float_path, sample * 20.0, RATE, subtype="FLOAT")
    assert np.isfinite(seg(float_path).speech).all()


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_sample_rates_are_resampled(rate, tmp_path, sample, seg, reference):
    path = tmp_path / f"sample_{rate}.wav"
    sf.write(path, soxr.resample(sample, RATE, rate, quality="VHQ"), rate, subtype="FLOAT")
    result = seg(path)
    assert abs(result.duration - 15.0) < 1e-3 and result.num_frames == reference.num_frames
    # 8 kHz loses everything above 4 kHz; still the same speech regions within 50 ms
    assert_regions_close(result.vad(), reference.vad(), tolerance=0.05)
    assert np.mean(np.abs(result.speech - reference.speech)) < 0.01


@pytest.mark.parametrize("channels", [2, 4, 6])
def test_multichannel_is_averaged_to_mono(channels, tmp_path, sample, seg, reference):
    path = tmp_path / f"channels_{channels}.wav"
    sf.write(path, np.repeat(sample[:, None], channels, axis=1), RATE, subtype="PCM_24")
    result = seg(path)
    np.testing.assert_allclose(result.speech, reference.speech, atol=1e-6)
    assert spans(result.vad()) == spans(reference.vad())


def test_stereo_with_one_silent_channel(tmp_path, sample, seg, reference):
    path = tmp_path / "left_only.wav"
    sf.write(path, np.stack([sample, np.zeros_like(sample)], axis=1), RATE)
    assert_regions_close(seg(path).vad(), reference.vad(), tolerance=0.1)  # -6 dB, same speech


def test_channels_first_array(sample, seg, reference):
    result = seg(np.stack([sample, sample]), sample_rate=RATE)  # (channels, samples), as torch
    np.testing.assert_array_equal(result.speech, reference.speech)


@pytest.mark.parametrize("fmt, subtype, suffix", [("WAV", "PCM_16", "wav"), ("WAV", "PCM_24", "wav"),
                                                  ("WAV", "FLOAT", "wav"), ("FLAC", "PCM_16", "flac"),
                                                  ("FLAC", "PCM_24", "flac")])
def test_lossless_subtypes_and_formats_match_exactly(fmt, subtype, suffix, tmp_path, sample, seg,
                                                     reference):
    path = tmp_path / f"sample.{suffix}"
    sf.write(path, sample, RATE, format=fmt, subtype=subtype)  # the sample is 16-bit: lossless
    np.testing.assert_array_equal(seg(path).speech, reference.speech)


def test_ogg_vorbis_is_close(tmp_path, sample, seg, reference):
    path = tmp_path / "sample.ogg"
    sf.write(path, sample, RATE, format="OGG", subtype="VORBIS")
    result = seg(path)
    assert abs(result.duration - 15.0) < 0.01
    assert_regions_close(result.vad(), reference.vad(), tolerance=0.1)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float64, np.uint8])
def test_integer_and_float_arrays(dtype, sample, seg, reference):
    if dtype is np.uint8:  # 8-bit PCM is unsigned, centred on 128
        data = np.clip(np.round(sample * 128 + 128), 0, 255).astype(np.uint8)
    elif np.issubdtype(dtype, np.integer):
        data = np.round(sample * -np.iinfo(dtype).min).astype(dtype)
    else:
        data = sample.astype(dtype)
    result = seg(data, sample_rate=RATE)
    if dtype is np.uint8:  # 8-bit quantisation is coarse: the same speech, frame for frame
        assert np.mean((result.speech > 0.5) == (reference.speech > 0.5)) > 0.95
    else:
        np.testing.assert_array_equal(result.speech, reference.speech)


# --- options --------------------------------------------------------------------------------------

@pytest.mark.parametrize("options, pattern", [
    (dict(step=0), "step must be a number of seconds > 0"),
    (dict(step=-1.0), "step must be a number of seconds > 0"),
    (dict(step=float("nan")), "step must be a number of seconds > 0"), (dict(step="1"), "step must be"),
    (dict(step=10.5), r"step \(10.5 s\) must not exceed"),
    (dict(step=9.95), r"must not exceed 9.9225 s"),  # frames between windows would get no score
    (dict(step=1e-6), "shorter than one sample"),
    (dict(batch_size=0), "batch_size must be a whole number >= 1"),
    (dict(batch_size=-4), "batch_size"), (dict(batch_size=2.5), "batch_size"),
])
def test_invalid_segmenter_options(options, pattern):
    with pytest.raises(OptionError, match=pattern):
        Segmenter(providers="cpu", **options)


def test_largest_valid_step_covers_every_frame(sample):
    result = Segmenter(providers="cpu", step=9.9225)(sample, sample_rate=RATE)
    assert result.speech[int(9.0 / result.grid.step):int(11.0 / result.grid.step)].all()


@pytest.mark.parametrize("options, pattern", [
    (dict(onset=0.5, offset=0.7), r"offset \(0.7\) must not exceed onset \(0.5\)"),
    (dict(onset=float("nan")), "finite"),
    (dict(min_duration_on=-0.1), "min_duration_on must be a non-negative"),
    (dict(min_duration_off=-1.0), "min_duration_off"),
    (dict(pad_onset=-0.5), "pad_onset"), (dict(pad_offset=float("inf")), "pad_offset"),
])
def test_invalid_region_options(options, pattern, reference):
    with pytest.raises(OptionError, match=pattern):
        BinarizeOptions(**options)
    with pytest.raises(OptionError, match=pattern):
        reference.vad(**options)


# --- the command line and its writer --------------------------------------------------------------

def test_cli_silence_writes_an_empty_rttm(tmp_path, capsys):
    audio = tmp_path / "silence.wav"
    sf.write(audio, np.zeros(3 * RATE, np.float32), RATE)
    out = tmp_path / "vad.rttm"
    assert main(["vad", str(audio), "-o", str(out)]) == 0
    assert out.read_text() == ""


def test_atomic_output_leaves_nothing_when_writing_fails(tmp_path):
    out = tmp_path / "out.rttm"
    out.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_output(out) as f:
        f.write("half of the new results\n")
        raise RuntimeError("boom")
    assert out.read_text() == "old\n" and sorted(tmp_path.iterdir()) == [out]
    with pytest.raises(OutputError, match="cannot write the output file") as info, \
            atomic_output(out) as f:
        f.write("x")
        raise OSError(28, "No space left on device")
    assert isinstance(info.value, OSError) and "No space left" in str(info.value)
    assert out.read_text() == "old\n" and sorted(tmp_path.iterdir()) == [out]
