"""Speaker-attributed transcripts: an ASR's word timings, each word given a diarization's
speaker, grouped into speaker paragraphs, written as JSON, SubRip, WebVTT or plain text.

Which speaker a word gets (``assign_speakers``):
1. the speaker whose turns overlap the word longest (a zero-length word: a speaker whose turn
   contains its instant);
2. when no turn overlaps, the speaker of the nearest turn within ``max_gap`` seconds (ASR word
   times often reach a little past the diarization's turn edges);
3. otherwise none (``None``; "UNKNOWN" in captions and text).
Ties (overlapped speech covering a whole word, equally near turns) go to the previous word's
speaker when it is among them, else to the speaker heard first. A word without times (whisperX
leaves digits and symbols it cannot align untimed) takes the previous word's speaker, or the
next one's at the start.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from powerseg.errors import TranscriptError

MAX_GAP = 0.5  # seconds: a word this close to a turn, and overlapping none, takes its speaker
UNKNOWN = "UNKNOWN"  # a word's speaker in captions and text when no turn is near
MAX_CAPTION_CHARS = 84  # two lines of 42, the usual broadcast limit
MAX_CAPTION_LINE = 42
MAX_CAPTION_SECONDS = 7.0
FORMATS = ("json", "srt", "vtt", "txt")
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019\u00bb)\]]*$")
TRIED = ("a plain JSON list of {start, end, word}", "openai-whisper / faster-whisper JSON "
         "({segments: [{words: [{word, start, end}]}]})", "whisperX JSON ({segments: [{words}], "
         "word_segments})", "powerseg transcript JSON ({words: [...]})")


class Word(NamedTuple):
    start: float | None  # seconds; None for a word the ASR left untimed
    end: float | None
    text: str  # as the ASR wrote it (whisper's words carry their leading space)
    speaker: str | None = None


class Paragraph(NamedTuple):
    """Consecutive words of one speaker."""

    speaker: str | None
    start: float | None  # of its first timed word
    end: float | None  # of its last timed word
    text: str
    first: int  # index of its first word
    last: int  # index of its last word (inclusive)


@dataclass(frozen=True)
class Transcript:
    words: tuple[Word, ...]  # every input word, in input order, with its speaker
    paragraphs: tuple[Paragraph, ...]

    @property
    def speakers(self) -> list[str]:
        """Speakers in order of first word."""
        return list(dict.fromkeys(w.speaker for w in self.words if w.speaker is not None))


# ---- words in ---------------------------------------------------------------------------------

def _number(value: Any) -> float | None:
    """A time as float: any real number (numpy's too), never a bool or a string."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def check_word(index: int, start: Any, end: Any, text: Any, source: str) -> Word:
    """A validated Word; TranscriptError naming ``source`` and the word otherwise. Both times
    None is a word the ASR could not place (untimed)."""
    if not isinstance(text, str):
        raise TranscriptError(f"{source}: word {index}: its text is {text!r}, not a string")
    what = f"{source}: word {index} ({text.strip()!r})"
    if start is None and end is None:
        return Word(None, None, text)
    s, e = _number(start), _number(end)
    if s is None or e is None:
        raise TranscriptError(f"{what}: start {start!r} and end {end!r} must both be numbers of "
                              "seconds")
    if not (math.isfinite(s) and math.isfinite(e)):
        raise TranscriptError(f"{what}: start {start} / end {end}: times must be finite (no "
                              "NaN or infinity)")
    if s < 0:
        raise TranscriptError(f"{what}: negative start {start}")
    if e < s:
        raise TranscriptError(f"{what}: end {end} is before start {start}")
    return Word(s, e, text)


def as_words(words: Iterable, source: str = "words") -> list[Word]:
    """Words given as Word, (start, end, text) tuples or {start, end, word|text} dicts."""
    out = []
    for i, w in enumerate(words):
        if isinstance(w, dict):
            out.append(check_word(i, w.get("start"), w.get("end"), w.get("word", w.get("text")),
                                  source))
        elif isinstance(w, (tuple, list)) and len(w) >= 3:
            out.append(check_word(i, w[0], w[1], w[2], source))
        else:
            raise TranscriptError(f"{source}: word {i} is {w!r}; give (start, end, text) or "
                                  "{start, end, word}")
    return out


def _describe(data: Any) -> str:
    if isinstance(data, dict):
        return "an object with keys " + (", ".join(sorted(map(str, data))[:8]) or "none")
    if isinstance(data, list):
        first = data[0] if data else None
        inner = f"objects with keys {', '.join(sorted(map(str, first))[:8])}" \
            if isinstance(first, dict) else type(first).__name__
        return f"a list of {len(data)} ({inner})" if data else "an empty list"
    return f"a JSON {type(data).__name__}"


def _segments(segments: list, source: str) -> list[Word]:
    """whisper-style segments, each with its ``words`` (whisperX may leave a word untimed)."""
    words: list[dict] = []
    for n, segment in enumerate(segments):
        if not isinstance(segment, dict) or not isinstance(segment.get("words"), list):
            raise TranscriptError(
                f"{source}: segment {n} has no word timings ('words'); transcribe with word "
                "timestamps (openai-whisper / faster-whisper: word_timestamps=True; whisperX: "
                "its alignment step)")
        words += segment["words"]
    if not all(isinstance(w, dict) for w in words):
        raise TranscriptError(f"{source}: a segment's 'words' holds something other than "
                              "{word, start, end} objects")
    return as_words(words, source)


def _is_word_list(items: list) -> bool:
    return bool(items) and all(isinstance(w, dict) and ("word" in w or "text" in w) and
                               "words" not in w for w in items)


def _is_segment_list(items: list) -> bool:
    return bool(items) and all(isinstance(s, dict) and "words" in s for s in items)


def parse_words(data: Any, source: str) -> list[Word]:
    """Words from decoded JSON in any of the formats of ``TRIED``."""
    if isinstance(data, list) and _is_word_list(data):
        return as_words(data, source)
    if isinstance(data, list) and _is_segment_list(data):  # faster-whisper segments dumped
        return _segments(data, source)
    if isinstance(data, dict):
        if isinstance(data.get("segments"), list) and data["segments"]:
            return _segments(data["segments"], source)
        if isinstance(data.get("word_segments"), list) and _is_word_list(data["word_segments"]):
            return as_words(data["word_segments"], source)
        if isinstance(data.get("words"), list) and _is_word_list(data["words"]):
            return as_words(data["words"], source)
    if data in ([], {"segments": []}) or (isinstance(data, dict) and data.get("words") == []):
        raise TranscriptError(f"{source}: no words in it: nothing to attribute to speakers")
    raise TranscriptError(f"{source}: not a words file in a known format; tried "
                          f"{'; '.join(TRIED)}; found {_describe(data)}")


def read_words(path: str | os.PathLike) -> list[Word]:
    """Word timings from a JSON file (formats: ``TRIED``)."""
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TranscriptError(f"{source}: no such words file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TranscriptError(f"{source}: cannot read the words file ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise TranscriptError(f"{source}: not JSON (line {error.lineno}, column {error.colno}: "
                              f"{error.msg}); tried {'; '.join(TRIED)}") from None
    words = parse_words(data, source)
    if not words:
        raise TranscriptError(f"{source}: no words in it: nothing to attribute to speakers")
    if all(w.start is None for w in words):
        raise TranscriptError(f"{source}: no word has times; align the transcript first")
    return words


# ---- speakers ---------------------------------------------------------------------------------

class _Turns(NamedTuple):
    starts: np.ndarray
    ends: np.ndarray
    speakers: np.ndarray  # index into names
    names: list[str]  # in order of first turn


def _turn(index: int, item: Any) -> tuple[float, float, str]:
    """One turn as (start, end, speaker): a Turn, a Region or a (start, end, speaker) tuple;
    a TranscriptError naming it otherwise, never a label made up or a time taken on trust."""
    speaker = getattr(item, "speaker", None) or getattr(item, "label", None)
    if speaker is None and isinstance(item, (tuple, list)) and len(item) >= 3:
        speaker = item[2]
    if not isinstance(item, (tuple, list)) or len(item) < 2 or speaker is None:
        raise TranscriptError(f"turns: turn {index} is {item!r}; give a Diarization or "
                              "(start, end, speaker) turns")
    what = f"turns: turn {index} ({speaker!r})"
    start, end = _number(item[0]), _number(item[1])
    if start is None or end is None:
        raise TranscriptError(f"{what}: start {item[0]!r} and end {item[1]!r} must both be "
                              "numbers of seconds")
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
        raise TranscriptError(f"{what}: start {start:g} and end {end:g} must be finite seconds, "
                              "end not before start")
    return start, end, str(speaker)


def _turns(diarization: Any) -> _Turns:
    """A Diarization's turns, or turns/regions given directly as (start, end, speaker)."""
    items = diarization.turns() if hasattr(diarization, "turns") else diarization
    rows = sorted(_turn(i, t) for i, t in enumerate(items))
    names = list(dict.fromkeys(speaker for _, _, speaker in rows))
    index = {name: i for i, name in enumerate(names)}
    return _Turns(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                  np.array([index[r[2]] for r in rows], dtype=np.int64), names)


def _pick(scores: np.ndarray, candidates: np.ndarray, previous: int | None) -> int:
    """Among the speakers ``candidates`` whose score equals the best, the previous word's,
    else the one heard first (the lowest index)."""
    best = scores[candidates].max()
    tied = candidates[np.abs(scores[candidates] - best) <= 1e-9]
    return previous if previous in tied else int(tied.min())


def _speaker_of(word: Word, turns: _Turns, previous: int | None, max_gap: float) -> int | None:
    count = len(turns.names)
    if word.end > word.start:
        shared = np.minimum(turns.ends, word.end) - np.maximum(turns.starts, word.start)
    else:  # an instant: inside a turn or not
        shared = ((turns.starts <= word.start) & (word.start <= turns.ends)).astype(np.float64)
    overlap = np.bincount(turns.speakers, np.maximum(shared, 0.0), minlength=count)
    if (overlap > 0).any():
        return _pick(overlap, np.flatnonzero(overlap > 0), previous)
    distance = np.maximum(np.maximum(turns.starts - word.end, word.start - turns.ends), 0.0)
    nearest = np.full(count, np.inf)
    np.minimum.at(nearest, turns.speakers, distance)
    near = np.flatnonzero(nearest <= max_gap)
    return _pick(-nearest, near, previous) if len(near) else None


def assign_speakers(words: Iterable, diarization: Any, max_gap: float = MAX_GAP) -> Transcript:
    """Each word with its speaker (the rule in this module's docstring), in input order, and
    the speaker paragraphs. ``words``: Word, (start, end, text) or {start, end, word} (times
    None for an untimed word); ``diarization``: a Diarization (its ``turns()``) or
    (start, end, speaker) turns (Turn, Region)."""
    if isinstance(max_gap, bool) or not isinstance(max_gap, (int, float)) or \
            not math.isfinite(max_gap) or max_gap < 0:
        raise TranscriptError(f"max_gap must be a non-negative number of seconds, got {max_gap!r}")
    words, turns = as_words(words), _turns(diarization)
    chosen: list[int | None] = []
    previous = None
    for w in words:
        if w.start is not None:
            previous = _speaker_of(w, turns, previous, max_gap)
        chosen.append(previous)
    # untimed words before the first timed one take its speaker
    first = next((i for i, w in enumerate(words) if w.start is not None), len(words))
    chosen[:first] = [chosen[first] if first < len(words) else None] * first
    out = [w._replace(speaker=None if c is None else turns.names[c])
           for w, c in zip(words, chosen)]
    return Transcript(tuple(out), tuple(paragraphs(out)))


def join_words(texts: Sequence[str], spaced: bool) -> str:
    """Words as text: whisper's words carry their own leading space (none between CJK
    characters), so those are concatenated; others are joined with one space."""
    return "".join(texts).strip() if spaced else " ".join(t.strip() for t in texts).strip()


def _spaced(words: Sequence[Word]) -> bool:
    return any(w.text[:1].isspace() for w in words)


def paragraphs(words: Sequence[Word]) -> list[Paragraph]:
    """Runs of consecutive words with the same speaker."""
    spaced, out = _spaced(words), []
    begin = 0
    for i in range(1, len(words) + 1):
        if i == len(words) or words[i].speaker != words[begin].speaker:
            run = words[begin:i]
            times = [w for w in run if w.start is not None]
            out.append(Paragraph(run[0].speaker, times[0].start if times else None,
                                 max(w.end for w in times) if times else None,
                                 join_words([w.text for w in run], spaced), begin, i - 1))
            begin = i
    return out


# ---- writers ----------------------------------------------------------------------------------

def transcript_json(transcript: Transcript, envelope: dict) -> dict:
    """``envelope`` (schema, uri, duration, the diarization's turns and options...) with the
    words (one per input word, in input order) and paragraphs."""
    return {**envelope,
            "words": [{"start": _round(w.start), "end": _round(w.end), "word": w.text,
                       "speaker": w.speaker} for w in transcript.words],
            "paragraphs": [{"speaker": p.speaker, "start": _round(p.start), "end": _round(p.end),
                            "text": p.text, "first_word": p.first, "last_word": p.last}
                           for p in transcript.paragraphs]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class Cue(NamedTuple):
    start: float
    end: float
    speaker: str | None
    text: str


def captions(transcript: Transcript, max_chars: int = MAX_CAPTION_CHARS,
             max_seconds: float = MAX_CAPTION_SECONDS) -> list[Cue]:
    """Caption cues: never two speakers in one (each paragraph is cut on its own), a cut after
    each sentence end, and before a word that would take a cue past ``max_chars`` characters
    or ``max_seconds``."""
    spaced, cues = _spaced(transcript.words), []
    clock = 0.0  # the last time seen: an untimed word's place

    for p in transcript.paragraphs:
        run: list[Word] = []
        own: list[int] = []  # cues this paragraph made

        def close() -> None:
            times = [w for w in run if w.start is not None]
            if not times and own:  # untimed words alone: they end this speaker's last cue
                last = cues.pop()
                cues.append(last._replace(text=join_words([last.text] + [w.text for w in run],
                                                          spaced)))
            else:
                start = times[0].start if times else clock
                end = max((w.end for w in times), default=start)
                cues.append(Cue(start, end, p.speaker, join_words([w.text for w in run], spaced)))
                own.append(len(cues))
            run.clear()

        for w in transcript.words[p.first:p.last + 1]:
            if run:
                longer = join_words([x.text for x in run] + [w.text], spaced)
                first = next((x.start for x in run if x.start is not None), None)
                if len(longer) > max_chars or (w.end is not None and first is not None and
                                               w.end - first > max_seconds):
                    close()
            run.append(w)
            clock = w.end if w.end is not None else clock
            if _SENTENCE_END.search(w.text.strip()):
                close()
        if run:
            close()
    return cues


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"


def _lines(text: str) -> str:
    return "\n".join(textwrap.wrap(text, MAX_CAPTION_LINE, break_long_words=False,
                                   break_on_hyphens=False)) or text


def srt(transcript: Transcript) -> str:
    """SubRip: "NAME: text" cues."""
    blocks = [f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n"
              f"{_lines(f'{c.speaker or UNKNOWN}: {c.text}')}\n"
              for i, c in enumerate(captions(transcript), 1)]
    return "\n".join(blocks)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt(transcript: Transcript) -> str:
    """WebVTT: each cue's speaker as a voice span, ``<v NAME>text``."""
    blocks = ["WEBVTT\n"]
    for c in captions(transcript):
        voice = f"<v {_escape(c.speaker)}>" if c.speaker else f"<v {UNKNOWN}>"
        blocks.append(f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n"
                      f"{voice}{_escape(_lines(c.text))}\n")
    return "\n".join(blocks)


def text(transcript: Transcript) -> str:
    """Plain text: one "NAME: ..." paragraph per speaker turn, a blank line between."""
    return "\n".join(f"{p.speaker or UNKNOWN}: {p.text}\n" for p in transcript.paragraphs)


def output_format(path: str | os.PathLike) -> str:
    """The transcript format of an output path's suffix."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise TranscriptError(f"{path}: unknown transcript format {suffix or '(no suffix)'!r}; "
                              f"name the output .{', .'.join(FORMATS)}")
    return suffix


def render(transcript: Transcript, fmt: str, envelope: dict) -> str:
    """The transcript in ``fmt`` (json, srt, vtt, txt)."""
    if fmt == "json":
        return json.dumps(transcript_json(transcript, envelope), indent=1, ensure_ascii=False) + "\n"
    writers = {"srt": srt, "vtt": vtt, "txt": text}
    if fmt not in writers:
        raise TranscriptError(f"unknown transcript format {fmt!r}; use {', '.join(FORMATS)}")
    return writers[fmt](transcript)
