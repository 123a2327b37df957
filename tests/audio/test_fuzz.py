"""Random and mutated bytes into the audio loader: it returns finite mono float32 or raises a
``PowersegError`` subclass, never a raw soundfile/soxr/numpy error, and never hangs or blows up."""

from __future__ import annotations

import atexit
import io
import os
import random
import shutil
import tempfile

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerseg.errors import PowersegError
from powerseg.runtime.audio import load_audio
from powerseg.samples import sample_path

RATE = 16000
FORMATS = [("WAV", "PCM_16", 1), ("WAV", "PCM_24", 2), ("WAV", "FLOAT", 1), ("WAV", "PCM_U8", 1),
           ("WAV", "ULAW", 1), ("WAV", "IMA_ADPCM", 1), ("FLAC", "PCM_16", 2), ("FLAC", "PCM_24", 1),
           ("OGG", "VORBIS", 1), ("AIFF", "PCM_16", 1), ("CAF", "FLOAT", 1), ("W64", "PCM_16", 1)]
MAGIC = [b"RIFF", b"RIFF\x00\x10\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"FORM", b"caff", b"ID3",
         b"\xff\xfb", b""]


def _seeds() -> list[bytes]:
    """Small real files (0.25 s of the bundled recording) in every format libsndfile writes."""
    data, rate = sf.read(sample_path(), dtype="float32", frames=RATE // 4, start=8 * RATE)
    out = []
    for fmt, subtype, channels in FORMATS:
        buffer = io.BytesIO()
        sf.write(buffer, np.repeat(data[:, None], channels, axis=1), rate, format=fmt,
                 subtype=subtype)
        out.append(buffer.getvalue())
    return out


SEEDS = _seeds()
FOLDER = tempfile.mkdtemp(prefix="powerseg-fuzz-")
atexit.register(shutil.rmtree, FOLDER, True)


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if op == 0 and data:  # truncate
            del data[rng.randrange(len(data)):]
        elif op == 1 and data:  # flip bytes in the header, where the structure is
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(min(len(data), 128))] = rng.randrange(256)
        elif op == 2 and data:  # flip bytes anywhere
            for _ in range(rng.randint(1, 40)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 3:  # splice in random bytes
            at = rng.randrange(len(data) + 1)
            data[at:at + rng.randrange(64)] = rng.randbytes(rng.randrange(64))
        elif op == 4 and data:  # set a 32-bit field (sizes, rates, counts) to an extreme value
            at = rng.randrange(min(len(data), 64))
            data[at:at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
                                          b"\x01\x00\x00\x00", b"\xff\xff\xff\x7f"])
        elif op == 5 and data:  # duplicate a chunk
            at = rng.randrange(len(data))
            data[at:at] = data[at:at + rng.randrange(256)]
    return bytes(data)


def check(data: bytes, name: str = "fuzz.wav") -> None:
    path = os.path.join(FOLDER, name)
    with open(path, "wb") as f:
        f.write(data)
    try:
        samples = load_audio(path, RATE)
    except PowersegError as error:
        message = str(error)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        return
    assert samples.dtype == np.float32 and samples.ndim == 1 and len(samples) > 0
    assert np.isfinite(samples).all()


FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(seed=st.integers(0, len(SEEDS) - 1), mutation=st.integers(0, 2**32 - 1))
def test_mutated_real_files(seed, mutation):
    check(mutate(SEEDS[seed], random.Random(mutation)))


@FUZZ
@given(magic=st.sampled_from(MAGIC), tail=st.binary(max_size=2048),
       suffix=st.sampled_from(["wav", "flac", "ogg", "mp3", "aiff", "bin"]))
def test_random_bytes(magic, tail, suffix):
    check(magic + tail, f"random.{suffix}")


def test_seeded_mutation_loop():
    """A fixed, reproducible sweep on top of hypothesis' examples: 300 mutants."""
    rng = random.Random(20240611)
    for _ in range(300):
        check(mutate(rng.choice(SEEDS), rng))


@pytest.mark.slow
def test_long_seeded_mutation_loop():
    rng = random.Random(7)
    for _ in range(5000):
        check(mutate(rng.choice(SEEDS), rng))
