"""Front/tail split of PyanNet that shares the sinc convolution between overlapping windows.

With the waveform InstanceNorm's gamma > 0, a window's first pooled block is
``maxpool3(|conv(norm(x))|) = a * max(max3(c) + d, negmin3(c) - d)`` where ``c = conv(x)`` of the
raw signal (computed once for all windows), ``a = gamma / s`` and
``d = (beta - gamma mu / s) * sum(f) / a`` from the window's mean ``mu`` and ``s = sqrt(var + eps)``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from powerseg.runtime.audio import load_audio
from powerseg.runtime.model import OnnxModel
from torch import nn

from .checkpoint import sha256
from .onnx_export import OPSET, OUTPUT_NAME, freeze_sinc, metadata, set_metadata
from .pyannet import PyanNet
from .verify import Parity, onnx_logprobs, require_parity


class Front(nn.Module):
    """Raw signal (1, 1, n) -> 3-wide stride-1 max of c and of -c, each (1, 80, frames - 2)."""

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        self.conv = conv

    def forward(self, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.conv(signal)
        return F.max_pool1d(c, 3, 1), F.max_pool1d(-c, 3, 1)


class Tail(nn.Module):
    """Gathered (B, 80, 5325) max3/negmin3, scale a (B, 1, 1), shift d (B, 80, 1) -> log-probs."""

    def __init__(self, model: PyanNet):
        super().__init__()
        self.model = model

    def forward(self, max3: torch.Tensor, negmin3: torch.Tensor, scale: torch.Tensor,
                shift: torch.Tensor) -> torch.Tensor:
        m, sinc = self.model, self.model.sincnet
        out = scale * torch.maximum(max3 + shift, negmin3 - shift)
        out = F.leaky_relu(sinc.norm1d[0](out))
        for c in (1, 2):
            out = F.leaky_relu(sinc.norm1d[c](sinc.pool1d[c](sinc.conv1d[c](out))))
        out, _ = m.lstm(out.transpose(1, 2))
        for linear in m.linear:
            out = F.leaky_relu(linear(out))
        return F.log_softmax(m.classifier(out), dim=-1)


def split(model: PyanNet) -> tuple[Front, Tail, dict]:
    """The two halves of ``model`` (sinc filters frozen) and the constants the gather needs."""
    frozen = freeze_sinc(model)
    conv = frozen.sincnet.conv1d[0]
    norm = frozen.sincnet.wav_norm1d
    if float(norm.weight.detach()) <= 0:
        raise ValueError("wav InstanceNorm gamma <= 0: the shared front-end is not exact")
    consts = {"gamma": float(norm.weight.detach()), "beta": float(norm.bias.detach()),
              "eps": float(norm.eps), "filter_sums": conv.weight.detach().sum(dim=(1, 2)).tolist(),
              "stride": conv.stride[0], "kernel": conv.kernel_size[0], "pool": 3}
    return Front(conv).eval(), Tail(frozen).eval(), consts


def pair_logprobs(front_path: Path, tail_path: Path, windows: np.ndarray,
                  signal: np.ndarray, starts: list[int]) -> np.ndarray:
    """Log-probs of ``windows`` (taken from ``signal`` at sample ``starts``) through the pair.

    The front runs once over ``signal``; each window's slices, scale and shift are gathered
    from the tail's metadata alone (the export-time check of what the runtime will do).
    """
    options = ort.SessionOptions()
    options.log_severity_level = 3
    front = ort.InferenceSession(str(front_path), options, providers=["CPUExecutionProvider"])
    tail = ort.InferenceSession(str(tail_path), options, providers=["CPUExecutionProvider"])
    meta = tail.get_modelmeta().custom_metadata_map
    stride, kernel, pool = (int(meta[k]) for k in ("sinc_stride", "sinc_kernel", "pool"))
    gamma, beta, eps = (float(meta[k]) for k in ("wav_norm_gamma", "wav_norm_beta", "wav_norm_eps"))
    sums = np.asarray(json.loads(meta["sinc_filter_sums"]), np.float64)[None, :, None]
    if any(s % stride for s in starts):
        raise ValueError(f"window starts must be multiples of the conv stride ({stride})")
    max3, negmin3 = front.run(None, {"signal": signal[None, None].astype(np.float32)})
    idx = np.arange((1 + (windows.shape[-1] - kernel) // stride) // pool) * pool
    out = []
    for i in range(0, len(windows), 32):
        part, at = windows[i:i + 32].astype(np.float64), starts[i:i + 32]
        sd = np.sqrt(part.var(-1, keepdims=True) + eps)
        scale = (gamma / sd)[:, :, None]
        shift = (beta - gamma * part.mean(-1, keepdims=True) / sd)[:, :, None] * sums / scale
        feed = {"max3": np.stack([max3[0][:, s // stride + idx] for s in at]),
                "negmin3": np.stack([negmin3[0][:, s // stride + idx] for s in at]),
                "scale": scale.astype(np.float32), "shift": shift.astype(np.float32)}
        out.append(tail.run(None, feed)[0])
    return np.concatenate(out)


def export_pair(model: PyanNet, front_path: Path, tail_path: Path, opset: int = OPSET) -> None:
    """Write the front (dynamic length) and tail (dynamic batch) ONNX files, with metadata.

    Not shipped yet: the runtime does not use the pair (see benchmarks/README.md).
    """
    front, tail, consts = split(model)
    frames = (1 + (model.num_samples - consts["kernel"]) // consts["stride"]) // consts["pool"]
    pooled = torch.zeros(1, 80, frames)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # instance norm in eval mode, LSTM batch_first: benign
        torch.onnx.export(front, (torch.zeros(1, 1, model.num_samples),), str(front_path),
                          input_names=["signal"], output_names=["max3", "negmin3"],
                          dynamic_axes={"signal": {2: "samples"}, "max3": {2: "frames"},
                                        "negmin3": {2: "frames"}},
                          opset_version=opset, do_constant_folding=True, dynamo=False)
        torch.onnx.export(tail, (pooled, pooled, torch.ones(1, 1, 1), torch.zeros(1, 80, 1)),
                          str(tail_path), input_names=["max3", "negmin3", "scale", "shift"],
                          output_names=[OUTPUT_NAME],
                          dynamic_axes={n: {0: "batch"} for n in
                                        ("max3", "negmin3", "scale", "shift", OUTPUT_NAME)},
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    front_proto = onnx.load(str(front_path))
    props = metadata(model, "fp32")
    set_metadata(front_proto, {**props, "role": "shared_front"})
    onnx.save(front_proto, str(front_path))
    tail_proto = onnx.load(str(tail_path))
    set_metadata(tail_proto, {
        **props, "role": "shared_tail", "sinc_stride": str(consts["stride"]),
        "sinc_kernel": str(consts["kernel"]), "pool": str(consts["pool"]),
        "wav_norm_gamma": repr(consts["gamma"]), "wav_norm_beta": repr(consts["beta"]),
        "wav_norm_eps": repr(consts["eps"]), "sinc_filter_sums": json.dumps(consts["filter_sums"]),
        "front_model": json.dumps({"file": front_path.name, "sha256": sha256(front_path)})})
    for proto, path in ((front_proto, front_path), (tail_proto, tail_path)):
        onnx.checker.check_model(proto, full_check=True)
    onnx.save(tail_proto, str(tail_path))


def verify_pair(front_path: Path, tail_path: Path, full_path: Path, audio: list[Path],
                step_samples: int = 16000) -> Parity:
    """Raise VerificationError unless the pair matches the full ONNX model on ``audio``.

    The same bar as the full model vs torch (``require_parity``): probabilities within 1e-3
    and the same argmax on all but 1e-4 of frames.
    """
    full = OnnxModel(full_path, providers="cpu")
    window = full.spec.window_samples
    refs, outs = [], []
    for path in audio:
        signal = load_audio(path, full.spec.sample_rate)
        signal = np.pad(signal, (0, max(0, window - len(signal))))
        starts = list(range(0, len(signal) - window + 1, step_samples))
        windows = np.stack([signal[s:s + window] for s in starts])
        refs.append(onnx_logprobs(full, windows))
        outs.append(pair_logprobs(front_path, tail_path, windows, signal, starts))
    return require_parity(tail_path, np.concatenate(refs), np.concatenate(outs))
