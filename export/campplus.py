"""CAM++ (3D-Speaker) rebuilt in plain torch, so that export needs no speakerlab.

The arithmetic follows 3D-Speaker's ``CAMPPlus(feat_dim=80, embedding_size=192)`` operation for
operation (eval mode); the submodule names are the checkpoint's state-dict keys. Input: mean-
normalised log-mel fbank (batch, frames, 80); output: (batch, 192) embeddings, not normalised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEAT_DIM = 80
EMBEDDING_DIM = 192
GROWTH = 32  # channels each dense layer adds
BOTTLENECK = 128  # 4 x growth: width of each dense layer's 1x1 bottleneck
INIT_CHANNELS = 128
# (layers, dilation) of the three dense blocks; every layer has a kernel of 3 frames
BLOCKS = ((12, 1), (24, 2), (16, 2))
SEGMENT = 100  # frames per segment of the CAM context (local means)
HEAD_CHANNELS = 32
MIN_FRAMES = 3  # fewer fbank frames leave one frame after the strided TDNN: its std is NaN


class BatchNormReLU(nn.Module):
    """BatchNorm1d then ReLU; ``batchnorm`` is the checkpoint's key."""

    def __init__(self, channels: int):
        super().__init__()
        self.batchnorm = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.batchnorm(x))


class ResBlock2d(nn.Module):
    """Two 3x3 convs with a residual path; a stride subsamples frequency only."""

    def __init__(self, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels, channels, 1, stride=(stride, 1), bias=False),
                nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class FrequencyHead(nn.Module):
    """2-D front convs over (frequency, time); 80 bins -> 32 x 10 channels, time kept."""

    def __init__(self, channels: int = HEAD_CHANNELS):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = nn.Sequential(ResBlock2d(channels, 2), ResBlock2d(channels, 1))
        self.layer2 = nn.Sequential(ResBlock2d(channels, 2), ResBlock2d(channels, 1))
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F, T) -> (B, C * F / 8, T)
        y = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        y = F.relu(self.bn2(self.conv2(self.layer2(self.layer1(y)))))
        return y.flatten(1, 2)


class InputTDNN(nn.Module):
    """Conv1d of 5 frames, stride 2 (halves time), then BN-ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 5, stride=2, padding=2, bias=False)
        self.nonlinear = BatchNormReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x))


def per_frame(segments: torch.Tensor, frames: int, size: int = SEGMENT) -> torch.Tensor:
    """(B, C, segments) -> (B, C, frames): each frame takes the value of its ``size``-frame segment."""
    spread = segments.unsqueeze(-1).expand(-1, -1, -1, size)
    return spread.flatten(2)[..., :frames]


class ContextMask(nn.Module):
    """Context-aware masking: a local conv gated by the utterance mean plus segment means.

    The context is constant within each 100-frame segment (the last one may be short), so the
    gate is computed once per segment and then spread to the frames: the same values as
    gating frame by frame, for a hundredth of the 1x1 convolutions.
    """

    def __init__(self, channels: int, out_channels: int, dilation: int):
        super().__init__()
        self.linear_local = nn.Conv1d(channels, out_channels, 3, padding=dilation,
                                      dilation=dilation, bias=False)
        self.linear1 = nn.Conv1d(channels, channels // 2, 1)
        self.linear2 = nn.Conv1d(channels // 2, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = x.mean(-1, keepdim=True) + F.avg_pool1d(x, SEGMENT, SEGMENT, ceil_mode=True)
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(context))))
        return self.linear_local(x) * per_frame(gate, x.shape[-1])


class DenseLayer(nn.Module):
    """BN-ReLU, 1x1 bottleneck, BN-ReLU, context-masked conv: ``GROWTH`` new channels."""

    def __init__(self, in_channels: int, dilation: int):
        super().__init__()
        self.nonlinear1 = BatchNormReLU(in_channels)
        self.linear1 = nn.Conv1d(in_channels, BOTTLENECK, 1, bias=False)
        self.nonlinear2 = BatchNormReLU(BOTTLENECK)
        self.cam_layer = ContextMask(BOTTLENECK, GROWTH, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class DenseBlock(nn.ModuleDict):
    """Each layer's output is concatenated to its input (DenseNet style)."""

    def __init__(self, layers: int, in_channels: int, dilation: int):
        super().__init__({f"tdnnd{i + 1}": DenseLayer(in_channels + i * GROWTH, dilation)
                          for i in range(layers)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.values():
            x = torch.cat([x, layer(x)], dim=1)
        return x


class Transit(nn.Module):
    """BN-ReLU then a 1x1 conv that halves the channels."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.nonlinear = BatchNormReLU(in_channels)
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.nonlinear(x))


class Embedding(nn.Module):
    """Pooled statistics -> 192 values: a 1x1 conv then a BatchNorm without affine parameters."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.nonlinear = nn.Module()
        self.nonlinear.batchnorm = nn.BatchNorm1d(out_channels, affine=False)

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        return self.nonlinear.batchnorm(self.linear(stats.unsqueeze(-1)).squeeze(-1))


def statistics(x: torch.Tensor) -> torch.Tensor:
    """Mean and unbiased standard deviation over time, concatenated."""
    return torch.cat([x.mean(-1), x.std(-1, unbiased=True)], dim=-1)


class XVector(nn.Module):
    """TDNN, three dense blocks with transits, BN-ReLU, statistics pooling, embedding."""

    def __init__(self, in_channels: int, embedding_dim: int):
        super().__init__()
        self.tdnn = InputTDNN(in_channels, INIT_CHANNELS)
        channels = INIT_CHANNELS
        for i, (layers, dilation) in enumerate(BLOCKS, start=1):
            setattr(self, f"block{i}", DenseBlock(layers, channels, dilation))
            channels += layers * GROWTH
            setattr(self, f"transit{i}", Transit(channels, channels // 2))
            channels //= 2
        self.out_nonlinear = BatchNormReLU(channels)
        self.dense = Embedding(2 * channels, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tdnn(x)
        for i in range(1, len(BLOCKS) + 1):
            x = getattr(self, f"transit{i}")(getattr(self, f"block{i}")(x))
        return self.dense(statistics(self.out_nonlinear(x)))


class CAMPPlus(nn.Module):
    """(batch, frames, 80) mean-normalised fbank -> (batch, 192) speaker embeddings."""

    def __init__(self, feat_dim: int = FEAT_DIM, embedding_dim: int = EMBEDDING_DIM):
        super().__init__()
        self.feat_dim, self.embedding_dim = feat_dim, embedding_dim
        self.head = FrequencyHead()
        self.xvector = XVector(HEAD_CHANNELS * (feat_dim // 8), embedding_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.xvector(self.head(features.transpose(1, 2)))
