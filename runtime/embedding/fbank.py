"""Kaldi log-mel filterbank in numpy, as ``torchaudio.compliance.kaldi.fbank`` computes it.

numpy, not kaldi-native-fbank: computing in float32 step for step as torchaudio does, it lands
closer to torchaudio (the front-end CAM++ was trained and referenced with) than
kaldi-native-fbank does, at the same speed, and needs no extra dependency (tests/embedding/test_fbank.py
measures both against torchaudio on real audio).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache

import numpy as np

from powerseg.errors import ModelError, OptionError

F32 = np.float32


@dataclass(frozen=True)
class FbankOptions:
    """The front-end a speaker-embedding model was trained with, as stored in its ONNX metadata."""

    sample_rate: int = 16000
    num_mel_bins: int = 80
    frame_length_samples: int = 400  # 25 ms
    frame_shift_samples: int = 160  # 10 ms
    fft_size: int = 512  # frame zero-padded to the next power of two
    window: str = "povey"  # Hann window raised to 0.85
    preemphasis: float = 0.97
    remove_dc_offset: bool = True
    dither: float = 0.0
    low_freq: float = 20.0
    high_freq: float = 8000.0
    snip_edges: bool = True  # only frames that fit whole: 1 + (samples - length) // shift
    log_floor: float = float(np.finfo(np.float32).eps)
    waveform_scale: float = 1.0  # samples in [-1, 1] as is (WeSpeaker models want 32768)
    mean_normalization: bool = True  # subtract each bin's mean over all frames of the input

    def __post_init__(self) -> None:
        # Only what this implementation computes; anything else would be silently wrong.
        if self.window != "povey" or not self.snip_edges or self.dither != 0 \
                or not self.remove_dc_offset:
            raise OptionError("only window povey, snip_edges, dither 0 and remove_dc_offset "
                              "are implemented")
        if not (0 < self.frame_shift_samples and 2 <= self.frame_length_samples <= self.fft_size
                and 0 <= self.low_freq < self.high_freq <= self.sample_rate / 2
                and self.num_mel_bins > 0 and self.log_floor > 0):
            raise OptionError(f"inconsistent fbank settings {self}")

    def num_frames(self, num_samples: int) -> int:
        """Frames of ``num_samples`` samples (0 when shorter than one frame)."""
        if num_samples < self.frame_length_samples:
            return 0
        return 1 + (num_samples - self.frame_length_samples) // self.frame_shift_samples

    def metadata(self) -> dict[str, str]:
        """As ONNX metadata strings: booleans as 0/1."""
        return {f"fbank_{k}": str(int(v) if isinstance(v, bool) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_metadata(cls, props: dict[str, str], source: str) -> FbankOptions:
        keys = [f"fbank_{f.name}" for f in fields(cls)]
        missing = [key for key in keys if key not in props]
        if missing:
            raise ModelError(f"{source}: ONNX metadata lacks {', '.join(missing)}; not a powerseg "
                             "speaker-embedding export (re-export it with `powerseg export`)")
        try:
            values = {}
            for f in fields(cls):
                text = props[f"fbank_{f.name}"]
                kind = type(getattr(cls, f.name))
                values[f.name] = bool(int(text)) if kind is bool else kind(text)
            return cls(**values)
        except ValueError as error:
            raise ModelError(f"{source}: unusable fbank metadata ({error}); re-export the model "
                             "with `powerseg export`") from None


def fbank(samples: np.ndarray, options: FbankOptions = FbankOptions()) -> np.ndarray:
    """(samples,) float -> (frames, num_mel_bins) float32 log-mel energies (not normalised)."""
    o = options
    x = np.asarray(samples, dtype=F32)
    if o.waveform_scale != 1:
        x = x * F32(o.waveform_scale)
    count = o.num_frames(len(x))
    if count == 0:
        return np.zeros((0, o.num_mel_bins), F32)
    view = np.lib.stride_tricks.sliding_window_view(x, o.frame_length_samples)
    frames = view[::o.frame_shift_samples][:count]
    frames = frames - frames.mean(axis=1, keepdims=True, dtype=F32)
    coefficient = F32(o.preemphasis)
    emphasised = np.empty_like(frames)
    emphasised[:, 1:] = frames[:, 1:] - coefficient * frames[:, :-1]
    emphasised[:, 0] = frames[:, 0] - coefficient * frames[:, 0]
    emphasised *= _window(o.frame_length_samples)
    spectrum = np.fft.rfft(emphasised, n=o.fft_size, axis=1)
    power = np.square(np.abs(spectrum))
    energies = _mel_energies(power, o)
    return np.log(np.maximum(energies, F32(o.log_floor)))


def features(samples: np.ndarray, options: FbankOptions = FbankOptions()) -> np.ndarray:
    """``fbank`` minus its mean over all frames, per bin (when the model wants that)."""
    feats = fbank(samples, options)
    if options.mean_normalization and len(feats):
        feats -= feats.mean(axis=0, dtype=F32)
    return feats


@lru_cache(maxsize=4)
def _window(length: int) -> np.ndarray:
    """Povey window: a symmetric Hann window raised to 0.85."""
    n = np.arange(length, dtype=F32)
    hann = F32(0.5) - F32(0.5) * np.cos(F32(2 * math.pi / (length - 1)) * n)
    return (hann ** F32(0.85)).astype(F32)


def _mel_energies(power: np.ndarray, o: FbankOptions) -> np.ndarray:
    """(frames, bins) power -> (frames, num_mel_bins): the filterbank product, filter by
    filter over its own bins.

    Not a BLAS matrix product: numpy's OpenBLAS starts a thread per core for a product of
    this size and leaves them spinning, which took a core's worth of CPU from the embedding
    workers (3 min of diarization on 2 cores: 14.8 s -> 9.4 s; benchmarks/README.md).
    """
    out = np.zeros((len(power), o.num_mel_bins), F32)
    for weights, starts, filters in _mel_layers(o):
        out[:, filters] = np.add.reduceat(power * weights, starts, axis=1)
    return out


@lru_cache(maxsize=4)
def _mel_layers(o: FbankOptions) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The filters in layers of disjoint supports (Kaldi's triangles: even and odd ones).

    In a layer, each filter's sum runs from its first bin to the next filter's first bin:
    the bins between are zero in that layer's weights, so they add nothing.
    """
    banks = _mel_banks(o)
    layers: list[list[tuple[int, int]]] = []  # per layer: (filter, its first bin)
    ends: list[int] = []
    for m in range(banks.shape[1]):
        nonzero = np.flatnonzero(banks[:, m])
        if not len(nonzero):
            continue  # a filter over no bin: its energy stays 0
        layer = next((i for i, end in enumerate(ends) if end <= nonzero[0]), len(layers))
        if layer == len(layers):
            layers.append([])
            ends.append(0)
        layers[layer].append((m, int(nonzero[0])))
        ends[layer] = int(nonzero[-1]) + 1
    out = []
    for layer in layers:
        filters, starts = (np.array(column, np.intp) for column in zip(*layer, strict=True))
        out.append((banks[:, filters].sum(axis=1, dtype=F32), starts, filters))
    return out


def _mel(freq):
    return 1127.0 * np.log(1.0 + freq / 700.0)


@lru_cache(maxsize=4)
def _mel_banks(o: FbankOptions) -> np.ndarray:
    """(fft_size // 2 + 1, num_mel_bins) triangular filters on the Kaldi mel scale, float32.

    Computed in float32 like torchaudio's ``get_mel_banks``; the Nyquist bin gets no weight.
    """
    low, high = _mel(o.low_freq), _mel(o.high_freq)
    delta = (high - low) / (o.num_mel_bins + 1)
    index = np.arange(o.num_mel_bins, dtype=F32)[:, None]
    left = F32(low) + index * F32(delta)
    center = F32(low) + (index + F32(1)) * F32(delta)
    right = F32(low) + (index + F32(2)) * F32(delta)
    bins = o.fft_size // 2
    freqs = F32(o.sample_rate / o.fft_size) * np.arange(bins, dtype=F32)
    mel = (F32(1127.0) * np.log(F32(1.0) + freqs / F32(700.0)))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    weights = np.maximum(F32(0), np.minimum(up, down))
    return np.ascontiguousarray(np.pad(weights, ((0, 0), (0, 1))).T, dtype=F32)
