#!/usr/bin/env bash
# A separate environment with pyannote.audio 4.0.7 on the pinned CPU torch, for
# benchmarks/pyannote_audio.py:   bash benchmarks/pyannote_setup.sh [VENV]   (default .venv-pyannote)
# torchaudio 2.11.1 is the newest torchaudio and pins torch 2.11, so it goes in with --no-deps and its
# compiled libraries are moved aside: pyannote.audio then imports it, and only its pure-Python parts
# (compliance.kaldi, the fbank the CAM++ wrapper uses) run. Audio is handed over in memory, so
# torchcodec's decoders are never used.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv-pyannote}
python3 -m venv "$venv"
. "$venv/bin/activate"
pip install -q -e '.[bench-pyannote]'
pip install -q --no-deps pyannote.audio==4.0.7 torchaudio==2.11.1 torchcodec
site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
if [ -d "$site/torchaudio/lib" ]; then mv "$site/torchaudio/lib" "$site/torchaudio/lib.unused"; fi
python -c "import warnings; warnings.simplefilter('ignore'); import pyannote.audio; print('pyannote.audio', pyannote.audio.__version__, 'ready in', '$venv')"
