"""``model="auto"``: the faster of fp32 and int8 on this CPU, measured once and cached."""

from __future__ import annotations

import json

import numpy as np
import pytest

from powerseg.cli import main
from powerseg.runtime.audio import load_audio
from powerseg.runtime.segmentation.auto_model import (CACHE_NAME, CANDIDATES, MIN_GAIN, cache_key,
                                                      choose_variant)
from powerseg.runtime.segmentation.segmenter import Segmenter
from powerseg.samples import sample_path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POWERSEG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / CACHE_NAME


def test_first_use_measures_both_and_later_uses_read_the_answer(cache):
    first = choose_variant("cpu")
    assert not first.cached and set(first.seconds) == set(CANDIDATES)
    assert all(s > 0 for s in first.seconds.values())
    faster = first.seconds["int8"] * MIN_GAIN <= first.seconds["fp32"]
    assert first.variant == ("int8" if faster else "fp32")
    stored = json.loads(cache.read_text())
    assert stored[cache_key(None, 2)] == {"variant": first.variant, "seconds": first.seconds}
    again = choose_variant("cpu")
    assert again.cached and (again.variant, again.seconds) == (first.variant, first.seconds)
    assert first.variant in choose_variant("cpu").describe()


@pytest.mark.parametrize("variant", CANDIDATES)
def test_auto_runs_exactly_the_variant_it_chose(cache, variant):
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({cache_key(None, 2): {"variant": variant,
                                                      "seconds": {"fp32": 1.0, "int8": 1.0}}}))
    auto, chosen = Segmenter("auto"), Segmenter(variant)
    assert auto.choice.variant == variant and auto.choice.cached
    assert auto.model.path == chosen.model.path
    audio = load_audio(sample_path(), 16000)[:12 * 16000]
    a, b = auto(audio, sample_rate=16000), chosen(audio, sample_rate=16000)
    np.testing.assert_array_equal(a.speech, b.speech)
    assert a.options.model == "auto"  # what was asked; the model's metadata says what ran


@pytest.mark.parametrize("content", ["not json", '{"x": {"variant": "fp64"}}', "[]"])
def test_a_damaged_cache_is_measured_again_and_rewritten(cache, content):
    cache.parent.mkdir(parents=True)
    cache.write_text(content)
    choice = choose_variant("cpu")
    assert not choice.cached
    assert cache_key(None, 2) in json.loads(cache.read_text())


def test_an_unwritable_cache_only_means_measuring_again(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("POWERSEG_CACHE_DIR", str(blocker / "cache"))  # under a file: no dir
    assert choose_variant("cpu").variant in CANDIDATES
    assert not choose_variant("cpu").cached


def test_cli_auto(cache, tmp_path, capsys):
    wav = sample_path()
    assert main(["info", "--model", "auto"]) == 0
    said = capsys.readouterr().out
    variant = choose_variant("cpu").variant
    assert f"model auto runs: {variant}" in said
    assert main(["vad", str(wav), "--model", "auto", "-o", str(tmp_path / "auto.rttm")]) == 0
    assert main(["vad", str(wav), "--model", variant, "-o", str(tmp_path / "chosen.rttm")]) == 0
    assert (tmp_path / "auto.rttm").read_bytes() == (tmp_path / "chosen.rttm").read_bytes()
