"""``torchaudio.compliance.kaldi``, the reference front-end, with torch 2.13.

torchaudio 2.11.1 pins torch 2.11.1, so it is installed with ``pip install --no-deps
torchaudio==2.11.1``; its compiled extension then fails to load with torch 2.13 and
``import torchaudio`` raises. ``compliance/kaldi.py`` itself is pure Python (torch ops only;
its one use of the torchaudio package, in ``mfcc``, is not called here), so it is loaded
straight from the installed file, with a bare module standing in for the package while it runs
its ``import torchaudio``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import types
from importlib.metadata import PackageNotFoundError, distribution

import pytest

INSTALL = "pip install --no-deps torchaudio==2.11.1"


@functools.cache
def kaldi():
    """The module, or a skip (a failure in CI) saying how to install it."""
    try:
        import torchaudio.compliance.kaldi as module  # works where torch matches torchaudio
        return module
    except (ImportError, OSError):
        pass
    try:
        path = distribution("torchaudio").locate_file("torchaudio/compliance/kaldi.py")
    except PackageNotFoundError:
        message = f"torchaudio is not installed: {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    for name in [n for n in sys.modules if n == "torchaudio" or n.startswith("torchaudio.")]:
        del sys.modules[name]  # a half-imported package from the failed attempt
    spec = importlib.util.spec_from_file_location("torchaudio_compliance_kaldi", str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["torchaudio"]
    return module


FBANK = dict(num_mel_bins=80, frame_length=25.0, frame_shift=10.0, dither=0.0,
             sample_frequency=16000.0)  # CAM++'s front-end, as the diarization reference ran it


def reference_fbank(samples):
    """(samples,) float32 numpy -> (frames, 80) numpy, torchaudio's kaldi fbank."""
    import torch

    return kaldi().fbank(torch.from_numpy(samples)[None], **FBANK).numpy()
