"""Speaker-attributed transcripts: word readers, the attribution rule's edge cases, caption
splitting, the writers and `powerseg transcript`, on real shared audio where a diarization is
involved (word files are made here: no ASR runs in the tests)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from powerseg import assign_speakers
from powerseg.cli import main
from powerseg.errors import TranscriptError
from powerseg.runtime.metrics import read_rttm
from powerseg.transcript import (MAX_CAPTION_CHARS, Word, captions, output_format, parse_words,
                                 read_words, render, srt, text, vtt)

TURNS = [(0.0, 2.0, "A"), (1.5, 3.0, "B"), (3.0, 5.0, "A"), (8.0, 9.0, "B")]


def speakers(words, turns=TURNS, **kw):
    return [w.speaker for w in assign_speakers(words, turns, **kw).words]


# ---- the attribution rule ---------------------------------------------------------------------

def test_a_word_across_a_turn_boundary_takes_the_larger_overlap():
    # 2.6-3.3: 0.4 s with B (to 3.0), 0.3 s with A (from 3.0)
    assert speakers([(2.6, 3.3, "x")]) == ["B"]
    assert speakers([(2.8, 3.5, "x")]) == ["A"]


def test_overlapped_speech_keeps_the_previous_speaker_on_a_tie():
    # 1.6-1.9 lies inside both A's and B's turns: a tie
    assert speakers([(1.0, 1.4, "a"), (1.6, 1.9, "b")]) == ["A", "A"]
    assert speakers([(2.2, 2.5, "b"), (1.6, 1.9, "?")]) == ["B", "B"]
    # no previous word among the tied: the speaker heard first
    assert speakers([(1.6, 1.9, "?")]) == ["A"]


def test_words_in_silence_take_the_nearest_speaker_within_the_gap_only():
    # 5.3-5.6 is 0.3 s after A's turn; 7.7-7.8 is 0.2 s before B's
    assert speakers([(5.3, 5.6, "x"), (7.7, 7.8, "y")]) == ["A", "B"]
    # 6.0-6.5: 1.0 s from A, 1.5 s from B: beyond the default 0.5 s gap
    assert speakers([(6.0, 6.5, "z")]) == [None]
    assert speakers([(6.0, 6.5, "z")], max_gap=1.0) == ["A"]
    assert speakers([(5.3, 5.6, "x")], max_gap=0.0) == [None]
    # equally near to both: the previous word's speaker, else the one heard first
    assert speakers([(9.0, 9.0, "b"), (6.5, 6.5, "mid")], max_gap=2.0) == ["B", "B"]


def test_an_empty_diarization_leaves_every_word_unattributed():
    t = assign_speakers([(0.0, 1.0, "hello"), (1.0, 2.0, "there")], [])
    assert [w.speaker for w in t.words] == [None, None]
    assert len(t.paragraphs) == 1 and t.paragraphs[0].speaker is None
    assert text(t) == "UNKNOWN: hello there\n"


def test_zero_length_and_untimed_words():
    words = [(None, None, "1990"), (0.5, 0.5, "at"), (None, None, "2,"), (3.5, 3.5, "then")]
    assert speakers(words) == ["A", "A", "A", "A"]
    assert speakers([(8.5, 8.5, "b"), (None, None, "%")]) == ["B", "B"]


def test_every_input_word_once_in_input_order_with_paragraphs():
    words = [{"start": 0.1, "end": 0.4, "word": "Hi"}, {"start": 0.5, "end": 0.9, "word": "Bea."},
             Word(2.2, 2.6, "Hello"), (2.7, 2.9, "Ada."), (3.5, 3.9, "Bye.")]
    t = assign_speakers(words, TURNS)
    assert [w.text for w in t.words] == ["Hi", "Bea.", "Hello", "Ada.", "Bye."]
    assert [(p.speaker, p.text, p.first, p.last) for p in t.paragraphs] == [
        ("A", "Hi Bea.", 0, 1), ("B", "Hello Ada.", 2, 3), ("A", "Bye.", 4, 4)]
    assert t.speakers == ["A", "B"]


def test_a_diarization_object_is_taken_as_its_turns(sample_diarization):
    turns = sample_diarization.turns()
    middle = [((t.start + t.end) / 2 - 0.05, (t.start + t.end) / 2 + 0.05, "w") for t in turns
              if t.end - t.start > 1.0]
    assert speakers(middle, sample_diarization) == speakers(middle, turns)


def test_bad_words_and_gap_are_refused():
    for bad, what in (((2.0, 1.0, "x"), "before start"), ((math.nan, 1.0, "x"), "finite"),
                      ((-1.0, 1.0, "x"), "negative"), (("1", 2, "x"), "numbers"),
                      ((1.0, None, "x"), "numbers"), ((1.0, 2.0, 3), "not a string")):
        with pytest.raises(TranscriptError, match=what):
            assign_speakers([bad], TURNS)
    with pytest.raises(TranscriptError, match="max_gap"):
        assign_speakers([(0, 1, "x")], TURNS, max_gap=-1)


def test_bad_turns_are_refused_not_read_as_another_speaker():
    """Turns given directly are checked as words are: no made-up label for a turn without a
    speaker, no NaN reaching numpy, no end before start."""
    for bad, what in (((2.0, 1.0, "A"), "turn 0 \\('A'\\): start 2 and end 1 must be finite "
                                         "seconds, end not before start"),
                      ((math.nan, 1.0, "A"), "start nan and end 1 must be finite"),
                      ((-1.0, 1.0, "A"), "start -1 and end 1 must be finite"),
                      (("0", 1.0, "A"), "must both be numbers of seconds"),
                      ((0.0, 1.0), "turn 0 is \\(0.0, 1.0\\); give a Diarization or"),
                      (5, "turn 0 is 5")):
        with pytest.raises(TranscriptError, match=what):
            assign_speakers([(0, 1, "x")], [bad])
    # numpy's numbers are numbers, for words and turns alike
    words = assign_speakers([(np.float32(0.0), np.float32(1.0), "x")],
                            [(np.float32(0.0), np.float64(1.0), "A")]).words
    assert words == (Word(0.0, 1.0, "x", "A"),)


# ---- readers ----------------------------------------------------------------------------------

WHISPER = {"text": " Hello there. General Kenobi!", "language": "en", "segments": [
    {"id": 0, "seek": 0, "start": 0.0, "end": 1.4, "text": " Hello there.", "words": [
        {"word": " Hello", "start": 0.0, "end": 0.6, "probability": 0.9},
        {"word": " there.", "start": 0.6, "end": 1.4, "probability": 0.8}]},
    {"id": 1, "seek": 0, "start": 2.0, "end": 3.2, "text": " General Kenobi!", "words": [
        {"word": " General", "start": 2.0, "end": 2.5, "probability": 0.9},
        {"word": " Kenobi!", "start": 2.5, "end": 3.2, "probability": 0.7}]}]}
WHISPERX = {"segments": [{"start": 0.0, "end": 3.2, "text": "Hello there, 1990.", "words": [
    {"word": "Hello", "start": 0.0, "end": 0.6, "score": 0.9},
    {"word": "there,", "start": 0.6, "end": 1.4, "score": 0.8},
    {"word": "1990."}]}],
    "word_segments": [{"word": "Hello", "start": 0.0, "end": 0.6, "score": 0.9}]}


@pytest.mark.parametrize("data, texts, spaced", [
    ([{"start": 0.0, "end": 0.5, "word": "Hi"}, {"start": 0.5, "end": 1.0, "word": "there"}],
     ["Hi", "there"], False),
    (WHISPER, [" Hello", " there.", " General", " Kenobi!"], True),
    (WHISPER["segments"], [" Hello", " there.", " General", " Kenobi!"], True),  # faster-whisper
    (WHISPERX, ["Hello", "there,", "1990."], False),
    ({"word_segments": WHISPERX["word_segments"]}, ["Hello"], False),
    ({"schema": 1, "words": [{"start": 0.0, "end": 0.5, "word": "Hi", "speaker": "A"}]}, ["Hi"],
     False),
], ids=["plain", "openai-whisper", "faster-whisper", "whisperX", "whisperX-words", "powerseg"])
def test_word_formats(tmp_path, data, texts, spaced):
    path = tmp_path / "words.json"
    path.write_text(json.dumps(data))
    words = read_words(path)
    assert [w.text for w in words] == texts
    t = assign_speakers(words, [(0.0, 5.0, "A")])
    assert t.paragraphs[0].text == ("".join(texts).strip() if spaced else " ".join(texts))


def test_whisperx_untimed_words_are_kept():
    words = parse_words(WHISPERX, "x.json")
    assert words[2] == Word(None, None, "1990.")


@pytest.mark.parametrize("content, message", [
    ('{"text": "hi"}', r"not a words file in a known format; tried a plain JSON list .*"
                       r"openai-whisper / faster-whisper JSON .*whisperX JSON .*found an object"),
    ('[1, 2]', "tried .*found a list of 2"),
    ('{"segments": [{"start": 0, "end": 1, "text": "hi"}]}', "word_timestamps=True"),
    ('[{"start": 1.0, "end": 0.5, "word": "x"}]', r"word 0 \('x'\): end 0.5 is before start 1.0"),
    ('[{"start": NaN, "end": 0.5, "word": "x"}]', "finite"),
    ('[{"start": 0, "end": 0.5, "word": "x"}', r"not JSON \(line 1"),
    ('[]', "no words"),
    ('[{"word": "x"}]', "no word has times"),
])
def test_bad_word_files_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "words.json"
    path.write_text(content)
    with pytest.raises(TranscriptError, match=message) as error:
        read_words(path)
    assert str(error.value).startswith(str(path))


def test_a_missing_words_file(tmp_path):
    with pytest.raises(TranscriptError, match="no such words file"):
        read_words(tmp_path / "none.json")


# ---- captions and writers ---------------------------------------------------------------------

def long_talk():
    """A: two sentences, then B: one long run-on sentence of 40 words."""
    words = [(0.0, 0.3, "One"), (0.3, 0.6, "two."), (0.7, 1.0, "Three"), (1.0, 1.4, "four?")]
    words += [(1.5 + 0.2 * i, 1.7 + 0.2 * i, f"word{i}") for i in range(40)]
    return assign_speakers(words, [(0.0, 1.45, "Ada"), (1.45, 10.0, "Bea")])


def test_captions_split_at_sentences_and_length_never_across_speakers():
    cues = captions(long_talk())
    assert [c.text for c in cues[:2]] == ["One two.", "Three four?"]
    assert all(c.speaker == "Ada" for c in cues[:2]) and all(c.speaker == "Bea" for c in cues[2:])
    assert all(len(c.text) <= MAX_CAPTION_CHARS for c in cues)
    assert " ".join(c.text for c in cues[2:]) == " ".join(f"word{i}" for i in range(40))
    assert all(c.end - c.start <= 7.0 + 1e-9 for c in cues)
    short = captions(long_talk(), max_seconds=1.0)
    assert all(c.end - c.start <= 1.0 + 1e-9 for c in short) and len(short) > len(cues)


def test_srt_vtt_and_text_layouts():
    t = assign_speakers([(0.0, 0.5, "Hi"), (0.5, 1.25, "<b>&"), (3661.5, 3662.0, "late.")],
                        [(0.0, 2.0, "Ada"), (3661.0, 3663.0, "Bea")])
    assert srt(t) == ("1\n00:00:00,000 --> 00:00:01,250\nAda: Hi <b>&\n\n"
                      "2\n01:01:01,500 --> 01:01:02,000\nBea: late.\n")
    assert vtt(t) == ("WEBVTT\n\n00:00:00.000 --> 00:00:01.250\n<v Ada>Hi &lt;b&gt;&amp;\n\n"
                      "01:01:01.500 --> 01:01:02.000\n<v Bea>late.\n")
    assert text(t) == "Ada: Hi <b>&\n\nBea: late.\n"
    doc = json.loads(render(t, "json", {"schema": 1, "uri": "x"}))
    assert doc["schema"] == 1 and doc["uri"] == "x"
    assert doc["words"][1] == {"start": 0.5, "end": 1.25, "word": "<b>&", "speaker": "Ada"}
    assert doc["paragraphs"][1] == {"speaker": "Bea", "start": 3661.5, "end": 3662.0,
                                    "text": "late.", "first_word": 2, "last_word": 2}


def test_unknown_output_formats_are_refused():
    assert output_format("a/b.VTT") == "vtt"
    for name in ("out.docx", "out"):
        with pytest.raises(TranscriptError, match="unknown transcript format"):
            output_format(name)


# ---- real audio -------------------------------------------------------------------------------

def reference_words(shared, step: float = 0.3) -> tuple[list[dict], list[str]]:
    """Words every ``step`` seconds through the sample's reference speech (solo parts only),
    with the reference speaker each belongs to."""
    truth = read_rttm(shared / "audio" / "pyannote_sample" / "rttm" / "sample.rttm")["sample"]
    words, owners = [], []
    for r in truth:
        t = r.start
        while t + step <= r.end:
            others = [o for o in truth if o is not r and o.start < t + step and t < o.end]
            if not others:
                words.append({"start": round(t, 3), "end": round(t + step, 3), "word": f"w{len(words)}"})
                owners.append(r.label)
            t += step
    return words, owners


def test_words_on_real_speech_take_the_right_speaker(shared, sample_diarization):
    """Words placed in the reference's solo speech: at least 95 % take the diarized speaker
    that the reference speaker maps to (the diarization's error on this file is 5.21 %)."""
    words, owners = reference_words(shared)
    got = [w.speaker for w in assign_speakers(words, sample_diarization).words]
    mapping = {}
    for owner in set(owners):
        said = [g for g, o in zip(got, owners) if o == owner]
        mapping[owner] = max(set(said), key=said.count)
    assert len(set(mapping.values())) == len(mapping) == 2
    right = sum(mapping[o] == g for o, g in zip(owners, got)) / len(owners)
    assert len(words) > 50 and right >= 0.95


def test_cli_transcript_with_an_rttm(tmp_path, shared, sample, capsys):
    words, _ = reference_words(shared)
    path = tmp_path / "words.json"
    path.write_text(json.dumps(words))
    rttm = shared / "audio" / "pyannote_sample" / "rttm" / "sample.rttm"
    for suffix in ("json", "srt", "vtt", "txt"):
        out = tmp_path / f"t.{suffix}"
        assert main(["transcript", str(sample), "--words", str(path), "--rttm", str(rttm),
                     "-o", str(out)]) == 0
    doc = json.loads((tmp_path / "t.json").read_text())
    assert [w["word"] for w in doc["words"]] == [w["word"] for w in words]
    assert doc["rttm"] == str(rttm) and doc["schema"] == 1 and doc["uri"] == "sample"
    assert abs(doc["duration"] - 30.0) < 0.1 and set(doc["speakers"]) == {"speaker90", "speaker91"}
    assert {w["speaker"] for w in doc["words"]} == {"speaker90", "speaker91"}
    cues = re.findall(r"^\d+\n(\S+) --> (\S+)\n(\w+): ", (tmp_path / "t.srt").read_text(), re.M)
    assert len(cues) >= len(doc["paragraphs"])
    assert (tmp_path / "t.vtt").read_text().startswith("WEBVTT\n\n")
    assert (tmp_path / "t.txt").read_text().count("\n\n") == len(doc["paragraphs"]) - 1


def test_cli_transcript_diarizes_when_no_rttm(tmp_path, shared, sample):
    words, _ = reference_words(shared, step=1.0)
    path = tmp_path / "words.json"
    path.write_text(json.dumps(words))
    out = tmp_path / "t.json"
    assert main(["transcript", str(sample), "--words", str(path), "-o", str(out),
                 "--provider", "cpu"]) == 0
    doc = json.loads(out.read_text())
    assert doc["options"]["embedding"] == "campplus" and len(doc["turns"]) > 0
    assert {w["speaker"] for w in doc["words"]} == {"SPEAKER_00", "SPEAKER_01"}


@pytest.mark.parametrize("content, out, args, message, code", [
    ('{"text": "hi"}', "t.json", [], "tried a plain JSON list", 1),
    ('[{"start": 1, "end": 0, "word": "x"}]', "t.srt", [], "end 0 is before start 1", 1),
    ('[{"start": 0, "end": 1, "word": "x"}]', "t.docx", [], "unknown transcript format", 1),
    ('[{"start": 0, "end": 1, "word": "x"}]', "t.txt", ["--voices", "v.npz"],
     "--voices does not apply with --rttm (it gives a finished diarization: no model runs)", 2),
])
def test_cli_transcript_bad_input(tmp_path, shared, sample, capsys, content, out, args, message,
                                  code):
    path = tmp_path / "words.json"
    path.write_text(content)
    rttm = shared / "audio" / "pyannote_sample" / "rttm" / "sample.rttm"
    assert main(["transcript", str(sample), "--words", str(path), "--rttm", str(rttm),
                 "-o", str(tmp_path / out), *args]) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["words.json"]  # nothing written


def test_cli_transcript_refuses_a_malformed_rttm(tmp_path, sample, capsys):
    """A turn with a negative duration is refused, naming the file and line, not read as a
    diarization without that turn; nothing is written."""
    words, rttm, out = tmp_path / "words.json", tmp_path / "bad.rttm", tmp_path / "t.srt"
    words.write_text('[{"start": 0, "end": 1, "word": "x"}]')
    rttm.write_text("SPEAKER sample 1 0.0 2.0 <NA> <NA> A <NA> <NA>\n"
                    "SPEAKER sample 1 3.0 -1.0 <NA> <NA> B <NA> <NA>\n")
    assert main(["transcript", str(sample), "--words", str(words), "--rttm", str(rttm),
                 "-o", str(out)]) == 1
    assert capsys.readouterr().err == (f"powerseg: error: {rttm}:2: malformed RTTM line (start 3 "
                                       "and duration -1 must be finite seconds, neither "
                                       "negative)\n")
    assert not out.exists()
