"""Named speakers: the voice bank's file format and its refusals, the one-to-one match, and
enrollment and identification on real shared voices (LibriSpeech speakers, labelled by id)."""

from __future__ import annotations

import json
import pickle
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import ROOT
from powerseg.cli import main
from powerseg.errors import OptionError, TooLittleSpeechError, VoiceBankError
from powerseg.runtime import Diarizer, Embedder
from powerseg.runtime.audio import load_audio
from powerseg.runtime.metrics import intersect, read_rttm, total, union
from powerseg.runtime.diarization.voices import (DEFAULT_THRESHOLD, FORMAT, VERSION, Clip, VoiceBank,
                                                 check_threshold, enroll, enroll_clip, main_speaker,
                                                 match_voices, name_speakers)
from powerseg.runtime.writers import diarization_json, write_npz

RATE = 16000
DIM = 192


@pytest.fixture(scope="module")
def embedder():
    return Embedder(providers="cpu")


def basis(*index: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Unit vectors along the given axes, optionally nudged."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(index), DIM))
    out[np.arange(len(index)), index] = 1.0
    return out + noise * rng.standard_normal(out.shape)


def bank_of(embedder, names: list[str], vectors: np.ndarray) -> VoiceBank:
    bank = VoiceBank.for_embedder(embedder)
    for name, vector in zip(names, vectors):
        bank = bank.add(name, [Clip(name, vector.astype(np.float32), 10.0, f"{name}.wav")])
    return bank


# ---- the bank file ----------------------------------------------------------------------------

def test_bank_round_trip_at_the_exact_path(tmp_path, embedder):
    bank = bank_of(embedder, ["Ada", "Bea"], basis(0, 1))
    bank = bank.add("Bea", [Clip("Bea", basis(1, noise=0.1)[0].astype(np.float32), 5.0, "b1"),
                            Clip("Bea", basis(2)[0].astype(np.float32), 15.0, "b2")],
                    replace_voice=True)
    path = tmp_path / "team.voices"
    bank.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.voices"]
    loaded = VoiceBank.load(path)
    assert loaded.path == str(path) and (loaded.model, loaded.model_sha256) == (bank.model,
                                                                            bank.model_sha256)
    for key, value in bank.arrays().items():
        np.testing.assert_array_equal(loaded.arrays()[key], value)
    assert [(v.name, v.clips, v.seconds) for v in loaded.voices()] == [("Ada", 1, 10.0),
                                                                     ("Bea", 2, 20.0)]
    # a voice: its clips' unit vectors weighted by their seconds, scaled to length 1
    b1 = basis(1, noise=0.1)[0] / np.linalg.norm(basis(1, noise=0.1)[0])
    expected = 5 * b1 + 15 * basis(2)[0]
    np.testing.assert_allclose(loaded.vectors()[1], expected / np.linalg.norm(expected), atol=1e-6)
    with np.load(path, allow_pickle=False) as data:  # the documented entries, no object arrays
        assert sorted(data.files) == ["dimension", "format", "model", "model_sha256", "names",
                                      "seconds", "sources", "vectors", "version"]
        assert str(data["format"]) == FORMAT and int(data["version"]) == VERSION
        assert str(data["model_sha256"]) == bank.model_sha256 and len(bank.model_sha256) == 64
        assert data["vectors"].dtype == np.float32 and data["names"].tolist() == ["Ada", "Bea",
                                                                                   "Bea"]


def test_names_already_enrolled_and_bad_names_are_refused(embedder):
    bank = bank_of(embedder, ["Ada"], basis(0))
    with pytest.raises(VoiceBankError, match="'Ada' is already enrolled; replace its voice with "
                                             "replace_voice=True or choose another name"):
        bank.add("Ada", [Clip("Ada", basis(1)[0].astype(np.float32), 9.0, "x")])
    for name in ("Ada Lovelace", "", "SPEAKER_01", "tab\tname", "x" * 65):
        with pytest.raises(VoiceBankError, match="voice name"):
            bank.add(name, [Clip(name, basis(1)[0].astype(np.float32), 9.0, "x")])


def damaged(tmp_path: Path, embedder, **change) -> Path:
    arrays = bank_of(embedder, ["Ada", "Bea"], basis(0, 1)).arrays()
    arrays.update(change)
    path = tmp_path / "bad.voices"
    write_npz(path, {k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize("change, message", [
    (dict(format=np.array("something-else")), "not a powerseg voice bank"),
    (dict(version=np.array(2)), "format version 2; this powerseg reads version 1"),
    (dict(vectors=np.zeros((2, 5), np.float32)), "damaged voice bank: names"),
    (dict(vectors=np.full((2, DIM), np.nan, np.float32)), "NaN"),
    (dict(seconds=np.array([1.0, -1.0])), "negative seconds"),
    (dict(names=np.array(["Ada", "two words"])), "without spaces"),
    (dict(names=np.array([], str), vectors=np.zeros((0, DIM), np.float32),
          seconds=np.zeros(0), sources=np.array([], str)), "the voice bank is empty"),
    (dict(model_sha256=None), "no 'model_sha256' entry"),
    (dict(names=np.array([b"Ada", b"Bea"])), "'names' is not a list of texts"),
])
def test_damaged_banks_are_refused_naming_the_file(tmp_path, embedder, change, message):
    path = damaged(tmp_path, embedder, **change)
    with pytest.raises(VoiceBankError, match=message) as error:
        VoiceBank.load(path)
    assert str(error.value).startswith(str(path))


def test_unsafe_and_foreign_files_are_refused(tmp_path):
    # a pickled object inside the npz is never loaded
    path = tmp_path / "pickled.voices"
    np.savez(path, format=np.array(FORMAT), names=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(VoiceBankError, match="it holds pickled objects, which are never loaded"):
        VoiceBank.load(path.with_suffix(".voices.npz"))
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"names": ["Ada"]}))
    text = tmp_path / "text.voices"
    text.write_text("Ada,0.1,0.2\n")
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    for bad in (raw, text, single):
        with pytest.raises(VoiceBankError, match="not a powerseg voice bank, or damaged: not an "
                                                 "npz archive$"):
            VoiceBank.load(bad)
    with pytest.raises(VoiceBankError, match="no such voice bank file"):
        VoiceBank.load(tmp_path / "none.voices")


def test_npz_archives_with_broken_entries_are_refused(tmp_path):
    """Zip archives numpy opens but whose members are not whole arrays: a typed error, not
    numpy's own exception or raw bytes taken for an array."""
    whole = BytesIO()
    np.save(whole, np.arange(100.0))
    for member, message in ((b"not an array at all", "its entry 'format' is not an array"),
                            (whole.getvalue()[:200], "an entry is not a readable array")):
        path = tmp_path / "broken.voices"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("format.npy", member)
        with pytest.raises(VoiceBankError, match=f"^{path}: not a powerseg voice bank, or "
                                                 f"damaged: {message}$"):
            VoiceBank.load(path)


def test_a_bank_of_another_embedding_model_is_refused(tmp_path, embedder):
    path = damaged(tmp_path, embedder, model_sha256=np.array("0" * 64),
                   model=np.array("another CAM++"))
    bank = VoiceBank.load(path)
    with pytest.raises(VoiceBankError, match=r"enrolled with the speaker-embedding model "
                                             r"'another CAM\+\+' .*cannot be compared"):
        bank.check_model(embedder)
    with pytest.raises(VoiceBankError, match="cannot be compared"):
        Diarizer(providers="cpu", voices=path)


def test_threshold_options():
    assert check_threshold(None) == DEFAULT_THRESHOLD and check_threshold(-1) == -1.0
    for bad in (1.5, -2, True, "0.5", float("nan")):
        with pytest.raises(OptionError, match="voice_threshold"):
            check_threshold(bad)
    with pytest.raises(OptionError, match="voice_threshold applies only with voices"):
        Diarizer(providers="cpu", voice_threshold=0.5)


# ---- matching ---------------------------------------------------------------------------------

def test_matching_is_one_to_one_with_a_threshold(embedder):
    bank = bank_of(embedder, ["Ada", "Bea", "Cy"], basis(0, 1, 2))
    # both speakers are closest to Ada; the second is also close enough to Bea
    a = basis(0)[0] * 0.9 + basis(3)[0] * 0.1
    b = basis(0)[0] * 0.7 + basis(1)[0] * 0.6
    far = basis(5)[0]
    zero = np.zeros(DIM)
    m = match_voices(np.stack([a, b, far, zero]), ["S0", "S1", "S2", "S3"], bank, 0.5)
    assert [x.name for x in m] == ["Ada", "Bea", None, None]
    assert m[0].similarity == pytest.approx(a[0] / np.linalg.norm(a))
    assert m[1].closest == "Ada" and m[1].similarity == pytest.approx(0.6 / np.linalg.norm(b))
    assert m[2].similarity is None and m[2].closest_similarity == pytest.approx(0.0)
    assert m[3] == ("S3", None, None, None, None)  # no centroid (no embedding): never named
    # naming both speakers (0.45 + 0.5) wins over the largest total similarity, which would
    # pair c with Ada (0.8) and leave d with Bea below the threshold (0.3)
    c = 0.8 * basis(0)[0] + 0.45 * basis(1)[0] + np.sqrt(0.1575) * basis(4)[0]
    d = 0.5 * basis(0)[0] + 0.3 * basis(1)[0] + np.sqrt(0.66) * basis(5)[0]
    m = match_voices(np.stack([c, d]), ["S0", "S1"], bank, 0.4)
    assert [(x.name, round(x.similarity, 6)) for x in m] == [("Bea", 0.45), ("Ada", 0.5)]
    assert [x.name for x in match_voices(np.stack([c, d]), ["S0", "S1"], bank, 0.6)] == ["Ada",
                                                                                        None]
    assert match_voices(np.zeros((0, DIM)), [], bank, 0.5) == ()


# ---- real voices ------------------------------------------------------------------------------

SIM = "librispeech_sim_a"


def solo_speech(shared: Path, uri: str, speaker: str) -> np.ndarray:
    """A speaker's reference speech where no one else talks, cut out of a shared file."""
    truth = read_rttm(shared / "audio" / SIM / "rttm" / f"{uri}.rttm")[uri]
    mine = union([r for r in truth if r.label == speaker])
    others = union([r for r in truth if r.label != speaker])
    samples = load_audio(shared / "audio" / SIM / "wav" / f"{uri}.wav", RATE)
    pieces = []
    for start, end in mine:  # mine minus others
        for o_start, o_end in intersect(np.array([[start, end]]), others):
            pieces.append(samples[int(start * RATE):int(o_start * RATE)])
            start = o_end
        pieces.append(samples[int(start * RATE):int(end * RATE)])
    return np.concatenate(pieces)


@pytest.fixture(scope="module")
def clips(shared, tmp_path_factory) -> dict[str, Path]:
    """Solo-speech clips of two voices from sim1_00 (31 and 24 s)."""
    folder = tmp_path_factory.mktemp("clips")
    out = {}
    for voice in ("LS1998", "LS2609"):
        out[voice] = folder / f"{voice}.wav"
        sf.write(out[voice], solo_speech(shared, "sim1_00", voice), RATE)
    return out


@pytest.fixture(scope="module")
def diarizer():
    return Diarizer(providers="cpu")


@pytest.fixture(scope="module")
def bank(diarizer, clips) -> VoiceBank:
    bank = None
    for voice, path in clips.items():
        bank = enroll(diarizer, voice, [path], bank)
    return bank


def test_enrollment_keeps_the_clips_main_speaker(bank, clips):
    assert [(v.name, v.clips, v.seconds) for v in bank.voices()] == [
        (name, 1, pytest.approx(seconds, abs=2.0)) for name, seconds in
        (("LS1998", 31.0), ("LS2609", 24.0))]
    assert [c.source for c in bank.clips] == [str(clips["LS1998"]), str(clips["LS2609"])]


def test_identification_in_another_recording(shared, bank, diarizer):
    """sim1_02 holds LS2609 (enrolled) and LS2033 (not): the diarized speaker that overlaps
    LS2609's reference speech most takes its name (so the naming loses none of the speech
    the diarization gives it: 86 % here), LS2033's stays unnamed."""
    result = Diarizer(providers="cpu", voices=bank)(shared / "audio" / SIM / "wav" /
                                                    "sim1_02.wav")
    names = [m.name for m in result.voice_matches]
    assert sorted(names, key=str) == ["LS2609", None]
    assert set(result.speakers) == {"LS2609", *(m.label for m in result.voice_matches
                                                if m.name is None)}
    truth = read_rttm(shared / "audio" / SIM / "rttm" / "sim1_02.rttm")["sim1_02"]
    ref = union([r for r in truth if r.label == "LS2609"])
    shares = {s: total(intersect(ref, union([t for t in result.turns() if t.speaker == s])))
              / total(ref) for s in result.speakers}
    assert max(shares, key=shares.get) == "LS2609" and shares["LS2609"] > 0.8
    assert {t.speaker for t in result.exclusive()} == set(result.speakers)
    named = next(m for m in result.voice_matches if m.name)
    assert named.similarity >= DEFAULT_THRESHOLD
    other = next(m for m in result.voice_matches if m.name is None)
    assert other.closest_similarity < DEFAULT_THRESHOLD
    doc = diarization_json("sim1_02", result.turns(), result)
    assert {v["name"] for v in doc["voices"]} == {"LS2609", None}
    assert next(v for v in doc["voices"] if v["name"])["similarity"] == round(named.similarity, 6)
    # the same result renamed again by the pure function gives the same names
    again = name_speakers(result, bank)
    assert again.speakers == result.speakers


@pytest.mark.filterwarnings("error")
def test_too_little_speech_is_refused_naming_the_clip(tmp_path, diarizer, clips):
    short = tmp_path / "short.wav"
    samples, rate = sf.read(clips["LS2609"])
    sf.write(short, samples[:3 * rate], rate)
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(5 * RATE), RATE)
    with pytest.raises(TooLittleSpeechError, match=rf"^{short}: \d\.\d s of speech from its main "
                                                   "speaker; enrollment needs at least 5 s") as e:
        enroll_clip(diarizer, "Ada", short)
    assert e.value.clip == str(short) and 2.0 < e.value.seconds < 3.1
    with pytest.raises(TooLittleSpeechError, match=rf"{silence}: 0.0 s of speech") as e:
        enroll_clip(diarizer, "Ada", silence)
    assert e.value.seconds == 0.0


def test_cli_enroll_list_replace_and_refusals(tmp_path, clips, capsys):
    bank = tmp_path / "team"
    assert main(["enroll", "--name", "Bea", str(clips["LS2609"]), "--output", str(bank),
                 "--provider", "cpu"]) == 0
    assert capsys.readouterr().out.startswith(f"{bank}: Bea enrolled from 1 clip(s), 2")
    assert main(["enroll", "--list", str(bank)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"# {bank}: 1 voice(s), speaker-embedding model 3D-Speaker CAM++")
    assert lines[1].split() == ["name", "clips", "speech"]
    assert lines[2].split()[:2] == ["Bea", "1"]
    before = bank.read_bytes()
    # the name again, without --replace: refused before any model runs, the bank untouched
    assert main(["enroll", "--name", "Bea", str(clips["LS1998"]), "-o", str(bank)]) == 1
    err = capsys.readouterr().err  # in the command's words only
    assert "'Bea' is already enrolled; replace its voice with --replace or choose" in err
    assert "replace_voice" not in err
    assert bank.read_bytes() == before
    # a clip with too little speech: nothing written
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(5 * RATE), RATE)
    assert main(["enroll", "--name", "Cy", str(silence), "-o", str(bank),
                 "--provider", "cpu"]) == 1
    assert f"{silence}: 0.0 s of speech" in capsys.readouterr().err
    assert bank.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "silence.wav", "team"]
    # a damaged bank is refused, not overwritten
    broken = tmp_path / "broken.voices"
    broken.write_bytes(before[:100])
    assert main(["enroll", "--name", "Cy", str(clips["LS1998"]), "-o", str(broken)]) == 1
    assert f"{broken}: not a powerseg voice bank, or damaged: its npz archive is truncated" in \
        capsys.readouterr().err
    assert broken.read_bytes() == before[:100]
    for args, message in ((["--list", str(bank), "--name", "x"],
                           "--name does not apply with --list (it only prints a bank)"),
                          (["--list", str(bank), str(silence)], "audio clips do not apply with "
                                                                "--list"),
                          (["--name", "x", str(silence)], "enroll needs --output"),
                          (["--name", "x", "-o", str(bank)], "audio clips or --from-diarization")):
        assert main(["enroll", *args]) == 2
        assert message in capsys.readouterr().err


def test_cli_embeddings_out_then_enroll_then_named(tmp_path, shared, capsys):
    """diarize --embeddings, enroll --from-diarization, diarize --voices: the speaker takes
    its name back, with its similarity in the JSON."""
    sample = shared / "audio" / "pyannote_sample" / "wav" / "sample.wav"
    emb, bank = tmp_path / "meeting.npz", tmp_path / "team.voices"
    assert main(["diarize", str(sample), "--embeddings", str(emb), "-o",
                 str(tmp_path / "a.rttm"), "--provider", "cpu"]) == 0
    with np.load(emb, allow_pickle=False) as data:
        assert data["speakers"].tolist() == ["SPEAKER_00", "SPEAKER_01"]
        assert data["centroids"].shape == (2, DIM) and np.isnan(data["similarity"]).all()
        assert str(data["uri"]) == "sample" and (data["seconds"] > 5).all()
    assert main(["enroll", "--from-diarization", str(emb), "--speaker", "SPEAKER_01",
                 "--name", "Bea", "-o", str(bank)]) == 0
    assert main(["enroll", "--from-diarization", str(emb), "--speaker", "SPEAKER_07",
                 "--name", "Cy", "-o", str(bank)]) == 1
    assert "no speaker 'SPEAKER_07'; it has SPEAKER_00, SPEAKER_01" in capsys.readouterr().err
    out = tmp_path / "named.json"
    assert main(["diarize", str(sample), "--voices", str(bank), "-o", str(out),
                 "--provider", "cpu", "--embeddings", str(tmp_path / "named.npz")]) == 0
    doc = json.loads(out.read_text())
    assert doc["speakers"] == ["SPEAKER_00", "Bea"]
    assert doc["voices"][1]["name"] == "Bea" and doc["voices"][1]["similarity"] > 0.99
    assert doc["voices"][0]["name"] is None and doc["voices"][0]["similarity"] is None
    with np.load(tmp_path / "named.npz", allow_pickle=False) as data:
        assert data["speakers"].tolist() == ["SPEAKER_00", "Bea"]
        assert data["labels"].tolist() == ["SPEAKER_00", "SPEAKER_01"]
        assert data["similarity"][1] > 0.99
    # a transcript with the same bank: one word per turn heard alone carries its speaker's name
    alone = [t for t in doc["turns"] if not any(
        o is not t and o["start"] < t["end"] and t["start"] < o["end"] for o in doc["turns"])]
    words = tmp_path / "words.json"
    words.write_text(json.dumps([{"start": t["start"], "end": t["end"], "word": "w"}
                                 for t in alone]))
    assert main(["transcript", str(sample), "--words", str(words), "--voices", str(bank),
                 "-o", str(tmp_path / "t.json"), "--provider", "cpu"]) == 0
    spoken = json.loads((tmp_path / "t.json").read_text())
    assert [w["speaker"] for w in spoken["words"]] == [t["speaker"] for t in alone]
    assert {t["speaker"] for t in alone} == {"SPEAKER_00", "Bea"}
    assert spoken["voices"] == doc["voices"]
    assert main(["diarize", str(sample), "--voice-threshold", "0.4"]) == 2
    assert "--voice-threshold applies only with --voices" in capsys.readouterr().err
    assert main(["diarize", str(sample), "--voices", str(tmp_path / "a.rttm")]) == 1
    assert "not a powerseg voice bank" in capsys.readouterr().err


@pytest.mark.slow
def test_dominant_speaker_of_a_clip_with_other_voices(shared, diarizer):
    """sim1_01 holds LS1688 (36 s), LS2033 (17 s) and LS2414 (12 s): enrolling the whole file
    keeps the speaker whose turns overlap LS1688's reference speech most."""
    wav = shared / "audio" / SIM / "wav" / "sim1_01.wav"
    result = diarizer(wav)
    index, seconds = main_speaker(result)
    truth = read_rttm(shared / "audio" / SIM / "rttm" / "sim1_01.rttm")["sim1_01"]
    mine = union([t for t in result.turns() if t.speaker == result.speakers[index]])
    overlap = {who: total(intersect(mine, union([r for r in truth if r.label == who])))
               for who in ("LS1688", "LS2033", "LS2414")}
    assert max(overlap, key=overlap.get) == "LS1688"
    clip = enroll_clip(diarizer, "LS1688", wav)
    assert clip.seconds == seconds and 30 < seconds < 45
    np.testing.assert_array_equal(clip.vector, result.centroids[index].astype(np.float32))


def test_the_benchmark_leaves_out_clips_with_too_little_speech(diarizer, clips, tmp_path, capsys):
    """benchmarks/voices.py on sets it has not seen: a clip too short to enroll is left out and
    said, a voice with no clip left is not enrolled (it counts as unenrolled), the rest goes on."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import voices as bench

    short = tmp_path / "short.wav"
    sf.write(short, load_audio(clips["LS2609"], RATE)[:3 * RATE], RATE)
    bank = bench.bank_of(diarizer, {"LS1998": [short, clips["LS1998"]], "LS2609": [short]}, None)
    assert bank.names == ("LS1998",) and [c.source for c in bank.clips] == [str(clips["LS1998"])]
    said = capsys.readouterr().out.splitlines()
    assert len(said) == 2 and all(line.startswith(f"left out of the bank: {short}: ") and
                                  "enrollment needs at least 5 s" in line for line in said)


@pytest.mark.slow
def test_identification_across_the_shared_sets(shared, tmp_path):
    """benchmarks/voices.py on the shared sets: every diarized speaker of an enrolled voice
    takes its right name and no unenrolled one takes a name (speaker-level decisions); the
    speech-time shares are what the README reports, the naming losing nothing to the
    diarization's own bound."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import voices as bench

    out = tmp_path / "voices.json"
    assert bench.main(["--cache", str(tmp_path / "cache"), "--output", str(out)]) == 0
    doc = json.loads(out.read_text())
    ident = doc["identification"]
    assert ident["threshold"] == DEFAULT_THRESHOLD
    assert ident["speakers"]["enrolled_right"] == 20
    assert ident["speakers"]["enrolled_wrong"] == ident["speakers"]["enrolled_unnamed"] == 0
    assert ident["speakers"]["unenrolled_named"] == 0
    assert ident["right_name"] >= 0.95
    assert abs(ident["right_name"] - ident["diarization_bound"]) < 1e-9
    assert ident["unenrolled_named"] <= 0.04
    # what names unenrolled speech is the diarization's turn edges, not the naming
    assert ident["unenrolled_named_near_edge"] >= 0.75 * ident["unenrolled_named"]
    assert 0 < ident["unenrolled_named_beside_own"] < ident["unenrolled_named"]
    level = doc["segment_level"]
    assert level["nontarget"]["max"] < DEFAULT_THRESHOLD - 0.1
    assert level["target_unseen_audio"]["min"] > DEFAULT_THRESHOLD + 0.1
    assert doc["speaker_level"]["eer"] == 0.0 and doc["segment_level"]["eer"] == 0.0
    # the Diarizer's own naming (voices=) agrees with the benchmark's match on its diarization
    bank = VoiceBank.load(tmp_path / "cache" / "bank.voices")
    wav = shared / "audio" / "libri_conv_a" / "wav" / "conva_00.wav"
    named = Diarizer(voices=bank)(wav)
    cached = json.loads((tmp_path / "cache" / "conva_00.json").read_text())
    expected = match_voices(np.array(cached["centroids"]), cached["speakers"], bank,
                            DEFAULT_THRESHOLD)
    assert named.voice_matches == expected
    assert sorted(named.speakers) == ["LS1998", "LS2609"]
    # one speaker at a time (diarize --exclusive): the same decisions, and the named
    # turns stop running over unenrolled speech (overlapped speech keeps only one name)
    exclusive = tmp_path / "exclusive.json"
    assert bench.main(["--exclusive", "--cache", str(tmp_path / "cache"),
                       "--output", str(exclusive)]) == 0
    one = json.loads(exclusive.read_text())["identification"]
    assert one["speakers"] == ident["speakers"]
    assert one["unenrolled_named"] <= 0.02 and one["unenrolled_named_beside_own"] == 0
    assert 0.85 <= one["right_name"] < ident["right_name"]
