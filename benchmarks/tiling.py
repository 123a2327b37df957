"""Benchmark audio: shared recordings tiled to a length, and pyannote's windows of a signal."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
from memory import write_tiled  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POWERSEG_SHARED", ROOT.parent / "shared"))
RATE = 16000
WINDOW = 160000


def sources() -> tuple[list[Path], str]:
    wavs = sorted((SHARED / "audio" / "ami_pyannote_debug" / "wav").glob("*.wav"))
    if wavs:
        seconds = sum(sf.info(str(w)).duration for w in wavs)
        return wavs, (f"shared/audio/ami_pyannote_debug/wav ({len(wavs)} AMI excerpts, "
                      f"{seconds:.0f} s)")
    from powerseg.samples import sample_path
    return [sample_path()], "bundled sample (30 s, pyannote sample.wav)"


def tiled(seconds: float, folder: Path, files: list[Path]) -> Path:
    """Recordings back to back to ``seconds``, float32 WAV, cached in ``folder``."""
    return write_tiled(folder / f"tiled-{seconds:g}s-{files[0].stem}.wav", seconds, files)


def chunk_batches(signal: np.ndarray, step: int, batch: int):
    """pyannote's windows of ``signal`` (last one zero-padded) in batches, without holding all."""
    full = (len(signal) - WINDOW) // step + 1 if len(signal) >= WINDOW else 0
    has_last = len(signal) < WINDOW or (len(signal) - WINDOW) % step > 0
    starts = [i * step for i in range(full + has_last)]
    for i in range(0, len(starts), batch):
        out = np.zeros((len(starts[i:i + batch]), WINDOW), np.float32)
        for j, s in enumerate(starts[i:i + batch]):
            part = signal[s:s + WINDOW]
            out[j, :len(part)] = part
        yield out


def num_chunks(samples: int, step: int) -> int:
    full = (samples - WINDOW) // step + 1 if samples >= WINDOW else 0
    return full + (samples < WINDOW or (samples - WINDOW) % step > 0)
