"""Everyday use around the model: plots, evaluation, pyannote.core interop (batch runs, for every
command alike: tests/contracts/test_commands.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import wav
from powerseg.cli import main
from powerseg.samples import sample_path


@pytest.fixture(scope="module")
def sample_result(segmenter):
    return segmenter(sample_path())


# ---- plots -------------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "end"), [("10", None), ("0", "30")])
def test_plot_png_has_the_expected_size_and_content(tmp_path, start, end):
    pytest.importorskip("matplotlib")
    out = tmp_path / "fig.png"
    argv = ["plot", str(sample_path()), "-o", str(out), "--start", start]
    assert main(argv + (["--end", end] if end else [])) == 0
    from matplotlib.image import imread

    image = imread(out)
    assert image.shape[:2] == (600, 1200)  # 12 x 6 inches at 100 dpi
    gray = image[..., :3].mean(axis=-1)
    assert (gray < 0.5).mean() > 0.01  # ink: waveform, classes, regions
    assert gray.std() > 0.05  # not a blank canvas


def test_plot_rejects_an_empty_span(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["plot", str(sample_path()), "-o", str(tmp_path / "x.png"), "--start", "40"]) == 2
    assert "start" in capsys.readouterr().err


# ---- evaluation --------------------------------------------------------------------------

def test_eval_matches_pyannote_metrics(shared, tmp_path, capsys):
    pytest.importorskip("pyannote.metrics")
    ami = shared / "audio" / "ami_pyannote_debug"
    audio = sorted((ami / "wav").glob("*.wav"))[:5] + [wav("pyannote_sample", "sample")]
    refs = sorted((ami / "rttm").glob("*.rttm")) + [shared / "audio/pyannote_sample/rttm/sample.rttm"]
    reports = {}
    for metric in ("powerseg", "pyannote"):
        out = tmp_path / f"{metric}.json"
        argv = ["eval", *map(str, audio), "--reference", *map(str, refs), "--metric", metric,
                "-o", str(out)]
        assert main(argv) == 0
        reports[metric] = json.loads(out.read_text())
    ours, theirs = reports["powerseg"], reports["pyannote"]
    assert len(ours["files"]) == 2 * len(audio)
    for a, b in zip(ours["files"] + ours["overall"], theirs["files"] + theirs["overall"]):
        assert (a["uri"], a["task"]) == (b["uri"], b["task"])
        for key in ("reference", "false_alarm", "missed", "error_rate"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), (a["uri"], a["task"], key)
    sample_vad = next(f for f in ours["files"] if f["uri"] == "sample" and f["task"] == "vad")
    assert round(100 * sample_vad["error_rate"], 2) == 1.18  # pyannote's own figure
    assert "TOTAL" in capsys.readouterr().out


def test_reference_overlap_from_speaker_turns():
    from powerseg.evaluate import overlapped
    from powerseg.runtime import Region

    turns = [Region(0, 5, "a"), Region(3, 8, "b"), Region(4, 6, "c"), Region(8, 9, "a")]
    assert overlapped(turns) == [Region(3, 6, "OVERLAP")]


# ---- pyannote.core interop ---------------------------------------------------------------

def test_interop_round_trips_through_pyannote_core(sample_result):
    pytest.importorskip("pyannote.core")
    from powerseg.interop import activations_feature, to_annotation, to_sliding_window_feature

    annotation = to_annotation(sample_result.vad(), uri="sample")
    assert annotation.uri == "sample" and annotation.labels() == ["SPEECH"]
    assert annotation.get_timeline().duration() == pytest.approx(
        sum(r.duration for r in sample_result.vad()))
    speech = to_sliding_window_feature(sample_result, "speech")
    assert speech.data.shape == (1779, 1)
    assert speech.sliding_window.step == pytest.approx(0.016875)
    chunks = activations_feature(sample_result)
    assert chunks.data.shape == (21, 589, 3) and chunks.sliding_window.step == 1.0


def test_pyannote_binarize_on_our_scores_gives_our_regions(sample_result):
    """pyannote.audio's own Binarize, re-stated on pyannote.core objects, agrees with ours."""
    pytest.importorskip("pyannote.core")
    from powerseg.interop import to_sliding_window_feature

    feature = to_sliding_window_feature(sample_result, "overlap")
    frames = feature.sliding_window
    middles = np.array([frames[i].middle for i in range(len(feature.data))])
    ours = sample_result.osd()
    active = feature.data[:, 0] > 0.5
    starts = middles[np.flatnonzero(np.diff(active.astype(int)) == 1) + 1]
    assert [round(r.start, 6) for r in ours] == [round(t, 6) for t in starts]
