"""`powerseg diarize`, `eval --diarization`, `plot --diarization` and pyannote interop."""

from __future__ import annotations

import json

import pytest

from helpers import SHARED
from powerseg.cli import main
from powerseg.runtime.metrics import diarization_error, read_rttm, read_uem
from powerseg.runtime.writers import rttm_lines

SETS = ("pyannote_sample", "ami_pyannote_debug", "librispeech_sim_a", "libri_conv_a")


def test_cli_rttm_is_the_api_result(tmp_path, sample, sample_diarization):
    out = tmp_path / "sample.rttm"
    assert main(["diarize", str(sample), "-o", str(out), "--provider", "cpu"]) == 0
    assert out.read_text() == "".join(rttm_lines("sample", sample_diarization.turns()))
    assert out.read_text().splitlines()[0].split()[7] == "SPEAKER_00"


def test_cli_json_exclusive(tmp_path, sample, sample_diarization):
    out = tmp_path / "sample.json"
    assert main(["diarize", str(sample), "-o", str(out), "--exclusive", "--provider", "cpu"]) == 0
    document = json.loads(out.read_text())
    assert document["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    assert [(t["start"], t["end"], t["speaker"]) for t in document["turns"]] == \
        [(round(t.start, 6), round(t.end, 6), t.speaker) for t in sample_diarization.exclusive()]
    assert document["options"]["embedding"] == "campplus"
    assert document["provider"] == document["embedding_provider"] == "CPUExecutionProvider"
    assert (document["variant"], document["embedding_variant"]) == ("fp32", "fp32")
    assert document["embedding_model"].startswith("3D-Speaker CAM++")


@pytest.mark.parametrize("args", [["--num-speakers", "0"], ["--min-speakers", "3",
                                                            "--max-speakers", "2"],
                                  ["--threshold", "-1"]])
def test_cli_bad_speaker_options_are_usage_errors(args, sample, capsys):
    code = None
    try:
        code = main(["diarize", str(sample), "--provider", "cpu", *args])
    except SystemExit as exit_:  # argparse refuses non-positive values itself
        code = exit_.code
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("name", SETS)
def test_diarization_error_equals_pyannote_metrics(name, shared):
    """Interval arithmetic vs pyannote.metrics' DiarizationErrorRate, on pyannote's own RTTMs
    against the ground truth of every shared file (collar 0, overlap scored, UEM)."""
    from powerseg.evaluate import pyannote_metric

    truth_dir = SHARED / "audio" / name
    uems = read_uem(truth_dir / "uem" / "all.uem")
    for hypothesis_path in sorted((SHARED / "reference" / "diarization" / name).glob("*[0-9a-z].rttm")):
        uri = hypothesis_path.stem
        if "." in uri:
            continue
        truth = read_rttm(truth_dir / "rttm" / f"{uri}.rttm").get(uri, [])
        hypothesis = read_rttm(hypothesis_path).get(uri, [])
        ours = diarization_error(truth, hypothesis, uems[uri])
        theirs = pyannote_metric(truth, hypothesis, uems[uri], diarization=True)
        for field in ("reference", "false_alarm", "missed", "confusion"):
            assert getattr(ours, field) == pytest.approx(getattr(theirs, field), abs=1e-6), \
                (uri, field)


def test_cli_eval_diarization(tmp_path, sample, capsys):
    truth = SHARED / "audio" / "pyannote_sample"
    out = tmp_path / "der.json"
    assert main(["eval", str(sample), "--reference", str(truth / "rttm" / "sample.rttm"),
                 "--uem", str(truth / "uem" / "all.uem"), "--diarization", "--provider", "cpu",
                 "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    # pyannote.audio's pipeline on this file: 5.21 % (reference/diarization/README.md)
    assert report["overall"][0]["error_rate"] == pytest.approx(0.0521, abs=0.0006)
    assert "diarization" in capsys.readouterr().out


def test_plot_diarization(tmp_path, sample):
    pytest.importorskip("matplotlib")
    out = tmp_path / "turns.png"
    assert main(["plot", str(sample), "--diarization", "-o", str(out), "--provider", "cpu"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_to_annotation_of_a_diarization(sample_diarization):
    from powerseg.interop import to_annotation

    annotation = to_annotation(sample_diarization, "sample")
    assert annotation.labels() == list(sample_diarization.speakers)
    assert len(annotation) == len(sample_diarization.turns())


def test_presets_resolve_and_unknown_ones_are_refused():
    from powerseg import DiarizerOptions
    from powerseg.errors import OptionError

    assert DiarizerOptions.preset("pyannote") == DiarizerOptions()
    fast, fastest = DiarizerOptions.preset("fast"), DiarizerOptions.preset("fastest")
    # min_cluster_size follows the chunk rate: pyannote's 12 at 1 s, 12 / step at others
    assert (fast.step, fast.min_cluster_size) == (3.0, 4)
    assert (fastest.step, fastest.min_cluster_size) == (5.0, 2)
    assert DiarizerOptions.preset("fast", step=1.5, min_cluster_size=6) == \
        DiarizerOptions(step=1.5, min_cluster_size=6)
    with pytest.raises(OptionError, match="unknown preset 'quick'.*pyannote, fast, fastest"):
        DiarizerOptions.preset("quick")


@pytest.mark.parametrize("flags, step, cluster", [
    ([], 1.0, 12), (["--preset", "fast"], 3.0, 4), (["--preset", "fast", "--step", "2"], 2.0, 4),
    (["--preset", "fastest"], 5.0, 2),
    (["--preset", "fast", "--step", "1.5", "--min-cluster-size", "6"], 1.5, 6)])
def test_cli_preset_then_the_options_given(tmp_path, sample, flags, step, cluster):
    out = tmp_path / "sample.json"
    assert main(["diarize", str(sample), "-o", str(out), "--provider", "cpu", *flags]) == 0
    options = json.loads(out.read_text())["options"]
    assert (options["step"], options["min_cluster_size"]) == (step, cluster)


def test_cli_fast_preset_is_its_options(tmp_path, sample):
    from powerseg import Diarizer

    out = tmp_path / "sample.rttm"
    assert main(["diarize", str(sample), "-o", str(out), "--provider", "cpu",
                 "--preset", "fast"]) == 0
    expected = Diarizer(step=3.0, min_cluster_size=4, providers="cpu")(sample).turns()
    assert out.read_text() == "".join(rttm_lines("sample", expected))


def test_cli_preset_is_refused_by_name(capsys, sample):
    with pytest.raises(SystemExit) as exit_:
        main(["diarize", str(sample), "--preset", "quick"])
    assert exit_.value.code == 2
    assert "invalid choice: 'quick'" in capsys.readouterr().err
