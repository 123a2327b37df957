"""Audio in: decode what libsndfile reads, downmix to mono, resample with soxr, check values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from powerseg.errors import AudioError, AudioNotFoundError

# Blocks of this many seconds keep memory flat while reading long files.
BLOCK_SECONDS = 60.0


def _open(path: Path) -> sf.SoundFile:
    if not path.exists():
        raise AudioNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")
    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(f"{path}: cannot decode audio ({_reason(error)}); "
                         "expected a format libsndfile reads (wav, flac, ogg, ...)") from None


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__


def check_finite(samples: np.ndarray, sample_rate: int, source: str, offset: int = 0) -> None:
    """Refuse NaN/Inf samples, naming the first bad time (the model would turn them into NaN)."""
    bad = ~np.isfinite(samples)
    if bad.any():
        index = int(np.argmax(bad.reshape(len(samples), -1).any(axis=1))) + offset
        raise AudioError(f"{source}: non-finite sample (NaN or Inf) at {index / sample_rate:.3f} s")


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(samples,) or (samples, channels) -> (samples,) float32, channels averaged as pyannote does."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    return np.ascontiguousarray(samples, dtype=np.float32)


def blocks(path: str | Path, sample_rate: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``sample_rate``, read and resampled block by block."""
    path = Path(path)
    with _open(path) as f:
        source_rate = f.samplerate
        resampler = None if source_rate == sample_rate else soxr.ResampleStream(
            source_rate, sample_rate, 1, dtype="float32", quality="HQ")
        block = max(1, int(BLOCK_SECONDS * source_rate))
        read = 0
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as error:
                raise AudioError(f"{path}: corrupt audio data after {read / source_rate:.3f} s "
                                 f"({_reason(error)})") from None
            last = len(data) < block
            check_finite(data, source_rate, str(path), offset=read)
            read += len(data)
            mono = to_mono(data)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if len(mono):
                yield mono
            if last:
                return


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Whole file as mono float32 at ``sample_rate``."""
    parts = list(blocks(path, sample_rate))
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if len(samples) == 0:
        raise AudioError(f"{path}: decodes to zero samples")
    return samples


def prepare(samples: np.ndarray, sample_rate: int, target_rate: int, source: str = "array") -> np.ndarray:
    """An in-memory signal -> mono float32 at ``target_rate``.

    Accepts (samples,), (samples, channels) or, as torch users pass it, (channels, samples)
    when there are fewer rows than columns and at most 8 rows.
    """
    samples = np.asarray(samples)
    if samples.ndim not in (1, 2) or samples.size == 0:
        raise AudioError(f"{source}: expected a non-empty 1-D or 2-D array, got shape {samples.shape}")
    if not (np.issubdtype(samples.dtype, np.floating) or np.issubdtype(samples.dtype, np.integer)):
        raise AudioError(f"{source}: expected numeric samples, got dtype {samples.dtype}")
    if samples.ndim == 2 and samples.shape[0] <= 8 and samples.shape[0] < samples.shape[1]:
        samples = samples.T
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / float(-np.iinfo(samples.dtype).min)
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise AudioError(f"{source}: sample_rate must be a positive integer, got {sample_rate!r}")
    check_finite(samples, int(sample_rate), source)
    mono = to_mono(samples)
    if sample_rate != target_rate:
        mono = soxr.resample(mono, int(sample_rate), target_rate, quality="HQ").astype(np.float32)
    return mono
