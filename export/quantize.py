"""fp32 ONNX -> int8 ONNX: dynamic int8 on the LSTMs only, everything else left in fp32.

Why this split (measured on the 19 recordings of shared/audio, argmax agreement vs fp32):
the sinc front-end conv and the other convs lose 10-50 % of frame decisions under any int8
scheme (dynamic, static QDQ, even weight-only per-channel), and dynamic ConvInteger is slower
than the fp32 conv. The LSTMs are where batch-1 time goes and where int8 pays; per-channel
weight scales keep the most decisions there. The small head MatMuls cost agreement and no time.

Its activation scales are computed at run time over the whole input tensor, so a window's
output depends on the windows batched with it (up to 0.5 in probability): the file asks the
runtime for one window per run (metadata ``windows_per_run``), which makes int8 results
independent of batch size and core count, and keeps 99.1 % of fp32's argmax against 98.9 %
at batch 32. Measured and not adopted: error-compensating rounding (GPTQ) of the LSTM weights
(no gain: activation rounding dominates), and guard hidden units held at +/-1 to pin the
ranges so int8 could run batched (same end-to-end speed, 1.12x vs 1.11x fp32 interleaved;
the first LSTM must then stay fp32, which costs batch-1 latency; 99.17 % vs 99.31 % of
decisions kept on 1448 windows).

Weights are 7-bit (``reduce_range``): on x86-64 CPUs without AVX-512 VNNI (AVX2 only, or
AVX-512 without VNNI) onnxruntime multiplies u8 activations by s8 weights with VPMADDUBSW, whose
pairwise int16 sums saturate for full-range weights (255 * 127 * 2 > 32767); with VNNI they do
not. Measured there: 97.7 % of fp32's argmax on AVX2 against 99.1 % on AVX-512 VNNI for the
8-bit file. onnxruntime's LSTM quantizer always makes s8 weights (a u8 weight type is ignored),
so 7-bit weights (|w| <= 64) are the way to keep every pair sum exact on both (255 * 64 * 2 =
32640): the integer arithmetic is the same on every x86-64 CPU, and the file keeps the same
promise on all of them. Cost, measured on AVX-512 VNNI: 99.00 % of fp32's argmax pooled (99.30 % up to the
order of each window's speaker slots) against 99.12 % (99.59 %) for 8-bit weights.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
from onnxruntime.quantization import quantize_dynamic

from powerseg.errors import ModelError, ModelNotFoundError

from .onnx_export import set_metadata

METHOD = ("dynamic int8 (DynamicQuantizeLSTM), per-channel 7-bit s8 weights (reduce_range), "
          "LSTM nodes only; rest fp32")


def quantize_int8(fp32_path: Path, output: Path) -> Path:
    """Write the int8 variant of ``fp32_path`` to ``output``, metadata copied, variant "int8".

    Dynamic quantization needs no calibration audio: the result depends on the fp32 model
    only (same input -> same bytes).
    """
    fp32_path, output = Path(fp32_path), Path(output)
    if not fp32_path.is_file():
        raise ModelNotFoundError(f"{fp32_path}: no such model file")
    try:
        source = onnx.load(str(fp32_path))
    except Exception as error:  # onnx raises DecodeError, OSError, ... for bad files
        raise ModelError(f"{fp32_path}: not a readable ONNX model ({error})") from None
    if not any(node.op_type == "LSTM" for node in source.graph.node):
        raise ModelError(f"{fp32_path}: no LSTM node; not a segmentation-3.0 export")
    output.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint that is not for us
    try:
        quantize_dynamic(fp32_path, output, op_types_to_quantize=["LSTM"], per_channel=True,
                         reduce_range=True)
    finally:
        root.setLevel(level)
    quantized = onnx.load(str(output))
    props = {entry.key: entry.value for entry in source.metadata_props}
    props.update(variant="int8", quantization=METHOD, windows_per_run="1")
    set_metadata(quantized, props)
    onnx.save(quantized, str(output))
    return output
