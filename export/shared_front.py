"""PyanNet split into a front (run once over the signal) and a tail (run per window), exactly.

Overlapping windows share most of their samples, and the sinc convolution (a quarter of the
model's arithmetic) does not depend on the window: with the waveform InstanceNorm's gamma > 0,
a window's first pooled block is

    maxpool3(|conv(norm(x))|) = a * max(max3(c) + d, max3(-c) - d)

where ``c = conv(x)`` of the raw signal, ``max3`` is a 3-wide max with stride 3 from the window's
first conv frame, ``a = gamma / s``, ``d = sum(f) * (beta * s / gamma - mu)``, and ``mu``,
``s = sqrt(var + eps)`` are the window's mean and standard deviation. So:

- the **front** takes fixed blocks of signal and returns, for each of the 3 pooling phases, the
  3-wide max of ``c`` and of ``-c``: time-major rows a stream can append and a window can slice;
- the runtime forms the expression above from one window's rows, mean and variance
  (``runtime/segmentation/front.py``: a few passes over the rows it copies anyway);
- the **tail** is the rest of the model, InstanceNorm(80) onwards, unchanged.

Both are self-describing ONNX files: the front's metadata gives its block geometry, the tail's
the model geometry, the conv stride, the constants of the expression (gamma, beta, eps, the
filter sums) and the front file (name and sha256).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from powerseg.models import sha256
from powerseg.runtime.audio import load_audio
from powerseg.runtime.framing import Framing
from powerseg.runtime.segmentation.model import SegmentationModel

from .onnx_export import OPSET, OUTPUT_NAME, freeze_sinc, metadata, set_metadata
from .pyannet import PyanNet
from .verify import Parity, onnx_logprobs, require_parity, window_logprobs

POOL = 3
# Conv frames per front block (a multiple of the pooling width): small enough that a stream's
# provisional block (runtime/segmentation/front.py) is cheap, large enough that the 2 frames each block
# shares with the next (pooling phases 1 and 2) cost under 1 %.
BLOCK_FRAMES = 240


class Front(nn.Module):
    """(blocks, 1, block_samples) signal -> (blocks, rows, 3 phases, 2, filters) pooled rows.

    Row ``r`` of phase ``p`` holds max(c[3r + p .. 3r + p + 2]) and max(-c[...]) per filter,
    ``c`` being the block's conv frames (two more than the block, for phases 1 and 2): the
    3-wide stride-1 max and min of ``c``, whose frame ``3r + p`` is that row. Time-major, as a
    stream appends them; taken as the elementwise max/min of three shifted slices (measured
    2x faster than onnxruntime's MaxPool here).
    """

    def __init__(self, conv: nn.Conv1d, block_frames: int):
        super().__init__()
        self.conv, self.block_frames = conv, block_frames

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        c = self.conv(signal).transpose(1, 2)  # (blocks, block_frames + 2, filters)
        g = self.block_frames
        a, b, e = c[:, :g], c[:, 1:g + 1], c[:, 2:g + 2]
        top = torch.maximum(torch.maximum(a, b), e)
        bottom = torch.minimum(torch.minimum(a, b), e)
        rows = torch.stack([top, -bottom], 2)  # (blocks, frames, 2, filters)
        return rows.reshape(-1, g // POOL, POOL, 2, self.conv.out_channels)


class Tail(nn.Module):
    """One window's first pooled block (B, rows, filters), time-major -> log-probabilities."""

    def __init__(self, model: PyanNet):
        super().__init__()
        self.model = model

    def forward(self, first: torch.Tensor) -> torch.Tensor:
        m, sinc = self.model, self.model.sincnet
        out = F.leaky_relu(sinc.norm1d[0](first.transpose(1, 2)))
        for c in (1, 2):
            out = F.leaky_relu(sinc.norm1d[c](sinc.pool1d[c](sinc.conv1d[c](out))))
        out, _ = m.lstm(out.transpose(1, 2))
        for linear in m.linear:
            out = F.leaky_relu(linear(out))
        return F.log_softmax(m.classifier(out), dim=-1)


def first_block_constants(frozen: PyanNet) -> dict[str, str]:
    """gamma, beta, eps of the waveform InstanceNorm and the (frozen) sinc filters' sums, as
    metadata: what the runtime needs to form a window's first block from front rows."""
    norm = frozen.sincnet.wav_norm1d
    gamma = float(norm.weight.detach())
    if gamma <= 0:
        raise ValueError("wav InstanceNorm gamma <= 0: the shared front-end is not exact")
    sums = frozen.sincnet.conv1d[0].weight.detach().sum(dim=(1, 2))
    return {"wav_norm_gamma": repr(gamma), "wav_norm_beta": repr(float(norm.bias.detach())),
            "wav_norm_eps": repr(float(norm.eps)),
            "sinc_filter_sums": json.dumps([float(v) for v in sums])}


def export_pair(model: PyanNet, front_path: Path, tail_path: Path,
                block_frames: int = BLOCK_FRAMES, opset: int = OPSET) -> None:
    """Write the front (dynamic number of blocks) and the fp32 tail (dynamic batch), with metadata."""
    if block_frames % POOL:
        raise ValueError(f"block_frames ({block_frames}) must be a multiple of {POOL}")
    frozen = freeze_sinc(model)  # sinc filters computed once into a plain conv
    front, tail = Front(frozen.sincnet.conv1d[0], block_frames).eval(), Tail(frozen).eval()
    conv = front.conv
    stride, kernel, filters = conv.stride[0], conv.kernel_size[0], conv.out_channels
    block_samples = stride * (block_frames + POOL - 2) + kernel
    window_frames = (1 + (model.num_samples - kernel) // stride) // POOL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # instance norm in eval mode, LSTM batch_first: benign
        torch.onnx.export(front, (torch.zeros(1, 1, block_samples),), str(front_path),
                          input_names=["signal"], output_names=["pooled"],
                          dynamic_axes={"signal": {0: "blocks"}, "pooled": {0: "blocks"}},
                          opset_version=opset, do_constant_folding=True, dynamo=False)
        torch.onnx.export(tail, (torch.zeros(1, window_frames, filters),), str(tail_path),
                          input_names=["first"], output_names=[OUTPUT_NAME],
                          dynamic_axes={"first": {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    props = metadata(model, "fp32")
    front_props = {key: props[key] for key in ("model", "sample_rate", "checkpoint_sha256",
                                               "producer", "producer_version", "license")}
    _finish(front_path, {**front_props, "kind": "segmentation_front", "role": "shared_front",
                         "sinc_stride": str(stride), "sinc_kernel": str(kernel),
                         "pool": str(POOL), "block_frames": str(block_frames),
                         "block_samples": str(block_samples)},
            output_shape=("blocks", block_frames // POOL, POOL, 2, filters))
    _finish(tail_path, {**props, "kind": "segmentation", "role": "shared_tail",
                        "sinc_stride": str(stride), "pool": str(POOL),
                        **first_block_constants(frozen),
                        "front_model": front_reference(front_path)})


def front_reference(front_path: Path) -> str:
    """The tail's pointer to its front: file name (beside the tail) and sha256."""
    return json.dumps({"file": front_path.name, "sha256": sha256(front_path)})


def _finish(path: Path, props: dict[str, str], output_shape: tuple = ()) -> None:
    """Metadata (and the output's static shape, where the exporter left names) on a saved file."""
    proto = onnx.load(str(path))
    for dim, size in zip(proto.graph.output[0].type.tensor_type.shape.dim, output_shape):
        if isinstance(size, int):
            dim.dim_value = size
        else:
            dim.dim_param = size
    proto.producer_name, proto.producer_version = "powerseg", props["producer_version"]
    set_metadata(proto, props)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def verify_pair(full_path: Path, tail_path: Path, audio: list[Path], step: float = 1.0) -> Parity:
    """Raise VerificationError unless the pair, run as a stream runs it, matches the full model.

    Every ``step`` window of each file goes through the runtime's own shared-front path (front
    blocks over the whole signal, rows sliced per window) and through the full model, held to
    the export's bar (``require_parity``).
    """
    full = SegmentationModel(full_path, providers="cpu")
    pair = SegmentationModel(tail_path, providers="cpu")
    framing = Framing(full.spec, step)
    refs, outs = [], []
    for path in audio:
        signal = load_audio(path, full.spec.sample_rate)
        refs.append(onnx_logprobs(full, framing.windows(signal)))
        outs.append(window_logprobs(pair, signal, framing))
    return require_parity(tail_path, np.concatenate(refs), np.concatenate(outs),
                          f"the full model {full_path.name}")
