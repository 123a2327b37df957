"""Property-based tests (hypothesis) for framing, decoding and aggregation, on the shipped model's
real geometry (16 kHz, 10 s windows, 589 frames of 270 samples)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerseg.runtime.aggregate import OverlapAdd, aggregate
from powerseg.runtime.binarize import BinarizeOptions, binarize
from powerseg.runtime.framing import FrameGrid, Framing
from powerseg.runtime.segmentation.model import SegmentationModel
from powerseg.runtime.segmentation.powerset import active_speakers, overlap_score, speech_score, to_multilabel

SPEC = SegmentationModel("fp32", providers="cpu").spec
RATE, WINDOW, FRAMES = SPEC.sample_rate, SPEC.window_samples, SPEC.num_frames
FRAME_STEP = SPEC.frame_step_samples
MAX_STEP = (FRAMES - 1) * FRAME_STEP  # the largest step Segmenter accepts, in samples

PROPERTY = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

durations = st.integers(min_value=1, max_value=30 * 60 * RATE)  # 1 sample to 30 minutes
steps = st.integers(min_value=1, max_value=MAX_STEP)  # in samples: 1 / 16000 s to 9.9225 s


def framing(step_samples: int) -> Framing:
    return Framing(SPEC, step_samples / RATE)


def expected_frames(num_samples: int, has_last: bool) -> set[int]:
    """Last frame index: floor (padded last window, cropped) or nearest (windows end with the
    audio) of n / 270; at an exact .0 or .5 boundary float arithmetic may land on either side."""
    exact = num_samples / FRAME_STEP
    rule = math.floor if has_last else (lambda x: math.floor(x + 0.5))
    return {rule(exact - 1e-9), rule(exact + 1e-9)}


@PROPERTY
@given(num_samples=durations, step=steps)
def test_chunks_cover_the_signal(num_samples, step):
    full, has_last = framing(step).num_chunks(num_samples)
    chunks = full + has_last
    expected = 1 if num_samples <= WINDOW else math.ceil((num_samples - WINDOW) / step) + 1
    assert chunks == expected
    assert (chunks - 1) * step < num_samples <= (chunks - 1) * step + WINDOW  # no sample left out
    assert has_last == (num_samples < WINDOW or (num_samples - WINDOW) % step > 0)


@PROPERTY
@given(num_samples=durations, step=steps)
def test_output_length_formula(num_samples, step):
    """One frame per frame step of audio: floor(n / 270) + 1 when the last window is zero-padded
    (cropped to the audio, as pyannote), round(n / 270) + 1 when the windows end with the audio
    (up to pyannote's float arithmetic exactly at a boundary)."""
    f = framing(step)
    full, has_last = f.num_chunks(num_samples)
    frames = f.num_frames(full + has_last, num_samples, has_last)
    assert frames - 1 in expected_frames(num_samples, has_last)
    # every output frame starts inside the audio, and the frames reach its end
    last_start = SPEC.grid.begin(frames - 1)
    assert last_start <= num_samples / RATE + 0.5 * SPEC.grid.step
    assert last_start + SPEC.grid.duration >= num_samples / RATE


@PROPERTY
@given(chunks=st.integers(1, 12), step=st.integers(FRAME_STEP, MAX_STEP),
       values=st.tuples(st.floats(0, 1, width=32), st.floats(0, 1, width=32)),
       hamming=st.booleans())
def test_constant_chunk_scores_aggregate_to_that_constant(chunks, step, values, hamming):
    f = framing(step)
    num_samples = (chunks - 1) * step + WINDOW
    num_frames = f.num_frames(chunks, num_samples, has_last=False)
    scores = np.empty((chunks, FRAMES, 2), np.float32)
    scores[...] = values
    out = aggregate(scores, f, num_frames, hamming=hamming)
    assert out.shape == (num_frames, 2) and out.dtype == np.float32
    # Frames up to the last chunk's last frame are covered. pyannote's aggregate runs ~84 ms
    # (5 frames) past it: a 10 s window holds 589 frames, its span is 593; those are 0 (missing).
    covered = f.first_frame(chunks - 1) + FRAMES
    assert 0 <= num_frames - covered <= 5
    np.testing.assert_allclose(out[:covered], np.broadcast_to(np.float32(values), (covered, 2)),
                               rtol=2e-6, atol=1e-30)
    assert not out[covered:].any()


@PROPERTY
@given(chunks=st.integers(1, 10), step=st.integers(FRAME_STEP, MAX_STEP),
       cuts=st.lists(st.integers(0, 6000), max_size=6), seed=st.integers(0, 2**32 - 1))
def test_incremental_overlap_add_equals_one_shot(chunks, step, cuts, seed):
    """Popping finished frames at arbitrary points gives the one-shot result bit for bit."""
    f = framing(step)
    scores = np.random.default_rng(seed).random((chunks, FRAMES, 2), dtype=np.float32)
    num_frames = f.num_frames(chunks, (chunks - 1) * step + WINDOW, has_last=False)
    whole = aggregate(scores, f, num_frames)
    overlap_add, parts = OverlapAdd(f, 2), []
    cuts = sorted(cuts)
    for chunk in range(chunks):
        overlap_add.add(chunk, scores[chunk])
        safe = f.first_frame(chunk)  # no later chunk touches frames before this one
        while cuts and cuts[0] <= safe:
            parts.append(overlap_add.pop(max(cuts.pop(0), overlap_add.released)))
    parts.append(overlap_add.pop(num_frames))
    assert np.concatenate(parts).tobytes() == whole.tobytes()


MAPPING = SPEC.mapping


@PROPERTY
@given(chunks=st.integers(1, 4), seed=st.integers(0, 2**32 - 1),
       order=st.permutations([0, 1, 2]), soft=st.booleans(), step=st.integers(FRAME_STEP, MAX_STEP))
def test_vad_is_invariant_to_speaker_order(chunks, seed, order, soft, step):
    """Relabelling the speakers (permuting activation columns, or the powerset table's speaker
    columns) changes neither the speech nor the overlap scores, before or after aggregation."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (chunks, FRAMES, len(MAPPING))).astype(np.float32)
    logprobs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    active = to_multilabel(logprobs, MAPPING, soft=soft)
    permuted = active[..., list(order)]
    np.testing.assert_array_equal(to_multilabel(logprobs, MAPPING[:, list(order)], soft=soft),
                                  permuted)
    for score in (speech_score, overlap_score):
        assert score(permuted).tobytes() == score(active).tobytes()
    if soft:  # float sums in another order: equal to rounding
        np.testing.assert_allclose(active_speakers(permuted), active_speakers(active), rtol=1e-6)
    else:
        np.testing.assert_array_equal(active_speakers(permuted), active_speakers(active))
    f = framing(step)
    num_frames = f.num_frames(chunks, (chunks - 1) * step + WINDOW, has_last=False)

    def timeline(a):
        both = np.stack([speech_score(a), overlap_score(a)], axis=-1)
        return aggregate(both, f, num_frames)

    assert timeline(permuted).tobytes() == timeline(active).tobytes()


@PROPERTY
@given(scores=st.lists(st.floats(0, 1, width=32), min_size=0, max_size=120),
       onset=st.floats(0.05, 0.95), gap=st.floats(0, 0.5),
       min_on=st.floats(0, 0.3), min_off=st.floats(0, 0.3),
       pad=st.tuples(st.floats(0, 0.1), st.floats(0, 0.1)))
def test_regions_are_sorted_disjoint_and_long_enough(scores, onset, gap, min_on, min_off, pad):
    options = BinarizeOptions(onset=onset, offset=max(0.0, onset - gap), min_duration_on=min_on,
                              min_duration_off=min_off, pad_onset=pad[0], pad_offset=pad[1])
    regions = binarize(np.asarray(scores, np.float32), SPEC.grid, options)
    for region in regions:
        assert region.end > region.start and region.duration >= min_on
        first_middle = SPEC.grid.start + SPEC.grid.duration / 2  # regions run middle to middle
        last_middle = first_middle + (len(scores) - 1) * SPEC.grid.step
        assert first_middle - pad[0] - 1e-9 <= region.start
        assert region.end <= last_middle + pad[1] + 1e-9
    for before, after in itertools.pairwise(regions):
        assert after.start - before.end >= min(min_off, 1e-6) - 1e-9  # gaps kept are real
    if max(scores, default=0.0) <= onset:
        assert regions == []


@pytest.mark.parametrize("step", [1.0, 2.5, 9.9225])
def test_real_model_output_length_matches_the_formula(step):
    """The formula above holds for the real runtime too (a few lengths, real model)."""
    from powerseg import Segmenter

    seg = Segmenter(providers="cpu", step=step)
    rng = np.random.default_rng(0)
    for num_samples in (991, WINDOW - 1, WINDOW, WINDOW + 4321):
        audio = rng.normal(0, 0.05, num_samples).astype(np.float32)
        result = seg(audio, sample_rate=RATE, activations=False)
        _, has_last = seg.framing.num_chunks(num_samples)
        assert result.num_frames - 1 in expected_frames(num_samples, has_last)


@settings(max_examples=200, deadline=None)
@given(start=st.floats(0, 1), step=st.floats(1e-3, 0.1), duration=st.floats(1e-3, 0.2),
       index=st.integers(0, 10 ** 6), t=st.floats(0, 3600))
def test_frame_grid_is_pyannote_sliding_window(start, step, duration, index, t):
    """Regions and frame indices round exactly as pyannote.core's SlidingWindow does."""
    from pyannote.core import SlidingWindow

    grid, window = FrameGrid(start, step, duration), SlidingWindow(duration, step, start)
    assert grid.begin(index) == window[index].start
    assert grid.middle(index) == window[index].middle
    assert grid.closest(t) == window.closest_frame(t)
    assert list(grid.times(3, index)) == [window[i].start for i in range(index, index + 3)]
