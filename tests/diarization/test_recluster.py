"""``Diarizer.recluster``: a result clustered again with other per-call settings, no model run.

Each case is held against a Diarizer made with those settings running the models on the same
audio: the RTTM bytes must be the same.
"""

from __future__ import annotations

import pytest

from powerseg import Diarizer
from powerseg.errors import OptionError


@pytest.fixture(scope="module")
def diarizer():
    return Diarizer(providers="cpu")


def test_the_same_settings_give_the_same_result(diarizer, sample_diarization):
    again = diarizer.recluster(sample_diarization)
    assert again.to_rttm("s") == sample_diarization.to_rttm("s")
    assert again.to_json("s") == sample_diarization.to_json("s")


@pytest.mark.parametrize("changes", [dict(threshold=0.5), dict(min_cluster_size=40),
                                     dict(min_duration_off=0.5)])
def test_other_settings_give_what_a_diarizer_with_them_gives(diarizer, sample, sample_diarization,
                                                             changes):
    made = Diarizer(providers="cpu", **changes)(sample)
    again = diarizer.recluster(sample_diarization, **changes)
    assert again.to_rttm("s") == made.to_rttm("s")
    assert again.options == made.options


@pytest.mark.parametrize("bounds", [dict(num_speakers=3), dict(max_speakers=1)])
def test_speaker_bounds(diarizer, sample, sample_diarization, bounds):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the same warning both ways, if any
        again = diarizer.recluster(sample_diarization, **bounds)
        made = diarizer(sample, **bounds)
    assert again.to_rttm("s") == made.to_rttm("s")


def test_what_the_models_fixed_cannot_change(diarizer, sample_diarization):
    with pytest.raises(OptionError, match="^step, exclude_overlap: fixed once the models"):
        diarizer.recluster(sample_diarization, step=2.0, exclude_overlap=False)
    with pytest.raises(OptionError, match="threshold must be a number > 0"):
        diarizer.recluster(sample_diarization, threshold=-1)
    other = Diarizer(providers="cpu", step=2.0)
    with pytest.raises(OptionError, match="made with other models or windows"):
        other.recluster(sample_diarization)
