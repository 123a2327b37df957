"""Named speakers: a bank of enrolled voices, and the one-to-one match of a diarization's
speakers to them.

A clip is enrolled by diarizing it and keeping its main speaker's centroid (the mean CAM++
embedding of that speaker's chunks, what the diarizer computes for every speaker it finds),
so an enrolled voice and the speakers it is compared with are the same kind of vector.
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from powerseg.errors import OptionError, TooLittleSpeechError, VoiceBankError
from powerseg.models import model_sha256

from ..writers import write_npz

if TYPE_CHECKING:
    from .diarizer import Diarization, Diarizer
    from ..embedding.embedder import Embedder

FORMAT, VERSION = "powerseg-voices", 1  # a bank file's "format" and "version" entries
SPEAKERS_FORMAT = "powerseg-speakers"  # `powerseg diarize --embeddings` files
# Cosine similarity a speaker's centroid needs to take an enrolled voice's name: chosen from
# CAM++'s target/non-target score distributions on the shared voices (README, benchmarks/voices.py).
DEFAULT_THRESHOLD = 0.5
# Speech of a clip's main speaker below this is refused: a few seconds make an unreliable voice.
MIN_ENROLL_SECONDS = 5.0
_LABEL = re.compile(r"SPEAKER_\d+")


def check_name(name: str, source: str = "name") -> str:
    """A voice name: what RTTM and captions can carry (no whitespace), and never a SPEAKER_nn
    label, which would be mistaken for an unnamed speaker."""
    if not isinstance(name, str) or not name or len(name) > 64 or \
            any(c.isspace() or not c.isprintable() for c in name):
        raise VoiceBankError(f"{source}: voice name {name!r} must be 1 to 64 printable characters "
                             "without spaces (RTTM fields cannot hold spaces: use Ada_Lovelace)")
    if _LABEL.fullmatch(name):
        raise VoiceBankError(f"{source}: voice name {name!r} looks like an unnamed speaker's label; "
                             "choose another name")
    return name


def check_threshold(threshold: float | None) -> float:
    """``None`` -> DEFAULT_THRESHOLD; otherwise a cosine similarity in [-1, 1]."""
    if threshold is None:
        return DEFAULT_THRESHOLD
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or \
            not -1 <= threshold <= 1:
        raise OptionError(f"voice_threshold must be a cosine similarity in [-1, 1], got "
                          f"{threshold!r}")
    return float(threshold)


def check_voices(voices: VoiceBank | str | os.PathLike | None,
                 threshold: float | None) -> VoiceBank | None:
    """The bank (a path is loaded) after the option checks, before any audio is read: a
    threshold out of range, or one without voices (it would do nothing)."""
    if voices is None and threshold is not None:
        raise OptionError("voice_threshold applies only with voices (an enrolled voice bank)")
    check_threshold(threshold)
    if voices is None or isinstance(voices, VoiceBank):
        return voices
    return VoiceBank.load(voices)


def voice_bank(voices: VoiceBank | str | os.PathLike | None, threshold: float | None,
               embedder: Embedder) -> tuple[VoiceBank | None, float]:
    """(bank, threshold) for a Diarizer; the bank must come from the embedder's model."""
    bank = check_voices(voices, threshold)
    if bank is not None:
        bank.check_model(embedder)
    return bank, check_threshold(threshold)


def model_identity(embedder: Embedder) -> tuple[str, str]:
    """(name, sha256) of the speaker-embedding model file an Embedder runs."""
    path = embedder.model.path
    return embedder.spec.metadata.get("model", Path(path).name), model_sha256(path)


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; NaN rows where the length is 0 or not finite."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((norm > 0) & np.isfinite(norm), vectors / norm, np.nan)


@dataclass(frozen=True, eq=False)  # arrays inside: compare ``arrays()`` instead
class Clip:
    """One enrollment clip: its main speaker's centroid and the seconds of speech behind it."""

    name: str
    vector: np.ndarray  # (dimension,) float32
    seconds: float
    source: str  # the clip's path (or the embeddings file and speaker it came from)


@dataclass(frozen=True, eq=False)
class Voice:
    name: str
    clips: int
    seconds: float
    vector: np.ndarray  # (dimension,) float64, length 1


@dataclass(frozen=True, eq=False)
class VoiceBank:
    """Enrolled voices of one speaker-embedding model. Immutable: ``add`` returns a new bank.

    A voice's vector is the mean of its clips' unit vectors weighted by their seconds of
    speech, scaled to length 1.
    """

    model: str  # the embedding model's name (its metadata)
    model_sha256: str  # of its ONNX file: banks of other models are refused
    dimension: int
    clips: tuple[Clip, ...] = ()
    path: str | None = None  # the file it was loaded from

    @classmethod
    def for_embedder(cls, embedder: Embedder) -> VoiceBank:
        """An empty bank for this embedder's model."""
        name, digest = model_identity(embedder)
        return cls(name, digest, embedder.dimension)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.name for c in self.clips))

    def voices(self) -> list[Voice]:
        out = []
        for name in self.names:
            mine = [c for c in self.clips if c.name == name]
            seconds = np.array([c.seconds for c in mine])
            mean = (unit(np.stack([c.vector for c in mine])) * seconds[:, None]).sum(axis=0)
            out.append(Voice(name, len(mine), float(seconds.sum()), unit(mean)))
        return out

    def vectors(self) -> np.ndarray:
        """(voices, dimension) unit vectors, in ``names`` order."""
        return np.stack([v.vector for v in self.voices()]) if self.clips else \
            np.zeros((0, self.dimension))

    def without(self, names: set[str]) -> VoiceBank:
        """This bank less the voices of ``names``."""
        return replace(self, clips=tuple(c for c in self.clips if c.name not in names))

    def add(self, name: str, clips: Sequence[Clip], replace_voice: bool = False) -> VoiceBank:
        """This bank with ``name``'s voice made of ``clips``; a name already enrolled is refused
        unless ``replace_voice``, which drops its old clips."""
        check_name(name, self.path or "voice bank")
        self.check_new(name, replace_voice)
        for clip in clips:
            if clip.name != name or np.shape(clip.vector) != (self.dimension,):
                raise VoiceBankError(f"{clip.source}: a clip of {clip.name!r} with "
                                     f"{np.shape(clip.vector)} values cannot join voice {name!r} "
                                     f"of a {self.dimension}-value bank")
        kept = tuple(c for c in self.clips if c.name != name)
        return replace(self, clips=kept + tuple(clips))

    def check_new(self, name: str, replace_voice: bool = False,
                  replacing: str = "replace_voice=True") -> None:
        """Refuse a name already in the bank (before any clip is processed), saying how to
        replace it in the caller's words (``replacing``: the CLI's ``--replace``)."""
        if name in self.names and not replace_voice:
            raise VoiceBankError(f"{self.path or 'voice bank'}: {name!r} is already enrolled; "
                                 f"replace its voice with {replacing} or choose another name")

    def check_model(self, embedder: Embedder, source: str | None = None) -> None:
        """Refuse to compare this bank with another model's embeddings."""
        name, digest = model_identity(embedder)
        if digest != self.model_sha256:
            raise VoiceBankError(
                f"{source or self.path or 'voice bank'}: enrolled with the speaker-embedding model "
                f"{self.model!r} (sha256 {self.model_sha256[:16]}...), but this run uses {name!r} "
                f"({embedder.model.path}, sha256 {digest[:16]}...): embeddings of different "
                "models cannot be compared; enroll the voices again with this model")

    # ---- file format ----------------------------------------------------------------------

    def arrays(self) -> dict[str, np.ndarray]:
        """The bank as an npz's arrays (README "Named speakers" documents each)."""
        vectors = np.stack([c.vector for c in self.clips]).astype(np.float32) if self.clips \
            else np.zeros((0, self.dimension), np.float32)
        return {"format": np.array(FORMAT), "version": np.array(VERSION, np.int64),
                "model": np.array(self.model), "model_sha256": np.array(self.model_sha256),
                "dimension": np.array(self.dimension, np.int64),
                "names": np.array([c.name for c in self.clips], dtype=str),
                "vectors": vectors,
                "seconds": np.array([c.seconds for c in self.clips], np.float64),
                "sources": np.array([c.source for c in self.clips], dtype=str)}

    def save(self, path: str | os.PathLike) -> None:
        """Write at exactly ``path`` (no suffix added), whole or not at all."""
        if not self.clips:
            raise VoiceBankError(f"{path}: an empty voice bank is not written; enroll a voice")
        write_npz(path, self.arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> VoiceBank:
        """Read a bank file; no pickle is ever loaded. Damaged, foreign, newer-format and empty
        banks raise VoiceBankError naming the file."""
        source = os.fspath(path)
        arrays = _read_npz(source, "voice bank", FORMAT, "a powerseg voice bank")
        version = _integer(arrays, "version", source)
        if version != VERSION:
            raise VoiceBankError(f"{source}: voice bank format version {version}; this powerseg "
                                 f"reads version {VERSION} (upgrade powerseg, or enroll again)")
        dimension = _integer(arrays, "dimension", source)
        names, sources = _texts(arrays, "names", source), _texts(arrays, "sources", source)
        vectors, seconds = _floats(arrays, "vectors", source), _floats(arrays, "seconds", source)
        rows = len(names)
        if vectors.shape != (rows, dimension) or seconds.shape != (rows,) or \
                sources.shape != (rows,) or dimension < 1:
            raise VoiceBankError(f"{source}: damaged voice bank: names {names.shape}, vectors "
                                 f"{vectors.shape}, seconds {seconds.shape}, sources "
                                 f"{sources.shape} do not agree with dimension {dimension}")
        if rows == 0:
            raise VoiceBankError(f"{source}: the voice bank is empty; enroll a voice with "
                                 "`powerseg enroll --name NAME AUDIO... --output VOICES`")
        if not (np.isfinite(vectors).all() and (np.linalg.norm(vectors, axis=1) > 0).all()
                and np.isfinite(seconds).all() and (seconds >= 0).all()):
            raise VoiceBankError(f"{source}: damaged voice bank: NaN, infinite or zero vectors, "
                                 "or negative seconds")
        for name in dict.fromkeys(names.tolist()):
            check_name(name, source)
        clips = tuple(Clip(str(n), v, float(s), str(src))
                      for n, v, s, src in zip(names, vectors.astype(np.float32), seconds, sources))
        return cls(_text(arrays, "model", source), _text(arrays, "model_sha256", source),
                   dimension, clips, source)


def _read_npz(source: str, what: str, expected: str, kind: str) -> dict[str, np.ndarray]:
    """The arrays of an npz file whose ``format`` entry is ``expected``; a VoiceBankError
    naming ``source`` otherwise (``kind``: what such a file is, for the message)."""
    refused = f"{source}: not {kind}, or damaged"
    try:
        with open(source, "rb") as handle:
            zipped = handle.read(4) == b"PK\x03\x04"
    except FileNotFoundError:
        raise VoiceBankError(f"{source}: no such {what} file") from None
    except IsADirectoryError:
        raise VoiceBankError(f"{source}: is a directory; give the {what} file") from None
    except OSError as error:
        raise VoiceBankError(f"{source}: cannot read the {what} ({error.strerror})") from None
    if not zipped:
        raise VoiceBankError(f"{refused}: not an npz archive")
    try:
        with np.load(source, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except ValueError as error:
        if "pickle" not in str(error):
            raise VoiceBankError(f"{refused}: an entry is not a readable array") from None
        raise VoiceBankError(f"{refused}: it holds pickled objects, which are never "
                             "loaded") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile):
        raise VoiceBankError(f"{refused}: its npz archive is truncated or damaged") from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):  # a member numpy hands back as raw bytes
            raise VoiceBankError(f"{refused}: its entry {key!r} is not an array")
    fmt = _text(arrays, "format", source)
    if fmt != expected:
        raise VoiceBankError(f"{source}: not {kind} (format {fmt!r}, expected {expected!r})")
    return arrays


def _entry(arrays: dict[str, np.ndarray], key: str, source: str) -> np.ndarray:
    if key not in arrays:
        raise VoiceBankError(f"{source}: not a complete powerseg file: no {key!r} entry")
    return arrays[key]


def _text(arrays: dict[str, np.ndarray], key: str, source: str) -> str:
    value = _entry(arrays, key, source)
    if value.shape != () or value.dtype.kind != "U":
        raise VoiceBankError(f"{source}: damaged: {key!r} is not a text entry")
    return str(value)


def _texts(arrays: dict[str, np.ndarray], key: str, source: str) -> np.ndarray:
    value = _entry(arrays, key, source)
    if value.ndim != 1 or (value.dtype.kind != "U" and len(value)):
        raise VoiceBankError(f"{source}: damaged: {key!r} is not a list of texts")
    return value.astype(str)


def _integer(arrays: dict[str, np.ndarray], key: str, source: str) -> int:
    value = _entry(arrays, key, source)
    if value.shape != () or value.dtype.kind not in "iu":
        raise VoiceBankError(f"{source}: damaged: {key!r} is not an integer")
    return int(value)


def _floats(arrays: dict[str, np.ndarray], key: str, source: str) -> np.ndarray:
    value = _entry(arrays, key, source)
    if value.dtype.kind not in "fiu":
        raise VoiceBankError(f"{source}: damaged: {key!r} is not numeric")
    return value.astype(np.float64)


# ---- enrollment -------------------------------------------------------------------------------

def main_speaker(result: Diarization) -> tuple[int | None, float]:
    """(index, seconds) of the speaker with the most speech (overlapped speech counted);
    (None, 0.0) when no one speaks."""
    seconds = dict.fromkeys(result.speakers, 0.0)
    for turn in result.turns():
        seconds[turn.speaker] += turn.duration
    if not seconds:
        return None, 0.0
    index = int(np.argmax(list(seconds.values())))
    return index, float(list(seconds.values())[index])


def enroll_clip(diarizer: Diarizer, name: str, audio: str | os.PathLike | np.ndarray,
                sample_rate: int | None = None, source: str | None = None,
                min_seconds: float = MIN_ENROLL_SECONDS) -> Clip:
    """The main speaker of one clip (silence and others' short interjections left out):
    the largest speaker of its diarization. Under ``min_seconds`` of that speaker's speech
    raises TooLittleSpeechError naming the clip and the seconds found."""
    source = source or (os.fspath(audio) if isinstance(audio, (str, os.PathLike)) else "array")
    with warnings.catch_warnings():  # no speech at all is refused below, naming the clip
        warnings.filterwarnings("ignore", message=".*no speaker found")
        result = diarizer(audio, sample_rate=sample_rate)
    index, seconds = main_speaker(result)
    vector = None if index is None else result.centroids[index]
    if index is None or seconds < min_seconds or not np.isfinite(vector).all() or \
            not np.any(vector):
        raise TooLittleSpeechError(
            f"{source}: {seconds:.1f} s of speech from its main speaker; enrollment needs at "
            f"least {min_seconds:g} s (give a longer clip)", source, seconds)
    return Clip(name, np.asarray(vector, np.float32), seconds, source)


def enroll(diarizer: Diarizer, name: str, clips: Sequence[str | os.PathLike],
           bank: VoiceBank | None = None, replace_voice: bool = False,
           min_seconds: float = MIN_ENROLL_SECONDS) -> VoiceBank:
    """``bank`` (or a new one for the diarizer's embedding model) with ``name`` enrolled from
    audio files, each clip's main speaker. Name and model are checked before any clip runs."""
    bank = bank or VoiceBank.for_embedder(diarizer.embedder)
    check_name(name, bank.path or "voice bank")
    bank.check_new(name, replace_voice)
    bank.check_model(diarizer.embedder)
    if not clips:
        raise OptionError("enrollment needs at least one audio clip")
    return bank.add(name, [enroll_clip(diarizer, name, clip, min_seconds=min_seconds)
                           for clip in clips], replace_voice)


# ---- per-speaker embeddings out, and back in -------------------------------------------------

def speaker_arrays(result: Diarization, embedder: Embedder, uri: str) -> dict[str, np.ndarray]:
    """Each final speaker's centroid, name and speech, as ``powerseg diarize --embeddings``
    writes them (README "Named speakers")."""
    seconds = dict.fromkeys(result.speakers, 0.0)
    for turn in result.turns():
        seconds[turn.speaker] += turn.duration
    matches = result.voice_matches  # in speakers order; empty when no bank was given
    labels = [m.label for m in matches] if matches else list(result.speakers)
    similarity = [np.nan if m.similarity is None else m.similarity for m in matches] if \
        matches else [np.nan] * len(result.speakers)
    name, digest = model_identity(embedder)
    return {"format": np.array(SPEAKERS_FORMAT), "version": np.array(VERSION, np.int64),
            "uri": np.array(uri), "model": np.array(name), "model_sha256": np.array(digest),
            "speakers": np.array(result.speakers, dtype=str).reshape(-1),
            "labels": np.array(labels, dtype=str).reshape(-1),
            "centroids": np.asarray(result.centroids, np.float32).reshape(-1, embedder.dimension),
            "seconds": np.array([seconds[s] for s in result.speakers], np.float64),
            "similarity": np.array(similarity, np.float64)}


def clip_from_speakers(path: str | os.PathLike, speaker: str, name: str,
                       min_seconds: float = MIN_ENROLL_SECONDS) -> tuple[Clip, str, str]:
    """(clip, model name, model sha256) of one speaker of a ``diarize --embeddings`` file,
    found by its label (SPEAKER_01) or the name it took."""
    source = os.fspath(path)
    arrays = _read_npz(source, "speaker-embeddings", SPEAKERS_FORMAT,
                       "a `powerseg diarize --embeddings` file")
    speakers, labels = _texts(arrays, "speakers", source), _texts(arrays, "labels", source)
    centroids, seconds = _floats(arrays, "centroids", source), _floats(arrays, "seconds", source)
    if centroids.ndim != 2 or not len(speakers) == len(labels) == len(centroids) == len(seconds):
        raise VoiceBankError(f"{source}: damaged: speakers, labels, centroids and seconds do "
                             "not agree in length")
    found = [i for i in range(len(speakers)) if speaker in (speakers[i], labels[i])]
    if not found:
        raise VoiceBankError(f"{source}: no speaker {speaker!r}; it has "
                             f"{', '.join(speakers.tolist()) or 'none'}")
    i = found[0]
    clip_source = f"{source}#{speakers[i]}"
    if seconds[i] < min_seconds or not np.isfinite(centroids[i]).all() or not centroids[i].any():
        raise TooLittleSpeechError(f"{clip_source}: {seconds[i]:.1f} s of speech; enrollment "
                                   f"needs at least {min_seconds:g} s", clip_source,
                                   float(seconds[i]))
    clip = Clip(name, centroids[i].astype(np.float32), float(seconds[i]), clip_source)
    return clip, _text(arrays, "model", source), _text(arrays, "model_sha256", source)


# ---- identification ---------------------------------------------------------------------------

class VoiceMatch(NamedTuple):
    """What one diarized speaker's centroid matched."""

    label: str  # the diarization's own label, SPEAKER_xx
    name: str | None  # the enrolled voice it is named after; None: it keeps its label
    similarity: float | None  # cosine similarity to that voice
    closest: str | None  # the most similar voice, whether or not it gave its name
    closest_similarity: float | None  # None where the centroid is undefined (no embedding)


def match_voices(centroids: np.ndarray, labels: Sequence[str], bank: VoiceBank,
                 threshold: float) -> tuple[VoiceMatch, ...]:
    """Speakers to voices, one to one: among the pairs whose cosine similarity reaches
    ``threshold``, the assignment that names the most speakers, and of those the one with the
    largest total similarity (``linear_sum_assignment``). Unmatched speakers keep their label."""
    names = bank.names
    scores = unit(centroids) @ bank.vectors().T if len(labels) else np.zeros((0, len(names)))
    accepted = np.isfinite(scores) & (scores >= threshold)
    # a fixed bonus per accepted pair larger than any sum of similarities: count first
    bonus = 2 * min(scores.shape) + 1
    weight = np.where(accepted, bonus + np.nan_to_num(scores), 0.0)
    from scipy.optimize import linear_sum_assignment  # on first use: keeps `powerseg vad` light

    rows, cols = linear_sum_assignment(weight, maximize=True) if weight.size else ([], [])
    named = {int(r): int(c) for r, c in zip(rows, cols) if accepted[r, c]}
    matches = []
    for i, label in enumerate(labels):
        row = scores[i]
        best = int(np.nanargmax(row)) if np.isfinite(row).any() else None
        matches.append(VoiceMatch(
            label, names[named[i]] if i in named else None,
            float(row[named[i]]) if i in named else None,
            None if best is None else names[best], None if best is None else float(row[best])))
    return tuple(matches)


def name_speakers(result: Diarization, voices: VoiceBank | None,
                  threshold: float | None = None) -> Diarization:
    """``result`` with each speaker that matches an enrolled voice renamed after it (turns,
    exclusive turns and ``speakers``), and the matches in ``voice_matches``."""
    if voices is None:
        return result
    matches = match_voices(result.centroids, result.speakers, voices, check_threshold(threshold))
    rename = {m.label: m.name or m.label for m in matches}
    return replace(result, speakers=tuple(rename[s] for s in result.speakers),
                   _turns=tuple(t._replace(speaker=rename[t.speaker]) for t in result.turns()),
                   _exclusive=tuple(t._replace(speaker=rename[t.speaker])
                                    for t in result.exclusive()),
                   voice_matches=matches)
