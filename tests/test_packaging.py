"""Import paths: the package works from a source checkout as well as installed."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

from conftest import ROOT


def test_source_checkout_imports_without_install(tmp_path):
    """With only the checkout on sys.path (-S: no editable-install finder), the subpackages
    beside powerseg/ are found: `pip install .` then python in the checkout's root works."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), sysconfig.get_paths()["purelib"]])}
    code = ("import powerseg.runtime, powerseg.models; "
            "print(powerseg.runtime.__file__); print(powerseg.models.model_path('fp32'))")
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    runtime, model = done.stdout.split()
    assert runtime == str(ROOT / "runtime" / "__init__.py")
    assert model == str(ROOT / "models" / "segmentation-3.0.onnx")
