"""Fewer embeddings without fewer votes: embed every k-th chunk of a 1 s segmentation only.

The coarser steps of the ``fast`` presets lose accuracy through the frame assignment (each frame
is decided by 10 / step chunks: benchmarks/README.md "Faster presets"). This measures the other
way to embed k times less: segment at 1 s as pyannote does, embed only every k-th chunk (the
others' embeddings left out, as if skipped), cluster those, and give each other chunk's local
speakers the clusters of the embedded chunks that overlap it, matched by co-activity (frames
where both are on; one cluster per local speaker, Hungarian). Every chunk still votes.

Runs on the step-1 cache of ``benchmarks/sweep.py`` (every shared file) and on the six
libri_conv_a conversations tiled into one 20 min recording (diarized once here), for every
phase (which chunk of k is embedded: the figures move with it on short files):

    python benchmarks/sweep.py cache --steps 1
    python benchmarks/sparse_embedding.py

Prints DER per (k, phase) and writes benchmarks/results/sparse_embedding.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import SHARED, write_results  # noqa: E402
from sweep import SETS, cache_path, recordings  # noqa: E402

from powerseg.evaluate import Score, overall  # noqa: E402
from powerseg.runtime.binarize import Region  # noqa: E402
from powerseg.runtime.diarization.clustering import INACTIVE, cluster  # noqa: E402
from powerseg.runtime.framing import Framing  # noqa: E402
from powerseg.runtime.metrics import diarization_error, read_rttm, read_uem  # noqa: E402
from powerseg.runtime.segmentation.model import SegmentationModel  # noqa: E402
from powerseg.runtime.diarization.reconstruct import column_turns, reconstruct, speaker_count  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "sparse_embedding.json"
CACHE = Path("/tmp/powerseg-sweep")
EVERY = {1: 12, 2: 6, 3: 4, 4: 3, 5: 2, 6: 2}  # k -> min_cluster_size (12 / k, as the presets)


def matched(hard: np.ndarray, binarized: np.ndarray, embedded: np.ndarray,
            framing: Framing) -> np.ndarray:
    """``hard`` with each chunk not embedded given the clusters of the embedded chunks that
    overlap it, by co-activity of its local speakers with theirs."""
    out = hard.copy()
    frames = binarized.shape[1]
    reach = round(framing.spec.window / framing.step)
    sources = np.flatnonzero(embedded)
    clusters = int(hard.max(initial=-1)) + 1
    for chunk in np.flatnonzero(~embedded):
        active = binarized[chunk].astype(np.float32)
        score = np.zeros((active.shape[1], clusters))
        near = sources[np.searchsorted(sources, chunk - reach + 1):
                       np.searchsorted(sources, chunk + reach)]
        for source in near:
            offset = framing.first_frame(source) - framing.first_frame(chunk)
            a, b = max(0, offset), min(frames, frames + offset)
            both = active[a:b].T @ binarized[source][a - offset:b - offset].astype(np.float32)
            for speaker, k in enumerate(hard[source]):
                if k != INACTIVE:
                    score[:, k] += both[:, speaker]
        out[chunk] = INACTIVE
        for speaker, k in zip(*linear_sum_assignment(-score)):
            if score[speaker, k] > 0:
                out[chunk, speaker] = k
    return out


def turns(embeddings: np.ndarray, binarized: np.ndarray, every: int, phase: int,
          framing: Framing) -> list[Region]:
    count = speaker_count(binarized, framing)
    if count.max(initial=0) == 0:
        return []
    embedded = np.arange(len(embeddings)) % every == phase
    sparse = np.where(embedded[:, None, None], embeddings, np.nan).astype(np.float32)
    hard = cluster(sparse, binarized, 0.86, EVERY[every]).hard
    if every > 1:
        hard = matched(hard, binarized, embedded, framing)
    discrete = reconstruct(binarized, hard, count, framing)
    return [Region(s, e, str(c)) for s, e, c in column_turns(discrete, framing)]


def tiled() -> tuple[np.ndarray, np.ndarray, list[Region], float]:
    """The libri_conv_a conversations end to end, diarized once: (embeddings, binarized,
    reference turns, duration)."""
    import soundfile as sf

    from powerseg import Diarizer

    folder = SHARED / "audio" / "libri_conv_a"
    reference = {}
    for rttm in (folder / "rttm").glob("*.rttm"):
        reference.update(read_rttm(rttm))
    parts, truth, offset = [], [], 0.0
    for wav in sorted((folder / "wav").glob("*.wav")):
        samples, rate = sf.read(wav, dtype="float32")
        parts.append(samples)
        truth += [Region(r.start + offset, r.end + offset, r.label) for r in reference[wav.stem]]
        offset += len(samples) / rate
    result = Diarizer(providers="cpu")(np.concatenate(parts), sample_rate=rate)
    return result.embeddings, result.segmentation.activations, truth, offset


def main() -> int:
    framing = Framing(SegmentationModel("fp32", providers="cpu").spec, 1.0)
    truth, scopes = {}, {}
    for name in SETS:
        for rttm in (SHARED / "audio" / name / "rttm").glob("*.rttm"):
            truth.update(read_rttm(rttm))
        for uem in (SHARED / "audio" / name / "uem").glob("*.uem"):
            scopes.update(read_uem(uem))
    files = []
    for name, wav in recordings():
        with np.load(cache_path(CACHE, name, wav, 1.0)) as data:
            files.append((name, wav.stem, data["embeddings"], data["binarized"].astype(np.float32),
                          float(data["duration"])))
    embeddings, binarized, reference, duration = tiled()
    binarized = binarized.astype(np.float32)
    rows = []
    for every in EVERY:
        for phase in range(every):
            scores = []
            for name, uri, e, b, length in files:
                d = diarization_error(truth[uri], turns(e, b, every, phase, framing),
                                      scopes.get(uri) or [(0.0, length)])
                scores.append(Score(uri, "diarization", d.reference, d.false_alarm, d.missed,
                                    d.confusion))
            d = diarization_error(reference, turns(embeddings, binarized, every, phase, framing),
                                  [(0.0, duration)])
            row = {"every": every, "phase": phase, "min_cluster_size": EVERY[every],
                   "der_shared": overall(scores, "diarization").error_rate,
                   "der_tiled_20min": (d.false_alarm + d.missed + d.confusion) / d.reference}
            rows.append(row)
            print(f"every {every} phase {phase}: shared sets {100 * row['der_shared']:6.2f} %  "
                  f"20 min tiled {100 * row['der_tiled_20min']:6.2f} %", flush=True)
    write_results(RESULTS, {"rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
