"""Named speakers: CAM++ target/non-target scores, their equal error rate, and identification.

Two sets that share voices (by default ../shared librispeech_sim_a and libri_conv_a, whose
RTTM labels are LibriSpeech speaker ids): every speaker found in both is enrolled from the
first set, identified in the second.

- Enrollment: for each voice and each enrollment-set file it speaks in, one clip of its solo
  speech (its RTTM turns minus everyone else's, 0.3 s of silence between pieces) is written
  as a wav and enrolled as ``powerseg enroll`` does (``voices.enroll_clip``: each clip
  diarized, its main speaker's centroid kept), as a user's clips would be; a clip with too
  little speech is left out, and a voice with none left counts as unenrolled.
- Test: each test file is diarized once (powerseg's defaults). Each diarized speaker is the
  reference speaker it overlaps most; its centroid against every enrolled voice is one trial
  (target when the voice is that speaker). Scores, EER and its threshold come from those
  speaker-level trials, which is what the threshold decides on; segment-level trials (each
  solo reference turn of at least 2 s embedded alone) show the model on short speech.
- Identification at each threshold (``match_voices``, one to one): the share of each enrolled
  speaker's reference speech that carries its name; the share of unenrolled speakers' speech
  under an enrolled name no reference speaker of that name says at that time. Unenrolled are
  the test set's own speakers (never enrolled) and, in turn, each enrolled voice left out of
  the bank (leave one out). That share is split by where it falls: beside the unenrolled
  speaker's own diarized speaker (it is on too: the name's turn runs over the speech, a false
  alarm in DER terms) or instead of it (a confusion in DER terms), and within EDGE seconds of
  a reference turn's start or end or further in.

    python benchmarks/voices.py                        # shared sets, default threshold
    python benchmarks/voices.py --enroll-set A --test-set B --cache /tmp/voices-cache
    python benchmarks/voices.py --exclusive            # one speaker at a time (diarize --exclusive)

Prints tables and writes benchmarks/results/voices.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import SHARED, write_results  # noqa: E402

from powerseg.runtime import Diarizer, Embedder  # noqa: E402
from powerseg.runtime.audio import load_audio  # noqa: E402
from powerseg.runtime.metrics import read_rttm  # noqa: E402
from powerseg.errors import TooLittleSpeechError  # noqa: E402
from powerseg.runtime.diarization.voices import (DEFAULT_THRESHOLD, VoiceBank,  # noqa: E402
                                                 enroll_clip, match_voices, unit)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "voices.json"
RATE = 16000
GRID = 0.01  # seconds: the time grid the shares are counted on
GAP = 0.3  # seconds of silence between the pieces of an enrollment clip
MIN_SEGMENT = 2.0  # seconds: the shortest solo turn embedded as a segment-level trial
EDGE = 0.5  # seconds: wrong names this near a reference turn's start or end are turn-edge errors
SWEEP = tuple(round(t, 2) for t in np.arange(0.20, 0.80, 0.05))


def references(folder: Path) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """uri -> speaker -> reference turns."""
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for rttm in sorted((folder / "rttm").glob("*.rttm")):
        for uri, regions in read_rttm(rttm).items():
            for r in regions:
                out.setdefault(uri, {}).setdefault(r.label, []).append((r.start, r.end))
    return out


def activity(turns: list[tuple[float, float]], frames: int) -> np.ndarray:
    on = np.zeros(frames, bool)
    for start, end in turns:
        on[int(round(start / GRID)):int(round(end / GRID))] = True
    return on


def solo(ref: dict[str, list[tuple[float, float]]], speaker: str, frames: int) -> np.ndarray:
    """Frames where ``speaker`` talks and nobody else does."""
    others = np.zeros(frames, bool)
    for other, turns in ref.items():
        if other != speaker:
            others |= activity(turns, frames)
    return activity(ref[speaker], frames) & ~others


def near_edges(ref: dict[str, list[tuple[float, float]]], frames: int) -> np.ndarray:
    """Frames within EDGE seconds of any reference turn's start or end."""
    near = np.zeros(frames, bool)
    reach = int(round(EDGE / GRID))
    for turns in ref.values():
        for edge in {x for turn in turns for x in turn}:
            at = int(round(edge / GRID))
            near[max(0, at - reach):at + reach] = True
    return near


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def enrollment_clips(folder: Path, voices: list[str], out: Path) -> dict[str, list[Path]]:
    """One wav of solo speech per (voice, file it speaks in)."""
    clips: dict[str, list[Path]] = {v: [] for v in voices}
    for uri, ref in references(folder).items():
        samples = load_audio(folder / "wav" / f"{uri}.wav", RATE)
        frames = int(np.ceil(len(samples) / RATE / GRID))
        for voice in voices:
            if voice not in ref:
                continue
            gap = np.zeros(int(GAP * RATE), np.float32)
            pieces = [part for a, b in runs(solo(ref, voice, frames))
                      for part in (samples[int(a * GRID * RATE):int(b * GRID * RATE)], gap)]
            path = out / f"{voice}_{uri}.wav"
            sf.write(path, np.concatenate(pieces), RATE)
            clips[voice].append(path)
    return clips


def diarized(diarizer: Diarizer, wav: Path, cache: Path | None, exclusive: bool) -> dict:
    """speakers, centroids and turns (``exclusive``: at most one speaker at a time) of one
    test file (from ``cache`` when there)."""
    stored = cache / f"{wav.stem}.json" if cache else None
    doc = json.loads(stored.read_text()) if stored is not None and stored.exists() else {}
    if "exclusive" not in doc:  # not cached, or cached by a version that kept no exclusive turns
        result = diarizer(wav)
        doc = {"speakers": list(result.speakers), "centroids": result.centroids.tolist(),
               "turns": [list(t) for t in result.turns()],
               "exclusive": [list(t) for t in result.exclusive()]}
        if stored is not None:
            stored.write_text(json.dumps(doc))
    doc["centroids"] = np.array(doc["centroids"])
    if exclusive:
        doc["turns"] = doc["exclusive"]
    return doc


def bank_of(diarizer: Diarizer, clips: dict[str, list[Path]], cache: Path | None) -> VoiceBank:
    """Each voice enrolled from its clips; a clip with too little speech for enrollment is
    left out (and said), and a voice with no clip left is not enrolled: it counts as unenrolled."""
    stored = cache / "bank.voices" if cache else None
    if stored is not None and stored.exists():
        return VoiceBank.load(stored)
    bank = VoiceBank.for_embedder(diarizer.embedder)
    for voice, paths in clips.items():
        kept = []
        for path in paths:
            try:
                kept.append(enroll_clip(diarizer, voice, path))
            except TooLittleSpeechError as error:
                print(f"left out of the bank: {error}")
        if kept:
            bank = bank.add(voice, kept)
    if not bank.clips:
        raise SystemExit("no voice has enough speech to enroll")
    if stored is not None:
        bank.save(stored)
    return bank


def identity(doc: dict, ref: dict[str, list[tuple[float, float]]], frames: int) -> dict[str, str]:
    """Diarized speaker -> the reference speaker it overlaps most."""
    out = {}
    for speaker in doc["speakers"]:
        hyp = activity([(s, e) for s, e, who in doc["turns"] if who == speaker], frames)
        shared = {r: int((hyp & activity(turns, frames)).sum()) for r, turns in ref.items()}
        out[speaker] = max(shared, key=shared.get)
    return out


def without(bank: VoiceBank, name: str) -> VoiceBank:
    return VoiceBank(bank.model, bank.model_sha256, bank.dimension,
                     tuple(c for c in bank.clips if c.name != name))


def shares(tests: list[dict], bank: VoiceBank, threshold: float,
           decisions: list[tuple[str, str | None]] | None = None) -> dict[str, dict[str, float]]:
    """Per reference speaker: seconds of speech, seconds under its own name, seconds under an
    enrolled name no active reference speaker has (of which: with the speaker's own diarized
    speaker on too, and near a reference turn edge), and seconds where the diarized speaker
    that overlaps it most, its own, is on (what a perfect naming would give). ``decisions``
    gets (reference speaker it overlaps most, name taken) for each diarized speaker."""
    enrolled = set(bank.names)
    out: dict[str, dict[str, float]] = {}
    for test in tests:
        doc, ref, frames = test["doc"], test["ref"], test["frames"]
        matches = match_voices(doc["centroids"], doc["speakers"], bank, threshold)
        named = {m.label: m.name for m in matches if m.name}
        by_name = {name: activity([(s, e) for s, e, who in doc["turns"] if who == label], frames)
                   for label, name in named.items()}
        hyp_on = {label: activity([(s, e) for s, e, who in doc["turns"] if who == label], frames)
                  for label in doc["speakers"]}
        ref_on = {r: activity(turns, frames) for r, turns in ref.items()}
        edges = near_edges(ref, frames)
        if decisions is not None:
            decisions += [(who, named.get(label))
                          for label, who in identity(doc, ref, frames).items()]
        for speaker, on in ref_on.items():
            best = max(hyp_on, key=lambda label: (hyp_on[label] & on).sum()) if hyp_on else None
            wrong = np.zeros(frames, bool)
            for name, hyp in by_name.items():
                if name != speaker:
                    wrong |= hyp & ~ref_on.get(name, np.zeros(frames, bool))
            row = out.setdefault(speaker, {"seconds": 0.0, "right": 0.0, "wrong": 0.0,
                                           "wrong_beside": 0.0, "wrong_near_edge": 0.0,
                                           "bound": 0.0, "enrolled": speaker in enrolled})
            own = hyp_on[best] if best is not None else np.zeros(frames, bool)
            row["bound"] += (on & own).sum() * GRID
            row["seconds"] += on.sum() * GRID
            row["right"] += (on & by_name.get(speaker, np.zeros(frames, bool))).sum() * GRID
            row["wrong"] += (on & wrong).sum() * GRID
            row["wrong_beside"] += (on & wrong & own).sum() * GRID
            row["wrong_near_edge"] += (on & wrong & edges).sum() * GRID
    return out


def identification(tests: list[dict], bank: VoiceBank, threshold: float) -> dict:
    """Right-name share of enrolled speakers (all voices enrolled) and wrong-name share of
    unenrolled ones (the test set's own, and each voice left out in turn)."""
    decisions: list[tuple[str, str | None]] = []
    full = shares(tests, bank, threshold, decisions)
    enrolled = {s: r for s, r in full.items() if r["enrolled"]}
    unenrolled = {s: r for s, r in full.items() if not r["enrolled"]}
    held_out, held_decisions = {}, []
    for name in bank.names:
        rotation: list[tuple[str, str | None]] = []
        held_out[name] = shares(tests, without(bank, name), threshold, rotation)[name]
        held_decisions += [(who, got) for who, got in rotation if who == name]
    speakers = {  # diarized speakers, by the reference speaker each overlaps most
        "enrolled_right": sum(w in bank.names and g == w for w, g in decisions),
        "enrolled_wrong": sum(w in bank.names and g not in (None, w) for w, g in decisions),
        "enrolled_unnamed": sum(w in bank.names and g is None for w, g in decisions),
        "unenrolled_named": sum(w not in bank.names and g is not None for w, g in decisions) +
        sum(g is not None for _, g in held_decisions),
        "unenrolled_unnamed": sum(w not in bank.names and g is None for w, g in decisions) +
        sum(g is None for _, g in held_decisions)}
    pooled = list(unenrolled.values()) + list(held_out.values())

    def ratio(rows: list[dict], key: str) -> float:
        total = sum(r["seconds"] for r in rows)
        return sum(r[key] for r in rows) / total if total else float("nan")

    return {"threshold": threshold,
            "right_name": ratio(list(enrolled.values()), "right"),
            "diarization_bound": ratio(list(enrolled.values()), "bound"),
            "speakers": speakers,
            "right_name_worst": min(r["right"] / r["seconds"] for r in enrolled.values()),
            "enrolled_wrong_name": ratio(list(enrolled.values()), "wrong"),
            "unenrolled_named": ratio(pooled, "wrong"),
            "never_enrolled_named": ratio(list(unenrolled.values()), "wrong"),
            "held_out_named": ratio(list(held_out.values()), "wrong"),
            "unenrolled_named_beside_own": ratio(pooled, "wrong_beside"),
            "unenrolled_named_near_edge": ratio(pooled, "wrong_near_edge"),
            "per_speaker": {s: {"seconds": round(r["seconds"], 2),
                                "right_name": r["right"] / r["seconds"],
                                "diarization_bound": r["bound"] / r["seconds"],
                                "wrong_name": r["wrong"] / r["seconds"]}
                            for s, r in enrolled.items()},
            "unenrolled": {s: {"seconds": round(r["seconds"], 2), "named": r["wrong"] / r["seconds"]}
                           for s, r in {**unenrolled, **{f"{k} (held out)": v
                                                         for k, v in held_out.items()}}.items()}}


def eer(target: np.ndarray, nontarget: np.ndarray) -> tuple[float, float]:
    """(equal error rate, threshold there): where false rejection of targets meets false
    acceptance of non-targets; the middle of the gap when the two do not overlap."""
    candidates = np.unique(np.concatenate([target, nontarget]))
    best = (np.inf, 0.0, 0.0)
    for t in candidates:
        miss, false = np.mean(target < t), np.mean(nontarget >= t)
        if abs(miss - false) < best[0] or (abs(miss - false) == best[0] and t > best[2]):
            best = (abs(miss - false), (miss + false) / 2, t)
    if nontarget.max() < target.min():
        return 0.0, float((nontarget.max() + target.min()) / 2)
    return float(best[1]), float(best[2])


def reused_share(tests: list[dict], reused: dict[str, list[tuple[float, float]]]) -> float:
    """Share of the test set's reference speech whose source audio the enrollment set uses."""
    total = same = 0
    for test in tests:
        speech = np.zeros(test["frames"], bool)
        for turns in test["ref"].values():
            speech |= activity(turns, test["frames"])
        total += speech.sum()
        same += (speech & activity(reused.get(test["uri"], []), test["frames"])).sum()
    return same / total if total else 0.0


def distribution(scores: np.ndarray) -> dict:
    q = np.quantile(scores, [0.0, 0.05, 0.5, 0.95, 1.0]) if len(scores) else [np.nan] * 5
    return {"trials": len(scores), "min": q[0], "p5": q[1], "median": q[2], "p95": q[3],
            "max": q[4], "mean": float(np.mean(scores)) if len(scores) else np.nan}


def placements(folder: Path) -> dict[str, list[dict]]:
    """uri -> the source placements of a generated set (sources/<uri>.json), if it has them."""
    out = {}
    for path in sorted((folder / "sources").glob("*.json")):
        doc = json.loads(path.read_text())
        out[doc["uri"]] = [p for p in doc.get("placements", []) if "librispeech_utt" in p]
    return out


def reused_spans(enroll_set: Path, test_set: Path) -> dict[str, list[tuple[float, float]]]:
    """uri -> the test-set spans whose source audio (utterance and cut) the enrollment set
    also uses: generated sets can share recordings, which flatters target scores."""
    used: dict[str, list[list[float]]] = {}
    for items in placements(enroll_set).values():
        for p in items:
            used.setdefault(p["librispeech_utt"], []).append(p["cut_from_utt_s"])
    out: dict[str, list[tuple[float, float]]] = {}
    for uri, items in placements(test_set).items():
        for p in items:
            a, b = p["cut_from_utt_s"]
            if any(min(b, y) > max(a, x) for x, y in used.get(p["librispeech_utt"], [])):
                out.setdefault(uri, []).append((p["offset_s"], p["offset_s"] + b - a))
    return out


def segment_trials(embedder: Embedder, folder: Path, tests: list[dict], bank: VoiceBank,
                   reused: dict[str, list[tuple[float, float]]]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each solo reference turn of at least MIN_SEGMENT seconds, embedded alone: target and
    non-target scores, and the target scores of turns with no audio the enrollment used."""
    vectors, names = bank.vectors(), bank.names
    target, nontarget, unseen = [], [], []
    for test in tests:
        samples = load_audio(folder / "wav" / f"{test['uri']}.wav", RATE)
        for speaker in test["ref"]:
            if speaker not in names:
                continue
            for a, b in runs(solo(test["ref"], speaker, test["frames"])):
                if (b - a) * GRID < MIN_SEGMENT:
                    continue
                piece = samples[int(a * GRID * RATE):int(b * GRID * RATE)]
                score = unit(embedder.embed(piece, RATE).vector[None]) @ vectors.T
                for name, s in zip(names, score[0]):
                    (target if name == speaker else nontarget).append(float(s))
                fresh = not any(min(b * GRID, y) > max(a * GRID, x)
                                for x, y in reused.get(test["uri"], []))
                if fresh:
                    unseen.append(float(score[0][names.index(speaker)]))
    return np.array(target), np.array(nontarget), np.array(unseen)


def share(value: float) -> str:
    """A percentage, or "none" where nobody is counted (a test set with no unenrolled voice)."""
    return "none" if np.isnan(value) else f"{value:.2%}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enroll-set", type=Path, default=SHARED / "audio" / "librispeech_sim_a")
    parser.add_argument("--test-set", type=Path, default=SHARED / "audio" / "libri_conv_a")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep the bank and the test diarizations here between runs")
    parser.add_argument("--exclusive", action="store_true",
                        help="score the exclusive turns (one speaker at a time: diarize --exclusive)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)

    enroll_refs, test_refs = references(args.enroll_set), references(args.test_set)
    voices = sorted({s for r in enroll_refs.values() for s in r} &
                    {s for r in test_refs.values() for s in r})
    if not voices:
        raise SystemExit(f"{args.enroll_set} and {args.test_set} share no speaker label: nothing "
                         "to enroll in one and identify in the other")
    diarizer = Diarizer()
    with tempfile.TemporaryDirectory() as tmp:
        clips = enrollment_clips(args.enroll_set, voices, Path(tmp))
        bank = bank_of(diarizer, clips, args.cache)

    tests, target, nontarget = [], [], []
    for uri, ref in test_refs.items():
        wav = args.test_set / "wav" / f"{uri}.wav"
        frames = int(np.ceil(sf.info(str(wav)).duration / GRID))
        doc = diarized(diarizer, wav, args.cache, args.exclusive)
        tests.append({"uri": uri, "doc": doc, "ref": ref, "frames": frames})
        who = identity(doc, ref, frames)
        scores = unit(doc["centroids"]) @ bank.vectors().T
        for i, speaker in enumerate(doc["speakers"]):
            for name, s in zip(bank.names, scores[i]):
                if np.isfinite(s):
                    (target if name == who[speaker] else nontarget).append(float(s))
    target, nontarget = np.array(target), np.array(nontarget)
    reused = reused_spans(args.enroll_set, args.test_set)
    segment_target, segment_nontarget, unseen = segment_trials(diarizer.embedder, args.test_set,
                                                               tests, bank, reused)
    speaker_eer, speaker_at = eer(target, nontarget)
    segment_eer, segment_at = eer(segment_target, segment_nontarget)
    sweep = [identification(tests, bank, t) for t in sorted({*SWEEP, args.threshold})]
    chosen = next(s for s in sweep if s["threshold"] == args.threshold)

    doc = {"enroll_set": str(args.enroll_set), "test_set": str(args.test_set),
           "turns": "exclusive" if args.exclusive else "all",
           "voices": {v.name: {"clips": v.clips, "seconds": round(v.seconds, 2)}
                      for v in bank.voices()},
           "speaker_level": {"target": distribution(target), "nontarget": distribution(nontarget),
                             "eer": speaker_eer, "eer_threshold": speaker_at},
           "segment_level": {"min_seconds": MIN_SEGMENT, "target": distribution(segment_target),
                             "nontarget": distribution(segment_nontarget), "eer": segment_eer,
                             "eer_threshold": segment_at,
                             "target_unseen_audio": distribution(unseen)},
           "test_speech_reusing_enrollment_audio": reused_share(tests, reused),
           "identification": chosen, "sweep": sweep}
    print(f"enrolled from {args.enroll_set.name}: " + ", ".join(
        f"{name} ({v['clips']} clips, {v['seconds']:.0f} s)" for name, v in doc["voices"].items()))
    print("\n| trials | target (n, min / median / max) | non-target (n, min / median / max) | EER | "
          "at |\n| --- | --- | --- | --- | --- |")
    for level in ("speaker_level", "segment_level"):
        d = doc[level]
        t, n = d["target"], d["nontarget"]
        print(f"| {level.replace('_', ' ')} | {t['trials']}, {t['min']:.3f} / {t['median']:.3f} / "
              f"{t['max']:.3f} | {n['trials']}, {n['min']:.3f} / {n['median']:.3f} / "
              f"{n['max']:.3f} | {d['eer']:.2%} | {d['eer_threshold']:.3f} |")
    u = doc["segment_level"]["target_unseen_audio"]
    print(f"segment-level targets with no audio the enrollment used: {u['trials']}, "
          f"{u['min']:.3f} / {u['median']:.3f} / {u['max']:.3f}; test speech reusing enrollment "
          f"audio: {doc['test_speech_reusing_enrollment_audio']:.1%}")
    print("\n| threshold | enrolled speech, right name (worst speaker) | enrolled speech, wrong "
          "name | unenrolled speech named (never enrolled / held out) | diarized speakers: "
          "enrolled right / wrong / unnamed, unenrolled named / unnamed |\n| --- | --- | --- | "
          "--- | --- |")
    for s in sweep:
        mark = " (default)" if s["threshold"] == DEFAULT_THRESHOLD else ""
        k = s["speakers"]
        print(f"| {s['threshold']:.2f}{mark} | {s['right_name']:.2%} ({s['right_name_worst']:.2%}) "
              f"| {s['enrolled_wrong_name']:.2%} | {s['unenrolled_named']:.2%} "
              f"({share(s['never_enrolled_named'])} / {s['held_out_named']:.2%}) | "
              f"{k['enrolled_right']} / {k['enrolled_wrong']} / {k['enrolled_unnamed']}, "
              f"{k['unenrolled_named']} / {k['unenrolled_unnamed']} |")
    print(f"diarization bound (the speech of each enrolled speaker under the diarized speaker "
          f"that overlaps it most): {chosen['diarization_bound']:.2%}")
    print(f"unenrolled speech named at {args.threshold}: {chosen['unenrolled_named']:.2%}, of which "
          f"beside its own diarized speaker {chosen['unenrolled_named_beside_own']:.2%} and instead "
          f"of it {chosen['unenrolled_named'] - chosen['unenrolled_named_beside_own']:.2%}; within "
          f"{EDGE} s of a reference turn edge {chosen['unenrolled_named_near_edge']:.2%}, further in "
          f"{chosen['unenrolled_named'] - chosen['unenrolled_named_near_edge']:.2%}")
    print(f"\nper speaker at {args.threshold}, right name (bound): " + ", ".join(
        f"{k} {v['right_name']:.1%} ({v['diarization_bound']:.1%})"
        for k, v in chosen["per_speaker"].items()))
    print("unenrolled: " + ", ".join(f"{k} {v['named']:.1%} of {v['seconds']:.0f} s"
                                     for k, v in chosen["unenrolled"].items()))
    write_results(args.output, json.loads(json.dumps(doc, default=float)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
