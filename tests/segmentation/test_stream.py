"""Streaming: push/flush frame scores and region events equal the offline results, for any block size.

The model is never mocked. To keep the run short, most tests share a ``Segmenter``
whose real onnxruntime model remembers the output of each distinct window
(keyed by the window's bytes): a stream that fed different samples would miss
the cache and run the model, so equality still proves the stream built the same
windows. ``test_batch_composition_does_not_change_scores`` checks, uncached, that
running windows one at a time gives the same numbers as offline batches.
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from helpers import RECORDINGS, wav
from hypothesis import given, settings
from hypothesis import strategies as st
from powerseg.runtime import BinarizeOptions
from powerseg.runtime.audio import load_audio
from powerseg.runtime.binarize import RegionTracker, binarize
from powerseg.runtime.framing import FrameGrid

from powerseg.errors import OptionError, StreamClosedError
from powerseg.samples import sample_path

RATE = 16000
CUSTOM = BinarizeOptions(min_duration_on=0.2, min_duration_off=0.3, pad_onset=0.05, pad_offset=0.05)
FAST = {"sample", "sim1_00", "dev00"}  # the rest of the shared audio runs with the slow tests
ALL = [pytest.param(name, uri, id=uri, marks=() if uri in FAST else pytest.mark.slow)
       for name, uri in RECORDINGS]


def run(stream, samples: np.ndarray, block: int, **push):
    parts = [stream.push(samples[i:i + block], **push) for i in range(0, len(samples), block)]
    return parts + [stream.flush()]


def joined(parts, key: str) -> np.ndarray:
    return np.concatenate([getattr(p, key) for p in parts])


def events(parts, label: str) -> list:
    return [e for p in parts for e in p.events if e.label == label]


def assert_same_scores(parts, offline) -> None:
    for key in ("speech", "overlap", "count"):
        got, expected = joined(parts, key), getattr(offline, key)
        assert got.shape == expected.shape, key
        assert got.dtype == expected.dtype, key
        assert np.abs(got.astype(np.float64) - expected).max(initial=0) <= 1e-5, key
    np.testing.assert_allclose(joined(parts, "times"), offline.frame_times, rtol=0, atol=1e-9)
    firsts = [p.first for p in parts]
    assert firsts == list(np.cumsum([0] + [len(p) for p in parts[:-1]]))  # contiguous frames


@pytest.mark.parametrize(("name", "uri"), ALL)
def test_stream_equals_offline_for_any_block_size(name, uri, cached):
    samples = load_audio(wav(name, uri), RATE)
    offline = cached(samples, sample_rate=RATE, activations=False)
    for block, vad, osd in ((RATE // 2, BinarizeOptions(), CUSTOM), (7 * RATE, CUSTOM, None),
                            (len(samples), BinarizeOptions(), BinarizeOptions())):
        parts = run(cached.stream(vad=vad, osd=osd), samples, block)
        assert_same_scores(parts, offline)
        assert events(parts, "SPEECH") == offline.vad(vad)
        assert events(parts, "OVERLAP") == (offline.osd(osd) if osd else [])
        for part in parts:  # events within a result are sorted by start
            assert list(part.events) == sorted(part.events, key=lambda r: r.start)


def test_one_sample_at_a_time(segmenter):
    samples = load_audio(sample_path(), RATE)[:12 * RATE]
    offline = segmenter(samples, sample_rate=RATE)
    stream = segmenter.stream(keep_activations=True, vad=BinarizeOptions())
    parts = run(stream, samples, 1)
    assert_same_scores(parts, offline)
    assert events(parts, "SPEECH") == offline.vad()
    np.testing.assert_array_equal(np.stack(stream.activations), offline.activations)


def test_batch_composition_does_not_change_scores(segmenter):
    """Uncached: windows run one by one (0.5 s pushes) == offline batches of 32."""
    samples = load_audio(sample_path(), RATE)
    offline = segmenter(samples, sample_rate=RATE)
    assert_same_scores(run(segmenter.stream(), samples, RATE // 2), offline)


def test_int8_stream_equals_offline_batches():
    """int8 too, although its activation scales span a whole run: it runs one window per run."""
    from powerseg import Segmenter

    int8 = Segmenter(model="int8", providers="cpu", batch_size=8)
    samples = load_audio(sample_path(), RATE)
    assert_same_scores(run(int8.stream(), samples, RATE // 2), int8(samples, sample_rate=RATE))


def test_provisional_scores_are_the_windows_run_so_far(segmenter):
    """Low latency: frames one step behind the audio get the overlap-add of the windows so far."""
    from powerseg.runtime.aggregate import aggregate
    from powerseg.runtime.segmentation.powerset import overlap_score, speech_score

    samples = load_audio(sample_path(), RATE)
    offline = segmenter(samples, sample_rate=RATE)
    framing, spec = segmenter.framing, segmenter.framing.spec
    stream = segmenter.stream()
    pushed = 12 * RATE + RATE // 2
    final = stream.push(samples[:pushed])
    early = stream.provisional()
    assert early.first == final.first + len(final)
    ran = framing.num_chunks(pushed)[0]
    active = offline.activations[:ran]
    scores = np.stack([speech_score(active), overlap_score(active)], axis=-1)
    expected = aggregate(scores, framing, framing.first_frame(ran - 1) + spec.num_frames)
    assert len(early) == len(expected) - early.first > 0
    np.testing.assert_allclose(early.speech, expected[early.first:, 0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(early.overlap, expected[early.first:, 1], rtol=0, atol=1e-5)
    assert early.times[-1] + spec.grid.duration >= pushed / RATE - framing.step
    stream.flush()
    with pytest.raises(StreamClosedError, match="already flushed"):
        stream.provisional()


def test_frames_become_final_one_window_after_they_are_heard(cached):
    """Latency: once t s are pushed (t >= 10, a whole number), the frames before t - 10 + step
    (the start of the next window) are final: each frame 10 - step to 10 s after it starts."""
    samples = load_audio(sample_path(), RATE)
    stream = cached.stream()
    released = 0
    for second in range(1, 31):
        released += len(stream.push(samples[(second - 1) * RATE:second * RATE]))
        final_until = released * stream.framing.spec.grid.step  # start of the first held frame
        if second >= 10:
            assert abs(final_until - (second - 10 + 1.0)) < stream.framing.spec.grid.step
        else:
            assert released == 0
    assert released + len(stream.flush()) == 1779


def test_shorter_than_a_window(cached):
    samples = load_audio(sample_path(), RATE)[:3 * RATE + 123]
    offline = cached(samples, sample_rate=RATE)
    for block in (RATE // 2, len(samples)):
        parts = run(cached.stream(vad=BinarizeOptions(), osd=CUSTOM), samples, block)
        assert sum(len(p) for p in parts[:-1]) == 0  # nothing is final before the end
        assert_same_scores(parts, offline)
        assert events(parts, "SPEECH") == offline.vad()
        assert events(parts, "OVERLAP") == offline.osd(CUSTOM)


@pytest.mark.parametrize("rate", [8000, 44100])
def test_other_sample_rates_are_resampled_incrementally(cached, rate):
    import soxr

    samples = soxr.resample(load_audio(sample_path(), RATE), RATE, rate, "HQ").astype(np.float32)
    offline = cached(samples, sample_rate=rate)
    assert_same_scores(run(cached.stream(sample_rate=rate), samples, rate // 2), offline)
    assert_same_scores(run(cached.stream(), samples, 7 * rate, sample_rate=rate), offline)
    stream = cached.stream(sample_rate=rate)
    stream.push(samples[:100])
    assert stream.sample_rate == rate
    with pytest.raises(OptionError, match="differs"):
        stream.push(samples[100:200], sample_rate=RATE)


def test_integer_pcm_equals_float(cached):
    pcm, _ = sf.read(sample_path(), dtype="int16")
    floats = cached(sample_path(), activations=False)
    assert_same_scores(run(cached.stream(), pcm, RATE // 2), floats)


# Bad pushes, flushes and sample rates: tests/contracts/test_pipelines.py, for every stream alike.
def test_region_options_must_be_binarize_options(cached):
    with pytest.raises(OptionError, match="BinarizeOptions"):
        cached.stream(vad={"onset": 0.5})


score_values = st.sampled_from([0.0, 0.2, 0.3, 0.45, 0.5, 0.55, 0.7, 0.8, 1.0])


@settings(max_examples=300, deadline=None)
@given(scores=st.lists(score_values, min_size=1, max_size=120),
       cuts=st.lists(st.integers(0, 120), max_size=8),
       onset=st.sampled_from([0.5, 0.7]), offset_below=st.sampled_from([0.0, 0.2, 0.4]),
       on=st.sampled_from([0.0, 0.2, 0.05]), off=st.sampled_from([0.0, 0.3, 0.05, 0.1]),
       pad_on=st.sampled_from([0.0, 0.05, 0.02]), pad_off=st.sampled_from([0.0, 0.05, 0.1]))
def test_region_tracker_equals_binarize(scores, cuts, onset, offset_below, on, off, pad_on,
                                        pad_off):
    """Any split of any scores into blocks: the emitted regions are binarize's, in order."""
    options = BinarizeOptions(onset, onset - offset_below, on, off, pad_on, pad_off)
    grid = FrameGrid(0.0, 270 / 16000, 991 / 16000)
    scores = np.asarray(scores, np.float32)
    tracker = RegionTracker(options, "SPEECH", grid)
    bounds = [0, *sorted(c for c in cuts if c < len(scores)), len(scores)]
    got = [r for a, b in itertools.pairwise(bounds) for r in tracker.push(scores[a:b])]
    got += tracker.flush()
    assert got == binarize(scores, grid, options, "SPEECH")


@settings(max_examples=300, deadline=None)
@given(scores=st.lists(score_values, min_size=1, max_size=120),
       cuts=st.lists(st.integers(0, 120), max_size=8),
       off=st.sampled_from([0.0, 0.3, 0.05]), pad_on=st.sampled_from([0.0, 0.05]),
       pad_off=st.sampled_from([0.0, 0.1]))
def test_region_tracker_open_part_is_the_start_of_a_final_region(scores, cuts, off, pad_on,
                                                                  pad_off):
    """What ``open_part`` gives at any block boundary is how a region of binarize's begins."""
    options = BinarizeOptions(0.5, 0.4, 0.0, off, pad_on, pad_off)
    grid = FrameGrid(0.0, 270 / 16000, 991 / 16000)
    scores = np.asarray(scores, np.float32)
    final = binarize(scores, grid, options, "SPEECH")
    tracker = RegionTracker(options, "SPEECH", grid)
    bounds = [0, *sorted(c for c in cuts if c < len(scores)), len(scores)]
    for a, b in itertools.pairwise(bounds):
        tracker.push(scores[a:b])
        part = tracker.open_part()
        if part is not None:
            assert any(r.start == part.start and part.end <= r.end for r in final), (part, final)
    assert RegionTracker(BinarizeOptions(min_duration_on=0.1), "", grid).open_part() is None


def test_region_tracker_emits_as_soon_as_final():
    grid = FrameGrid(0.0, 1.0, 1.0)
    tracker = RegionTracker(BinarizeOptions(), "SPEECH", grid)
    assert tracker.push(np.array([0, 1, 1], np.float32)) == []  # still active
    assert [tuple(r) for r in tracker.push(np.array([0], np.float32))] == [(1.5, 3.5, "SPEECH")]
    tracker = RegionTracker(BinarizeOptions(min_duration_off=2.5), "SPEECH", grid)
    assert tracker.push(np.array([1, 0, 0], np.float32)) == []  # a region at 3.5 could merge
    assert [tuple(r) for r in tracker.push(np.array([0], np.float32))] == [(0.5, 1.5, "SPEECH")]


def sample_pcm() -> bytes:
    pcm, rate = sf.read(sample_path(), dtype="int16")
    assert rate == RATE and pcm.ndim == 1
    return pcm.astype("<i2").tobytes()


def test_cli_stream_from_stdin_matches_vad_and_osd(shared, tmp_path):
    from powerseg.cli import main

    command = [sys.executable, "-m", "powerseg", "stream", "-", "--provider", "cpu",
               "--min-duration-off", "0.1"]
    done = subprocess.run(command, input=sample_pcm(), capture_output=True, check=True)
    lines = done.stdout.decode().splitlines()
    expected = []
    for task in ("vad", "osd"):
        out = tmp_path / f"{task}.rttm"
        assert main([task, str(sample_path()), "--provider", "cpu", "--min-duration-off", "0.1",
                     "-o", str(out)]) == 0
        for line in out.read_text().splitlines():
            fields = line.split()
            start, duration = float(fields[3]), float(fields[4])
            expected.append((fields[7].lower(), start, start + duration))
    got = sorted((label, float(start), float(end)) for label, start, end in map(str.split, lines))
    expected.sort()
    assert [label for label, *_ in got] == [label for label, *_ in expected]
    assert {label for label, *_ in got} == {"speech", "overlap"}
    times = np.array([t for _, *t in got]) - np.array([t for _, *t in expected])
    assert np.abs(times).max() <= 1.5e-3  # RTTM rounds start and duration to 1 ms each


def test_cli_stream_raw_file_and_audio_file(shared, tmp_path):
    from powerseg.cli import main

    raw = tmp_path / "sample.raw"
    raw.write_bytes(sample_pcm()[:-1])  # a trailing odd byte is ignored
    outputs = []
    for source in (raw, sample_path()):
        done = subprocess.run([sys.executable, "-m", "powerseg", "stream", str(source),
                               "--events", "speech", "--block", "0.37", "--provider", "cpu"],
                              capture_output=True, text=True, check=True)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].splitlines()[0] == "speech 6.730 7.203"
    assert len(outputs[0].splitlines()) == 4
    assert main(["stream", str(tmp_path / "missing.wav")]) == 1


def test_pushes_that_do_not_wait_give_the_same_frames(segmenter):
    """Uncached, two workers: push(wait=False) leaves windows running; flush gives the rest."""
    samples = load_audio(sample_path(), RATE)
    offline = segmenter(samples, sample_rate=RATE)
    stream = segmenter.stream()
    parts = [stream.push(samples[i:i + 7 * RATE], wait=False)
             for i in range(0, len(samples), 7 * RATE)]
    assert_same_scores(parts + [stream.flush()], offline)
