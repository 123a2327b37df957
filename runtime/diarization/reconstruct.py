"""From clustered chunks back to one timeline: pyannote's ``speaker_count``, ``reconstruct``
(``to_diarization``) and ``to_annotation``, on the segmentation's frame grid.

Per frame, ``count`` says how many speakers talk; each global speaker's activation is the
sum over chunks of the max of the local speakers assigned to it; the ``count`` speakers with
the largest activations are on. Sums of 0/1 values in float32 are exact, so the order of
summation does not matter and the same inputs give pyannote's bits.
"""

from __future__ import annotations

import numpy as np

from ..aggregate import aggregate
from ..binarize import BinarizeOptions, Region, binarize
from ..framing import Framing
from .clustering import INACTIVE


def timeline_frames(framing: Framing, num_chunks: int) -> int:
    """Frames of pyannote's aggregate over ``num_chunks`` chunks (not cropped to the audio)."""
    return framing.num_frames(num_chunks, 0, has_last=False)


def speaker_count(binarized: np.ndarray, framing: Framing) -> np.ndarray:
    """(chunks, frames, speakers) 0/1 -> (timeline frames,) uint8: rounded mean number of
    active local speakers over the chunks covering each frame (round half to even)."""
    active = np.sum(binarized, axis=-1, keepdims=True, dtype=np.float32)
    mean = aggregate(active, framing, timeline_frames(framing, len(binarized)), hamming=False)
    return np.rint(mean[:, 0]).astype(np.uint8)


def cluster_activations(binarized: np.ndarray, hard: np.ndarray, framing: Framing,
                        num_clusters: int) -> np.ndarray:
    """(timeline frames, num_clusters) float32: per cluster, the sum over chunks of the max
    of the local speakers assigned to it (pyannote's skip_average aggregate)."""
    frames = binarized.shape[1]
    total = np.zeros((timeline_frames(framing, len(binarized)), num_clusters), np.float32)
    for chunk, (clusters, active) in enumerate(zip(hard, binarized)):
        start = framing.first_frame(chunk)
        for k in np.unique(clusters):
            if k != INACTIVE:
                total[start:start + frames, k] += active[:, clusters == k].max(axis=1)
    return total


def reconstruct(binarized: np.ndarray, hard: np.ndarray, count: np.ndarray,
                framing: Framing) -> np.ndarray:
    """(timeline frames, columns) uint8 discrete diarization: per frame, the ``count[t]``
    clusters with the largest activations. Columns are the clusters, padded with empty
    ones when ``count`` exceeds them (pyannote's rule: an extra speaker without centroid)."""
    num_clusters = int(np.max(hard, initial=-1)) + 1
    activations = cluster_activations(binarized, hard, framing, num_clusters)
    columns = max(num_clusters, int(np.max(count, initial=0)))
    if columns > num_clusters:
        activations = np.pad(activations, ((0, 0), (0, columns - num_clusters)))
    # numpy's default argsort, as pyannote: exact ties are broken as it breaks them
    ranked = np.argsort(-activations, axis=-1)
    discrete = np.zeros(activations.shape, np.uint8)
    on = np.arange(columns)[None, :] < count[:, None]
    np.put_along_axis(discrete, ranked, on.astype(np.uint8), axis=-1)
    return discrete


def column_turns(discrete: np.ndarray, framing: Framing,
                 min_duration_off: float = 0.0) -> list[tuple[float, float, int]]:
    """(start, end, column) speaker turns, sorted as pyannote's annotation iterates them.

    pyannote's ``Binarize(onset=offset=0.5)`` on each column: a turn runs from the middle of
    its first active frame to the middle of the first inactive one; gaps of one column shorter
    than ``min_duration_off`` are filled.
    """
    options = BinarizeOptions(onset=0.5, offset=0.5, min_duration_off=min_duration_off)
    turns = []
    for column in range(discrete.shape[1]):
        regions: list[Region] = binarize(discrete[:, column], framing.spec.grid, options)
        turns += [(r.start, r.end, column) for r in regions]
    return sorted(turns)


def speaker_labels(turns: list[tuple[float, float, int]]) -> dict[int, str]:
    """Column -> SPEAKER_00, SPEAKER_01, ... for the columns that have a turn, in column order
    (pyannote renames its integer labels in sorted order)."""
    columns = sorted({column for _, _, column in turns})
    return {column: f"SPEAKER_{i:02d}" for i, column in enumerate(columns)}
