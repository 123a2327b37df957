"""pyannote's agglomerative clustering of (chunk, local speaker) embeddings, step by step.

The reference is pyannote.audio 4.0.7's ``AgglomerativeClustering`` with the cosine metric
and centroid linkage: keep the embeddings of speakers heard alone long enough, link their
L2-normalised vectors, cut the dendrogram at ``threshold``, fold clusters smaller than
``min_cluster_size`` into the nearest large one, then assign every embedding (kept or not)
to the closest centroid. Each function is one of those stages, with the same float operations
in the same order, so the same embeddings give the same clusters. What grows with the
recording (the linkage's distances, float64 copies of the embeddings) is computed block by
block or in place, which changes no value: a long recording's clustering stays small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster
from scipy.spatial.distance import cdist

from powerseg.errors import OptionError

from .linkage import centroid_linkage

# A kept speaker is alone in at least this share of its chunk's frames (pyannote 4.0.7).
MIN_ACTIVE_RATIO = 0.2
INACTIVE = -2  # hard cluster of a local speaker with no active frame (pyannote's value)
# The linkage is scipy's bit for bit while its N^2/2 float64 distances fit in this many bytes
# (8,192 kept embeddings, about 1.5 h of conversation); past it, it keeps the centroids only
# (memory linear in N, the same merges up to rounding): runtime/diarization/linkage.py.
EXACT_LINKAGE_BYTES = 256 << 20
BLOCK_CHUNKS = 1024  # chunks per block of the per-chunk computations
BLOCK_ROWS = 4096  # embeddings per block of the per-embedding ones


@dataclass(frozen=True)
class Clusters:
    """What clustering decided, with the intermediate arrays that explain it."""

    hard: np.ndarray  # (chunks, speakers) int: cluster of each local speaker, INACTIVE if silent
    soft: np.ndarray  # (chunks, speakers, clusters) float64: 2 - cosine distance to centroids
    centroids: np.ndarray  # (clusters, dimension) float64: mean kept embedding per cluster
    train_chunks: np.ndarray  # (kept,) int: chunk of each kept embedding
    train_speakers: np.ndarray  # (kept,) int: local speaker of each kept embedding
    train_clusters: np.ndarray  # (kept,) int: cluster of each kept embedding before assignment
    dendrogram: np.ndarray | None  # (kept - 1, 4) scipy linkage, None below two kept


def cluster_bounds(num_embeddings: int, num_clusters: int | None = None,
                   min_clusters: int | None = None,
                   max_clusters: int | None = None) -> tuple[int | None, int, int]:
    """(num_clusters, min_clusters, max_clusters) clipped to what the embeddings allow."""
    low = max(1, min(num_embeddings, num_clusters or min_clusters or 1))
    high = max(1, min(num_embeddings, num_clusters or max_clusters or num_embeddings))
    if low > high:
        raise OptionError(f"min_speakers ({low}) must not exceed max_speakers ({high})")
    return (low if low == high else num_clusters), low, high


def training_pairs(embeddings: np.ndarray,
                   binarized: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chunk, speaker) indices of the embeddings worth clustering.

    A finite embedding, and the speaker alone for at least ``MIN_ACTIVE_RATIO`` of the
    chunk's frames: overlapped or brief speakers make unreliable embeddings.
    """
    num_frames = binarized.shape[1]
    keep = np.empty(binarized.shape[::2], dtype=bool)
    for start in range(0, len(binarized), BLOCK_CHUNKS):  # no full-size temporaries
        part = binarized[start:start + BLOCK_CHUNKS]
        alone = np.sum(part, axis=2, keepdims=True) == 1
        clean_frames = np.sum(part * alone, axis=1)
        active = clean_frames >= MIN_ACTIVE_RATIO * num_frames
        valid = ~np.any(np.isnan(embeddings[start:start + BLOCK_CHUNKS]), axis=2)
        keep[start:start + BLOCK_CHUNKS] = active * valid
    return np.where(keep)


def unit_vectors(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (float64, overwritten) divided by their L2 norms, as numpy's
    ``vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)``, row block by row block."""
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, len(vectors), BLOCK_ROWS):
            part = vectors[start:start + BLOCK_ROWS]
            part /= np.linalg.norm(part, axis=-1, keepdims=True)
    return vectors


def large_clusters(clusters: np.ndarray, min_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cluster ids, their sizes, ids of those with at least ``min_size`` members)."""
    unique, counts = np.unique(clusters, return_counts=True)
    return unique, counts, unique[counts >= min_size]


def agglomerate(unit: np.ndarray, threshold: float, min_cluster_size: int,
                num_clusters: int | None, min_clusters: int,
                max_clusters: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Cluster label per kept embedding (0..K-1), from the kept embeddings' unit vectors
    (float64), and the dendrogram they came from."""
    count = len(unit)
    # pyannote lowers min_cluster_size for a handful of embeddings (its 10 % heuristic)
    min_size = min(min_cluster_size, max(1, round(0.1 * count)))
    if count == 1:
        return np.zeros(1, dtype=np.uint8), None
    dendrogram = centroid_linkage(unit, EXACT_LINKAGE_BYTES)
    clusters = fcluster(dendrogram, threshold, criterion="distance") - 1
    unique, counts, large = large_clusters(clusters, min_size)
    if len(large) < min_clusters:
        num_clusters = min_clusters
    elif len(large) > max_clusters:
        num_clusters = max_clusters
    if num_clusters is not None and len(large) != num_clusters:
        clusters, unique, counts, large = walk_dendrogram(dendrogram, threshold, min_size,
                                                          num_clusters)
    if len(large) == 0:
        return np.zeros_like(clusters), dendrogram
    small = unique[counts < min_size]
    if len(small) == 0:
        return clusters, dendrogram
    # each small cluster joins the large cluster whose centroid is closest (cosine)
    large_centroids = np.vstack([np.mean(unit[clusters == k], axis=0) for k in large])
    small_centroids = np.vstack([np.mean(unit[clusters == k], axis=0) for k in small])
    nearest = np.argmin(cdist(large_centroids, small_centroids, metric="cosine"), axis=0)
    for small_k, large_k in enumerate(nearest):
        clusters[clusters == small[small_k]] = large[large_k]
    return np.unique(clusters, return_inverse=True)[1], dendrogram


def walk_dendrogram(dendrogram: np.ndarray, threshold: float, min_size: int,
                    num_clusters: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut the dendrogram at the merge closest to ``threshold`` that gives ``num_clusters``
    large clusters (or the closest count there is), as pyannote does for a requested count."""
    count = len(dendrogram) + 1
    by_index = np.copy(dendrogram)
    by_index[:, 2] = np.arange(count - 1)  # cut by merge index instead of distance
    best_iteration, best_large = count - 1, 1
    for iteration in np.argsort(np.abs(dendrogram[:, 2] - threshold)):
        if by_index[iteration, 3] < min_size:
            continue  # this merge cannot change the number of large clusters
        clusters = fcluster(by_index, iteration, criterion="distance") - 1
        unique, counts, large = large_clusters(clusters, min_size)
        if abs(len(large) - num_clusters) < abs(best_large - num_clusters):
            best_iteration, best_large = iteration, len(large)
        if len(large) == num_clusters:
            return clusters, unique, counts, large
    clusters = fcluster(by_index, best_iteration, criterion="distance") - 1
    return (clusters, *large_clusters(clusters, min_size))


def assign(embeddings: np.ndarray, train_chunks: np.ndarray, train_speakers: np.ndarray,
           train_clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hard, soft, centroids): every embedding to the centroid it is most similar to.

    Centroids average the kept embeddings as the model output them (not normalised); NaN
    embeddings get cluster 0, as numpy's argmax over NaN does in pyannote. pyannote computes
    in float64: each cluster's members and each block of chunks are cast in turn, which gives
    the same values as casting all at once.
    """
    chunks, speakers, dimension = embeddings.shape
    train = embeddings[train_chunks, train_speakers]
    centroids = np.vstack([np.mean(train[train_clusters == k].astype(np.float64), axis=0)
                           for k in range(np.max(train_clusters) + 1)])
    del train
    soft = np.empty((chunks, speakers, len(centroids)))
    for start in range(0, chunks, BLOCK_CHUNKS):
        part = np.asarray(embeddings[start:start + BLOCK_CHUNKS], dtype=np.float64)
        distance = cdist(part.reshape(-1, dimension), centroids, metric="cosine")
        soft[start:start + BLOCK_CHUNKS] = 2 - distance.reshape(len(part), speakers, -1)
    return np.argmax(soft, axis=2), soft, centroids


def cluster(embeddings: np.ndarray, binarized: np.ndarray, threshold: float,
            min_cluster_size: int, num_clusters: int | None = None,
            min_clusters: int | None = None, max_clusters: int | None = None) -> Clusters:
    """(chunks, speakers, dimension) embeddings + (chunks, frames, speakers) 0/1 segmentation
    -> clusters; silent local speakers get ``INACTIVE``."""
    train_chunks, train_speakers = training_pairs(embeddings, binarized)
    # float64 as pyannote computes; the kept ones only, normalised in place for the linkage
    train = np.asarray(embeddings[train_chunks, train_speakers], dtype=np.float64)
    num_clusters, min_clusters, max_clusters = cluster_bounds(len(train), num_clusters,
                                                              min_clusters, max_clusters)
    chunks, speakers, _ = embeddings.shape
    if max_clusters < 2:  # one speaker at most: nothing to cluster
        hard = np.zeros((chunks, speakers), dtype=np.int64)
        soft = np.ones((chunks, speakers, 1))
        # no kept embedding at all (a few words in a file): pyannote's mean of nothing, NaN
        centroids = np.mean(train, axis=0, keepdims=True) if len(train) else \
            np.full((1, embeddings.shape[2]), np.nan)
        train_clusters, dendrogram = np.zeros(len(train), dtype=np.int64), None
    else:
        train_clusters, dendrogram = agglomerate(unit_vectors(train), threshold,
                                                 min_cluster_size, num_clusters, min_clusters,
                                                 max_clusters)
        del train
        hard, soft, centroids = assign(embeddings, train_chunks, train_speakers, train_clusters)
    hard = hard.copy()
    hard[np.sum(binarized, axis=1) == 0] = INACTIVE
    return Clusters(hard, soft, centroids, train_chunks, train_speakers, train_clusters,
                    dendrogram)
