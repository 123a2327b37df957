"""torch PyanNet -> fixed-shape, self-describing ONNX file."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from powerseg import __version__
from powerseg.models import SEGMENTATION

from .pyannet import PyanNet

OPSET = 17
INPUT_NAME = "waveforms"
OUTPUT_NAME = "logprobs"


def freeze_sinc(model: PyanNet) -> PyanNet:
    """A copy whose sinc filterbank is a plain conv with the filters computed once.

    The filters depend on parameters only; folding them keeps ~60 trig/reshape
    nodes out of the graph without changing a single weight value.
    """
    frozen = copy.deepcopy(model).eval()
    fb = frozen.sincnet.conv1d[0].filterbank
    conv = nn.Conv1d(1, fb.n_filters, fb.kernel_size, stride=fb.stride, bias=False)
    with torch.no_grad():
        conv.weight.copy_(fb.filters())
    frozen.sincnet.conv1d[0] = conv
    return frozen


def metadata(model: PyanNet, variant: str) -> dict[str, str]:
    """Everything the runtime needs to place frames and decode classes, as strings."""
    g = model.geometry
    return {
        "kind": SEGMENTATION,
        "model": "pyannote/segmentation-3.0",
        "variant": variant,
        "sample_rate": str(model.sample_rate),
        "window_samples": str(model.num_samples),
        "num_frames": str(g.num_frames),
        "frame_start_samples": str(g.frame_start),
        "frame_step_samples": str(g.frame_step),
        "frame_duration_samples": str(g.frame_duration),
        "num_speakers": str(len(model.mapping[0])),
        "max_speakers_per_frame": str(max(sum(row) for row in model.mapping)),
        "powerset": json.dumps(model.mapping),
        "output": "log_softmax",
        "checkpoint_sha256": getattr(model, "checkpoint_sha256", ""),
        "producer": "powerseg",
        "producer_version": __version__,
        "license": "MIT, Copyright (c) 2020 CNRS (pyannote/segmentation-3.0 weights)",
    }


def set_metadata(proto: onnx.ModelProto, props: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def export_onnx(model: PyanNet, output: str | Path, opset: int = OPSET) -> Path:
    """Write ``model`` as ONNX: input (batch, 1, window) float32, output (batch, frames, classes)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    frozen = freeze_sinc(model)
    example = torch.zeros(1, 1, model.num_samples)
    tmp = output.with_suffix(".tmp.onnx")
    with warnings.catch_warnings():
        # The legacy exporter warns about instance norm in eval mode and LSTM batch_first: both benign.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            frozen, (example,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset, do_constant_folding=True, dynamo=False,
        )
    proto = onnx.load(str(tmp))
    tmp.unlink()
    proto.producer_name, proto.producer_version = "powerseg", __version__
    set_metadata(proto, metadata(model, "fp32"))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(output))
    return output
