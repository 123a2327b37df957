"""``model="auto"``: the segmentation variant that runs faster on this CPU, int8 or fp32.

Whether int8 pays depends on the CPU's kernels, not on a flag one can read: its LSTMs run one
window per call (their activation scales are per call) where fp32 batches, and onnxruntime's
int8 matrix kernels differ by instruction set (AVX2, AVX-512 VNNI, AMX), so the same file is
faster than fp32 on one CPU and slower on another (benchmarks/README.md). So the first use on a
machine measures both on the bundled sample, as the Segmenter runs them, and keeps the answer
in a small cache keyed by everything that could change it (CPU, features, onnxruntime, models,
threads, batch size). int8 must be clearly faster to be chosen: it rounds, fp32 is exact.
Other providers than the CPU take fp32.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import onnxruntime as ort

from powerseg.models import model_path, model_sha256

from ..cpu import cpu_info, cpu_model
from ..providers import CPU, resolve_providers

AUTO = "auto"
CANDIDATES = ("fp32", "int8")
# int8 must be at least this much faster to be chosen: below it, its rounding costs more than
# its speed is worth, and a first-use measurement is noisy by a few per cent
MIN_GAIN = 1.1
# timed runs of each variant, alternating, after one warm-up each; the fastest of each counts
# (what other work on the machine adds to a run is noise, never speed)
ROUNDS = 3
CACHE_NAME = "auto-model.json"


@dataclass(frozen=True)
class Choice:
    """The variant ``auto`` runs, and why: seconds per run of each candidate (empty when not
    measured: another provider than the CPU), and whether it came from the cache."""

    variant: str
    seconds: dict[str, float]
    cached: bool = False

    def describe(self) -> str:
        if not self.seconds:
            return f"{self.variant} (not on the CPU: fp32)"
        timed = ", ".join(f"{v} {1000 * s:.0f} ms" for v, s in self.seconds.items())
        source = "measured earlier on this machine" if self.cached else "measured now"
        return f"{self.variant} (the bundled sample: {timed}; {source})"


def cache_dir() -> Path:
    """``$POWERSEG_CACHE_DIR``, else ``$XDG_CACHE_HOME/powerseg``, else ~/.cache/powerseg."""
    if os.environ.get("POWERSEG_CACHE_DIR"):
        return Path(os.environ["POWERSEG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "powerseg"


def cache_key(threads: int | None, batch_size: int) -> str:
    """Everything the answer depends on."""
    info = cpu_info()
    models = ",".join(model_sha256(model_path(v))[:16] for v in CANDIDATES)
    return (f"{cpu_model()}|{info.architecture}:"
            f"{' '.join(info.features)}|onnxruntime {ort.__version__}|{models}|"
            f"threads {threads or os.cpu_count()}|batch {batch_size}")


def choose_variant(providers, threads: int | None = None, batch_size: int = 2) -> Choice:
    """fp32 off the CPU; on it, the cached answer for this machine, or a measurement."""
    if resolve_providers(providers)[0] != CPU:
        return Choice("fp32", {})
    key = cache_key(threads, batch_size)
    path = cache_dir() / CACHE_NAME
    known = _read(path)
    if key in known:
        entry = known[key]
        return Choice(entry["variant"], entry["seconds"], cached=True)
    choice = measure(threads, batch_size)
    known[key] = {k: v for k, v in asdict(choice).items() if k != "cached"}
    _write(path, known)
    return choice


def measure(threads: int | None = None, batch_size: int = 2) -> Choice:
    """Both variants on the bundled sample, as ``Segmenter`` runs them, alternating."""
    from powerseg.samples import sample_path

    from ..audio import load_audio
    from .segmenter import Segmenter

    segmenters = {v: Segmenter(v, threads=threads, batch_size=batch_size, providers="cpu")
                  for v in CANDIDATES}
    rate = segmenters["fp32"].spec.sample_rate
    audio = load_audio(sample_path(), rate)
    times: dict[str, list[float]] = {v: [] for v in CANDIDATES}
    for round_ in range(ROUNDS + 1):
        for variant, segmenter in segmenters.items():
            start = time.perf_counter()
            segmenter(audio, sample_rate=rate, activations=False)
            if round_:  # the first round warms up
                times[variant].append(time.perf_counter() - start)
    seconds = {v: min(t) for v, t in times.items()}
    faster = seconds["int8"] * MIN_GAIN <= seconds["fp32"]
    return Choice("int8" if faster else "fp32", seconds)


def _read(path: Path) -> dict:
    """The cache's entries; a missing or unreadable cache is an empty one (it is remade)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and all(
        isinstance(v, dict) and v.get("variant") in CANDIDATES and isinstance(v.get("seconds"), dict)
        for v in data.values()) else {}


def _write(path: Path, entries: dict) -> None:
    """Best effort: a cache that cannot be written means measuring again next time."""
    from powerseg.errors import OutputError

    from ..writers import atomic_output

    try:
        with atomic_output(path) as out:
            out.write(json.dumps(entries, indent=1, sort_keys=True))
    except (OutputError, OSError):
        pass
