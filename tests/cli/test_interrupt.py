"""Ctrl-C (SIGINT) and SIGTERM: real runs in a subprocess on shared audio, signalled mid-file.

Each run must end within 2 s of the signal, with 130 (SIGINT) or 143 (SIGTERM), one line on a
line of its own, no temporary file, the finished outputs intact, and a rerun that resumes to
the bytes an uninterrupted run writes. Stage hooks (the cancellation the batch uses) are
tested on the library directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import SHARED

from powerseg.batch import SUMMARY_NAME
from powerseg.cli import main

CONV = SHARED / "audio" / "libri_conv_a" / "wav"
EXIT_WITHIN = 2.0  # seconds from the signal to the exit
RATE = 16000


def _start(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "powerseg", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _signal_when(process: subprocess.Popen, ready, number: int,
                 timeout: float = 600) -> tuple[str, str, float]:
    """Send ``number`` once ``ready()`` holds; (stdout, stderr, seconds from signal to exit)."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "never ready to be interrupted"
            time.sleep(0.02)
        sent = time.monotonic()
        process.send_signal(number)
        process.wait(timeout=60)
        seconds = time.monotonic() - sent
        # read after the exit (the outputs are small): what a readline buffered stays in order
        return process.stdout.read(), process.stderr.read(), seconds
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.is_dir() else {}


def _check_interrupted(err: str, seconds: float, code: int, expected_code: int) -> str:
    assert code == expected_code, err
    assert seconds < EXIT_WITHIN, f"{seconds:.2f} s from the signal to the exit"
    lines = err.splitlines()
    assert lines and lines[-1].startswith("powerseg: interrupted"), err
    assert "Traceback" not in err
    return lines[-1]


@pytest.fixture(scope="module")
def minute_files(shared, tmp_path_factory) -> Path:
    """Three 60 s excerpts of the conversations, as WAV files in one folder."""
    folder = tmp_path_factory.mktemp("minutes")
    for index, name in enumerate(("conva_00", "conva_01", "conva_02")):
        samples, rate = sf.read(CONV / f"{name}.wav", dtype="float32")
        sf.write(folder / f"{index}_{name}.wav", samples[30 * rate:90 * rate], rate)
    return folder


@pytest.mark.parametrize("number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_batch_signal_mid_file_stops_at_once_and_resumes(minute_files, tmp_path, number, code):
    out = tmp_path / "out"
    args = ["vad", str(minute_files), "--output-dir", str(out), "--step", "2",
            "--provider", "cpu"]
    process = _start(*args)
    # the first file finished: the second is in progress, the third not started
    _, err, seconds = _signal_when(process, lambda: len(list(out.glob("*.rttm"))) >= 1, number)
    line = _check_interrupted(err, seconds, process.returncode, code)
    done = _outputs(out)
    assert len(done) in (1, 2) and not [n for n in done if n.endswith(".part")], done
    assert line == (f"powerseg: interrupted: {len(done)} done, {3 - len(done)} not started; "
                    "rerun the same command to resume")
    assert main(args) == 0  # the rerun resumes: the finished ones skipped
    expected = tmp_path / "expected"
    assert main(["vad", str(minute_files), "--output-dir", str(expected), "--step", "2",
                 "--provider", "cpu"]) == 0
    resumed, fresh = _outputs(out), _outputs(expected)
    summary = json.loads(resumed.pop(SUMMARY_NAME))  # the resumed run's: what it skipped
    assert sorted(Path(p).stem for p in summary["skipped"]) == sorted(Path(n).stem for n in done)
    fresh.pop(SUMMARY_NAME)
    assert resumed == fresh and len(resumed) == 3
    for name, data in done.items():  # written once, before the signal, and intact
        assert resumed[name] == data


def test_single_file_output_signal_leaves_nothing(minute_files, tmp_path):
    audio = tmp_path / "ten_minutes.wav"  # long enough to be at work after 4 s on any machine
    samples, rate = sf.read(minute_files / "1_conva_01.wav", dtype="float32")
    sf.write(audio, np.tile(samples, 10), rate)
    out = tmp_path / "turns.rttm"
    process = _start("diarize", str(audio), "-o", str(out), "--provider", "cpu")
    started = time.monotonic()
    _, err, seconds = _signal_when(process, lambda: time.monotonic() > started + 4.0,
                                   signal.SIGINT)
    _check_interrupted(err, seconds, process.returncode, 130)
    assert sorted(p.name for p in tmp_path.iterdir()) == [audio.name]


def test_stream_signal_prints_every_final_region(minute_files, tmp_path):
    """A file streamed block by block, stopped mid-way: the regions of the audio read so far,
    exactly those of the offline VAD on that prefix, then the line and 130."""
    from powerseg import Segmenter

    audio = minute_files / "1_conva_01.wav"
    process = _start("stream", str(audio), "--events", "speech", "--provider", "cpu")
    lines: list[str] = []

    def printed_two() -> bool:  # two regions final: well into the file, far from its end
        lines.append(process.stdout.readline())
        return len(lines) >= 2

    out, err, seconds = _signal_when(process, printed_two, signal.SIGINT)
    line = _check_interrupted(err, seconds, process.returncode, 130)
    ended = float(line.split("stream ended at ")[1].split(" s")[0])
    assert 10 < ended < 60, line
    samples, rate = sf.read(audio, dtype="float32")
    prefix = samples[:round(ended * rate)]
    expected = Segmenter(providers="cpu")(prefix, sample_rate=rate).vad()
    assert "".join(lines) + out == "".join(f"speech {r.start:.3f} {r.end:.3f}\n"
                                           for r in expected)


def test_stream_from_stdin_signal_while_waiting_for_audio(minute_files):
    """Raw PCM on a pipe that stays open: the signal arrives while powerseg waits for more."""
    from powerseg import Segmenter

    samples, rate = sf.read(minute_files / "0_conva_00.wav", dtype="int16")
    assert rate == RATE  # raw PCM on stdin is read as 16 kHz
    part = samples[:25 * rate]
    process = _start("stream", "-", "--events", "speech", "--provider", "cpu",
                     stdin=subprocess.PIPE)
    process.stdin.buffer.write(part.astype("<i2").tobytes())
    process.stdin.flush()
    first = process.stdout.readline()  # a region is final: audio is being read
    time.sleep(1.0)  # the rest of the 25 s read; then powerseg waits for more
    out, err, seconds = _signal_when(process, lambda: True, signal.SIGINT, timeout=60)
    line = _check_interrupted(err, seconds, process.returncode, 130)
    assert line.startswith("powerseg: interrupted: stream ended at 25.000 s"), line
    expected = Segmenter(providers="cpu")(part, sample_rate=rate).vad()
    assert first + out == "".join(f"speech {r.start:.3f} {r.end:.3f}\n" for r in expected)


def _loaded(process: subprocess.Popen, library: str) -> bool:
    """Whether ``process`` has mapped a shared library whose path holds ``library``."""
    try:
        return library in Path(f"/proc/{process.pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
@pytest.mark.parametrize("library", ["numpy", "onnxruntime"])  # early and late in the imports
@pytest.mark.parametrize("number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_command_starts_is_one_line(library, number, code):
    """Ctrl-C or SIGTERM during the CLI's imports (powerseg's own code has started: numpy and
    onnxruntime load only there) ends the same way: 130 (143) and one line, no traceback
    from inside an import."""
    process = _start("info")
    out, err, seconds = _signal_when(process, lambda: _loaded(process, library), number,
                                     timeout=60)
    _check_interrupted(err, seconds, process.returncode, code)


# ---- stage hooks: progress and cancellation in the library ----------------------------------

class Stop(Exception):
    pass


def test_segmenter_hook_reports_progress_and_stops_when_it_raises(minute_files):
    from powerseg import Segmenter

    seg = Segmenter(providers="cpu")
    audio = minute_files / "0_conva_00.wav"
    seen: list[tuple[str, dict]] = []
    result = seg(audio, hook=lambda stage, payload: seen.append((stage, payload)))
    seconds = [p["seconds"] for _, p in seen]
    assert all(p["total"] == pytest.approx(60.0, abs=1e-3) for _, p in seen)
    assert seconds == sorted(seconds) and seconds[-1] == pytest.approx(result.duration)
    assert len(seen) >= 10  # each round of windows, not only the end

    calls = []

    def stop_at_20_s(stage: str, payload: dict) -> None:
        calls.append(payload["seconds"])
        if payload["seconds"] >= 20:
            raise Stop

    with pytest.raises(Stop):
        seg(audio, hook=stop_at_20_s)
    assert calls[-1] < 30  # stopped there, not at the end of the file
    # the workers are clean: the same instance gives the same result afterwards
    again = seg(audio)
    assert np.array_equal(again.speech, result.speech)


def test_diarizer_and_embedder_hooks_name_their_stages(shared):
    from powerseg import Diarizer, Embedder

    samples, rate = sf.read(SHARED / "audio" / "pyannote_sample" / "wav" / "sample.wav",
                            dtype="float32")
    audio = {"waveform": samples[:15 * rate], "sample_rate": rate}
    diarizer = Diarizer(providers="cpu")
    stages: list[str] = []
    diarizer(audio, hook=lambda stage, payload: stages.append(stage))
    assert stages[-3:] == ["speaker_counting", "clustering", "discrete_diarization"]
    assert "segmentation" in stages

    def stop_at_clustering(stage: str, payload: dict) -> None:
        if stage == "clustering":
            raise Stop

    with pytest.raises(Stop):
        diarizer(audio, hook=stop_at_clustering)
    stages.clear()
    Embedder().embed(audio, hook=lambda stage, payload: stages.append(stage))
    assert stages == ["audio", "fbank", "embedding"]


# ---- the case: diarization of a folder of 3-minute conversations ---------------------

CONVERSATIONS = ("conva_00", "conva_02")  # 181 s and 184 s


@pytest.fixture(scope="module")
def conversations(shared, tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """The folder, and what an uninterrupted ``diarize --output-dir`` writes for it."""
    folder = tmp_path_factory.mktemp("conversations")
    for name in CONVERSATIONS:
        (folder / f"{name}.wav").symlink_to(CONV / f"{name}.wav")
    expected = tmp_path_factory.mktemp("expected")
    assert main(["diarize", str(folder), "--output-dir", str(expected), "--provider",
                 "cpu"]) == 0
    return folder, _outputs(expected)


@pytest.mark.slow
@pytest.mark.parametrize("number, code, jobs", [(signal.SIGINT, 130, "1"),
                                                (signal.SIGTERM, 143, "2")])
def test_diarize_folder_signal_mid_file(conversations, tmp_path, number, code, jobs):
    folder, expected = conversations
    out = tmp_path / "out"
    args = ["diarize", str(folder), "--output-dir", str(out), "--jobs", jobs, "--provider", "cpu"]
    process = _start(*args)
    started = time.monotonic()

    def ready() -> bool:
        if jobs == "1":  # the first conversation done, the second under way
            return len(list(out.glob("*.rttm"))) >= 1
        return time.monotonic() - started > 8  # both under way, a few seconds in
    _, err, seconds = _signal_when(process, ready, number)
    line = _check_interrupted(err, seconds, process.returncode, code)
    done = _outputs(out)
    assert line == (f"powerseg: interrupted: {len(done)} done, {2 - len(done)} not started; "
                    "rerun the same command to resume")
    assert len(done) == (1 if jobs == "1" else 0), done
    assert all(data == expected[name] for name, data in done.items())  # complete ones intact
    assert main(args) == 0
    resumed = _outputs(out)
    summary = json.loads(resumed.pop(SUMMARY_NAME))  # the resume's own: the done ones skipped
    assert (len(summary["skipped"]), len(summary["done"])) == (len(done), 2 - len(done))
    # the resume: byte for byte the uninterrupted run's results
    assert resumed == {name: data for name, data in expected.items() if name != SUMMARY_NAME}
