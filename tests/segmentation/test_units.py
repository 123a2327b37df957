"""Exact expected values for decoding, framing, aggregation and binarisation."""

from __future__ import annotations

import numpy as np
import pytest

from powerseg.errors import OptionError
from powerseg.runtime.aggregate import aggregate
from powerseg.runtime.binarize import BinarizeOptions, Region, binarize
from powerseg.runtime.framing import FrameGrid, Framing
from powerseg.runtime.segmentation.model import ModelSpec
from powerseg.runtime.segmentation.powerset import (active_speakers, overlap_score, speech_score,
                                                    to_multilabel)

MAPPING = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]],
                   dtype=np.float32)


def toy_spec(window: int = 4, frames: int = 4) -> ModelSpec:
    """1 Hz 'audio', one frame per sample: easy arithmetic."""
    return ModelSpec(sample_rate=1, window_samples=window, num_frames=frames, frame_start_samples=0,
                     frame_step_samples=1, frame_duration_samples=1, mapping=MAPPING, metadata={})


def test_hard_decoding_maps_argmax_to_speakers():
    logprobs = np.log(np.full((7, 7), 0.01, dtype=np.float32) + np.eye(7, dtype=np.float32))
    active = to_multilabel(logprobs, MAPPING)
    np.testing.assert_array_equal(active, MAPPING)
    np.testing.assert_array_equal(speech_score(active), [0, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(overlap_score(active), [0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(active_speakers(active), [0, 1, 1, 1, 2, 2, 2])


def test_soft_decoding_sums_class_probabilities():
    probs = np.array([[0.1, 0.2, 0.05, 0.05, 0.3, 0.2, 0.1]], dtype=np.float32)
    active = to_multilabel(np.log(probs), MAPPING, soft=True)
    np.testing.assert_allclose(active, [[0.2 + 0.3 + 0.2, 0.05 + 0.3 + 0.1, 0.05 + 0.2 + 0.1]],
                               rtol=1e-6)


def test_chunk_count_and_frames_with_padded_last_chunk():
    framing = Framing(toy_spec(), step=2.0)
    assert framing.num_chunks(8) == (3, False)  # windows at 0, 2, 4 fit exactly
    assert framing.num_chunks(7) == (2, True)  # then a zero-padded window at 4
    assert framing.num_chunks(3) == (0, True)  # shorter than one window
    assert framing.num_frames(3, 8, False) == 9  # pyannote's length, nothing cropped
    assert framing.num_frames(3, 7, True) == 8  # cropped to the audio
    assert framing.num_frames(1, 3, True) == 4
    windows = framing.windows(np.arange(1, 8, dtype=np.float32))
    np.testing.assert_array_equal(windows, [[1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7, 0]])


def test_aggregate_plain_average_and_uncovered_tail():
    framing = Framing(toy_spec(), step=2.0)
    scores = np.array([[[1.0]] * 4, [[3.0]] * 4], dtype=np.float32)
    out = aggregate(scores, framing, num_frames=7, hamming=False)
    np.testing.assert_array_equal(out[:, 0], [1, 1, 2, 2, 3, 3, 0])


def test_aggregate_hamming_weights():
    framing = Framing(toy_spec(), step=2.0)
    scores = np.array([[[1.0]] * 4, [[3.0]] * 4], dtype=np.float32)
    out = aggregate(scores, framing, num_frames=7)[:, 0]
    w = np.hamming(4)  # [0.08, 0.77, 0.77, 0.08]
    expected = [1, 1, (w[2] + 3 * w[0]) / (w[2] + w[0]), (w[3] + 3 * w[1]) / (w[3] + w[1]), 3, 3, 0]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32


def test_aggregate_constant_scores_stay_constant():
    framing = Framing(toy_spec(window=10, frames=10), step=1.0)
    out = aggregate(np.full((6, 10, 2), 0.25, np.float32), framing, num_frames=15)
    np.testing.assert_allclose(out, 0.25, rtol=1e-6)


def regions(scores, **options) -> list[tuple[float, float]]:
    found = binarize(np.asarray(scores, dtype=np.float32), FrameGrid(0.0, 1.0, 1.0),
                     BinarizeOptions(**options))
    return [(r.start, r.end) for r in found]


def test_binarize_region_times_are_frame_middles():
    assert regions([0, 1, 1, 0, 0]) == [(1.5, 3.5)]  # ends where it switched off
    assert regions([1, 1, 0]) == [(0.5, 2.5)]
    assert regions([0, 1, 1]) == [(1.5, 2.5)]  # still active: ends at the last frame
    assert regions([0, 0, 1]) == []  # a single last frame gives an empty region, as pyannote
    assert regions([0, 0, 0]) == []
    assert regions([1]) == []


def test_binarize_thresholds_are_strict_and_hysteretic():
    assert regions([0.5, 0.5, 0.5]) == []  # not above onset
    assert regions([0.5, 0.8, 0.5, 0.4, 0.2, 0.5], onset=0.7, offset=0.3) == [(1.5, 4.5)]
    assert regions([1, 0.3, 1], onset=0.7, offset=0.3) == [(0.5, 2.5)]  # 0.3 is not below 0.3


def test_binarize_fills_short_gaps_and_drops_short_regions():
    scores = [1, 0, 1, 0, 0, 0, 1, 1, 1, 0]
    assert regions(scores) == [(0.5, 1.5), (2.5, 3.5), (6.5, 9.5)]
    assert regions(scores, min_duration_off=1.5) == [(0.5, 3.5), (6.5, 9.5)]
    assert regions(scores, min_duration_off=1.0) == [(0.5, 1.5), (2.5, 3.5), (6.5, 9.5)]
    assert regions(scores, min_duration_on=2.0) == [(6.5, 9.5)]
    assert regions(scores, pad_onset=0.25, pad_offset=0.75) == [(0.25, 4.25), (6.25, 10.25)]


def test_binarize_labels_and_durations():
    found = binarize(np.array([0, 1, 1, 0], np.float32), FrameGrid(0.0, 0.5, 0.25), label="OVERLAP")
    assert found == [Region(0.625, 1.625, "OVERLAP")]
    assert found[0].duration == 1.0


@pytest.mark.parametrize("options", [dict(onset=0.3, offset=0.6), dict(min_duration_on=-1),
                                     dict(min_duration_off=float("nan")), dict(pad_onset=-0.1)])
def test_binarize_rejects_invalid_options(options):
    with pytest.raises(OptionError):
        BinarizeOptions(**options)
