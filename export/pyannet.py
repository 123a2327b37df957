"""PyanNet, rebuilt in plain torch so that export needs no pyannote.audio.

The arithmetic follows pyannote.audio's ``PyanNet``/``SincNet`` and asteroid's
``ParamSincFB`` operation for operation, so that outputs match pyannote's own
bit for bit on the same torch build (the parity tests hold it to that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Geometry:
    """Where output frames sit in the input, in samples (pyannote 3.2+ convention)."""

    num_frames: int
    frame_start: int
    frame_step: int
    frame_duration: int


# (kernel, stride) of each convolution and pooling of SincNet, first to last.
def _sincnet_layers(stride: int) -> list[tuple[int, int]]:
    return [(251, stride), (3, 3), (5, 1), (3, 3), (5, 1), (3, 3)]


def sincnet_geometry(num_samples: int, stride: int) -> Geometry:
    """Frames and receptive field of SincNet, as pyannote's receptive_field utilities."""
    layers = _sincnet_layers(stride)
    frames = num_samples
    for kernel, step in layers:
        frames = 1 + (frames - kernel) // step

    def field(num: int) -> int:
        size = num
        for kernel, step in reversed(layers):
            size = kernel + (size - 1) * step
        return size

    center = 0.0
    for kernel, step in reversed(layers):
        center = center * step + (kernel - 1) / 2
    size = field(1)
    start = center - (size - 1) / 2
    if start != int(start):
        raise ValueError("receptive field start is not a whole sample")
    return Geometry(frames, int(start), field(2) - size, size)


def powerset_mapping(num_speakers: int, max_per_frame: int) -> list[list[int]]:
    """Powerset class -> speakers table, in pyannote's class order."""
    table = []
    for size in range(max_per_frame + 1):
        for subset in combinations(range(num_speakers), size):
            table.append([int(s in subset) for s in range(num_speakers)])
    return table


class ParamSincFB(nn.Module):
    """Parametric sinc band-pass filterbank (asteroid ``ParamSincFB``) as a strided conv."""

    def __init__(self, n_filters: int = 80, kernel_size: int = 251, stride: int = 10,
                 sample_rate: float = 16000.0, min_low_hz: float = 50.0, min_band_hz: float = 50.0):
        super().__init__()
        self.n_filters, self.kernel_size, self.stride = n_filters, kernel_size, stride
        self.sample_rate, self.min_low_hz, self.min_band_hz = sample_rate, min_low_hz, min_band_hz
        half = kernel_size // 2
        self.low_hz_ = nn.Parameter(torch.zeros(n_filters // 2, 1))
        self.band_hz_ = nn.Parameter(torch.zeros(n_filters // 2, 1))
        window = 0.54 - 0.46 * torch.cos(2 * math.pi * torch.arange(half, dtype=torch.float64)
                                         / (kernel_size - 1))
        self.register_buffer("window_", window.float())
        self.register_buffer("n_", 2 * math.pi * (torch.arange(-half, 0.0).view(1, -1) / sample_rate))

    def filters(self) -> torch.Tensor:
        low = self.min_low_hz + torch.abs(self.low_hz_)
        high = torch.clamp(low + self.min_band_hz + torch.abs(self.band_hz_),
                           self.min_low_hz, self.sample_rate / 2)
        return torch.cat([self._make(low, high, "cos"), self._make(low, high, "sin")], dim=0)

    def _make(self, low: torch.Tensor, high: torch.Tensor, kind: str) -> torch.Tensor:
        band = (high - low)[:, 0]
        ft_low = torch.matmul(low, self.n_)
        ft_high = torch.matmul(high, self.n_)
        if kind == "cos":
            left = ((torch.sin(ft_high) - torch.sin(ft_low)) / (self.n_ / 2)) * self.window_
            center = 2 * band.view(-1, 1)
            right = torch.flip(left, dims=[1])
        else:
            left = ((torch.cos(ft_low) - torch.cos(ft_high)) / (self.n_ / 2)) * self.window_
            center = torch.zeros_like(band.view(-1, 1))
            right = -torch.flip(left, dims=[1])
        band_pass = torch.cat([left, center, right], dim=1) / (2 * band[:, None])
        return band_pass.view(self.n_filters // 2, 1, self.kernel_size)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return F.conv1d(waveforms, self.filters(), stride=self.stride)


class SincNet(nn.Module):
    def __init__(self, stride: int = 10, sample_rate: int = 16000):
        super().__init__()
        self.stride = stride
        self.wav_norm1d = nn.InstanceNorm1d(1, affine=True)
        self.conv1d = nn.ModuleList([
            _FilterbankEncoder(ParamSincFB(80, 251, stride=stride, sample_rate=sample_rate)),
            nn.Conv1d(80, 60, 5),
            nn.Conv1d(60, 60, 5),
        ])
        self.pool1d = nn.ModuleList([nn.MaxPool1d(3, stride=3) for _ in range(3)])
        self.norm1d = nn.ModuleList([nn.InstanceNorm1d(n, affine=True) for n in (80, 60, 60)])

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        outputs = self.wav_norm1d(waveforms)
        for c, (conv1d, pool1d, norm1d) in enumerate(zip(self.conv1d, self.pool1d, self.norm1d)):
            outputs = conv1d(outputs)
            if c == 0:
                outputs = torch.abs(outputs)
            outputs = F.leaky_relu(norm1d(pool1d(outputs)))
        return outputs


class _FilterbankEncoder(nn.Module):
    """Holds the filterbank under ``.filterbank`` so state_dict keys match pyannote's."""

    def __init__(self, filterbank: ParamSincFB):
        super().__init__()
        self.filterbank = filterbank

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.filterbank(waveforms)


class PyanNet(nn.Module):
    """SincNet -> BiLSTM -> linear layers -> powerset classifier -> log-softmax."""

    def __init__(self, sample_rate: int = 16000, sincnet_stride: int = 10, lstm_hidden: int = 128,
                 lstm_layers: int = 4, linear_hidden: int = 128, linear_layers: int = 2,
                 num_speakers: int = 3, max_speakers_per_frame: int = 2, duration: float = 10.0):
        super().__init__()
        self.sample_rate = sample_rate
        self.num_samples = round(duration * sample_rate)
        self.mapping = powerset_mapping(num_speakers, max_speakers_per_frame)
        self.sincnet = SincNet(stride=sincnet_stride, sample_rate=sample_rate)
        self.lstm = nn.LSTM(60, lstm_hidden, num_layers=lstm_layers, bidirectional=True,
                            batch_first=True)
        sizes = [2 * lstm_hidden] + [linear_hidden] * linear_layers
        self.linear = nn.ModuleList(nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.classifier = nn.Linear(sizes[-1], len(self.mapping))
        self.geometry = sincnet_geometry(self.num_samples, sincnet_stride)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, 1, samples) waveforms -> (batch, frames, classes) log-probabilities."""
        outputs = self.sincnet(waveforms)
        outputs, _ = self.lstm(outputs.transpose(1, 2))
        for linear in self.linear:
            outputs = F.leaky_relu(linear(outputs))
        return F.log_softmax(self.classifier(outputs), dim=-1)
