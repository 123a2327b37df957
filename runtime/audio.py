"""Audio in: decode what libsndfile reads, downmix to mono, resample with soxr, check values."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from powerseg.errors import AudioError, AudioNotFoundError, OptionError

# Blocks of this many seconds keep memory flat while reading long files.
BLOCK_SECONDS = 60.0
# Sample rates outside this range are a corrupt header, not audio (and a tiny rate would be
# upsampled into an enormous signal).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4000, 1_000_000


def _open(path: Path) -> sf.SoundFile:
    try:
        exists, is_dir = path.exists(), path.is_dir()
        size = path.stat().st_size if exists else None
    except OSError as error:  # unreadable path: name too long, permission, I/O error
        raise AudioError(f"{path}: cannot access ({error.strerror or error})") from None
    if not exists:
        raise AudioNotFoundError(f"{path}: no such file")
    if is_dir:
        raise AudioError(f"{path}: is a directory, not an audio file")
    if size == 0:
        raise AudioError(f"{path}: empty file (0 bytes), no audio to read")
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as error:
        reason = _reason(error)
        hint = " (a text or other non-audio file?)" if "not recognised" in reason else ""
        raise AudioError(f"{path}: cannot decode audio: {reason}{hint}; the file is corrupt or "
                         "in a format libsndfile does not read (it reads wav, flac, ogg, mp3...): "
                         "repair or convert it (e.g. ffmpeg -i IN -ar 16000 OUT.wav)") from None
    if not MIN_SAMPLE_RATE <= f.samplerate <= MAX_SAMPLE_RATE:
        f.close()
        raise AudioError(f"{path}: implausible sample rate {f.samplerate} Hz (expected "
                         f"{MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz); the header is corrupt")
    return f


def _reason(error: BaseException) -> str:
    """libsndfile's own words, without the "Error opening '<path>': " prefix that repeats the path."""
    text = getattr(error, "error_string", None) or str(error)
    lines = text.strip().splitlines()
    text = lines[-1].strip() if lines else ""
    text = text.removeprefix("Error : ").strip()
    return text.rstrip(".") or type(error).__name__


def check_finite(samples: np.ndarray, sample_rate: int, source: str, offset: int = 0) -> None:
    """Refuse NaN/Inf samples, naming the first bad time (the model would turn them into NaN)."""
    bad = ~np.isfinite(samples)
    if bad.any():
        row = int(np.argmax(bad.reshape(len(samples), -1).any(axis=1)))
        kind = "NaN" if np.isnan(samples[row]).any() else "infinite"
        index = row + offset
        raise AudioError(f"{source}: {kind} sample at {index / sample_rate:.3f} s (sample {index}); "
                         "the model needs finite values: repair the recording or replace them "
                         "(e.g. numpy.nan_to_num)")


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
                raise AudioError(f"{path}: corrupt or truncated audio data between "
                                 f"{read / source_rate:.3f} s and "
                                 f"{min(read + block, f.frames) / source_rate:.3f} s "
                                 f"({_reason(error)}); "
                                 "repair or re-encode the file") from None
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


ACCEPTED = ("a path, an array with sample_rate, {'waveform': array, 'sample_rate': rate}, "
            "{'audio': path} or a binary file object (open(path, 'rb'), io.BytesIO)")


def audio_input(audio, sample_rate: int | None = None) -> tuple:
    """The inputs pyannote.audio users pass, as (path or array, sample_rate): a path or an
    array as they are; ``{"waveform": array, "sample_rate": rate}`` (a torch tensor too) and
    ``{"audio": path}`` (each with an optional ``"uri"``); an open binary file or
    ``io.BytesIO``, decoded whole; anything else as an array. A dict of other keys or a
    text-mode file is an OptionError naming what is accepted."""
    if isinstance(audio, (str, os.PathLike)) or isinstance(audio, np.ndarray):
        return audio, sample_rate
    if isinstance(audio, Mapping):
        keys = set(audio) - {"uri"}
        if keys == {"waveform", "sample_rate"}:
            rate = audio["sample_rate"]
            if sample_rate is not None and sample_rate != rate:
                raise OptionError(f"sample_rate {sample_rate} given with an input whose "
                                  f"'sample_rate' is {rate}; give one")
            return np.asarray(audio["waveform"]), rate
        if keys == {"audio"} and isinstance(audio["audio"], (str, os.PathLike)):
            return audio["audio"], sample_rate
        raise OptionError(f"an input dict needs the keys 'waveform' and 'sample_rate', or "
                          f"'audio' (a path), and optionally 'uri'; got {sorted(audio)}. "
                          f"Accepted: {ACCEPTED}")
    if hasattr(audio, "read"):
        if isinstance(audio, io.TextIOBase):
            raise OptionError("a text-mode file object: open the audio file in binary mode "
                              "(open(path, 'rb'))")
        if sample_rate is not None:
            raise OptionError("sample_rate is only for arrays: audio files carry their own")
        name = getattr(audio, "name", None) or type(audio).__name__
        try:
            data, rate = sf.read(audio, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as error:
            raise AudioError(f"{name}: cannot decode audio: {_reason(error)}; the data is "
                             "corrupt or in a format libsndfile does not read") from None
        return data, rate
    return audio, sample_rate  # array-likes (a torch tensor, a list): as arrays


def duration_of(audio, sample_rate: int | None) -> float | None:
    """Seconds of ``audio`` (a path or an array) without decoding it, None when unknown."""
    if isinstance(audio, (str, os.PathLike)):
        try:
            return float(sf.info(os.fspath(audio)).duration)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError):
            return None  # the reading itself says what is wrong
    shape = np.shape(audio)
    if not sample_rate or not shape or len(shape) > 2:
        return None
    return max(shape) / float(sample_rate)


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Whole file as mono float32 at ``sample_rate``."""
    parts = list(blocks(path, sample_rate))
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if len(samples) == 0:
        raise AudioError(f"{path}: decodes to zero samples (the file holds no audio)")
    return samples


def to_float32(samples: np.ndarray) -> np.ndarray:
    """Float samples as float32; integer PCM scaled to [-1, 1) (int16: / 32768, uint8: centred).

    Values beyond float32's range become inf, which ``check_finite`` then refuses.
    """
    if np.issubdtype(samples.dtype, np.unsignedinteger):  # e.g. 8-bit PCM: centred on 2**(bits-1)
        half = float(np.iinfo(samples.dtype).max // 2 + 1)
        samples = (samples.astype(np.float64) - half) / half
    elif np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float64) / float(-np.iinfo(samples.dtype).min)
    with np.errstate(over="ignore"):
        return samples.astype(np.float32, copy=False)


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
    samples = to_float32(samples)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or \
            not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{source}: sample_rate must be an integer from {MIN_SAMPLE_RATE} to "
                         f"{MAX_SAMPLE_RATE} Hz, got {sample_rate!r}")
    check_finite(samples, int(sample_rate), source)
    mono = to_mono(samples)
    if sample_rate != target_rate:
        mono = soxr.resample(mono, int(sample_rate), target_rate, quality="HQ").astype(np.float32)
    return mono


def duration(path: str | Path) -> float:
    """Seconds of audio in a file, from its header (the same checks as reading it)."""
    with _open(Path(path)) as f:
        return f.frames / f.samplerate
