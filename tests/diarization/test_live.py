"""Live diarization: ``Diarizer.stream`` and ``powerseg stream --diarization``.

The final result must be the offline Diarizer's, byte for byte; the live turns must not depend
on how the audio was cut into pushes, must never come before ``latency`` seconds of audio after
them have arrived, and must never be taken back. The live part (``LiveLabels``) is checked on
real windows and embeddings computed once per module; the stream itself on real audio.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
from scipy.spatial.distance import cdist
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import SHARED
from powerseg.cli import main
from powerseg.errors import OptionError
from powerseg.runtime.audio import load_audio
from powerseg.runtime.diarization.live import PIECE_SECONDS, LiveLabels, OnlineClustering
from powerseg.runtime.writers import rttm_lines

SAMPLE = SHARED / "audio" / "pyannote_sample" / "wav" / "sample.wav"
AMI = SHARED / "audio" / "ami_pyannote_debug" / "wav"
RATE = 16000


@pytest.fixture(scope="module")
def diarizer(shared):
    from powerseg import Diarizer

    return Diarizer(providers="cpu")


@pytest.fixture(scope="module")
def sample_audio(shared) -> np.ndarray:
    return load_audio(SAMPLE, RATE)


@pytest.fixture(scope="module")
def windows(diarizer):
    """(binarized, embeddings) of every window of tst00 (4 speakers, 30 s), from the models."""
    rounds = diarizer.rounds()
    diarizer.segmenter(AMI / "tst00.wav", activations=False, on_windows=rounds)
    spec = diarizer.segmenter.spec
    return rounds.arrays(spec.num_frames, spec.num_speakers)


def live_labels(diarizer, latency: float, max_speakers: int | None = None) -> LiveLabels:
    return LiveLabels(diarizer.segmenter.framing, latency,
                      diarizer.options.clustering_threshold, max_speakers)


def run_live(diarizer, windows, latency: float, groups: list[int], times: list[float],
             max_speakers: int | None = None) -> list:
    """Windows fed in groups of the given sizes, ``advance`` called at the given times
    (clipped so audio is never in before its windows): every turn, and the latency contract
    checked at each call."""
    live = live_labels(diarizer, latency, max_speakers)
    binarized, embeddings = windows
    framing = diarizer.segmenter.framing
    turns, fed, times = [], 0, iter(times)
    for size in groups:
        live.add(binarized[fed:fed + size], embeddings[fed:fed + size])
        fed += size
        # audio pushed: at least up to the end of the last window fed
        seconds = max(next(times, 0.0), framing.chunk_start(fed - 1) + framing.spec.window)
        out = live.advance(seconds)
        assert all(t.end + latency <= seconds + 1e-9 for t in out), "a turn came too early"
        turns += out
    return turns + live.flush()


def split(total: int, cuts: list[int]) -> list[int]:
    """Sizes of consecutive groups covering ``total`` items, cut at ``cuts``."""
    edges = sorted({0, total, *[c % total for c in cuts]})
    return [b - a for a, b in zip(edges, edges[1:])]


# ---- the live part, on real windows ---------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, 1000), max_size=8),
       times=st.lists(st.floats(0, 40), max_size=30),
       latency=st.sampled_from([1.0, 2.0, 3.5, 5.0, 10.0]))
def test_any_grouping_and_advance_times_give_the_same_turns(diarizer, windows, cuts, times,
                                                             latency):
    total = len(windows[0])
    one_by_one = run_live(diarizer, windows, latency, [1] * total, [])
    assert run_live(diarizer, windows, latency, split(total, cuts), times) == one_by_one


@pytest.mark.parametrize("latency", [1.0, 2.0, 5.0, 10.0])
def test_turns_are_final_once_emitted(diarizer, windows, latency):
    """Each frame is decided once: one speaker's turns never overlap (the pieces of a turn
    touch), and they are emitted in the order of their ends."""
    turns = run_live(diarizer, windows, latency, [1] * len(windows[0]), [])
    assert turns, "tst00 has speech"
    for speaker in {t.label for t in turns}:
        own = sorted((t.start, t.end) for t in turns if t.label == speaker)
        assert all(a[1] <= b[0] for a, b in zip(own, own[1:]))
    assert turns == sorted(turns, key=lambda t: (t.end, t.start, t.label))
    labels = [t.label for t in turns]
    first_seen = list(dict.fromkeys(t.label for t in sorted(turns, key=lambda t: t.start)))
    assert sorted(set(labels)) == [f"SPEAKER_{i:02d}" for i in range(len(set(labels)))]
    assert first_seen == sorted(first_seen), "labels are numbered in order of appearance"


def joined(turns: list) -> dict[str, list[tuple[float, float]]]:
    """Each speaker's turns with touching pieces joined."""
    out: dict[str, list[tuple[float, float]]] = {}
    for t in sorted(turns, key=lambda t: (t.label, t.start)):
        own = out.setdefault(t.label, [])
        if own and own[-1][1] == t.start:
            own[-1] = (own[-1][0], t.end)
        else:
            own.append((t.start, t.end))
    return out


@pytest.mark.parametrize("latency", [1.0, 2.0, 5.0])
def test_a_turn_going_on_is_emitted_in_pieces_not_at_its_end(diarizer, windows, latency):
    """With the audio in up to T (windows in up to the last that ends by T), every moment up to
    T - latency has its label, less one piece (``PIECE_SECONDS``: cuts fall on a fixed grid)
    and four frames (68 ms: at a latency of one step the last frames before T - latency lie
    past the previous window's last frame): a turn still going on is not held back until it
    ends, and the first window's frames do not wait for the second."""
    binarized, embeddings = windows
    framing = diarizer.segmenter.framing
    live = live_labels(diarizer, latency)
    calls = []
    for k in range(len(binarized)):
        live.add(binarized[k:k + 1], embeddings[k:k + 1])
        for part in (0.0, 0.25, 0.5, 0.75):  # pushes between windows
            seconds = framing.chunk_start(k) + framing.spec.window + part * framing.step
            calls.append((k, seconds, live.advance(seconds)))
    final = joined([t for _, _, out in calls for t in out] + live.flush())
    emitted: list = []
    pieces = 0
    lag = latency + PIECE_SECONDS + 4 * framing.spec.grid.step
    for _, seconds, out in calls:
        emitted += out
        pieces += sum(1 for t in out if any(a < t.end < b for a, b in final[t.label]))
        so_far, certain = joined(emitted), seconds - lag
        for speaker, spans in final.items():
            due = [(a, min(b, certain)) for a, b in spans if a < certain]
            assert all(any(c <= a and b <= d for c, d in so_far.get(speaker, []))
                       for a, b in due), (seconds, speaker)
    assert pieces > 0, "tst00 has turns longer than a step"


def test_speaker_bound_holds_live(diarizer, windows):
    turns = run_live(diarizer, windows, 5.0, [1] * len(windows[0]), [], max_speakers=2)
    assert {t.label for t in turns} <= {"SPEAKER_00", "SPEAKER_01"}
    assert len({t.label for t in run_live(diarizer, windows, 5.0, [1] * len(windows[0]), [])}) > 2


def test_one_window_never_maps_two_local_speakers_to_one(diarizer, windows):
    clustering = OnlineClustering(diarizer.options.clustering_threshold)
    for active, vectors in zip(*windows):
        hard = clustering(active, vectors)
        assigned = hard[hard >= 0]
        assert len(set(assigned.tolist())) == len(assigned)
        assert np.all(hard[~active.any(axis=0)] == -1), "a silent local speaker got a speaker"


def test_close_speakers_merge_into_the_older_and_stay_merged(diarizer, windows):
    live = live_labels(diarizer, 5.0)
    clustering, merged = live.clustering, {}
    for active, vectors in zip(*windows):
        live.add(active[None], vectors[None])
        hard = live.clustering.alias[np.arange(clustering.num_speakers)]
        merged.update({s: int(hard[s]) for s in range(len(hard)) if hard[s] != s})
        assert all(into < s for s, into in merged.items()), "the older speaker keeps its label"
        timeline = live.timeline
        for s in merged:
            if s < timeline.votes.shape[1]:
                assert not timeline.votes[:timeline.held, s].any(), "votes moved to the older"
        alive = [s for s in range(clustering.num_speakers) if s not in merged]
        distance = cdist(clustering.sums[alive], clustering.sums[alive], metric="cosine")
        assert np.all(distance[np.triu_indices(len(alive), 1)] >= clustering.new_speaker)
    assert merged, "tst00 opens a speaker that later proves to be an earlier one"
    again, gone = OnlineClustering(diarizer.options.clustering_threshold), set()
    for active, vectors in zip(*windows):
        hard = again(active, vectors)
        gone |= {m for m, _ in again.merges}
        again.merges.clear()
        assert not set(hard.tolist()) & gone, "a merged speaker is never given again"
    assert gone == set(merged)


# ---- the stream, on real audio --------------------------------------------------------------


def stream_turns(diarizer, audio: np.ndarray, block: int, latency: float = 5.0, **speakers):
    stream = diarizer.stream(latency=latency, **speakers)
    turns = []
    for begin in range(0, len(audio), block):
        out = stream.push(audio[begin:begin + block])
        pushed = min(begin + block, len(audio)) / RATE
        assert all(t.end + latency <= pushed + 1e-9 for t in out)
        turns += out
    end = stream.flush()
    return turns + end.turns, end


def test_final_result_is_the_offline_result_and_pushes_do_not_matter(diarizer, sample_audio):
    offline = diarizer(SAMPLE)
    live_a, end_a = stream_turns(diarizer, sample_audio, RATE)
    live_b, end_b = stream_turns(diarizer, sample_audio, 6007)  # odd sizes, across windows
    assert live_a == live_b
    for end in (end_a, end_b):
        assert rttm_lines("sample", end.diarization.turns()) == rttm_lines("sample", offline.turns())
        assert end.diarization.exclusive() == offline.exclusive()
    assert end_a.labels == {"SPEAKER_00": "SPEAKER_00", "SPEAKER_01": "SPEAKER_01"}


@pytest.mark.parametrize("speakers", [dict(num_speakers=1), dict(max_speakers=1),
                                      dict(min_speakers=3)])
def test_final_result_follows_the_speaker_bounds(diarizer, sample_audio, speakers):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # min_speakers=3 cannot be reached: the same warning
        offline = diarizer(SAMPLE, **speakers)
        live, end = stream_turns(diarizer, sample_audio, 4 * RATE, **speakers)
    assert end.diarization.turns() == offline.turns()
    if speakers.get("num_speakers") == 1 or speakers.get("max_speakers") == 1:
        assert {t.speaker for t in live} == {"SPEAKER_00"}


def test_other_sample_rates(diarizer, sample_audio):
    import soxr

    audio = soxr.resample(sample_audio, RATE, 8000)
    stream = diarizer.stream(latency=2.0, sample_rate=8000)
    for begin in range(0, len(audio), 4000):
        stream.push(audio[begin:begin + 4000])
    end = stream.flush()
    assert end.diarization.turns() == diarizer(audio, sample_rate=8000).turns()


def test_silence_gives_an_empty_result(diarizer):
    stream = diarizer.stream(latency=1.0)
    assert stream.push(np.zeros(15 * RATE, np.float32)) == []
    with pytest.warns(UserWarning, match="stream: no speaker found"):
        end = stream.flush()
    assert end.turns == [] and end.diarization.turns() == [] and end.labels == {}


@pytest.mark.parametrize("latency", [0.5, 10.5, math.nan, math.inf, True, "5", None])
def test_bad_latency(diarizer, latency):
    with pytest.raises(OptionError, match="latency"):
        diarizer.stream(latency=latency)


# Bad pushes, flushes and sample rates: tests/contracts/test_pipelines.py, for every stream alike.
def test_bad_bounds_and_a_silent_stream(diarizer):
    with pytest.raises(OptionError, match="must not exceed"):
        diarizer.stream(min_speakers=3, max_speakers=2)
    stream = diarizer.stream()
    stream.push(np.zeros(RATE, np.float32))
    with pytest.warns(UserWarning, match="no speaker found"):
        stream.flush()


# ---- the command line -----------------------------------------------------------------------


def test_cli_file_prints_turns_and_writes_the_offline_result(tmp_path, capsys, diarizer):
    final = tmp_path / "final.rttm"
    assert main(["stream", "--diarization", str(SAMPLE), "--latency", "2", "--provider", "cpu",
                 "--final-output", str(final)]) == 0
    out, err = capsys.readouterr()
    live, _ = stream_turns(diarizer, load_audio(SAMPLE, RATE), 1600, latency=2.0)
    assert out == "".join(rttm_lines("sample", live))
    assert final.read_text() == "".join(rttm_lines("sample", diarizer(SAMPLE).turns()))
    assert "final speakers: SPEAKER_00 -> SPEAKER_00" in err
    document = tmp_path / "final.json"
    assert main(["stream", "--diarization", str(SAMPLE), "--format", "jsonl", "--provider", "cpu",
                 "--final-output", str(document)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines and set(lines[0]) == {"uri", "start", "end", "speaker"}
    assert json.loads(document.read_text())["speakers"] == ["SPEAKER_00", "SPEAKER_01"]


def test_cli_stdin_pcm(tmp_path):
    pcm = (np.clip(load_audio(SAMPLE, RATE), -1, 1) * 32767).astype("<i2").tobytes()
    run = subprocess.run([sys.executable, "-m", "powerseg.cli", "stream", "--diarization", "-",
                          "--latency", "5", "--provider", "cpu"], input=pcm,
                         capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr.decode()
    lines = run.stdout.decode().splitlines()
    assert lines and all(line.split()[1] == "stdin" and line.startswith("SPEAKER ")
                         for line in lines)
    assert {line.split()[7] for line in lines} == {"SPEAKER_00", "SPEAKER_01"}


@pytest.mark.parametrize("argv, message", [
    (["--latency", "0.5"], "--latency must be"),
    (["--final-output", "x.txt"], "--final-output x.txt"),
])
def test_cli_bad_options(capsys, argv, message):
    assert main(["stream", "--diarization", str(SAMPLE), "--provider", "cpu", *argv]) == 2
    assert message in capsys.readouterr().err


# ---- accuracy on every shared file ----------------------------------------------------------

# Measured (benchmarks/live.py, README): pooled offline DER 15.9 %; live 21.2 % at 2 s and
# 17.6 % at 5 s; 95.5 % of the final speaker time has the same speaker live at 5 s. The bars
# are the goals (issue #21): 6 and 3 points above offline, 95 % agreement.
MAX_EXTRA_DER = {2.0: 6.0, 5.0: 3.0}  # percentage points above offline
MIN_AGREEMENT_5S = 0.95
SETS = ("pyannote_sample", "ami_pyannote_debug", "librispeech_sim_a", "libri_conv_a")


@pytest.fixture(scope="module")
def every_shared_file(diarizer) -> list:
    """(wav, its offline Diarization) for every shared recording."""
    return [(wav, diarizer(wav)) for name in SETS
            for wav in sorted((SHARED / "audio" / name / "wav").glob("*.wav"))]


@pytest.mark.slow
def test_live_accuracy_on_every_shared_file(diarizer, every_shared_file):
    from powerseg.runtime.binarize import Region
    from powerseg.runtime.diarization.live import replay
    from powerseg.runtime.metrics import diarization_error, read_rttm, read_uem

    errors = {key: np.zeros(2) for key in ("offline", *MAX_EXTRA_DER)}
    agreement = np.zeros(2)
    for wav, result in every_shared_file:
        folder = wav.parent.parent
        uem = read_uem(folder / "uem" / "all.uem")
        truth = read_rttm(folder / "rttm" / f"{wav.stem}.rttm").get(wav.stem, [])
        final = [Region(*t) for t in result.turns()]
        for key in errors:
            turns = final if key == "offline" else \
                [Region(*t) for t in replay(diarizer, result, key)]
            e = diarization_error(truth, turns, uem.get(wav.stem))
            errors[key] += (e.false_alarm + e.missed + e.confusion, e.reference)
            if key == 5.0:
                same = diarization_error(final, turns)
                agreement += (same.reference - same.missed - same.confusion, same.reference)
    offline = 100 * errors["offline"][0] / errors["offline"][1]
    for latency, extra in MAX_EXTRA_DER.items():
        live = 100 * errors[latency][0] / errors[latency][1]
        assert live <= offline + extra, f"{latency:g} s: live DER {live:.1f} % vs offline {offline:.1f} %"
    assert agreement[0] / agreement[1] >= MIN_AGREEMENT_5S


@pytest.mark.slow
def test_a_stream_ends_in_the_offline_result_on_every_shared_file(diarizer, every_shared_file):
    """Streamed in pushes of 0.37 s (no multiple of a step), every recording's final result
    has the offline RTTM bytes, and its live turns are replay's (the same live part)."""
    from powerseg.runtime.diarization.live import replay

    for wav, offline in every_shared_file:
        audio = load_audio(wav, RATE)
        live, end = stream_turns(diarizer, audio, 5920, latency=2.0)
        assert rttm_lines(wav.stem, end.diarization.turns()) == \
            rttm_lines(wav.stem, offline.turns()), wav.stem
        assert live == replay(diarizer, offline, 2.0), wav.stem


def test_replay_is_what_a_stream_emits(diarizer, sample_audio):
    from powerseg.runtime.diarization.live import replay

    live, end = stream_turns(diarizer, sample_audio, RATE, latency=2.0)
    assert replay(diarizer, end.diarization, 2.0) == live


def test_enrolled_voices_name_live_and_final_speakers(tmp_path, sample_audio):
    from powerseg import Diarizer
    from powerseg.runtime.diarization.voices import Clip, VoiceBank

    plain = Diarizer(providers="cpu")
    offline = plain(SAMPLE)
    first = offline.speakers.index("SPEAKER_00")
    bank = VoiceBank.for_embedder(plain.embedder).add(
        "Alice", [Clip("Alice", offline.centroids[first].astype(np.float32), 10.0, "sample")])
    named = Diarizer(providers="cpu", voices=bank)
    live, end = stream_turns(named, sample_audio, RATE)
    assert {t.speaker for t in live} == {"Alice", "SPEAKER_00"}
    assert set(end.diarization.speakers) == {"Alice", "SPEAKER_01"}
    assert end.labels == {"Alice": "Alice", "SPEAKER_00": "SPEAKER_01"}
    bank.save(tmp_path / "voices.npz")
    assert main(["stream", "--diarization", str(SAMPLE), "--provider", "cpu",
                 "--voices", str(tmp_path / "voices.npz")]) == 0
