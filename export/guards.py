"""Guard units: pin the ranges dynamic int8 LSTMs measure, so batched windows stay independent.

onnxruntime's DynamicQuantizeLSTM takes the scale of its input and of each step's hidden state
from their min and max over the whole batch, so without guards a window's output depends on
the windows batched with it (measured: up to 0.5 in probability). Two extra hidden units per
direction hold h = +1 and -1 at every step: their cell state starts at +/-20 and stays there
(forget and output gates saturated, input gate shut, no weight into or out of them), and
tanh(20) is 1 in float32. Every quantized input of layers 2+ and every hidden state then spans
exactly [-1, 1], the range real units never leave: one scale for every window, whatever the
batch. Outside the LSTM the guards have zero weights, so the guarded fp32 model gives the
original's outputs bit for bit.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .pyannet import PyanNet

GUARDS = 2  # hidden units per direction: one held at +1, one at -1
SATURATION = 20.0  # gate pre-activation: sigmoid(20) and tanh(20) round to 1 in float32


class GuardedLSTM(nn.LSTM):
    """A bidirectional LSTM that starts from the guards' state instead of zeros."""

    def __init__(self, source: nn.LSTM):
        hidden = source.hidden_size
        super().__init__(source.input_size, hidden + GUARDS, num_layers=source.num_layers,
                         bidirectional=True, batch_first=True)
        start = torch.zeros(2 * source.num_layers, 1, hidden + GUARDS)
        start[..., hidden], start[..., hidden + 1] = 1.0, -1.0
        self.register_buffer("h0", start.clone())
        self.register_buffer("c0", start * SATURATION)
        with torch.no_grad():
            for name, value in source.named_parameters():
                layer = int(name.split("_l")[1].split("_")[0])
                getattr(self, name).copy_(_pad(name, value, hidden, layer))

    def forward(self, x: torch.Tensor, state=None):
        batch = x.shape[0]
        start = (self.h0.expand(-1, batch, -1).contiguous(),
                 self.c0.expand(-1, batch, -1).contiguous())
        return super().forward(x, start)


def _pad(name: str, value: torch.Tensor, hidden: int, layer: int) -> torch.Tensor:
    """One LSTM parameter, grown for the guards (gate order i, f, g, o in torch)."""
    size = hidden + GUARDS
    if name.startswith("weight_hh"):
        value = _spread_columns(value, hidden, directions=1)
    elif name.startswith("weight_ih") and layer > 0:  # inputs: previous layer, both directions
        value = _spread_columns(value, hidden, directions=2)
    out = torch.zeros(4 * size, *value.shape[1:])
    for gate in range(4):
        out[gate * size:gate * size + hidden] = value[gate * hidden:(gate + 1) * hidden]
    if name.startswith("bias_ih"):  # guards: input gate shut, forget and output gates open
        for gate, bias in ((0, -SATURATION), (1, SATURATION), (3, SATURATION)):
            out[gate * size + hidden:(gate + 1) * size] = bias
    return out


def _spread_columns(value: torch.Tensor, hidden: int, directions: int) -> torch.Tensor:
    """Columns per direction [h | guards]: real columns moved, guard columns zero."""
    out = torch.zeros(value.shape[0], directions * (hidden + GUARDS))
    for d in range(directions):
        out[:, d * (hidden + GUARDS):d * (hidden + GUARDS) + hidden] = \
            value[:, d * hidden:(d + 1) * hidden]
    return out


def guarded(model: PyanNet) -> PyanNet:
    """A copy of ``model`` with guard units in its LSTM (and zero weights for them after it)."""
    out = copy.deepcopy(model).eval()
    hidden = model.lstm.hidden_size
    out.lstm = GuardedLSTM(model.lstm).eval()
    first = model.linear[0]
    out.linear[0] = nn.Linear(2 * (hidden + GUARDS), first.out_features)
    with torch.no_grad():
        out.linear[0].weight.copy_(_spread_columns(first.weight, hidden, directions=2))
        out.linear[0].bias.copy_(first.bias)
    return out
