"""One Segmenter shared by many threads gives exactly the serial results; repeated runs on CPU
are bit-identical (same object, a new object, a new process)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf

from powerseg import Segmenter
from powerseg.samples import sample_path

RATE = 16000
THREADS = 8


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    data, rate = sf.read(sample_path(), dtype="float32")
    assert rate == RATE
    return data


@pytest.fixture(scope="module")
def seg() -> Segmenter:
    return Segmenter(providers="cpu", step=2.5, batch_size=2)  # several batches per call


@pytest.fixture(scope="module")
def inputs(sample, tmp_path_factory) -> list:
    """8 different inputs: arrays of different lengths and offsets, and files at other rates."""
    folder = tmp_path_factory.mktemp("concurrency")
    out: list = []
    for i in range(THREADS):
        excerpt = sample[i * RATE:(i + 10 + i % 3) * RATE]
        if i % 2:
            path = folder / f"part{i}.flac"
            sf.write(path, excerpt, RATE)
            out.append(path)
        else:
            out.append(excerpt)
    return out


def run(seg: Segmenter, audio):
    return seg(audio) if not isinstance(audio, np.ndarray) else seg(audio, sample_rate=RATE)


def assert_identical(a, b) -> None:
    for name in ("speech", "overlap", "count", "activations"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), name  # bit for bit
    assert a.vad() == b.vad() and a.osd() == b.osd()


def test_eight_threads_share_one_segmenter(seg, inputs):
    serial = [run(seg, audio) for audio in inputs]
    assert len({r.num_frames for r in serial}) > 1  # the inputs really differ
    state = dict(vars(seg))
    jobs = inputs * 2  # 16 calls, 8 at a time, each input in flight twice at once
    with ThreadPoolExecutor(THREADS) as pool:
        threaded = list(pool.map(lambda audio: run(seg, audio), jobs))
    for i, result in enumerate(threaded):
        assert_identical(result, serial[i % len(inputs)])
    assert vars(seg) == state  # no per-call state was left on the object


def test_threads_with_failing_calls_mixed(seg, inputs, tmp_path):
    """Failing calls in other threads do not disturb the good ones."""
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    expected = run(seg, inputs[0])

    def job(i):
        if i % 3 == 1:
            with pytest.raises(Exception) as info:
                seg(bad)
            return type(info.value).__name__
        return run(seg, inputs[0])

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(job, range(12)))
    for i, result in enumerate(results):
        if i % 3 == 1:
            assert result == "AudioError"
        else:
            assert_identical(result, expected)


def test_repeated_runs_are_bit_identical(seg, sample):
    audio = sample[:14 * RATE]
    first = seg(audio, sample_rate=RATE)
    for _ in range(2):
        assert_identical(seg(audio, sample_rate=RATE), first)
    other = Segmenter(providers="cpu", step=2.5, batch_size=2)
    assert_identical(other(audio, sample_rate=RATE), first)


def test_file_and_array_give_identical_results(seg, sample, tmp_path):
    path = tmp_path / "part.wav"
    sf.write(path, sample[:14 * RATE], RATE, subtype="FLOAT")
    assert_identical(seg(path), seg(sample[:14 * RATE], sample_rate=RATE))


def test_a_new_process_gives_the_same_bits(tmp_path, sample):
    """The CLI in a fresh interpreter writes exactly the scores computed here."""
    audio = tmp_path / "part.wav"
    sf.write(audio, sample[5 * RATE:20 * RATE], RATE)
    out = tmp_path / "scores.npz"
    subprocess.run([sys.executable, "-m", "powerseg", "scores", str(audio), "-o", str(out),
                    "--provider", "cpu", "--step", "2.5"], check=True, capture_output=True)
    here = Segmenter(providers="cpu", step=2.5)(audio)
    with np.load(out) as saved:
        for name in ("speech", "overlap", "count"):
            assert saved[name].tobytes() == getattr(here, name).tobytes(), name


def test_parallel_workers_match_one_worker():
    """Batches run on two cores at once give the same bits as one batch after another."""
    one, two = Segmenter(providers="cpu", threads=1), Segmenter(providers="cpu", threads=2)
    assert (one.model.workers, two.model.workers) == (1, 2)
    a, b = one(sample_path()), two(sample_path())
    np.testing.assert_array_equal(a.speech, b.speech)
    np.testing.assert_array_equal(a.overlap, b.overlap)
    np.testing.assert_array_equal(a.activations, b.activations)
