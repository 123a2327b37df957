"""The Diarizer's named settings, apart so that the CLI can offer them without loading the
diarization stack."""

from __future__ import annotations

PYANNOTE_MIN_CLUSTER_SIZE = 12  # kept embeddings, at pyannote's step of 1 s


def chunk_rate_min_cluster_size(step: float) -> int:
    """pyannote's ``min_cluster_size`` for another step. It counts kept embeddings, one per
    chunk a speaker is heard in, and a speaker is heard in 1/step as many chunks: held fixed,
    it folds away more and more real speakers as the step grows (measured: README)."""
    return max(1, round(PYANNOTE_MIN_CLUSTER_SIZE / step))


# Named settings. "pyannote" is pyannote's own (the default); the others trade accuracy for
# speed (1/step as many chunks to segment and embed), min_cluster_size scaled to the step;
# their DER cost on the shared sets is measured in the README (benchmarks/presets.py).
PRESETS: dict[str, dict[str, float | int]] = {
    "pyannote": {},
    "fast": {"step": 3.0, "min_cluster_size": chunk_rate_min_cluster_size(3.0)},
    "fastest": {"step": 5.0, "min_cluster_size": chunk_rate_min_cluster_size(5.0)},
}
