"""Check an exported ONNX file against the torch model it came from, on real audio."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from powerseg.errors import VerificationError
from powerseg.runtime.audio import load_audio
from powerseg.runtime.framing import Framing
from powerseg.runtime.segmentation.model import SegmentationModel
from powerseg.runtime.windows import Window, stack

from .pyannet import PyanNet

# Probabilities, not log-probabilities: log-probs of near-impossible classes differ meaninglessly.
PROB_TOLERANCE = 1e-3
MAX_BAD_FRAMES = 1e-4  # fraction of frames allowed past PROB_TOLERANCE or with another argmax
# Noise for the yardstick of variants: 4 steps of 16-bit PCM rms (-78 dBFS), far below audibility.
DITHER_LSB = 4


@dataclass(frozen=True)
class Parity:
    frames: int
    within_tolerance: float  # fraction of frames whose 7 probabilities all agree within 1e-3
    worst: float  # largest probability difference on any frame
    argmax_agreement: float  # fraction of frames with the same most likely class

    def as_dict(self) -> dict:
        return asdict(self)


def compare(reference: np.ndarray, candidate: np.ndarray) -> Parity:
    """Per-frame agreement of two (chunks, frames, classes) log-probability arrays."""
    diff = np.abs(np.exp(reference) - np.exp(candidate)).max(axis=-1)
    same = reference.argmax(-1) == candidate.argmax(-1)
    return Parity(int(diff.size), float((diff <= PROB_TOLERANCE).mean()), float(diff.max()),
                  float(same.mean()))


def speaker_order_agreement(reference: np.ndarray, candidate: np.ndarray,
                            mapping: np.ndarray) -> float:
    """Fraction of frames whose active speakers agree, each window's speaker slots matched first.

    Which local speaker takes which output slot is arbitrary per window (the diarization
    pipeline re-matches them by embedding), and a near-tie can swap the slots of a whole
    window; this counts the decisions that matter downstream.
    """
    return active_speaker_agreement(mapping[reference.argmax(-1)], mapping[candidate.argmax(-1)])


def active_speaker_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """``speaker_order_agreement`` of (chunks, frames, speakers) 0/1 activations."""
    ref, cand = reference.astype(bool), candidate.astype(bool)
    best = np.zeros(len(ref))
    for order in itertools.permutations(range(ref.shape[-1])):
        best = np.maximum(best, (cand[..., list(order)] == ref).all(-1).mean(-1))
    return float(best.mean())


def audio_windows(model: SegmentationModel, audio: list[Path], step: float = 1.0) -> np.ndarray:
    """10 s windows every ``step`` seconds of each file, as the runtime makes them."""
    framing = Framing(model.spec, step)
    return np.concatenate([framing.windows(load_audio(p, model.spec.sample_rate)) for p in audio])


def dithered(windows: np.ndarray, lsb: float = DITHER_LSB, seed: int = 0) -> np.ndarray:
    """``windows`` plus Gaussian noise of ``lsb`` 16-bit steps rms (seeded: same input, same output).

    Which speaker takes which output slot is a near-tie on some windows, so fp32 itself changes
    frame decisions under inaudible noise: fp32 vs fp32 on dithered audio is the floor a
    quantized variant is judged against.
    """
    noise = np.random.default_rng(seed).normal(0.0, lsb / 32768, windows.shape)
    return (windows + noise).astype(np.float32)


def torch_logprobs(model: PyanNet, windows: np.ndarray, batch_size: int = 32) -> np.ndarray:
    with torch.inference_mode():
        return np.concatenate([model(torch.from_numpy(windows[i:i + batch_size])[:, None]).numpy()
                               for i in range(0, len(windows), batch_size)])


def onnx_logprobs(model: SegmentationModel, windows: np.ndarray, batch_size: int = 32) -> np.ndarray:
    return np.concatenate([model(windows[i:i + batch_size])
                           for i in range(0, len(windows), batch_size)])


def verify(onnx_path: Path, torch_model: PyanNet, audio: list[Path]) -> Parity:
    """Raise VerificationError unless the ONNX file matches torch on ``audio``."""
    model = SegmentationModel(onnx_path, providers="cpu")
    windows = audio_windows(model, audio)
    return require_parity(onnx_path, torch_logprobs(torch_model, windows),
                          onnx_logprobs(model, windows))


def require_parity(onnx_path: Path, reference: np.ndarray, onnx_out: np.ndarray,
                   reference_name: str = "torch") -> Parity:
    """``compare`` the reference's and the ONNX file's log-probabilities; raise if they disagree."""
    parity = compare(reference, onnx_out)
    bad = max(1 - parity.within_tolerance, 1 - parity.argmax_agreement)
    if bad > MAX_BAD_FRAMES:
        raise VerificationError(
            f"{onnx_path}: ONNX and {reference_name} disagree on {bad:.4%} of {parity.frames} frames "
            f"(allowed {MAX_BAD_FRAMES:.2%}; worst probability difference {parity.worst:.2e})")
    return parity


def window_logprobs(model: SegmentationModel, signal: np.ndarray, framing: Framing,
                    batch_size: int = 32) -> np.ndarray:
    """Every window of a whole signal, made as a stream makes them (pyannote's last window
    zero-padded), through ``model`` in batches: (chunks, frames, classes)."""
    source = model.windows(framing.step_samples)
    source.append(signal)
    outs: list[np.ndarray] = []
    batch: list[Window] = []

    def run(windows: Iterable[Window]) -> int:
        count = 0
        for window in windows:
            batch.append(window)
            count += 1
            if len(batch) == batch_size:
                outs.append(model.infer(stack(batch)))
                batch.clear()
        return count

    made = run(iter(source.next, None))
    full, has_last = framing.num_chunks(len(signal))
    run(source.rest(full + has_last - made))
    if batch:
        outs.append(model.infer(stack(batch)))
    return np.concatenate(outs)
