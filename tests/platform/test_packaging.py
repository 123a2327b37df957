"""Import paths: the package works from a source checkout as well as installed."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

from helpers import ROOT


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


def test_import_and_vad_load_no_diarization_stack(tmp_path):
    """The package face is lazy: `import powerseg` and `powerseg vad` load neither scipy nor the
    diarizer (the cold start a VAD pays)."""
    import numpy as np
    import soundfile as sf

    audio = tmp_path / "one_second.wav"
    sf.write(audio, (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32), 16000)
    code = ("import sys, powerseg; loaded = {'scipy' in sys.modules, "
            "'powerseg.runtime.diarization.diarizer' in sys.modules}; "
            "from powerseg.cli import main; "
            f"assert main(['vad', {str(audio)!r}, '-o', {str(tmp_path / 'out.rttm')!r}, "
            "'--provider', 'cpu']) == 0; "
            "loaded |= {'scipy' in sys.modules, 'powerseg.runtime.diarization.diarizer' in sys.modules}; "
            "print(sorted(loaded))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[False]"
    from powerseg import Diarizer, VoiceBank  # the lazy names resolve
    assert Diarizer.__name__ == "Diarizer" and VoiceBank.__name__ == "VoiceBank"
