"""runtime.cpu: the architecture and kernel-deciding instruction-set features `powerseg info` reports.

The live checks compare with numpy's own detection (cpuid on x86-64, the hardware-capability
bits on aarch64: independent code), and under qemu with a named CPU model, with the features
that model has.
"""

from __future__ import annotations

import os
import platform

import pytest

from powerseg.cli import main
from powerseg.runtime.cpu import (ARM64_FEATURES, AT_HWCAP, AT_HWCAP2, X86_FEATURES, arm64_features,
                                  cpu_info, x86_features)

# runtime.cpu's names -> numpy's names for the features numpy detects too.
NUMPY_NAMES = {"avx2": "AVX2", "fma": "FMA3", "avx512f": "AVX512F", "avx512bw": "AVX512BW",
               "avx512_vnni": "AVX512VNNI", "avx512_bf16": "AVX512BF16",
               "asimd": "ASIMD", "asimdhp": "ASIMDHP", "asimddp": "ASIMDDP", "sve": "SVE"}
# What qemu's CPU models have (Arm's technical reference manuals): the Raspberry Pi 4's core,
# the Pi 5's, and a Neoverse N1 server core (Graviton 2, Ampere Altra).
QEMU_MODELS = {"cortex-a72": ("asimd",), "cortex-a76": ("asimd", "asimdhp", "asimddp"),
               "neoverse-n1": ("asimd", "asimdhp", "asimddp")}
# qemu's "max" has every feature its version emulates; .ci/arm64 turns SVE and SME off (slow to
# emulate) to run onnxruntime's i8mm int8 kernels.
QEMU_MAX_NO_SVE = "max,sve=off,sme=off"


def test_x86_flags_line_is_read():
    text = ("processor\t: 0\nvendor_id\t: GenuineIntel\n"
            "flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni amx_int8 amx_tile\n"
            "processor\t: 1\nflags\t\t: fpu\n")
    assert x86_features(text) == ("avx2", "fma", "avx512f", "avx512_vnni", "amx_tile", "amx_int8")
    assert x86_features("processor\t: 0\n") == ()


def test_arm64_bits_are_the_kernels():
    assert arm64_features(0, 0) == ()
    assert arm64_features(1 << 1 | 1 << 20, 0) == ("asimd", "asimddp")
    assert arm64_features(1 << 22, 1 << 13) == ("i8mm", "sve")
    every = {AT_HWCAP: 0, AT_HWCAP2: 0}
    for entry, bit, _ in ARM64_FEATURES:
        every[entry] |= 1 << bit
    assert arm64_features(every[AT_HWCAP], every[AT_HWCAP2]) == tuple(n for _, _, n in ARM64_FEATURES)


@pytest.mark.arm64
@pytest.mark.skipif(platform.system() != "Linux", reason="features are read on Linux only")
def test_live_features_agree_with_numpy():
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as numpy_features
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__ as numpy_features

    info = cpu_info()
    assert info.architecture == platform.machine()
    names = {"x86_64": X86_FEATURES, "aarch64": tuple(n for _, _, n in ARM64_FEATURES)}
    if info.architecture not in names:
        pytest.skip(f"no feature list for {info.architecture}")
    assert set(info.features) <= set(names[info.architecture])
    checked = [n for n in names[info.architecture] if NUMPY_NAMES.get(n) in numpy_features]
    assert checked, "numpy detects none of the features"
    assert {n: n in info.features for n in checked} == {
        n: bool(numpy_features[NUMPY_NAMES[n]]) for n in checked}
    if info.architecture == "aarch64":
        assert "asimd" in info.features  # every aarch64 Linux CPU has NEON


@pytest.mark.arm64
@pytest.mark.skipif(os.environ.get("QEMU_CPU") not in {*QEMU_MODELS, QEMU_MAX_NO_SVE},
                    reason="not under qemu with a known CPU model")
def test_emulated_cpu_model_features():
    model, features = os.environ["QEMU_CPU"], cpu_info().features
    if model == QEMU_MAX_NO_SVE:
        assert {"asimd", "asimddp", "i8mm"} <= set(features)
        assert not {"sve", "sve2", "sme"} & set(features)
    else:
        assert features == QEMU_MODELS[model]


@pytest.mark.arm64
def test_info_prints_the_cpu(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"cpu: {cpu_info().describe()}\n" in out
