"""The constructors and their frozen Options: the same names and defaults, one way in."""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields

import pytest

from powerseg.errors import OptionError
from powerseg.runtime import (Diarizer, DiarizerOptions, Embedder, EmbedderOptions, Segmenter,
                              SegmenterOptions)

PAIRS = [(Segmenter, SegmenterOptions), (Embedder, EmbedderOptions), (Diarizer, DiarizerOptions)]
NOT_OPTIONS = {"self", "options", "voices", "voice_threshold"}  # the Diarizer's voice bank


@pytest.mark.parametrize("constructor, options", PAIRS, ids=lambda x: x.__name__)
def test_constructor_keywords_are_the_options_fields(constructor, options):
    """As faster-whisper keeps two pipelines' signatures identical: a field added to one and
    not the other fails here."""
    keywords = {name: p.default for name, p in inspect.signature(constructor).parameters.items()
                if name not in NOT_OPTIONS}
    defaults = {f.name: f.default for f in fields(options)}
    assert keywords == defaults
    assert MISSING not in defaults.values()


@pytest.mark.parametrize("constructor, options, given", [
    (Segmenter, SegmenterOptions, dict(step=2.0)),
    (Embedder, EmbedderOptions, dict(threads=1)),
    (Diarizer, DiarizerOptions, dict(min_cluster_size=3)),
], ids=["Segmenter", "Embedder", "Diarizer"])
def test_keywords_beside_options_are_refused(constructor, options, given):
    name = next(iter(given))
    with pytest.raises(OptionError, match=f"{constructor.__name__}: give either keywords or "
                       f"options=, not both \\({name} would be ignored"):
        constructor(**given, options=options(providers="cpu"))


def test_a_positional_model_beside_options_is_refused():
    with pytest.raises(OptionError, match="model would be ignored"):
        Segmenter("int8", options=SegmenterOptions(providers="cpu"))


def test_options_alone_and_keywords_alone_give_the_same_object():
    by_options = Segmenter(options=SegmenterOptions(step=2.0, providers="cpu"))
    by_keywords = Segmenter(step=2.0, providers="cpu")
    assert by_options.options == by_keywords.options


@pytest.mark.parametrize("options", [SegmenterOptions, EmbedderOptions, DiarizerOptions],
                         ids=lambda x: x.__name__)
@pytest.mark.parametrize("bad", [-1, True, "1", float("nan"), float("inf")])
def test_every_checked_field_refuses_what_is_not_a_valid_number(options, bad):
    """One table of checks per Options class (``CHECKS``), the same words for every class."""
    assert options.CHECKS
    for name in options.CHECKS:
        with pytest.raises(OptionError, match=f"^{name} must be a (whole )?number "):
            options(**{name: bad})


@pytest.mark.parametrize("flag, text, field, value", [
    ("--min-cluster-size", "0", "min_cluster_size", 0), ("--batch-size", "0", "batch_size", 0),
    ("--threshold", "inf", "threshold", float("inf"))])
def test_the_cli_and_the_options_word_a_bad_value_alike(flag, text, field, value, capsys):
    """The command line's types are the Options fields' checks: the same words after the
    option's name (argparse's ``--step: ...``) as after the field's (``step ...``)."""
    from powerseg.cli import main

    with pytest.raises(SystemExit):
        main(["diarize", "x.wav", flag, text])
    said = capsys.readouterr().err.strip().splitlines()[-1]
    with pytest.raises(OptionError) as error:
        DiarizerOptions(**{field: value})
    python_words = str(error.value).split(f"{field} ", 1)[1].rsplit(", got", 1)[0]
    assert f"{flag}: {python_words}, got" in said, said


def test_paths_and_provider_lists_are_normalised():
    from pathlib import Path

    o = DiarizerOptions(segmentation=Path("a.onnx"), embedding=Path("b.onnx"),
                        providers=["cpu"])
    assert (o.segmentation, o.embedding, o.providers) == ("a.onnx", "b.onnx", ("cpu",))
    assert SegmenterOptions(model=Path("m.onnx")).model == "m.onnx"


@pytest.mark.parametrize("argv, expected", [
    (["diarize", "x.wav", "--preset", "fast", "--threshold", "0.8"],
     DiarizerOptions.preset("fast", threshold=0.8)),
    (["vad", "x.wav", "--step", "2", "--provider", "cpu"],
     SegmenterOptions(step=2.0, providers="cpu"))])
def test_the_cli_builds_the_options_objects_that_batch_and_ray_carry(argv, expected):
    """One path: the command line's options become the frozen Options object (presets merged
    by ``DiarizerOptions.preset``), which the batch Task carries to local and Ray workers."""
    from powerseg.cli import _task, build_parser

    args = build_parser().parse_args(argv)
    assert _task(args).model == expected
