"""The CPU's architecture and the instruction-set features that pick onnxruntime's kernels.

int8 speed and rounding depend on which kernels run (x86-64: AVX2, AVX-512, VNNI, AMX; aarch64:
NEON, dot product, i8mm, SVE), so ``powerseg info`` and the benchmarks report them. On x86-64
they are the flags of /proc/cpuinfo; on aarch64 they are the kernel's hardware-capability bits
(``getauxval``), which are what /proc/cpuinfo's Features line is made from and what onnxruntime
itself reads (and, unlike /proc/cpuinfo, what an emulator such as qemu-user reports for the CPU
it emulates).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from dataclasses import dataclass
from pathlib import Path

# x86-64 flags that decide onnxruntime's (MLAS) fp32 and int8 kernels, in /proc/cpuinfo's names.
X86_FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
                "amx_tile", "amx_int8", "amx_bf16")

# aarch64 hardware capabilities (linux arch/arm64/include/uapi/asm/hwcap.h), named as in
# /proc/cpuinfo's Features line: (auxv entry, bit, name).
AT_HWCAP, AT_HWCAP2 = 16, 26
ARM64_FEATURES = ((AT_HWCAP, 1, "asimd"),      # NEON
                  (AT_HWCAP, 10, "asimdhp"),   # fp16 arithmetic
                  (AT_HWCAP, 20, "asimddp"),   # int8 dot product (sdot/udot)
                  (AT_HWCAP2, 13, "i8mm"),     # int8 matrix multiply (smmla)
                  (AT_HWCAP2, 14, "bf16"),
                  (AT_HWCAP, 22, "sve"),
                  (AT_HWCAP2, 1, "sve2"),
                  (AT_HWCAP2, 23, "sme"))

ARCHITECTURES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True)
class CpuInfo:
    """``architecture`` as Linux names it (x86_64, aarch64, ...); ``features`` the
    kernel-deciding ones present, in the order of X86_FEATURES / ARM64_FEATURES; ``source``
    where they were read, or None where this platform's are not detected."""

    architecture: str
    features: tuple[str, ...]
    source: str | None

    def describe(self) -> str:
        if self.source is None:
            return f"{self.architecture} (instruction-set features not detected on this platform)"
        return f"{self.architecture}: {' '.join(self.features) or 'none of the kernel features'}"


def x86_features(cpuinfo: str) -> tuple[str, ...]:
    """The X86_FEATURES among the first ``flags`` line of a /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags = set(value.split())
            return tuple(name for name in X86_FEATURES if name in flags)
    return ()


def arm64_features(hwcap: int, hwcap2: int) -> tuple[str, ...]:
    """The ARM64_FEATURES whose bits are set in the AT_HWCAP and AT_HWCAP2 words."""
    words = {AT_HWCAP: hwcap, AT_HWCAP2: hwcap2}
    return tuple(name for entry, bit, name in ARM64_FEATURES if words[entry] >> bit & 1)


def _getauxval(entry: int) -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.getauxval.restype = ctypes.c_ulong
    libc.getauxval.argtypes = [ctypes.c_ulong]
    return int(libc.getauxval(entry))


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo's first ``model name``), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.machine()


def cpu_info() -> CpuInfo:
    """This machine's architecture and kernel-deciding features (Linux; elsewhere the
    architecture only)."""
    machine = platform.machine().lower()
    architecture = ARCHITECTURES.get(machine, machine)
    if platform.system() == "Linux":
        if architecture == "x86_64":
            cpuinfo = Path("/proc/cpuinfo")
            return CpuInfo(architecture, x86_features(cpuinfo.read_text()), str(cpuinfo))
        if architecture == "aarch64":
            return CpuInfo(architecture,
                           arm64_features(_getauxval(AT_HWCAP), _getauxval(AT_HWCAP2)), "getauxval")
    return CpuInfo(architecture, (), None)
