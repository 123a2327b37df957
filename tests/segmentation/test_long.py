"""Long recordings (shared audio tiled to about 3.5 min): the file path, read and aggregated in
blocks, equals the in-memory path and the stream, and nothing held grows with the duration.

The 10 min / 1 h peak-RSS measurements live in benchmarks/memory.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from helpers import RECORDINGS, wav
from powerseg.runtime import BinarizeOptions
from powerseg.runtime.audio import load_audio
from powerseg.runtime.buffer import RowBuffer

RATE = 16000
CUSTOM = BinarizeOptions(min_duration_on=0.2, min_duration_off=0.3, pad_onset=0.05, pad_offset=0.05)


@pytest.fixture(scope="module")
def long_audio(shared, tmp_path_factory):
    """Shared recordings back to back until 210 s, 0.25 s cut off each so windows do not repeat."""
    parts, total = [], 0
    for name, uri in RECORDINGS:
        part = load_audio(wav(name, uri), RATE)[: -RATE // 4]
        parts.append(part)
        total += len(part)
        if total >= 210 * RATE:
            break
    samples = np.concatenate(parts)[:210 * RATE + 4321]  # not a whole number of steps
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, samples, RATE, subtype="FLOAT")  # float32 on disk: reads back bit-exact
    return path, samples


def same(a, b) -> None:
    for key in ("speech", "overlap", "count"):
        assert getattr(a, key).shape == getattr(b, key).shape, key
        assert np.abs(getattr(a, key).astype(np.float64) - getattr(b, key)).max() <= 1e-5, key


def test_file_in_blocks_equals_in_memory_and_stream(cached, long_audio, monkeypatch):
    from powerseg.runtime import audio

    path, samples = long_audio
    monkeypatch.setattr(audio, "BLOCK_SECONDS", 23.0)  # several file blocks, none on a step
    from_file = cached(path, activations=False)
    in_memory = cached(samples, sample_rate=RATE, activations=False)
    assert from_file.activations is None
    assert from_file.duration == pytest.approx(210 + 4321 / RATE)
    same(from_file, in_memory)
    assert from_file.vad() == in_memory.vad() and from_file.osd(CUSTOM) == in_memory.osd(CUSTOM)

    stream = cached.stream(vad=BinarizeOptions(), osd=CUSTOM)
    parts, held = [], []
    for i in range(0, len(samples), 7 * RATE):
        parts.append(stream.push(samples[i:i + 7 * RATE]))
        held.append((held_bytes(stream._windows), len(stream._scores.sum), len(stream._count.sum)))
    parts.append(stream.flush())
    for key in ("speech", "overlap", "count"):
        np.testing.assert_array_equal(np.concatenate([getattr(p, key) for p in parts]),
                                      getattr(from_file, key))
    regions = [e for p in parts for e in p.events]
    assert [e for e in regions if e.label == "SPEECH"] == from_file.vad()
    assert [e for e in regions if e.label == "OVERLAP"] == from_file.osd(CUSTOM)
    # buffers stop growing once the first window has run: memory does not follow the duration
    assert held[3:] and all(h == held[3] for h in held[3:])
    bytes_held, frames_held, _ = held[-1]
    # the pair's front rows (80 filters x 2 x 3 phases per conv frame) are 1 MB a second
    assert bytes_held < 48e6 and frames_held <= 4 * 589


def held_bytes(source) -> int:
    """Bytes a window source holds in its buffers (samples, and front rows for a pair)."""
    return sum(b.data.nbytes for b in vars(source).values() if isinstance(b, RowBuffer))
