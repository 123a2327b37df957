"""Clustering of long recordings in bounded memory against today's: scipy's linkage and the
whole-array float64 computations.

The exact path must give scipy's dendrogram bit for bit (it replaces scipy in clustering, so
the RTTM stays pyannote's): on the kept embeddings of every shared file, on thousands of real
embeddings, and on inputs full of exact ties, where scipy's heap decides which pair goes
first. The bounded path (past the exact one's memory budget) must give the same merges, with
heights equal up to rounding, and the same clusters through the whole clustering stage. The
per-chunk computations done block by block must give the same bits as done at once.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage

from helpers import SHARED
from powerseg.runtime.diarization import clustering
from powerseg.runtime.diarization.clustering import cluster, training_pairs, unit_vectors
from powerseg.runtime.diarization.linkage import (bounded_centroid_linkage, centroid_linkage,
                                                  exact_centroid_linkage, matrix_bytes)

DIARIZATION = SHARED / "reference" / "diarization"
SETS = ("pyannote_sample", "ami_pyannote_debug", "librispeech_sim_a", "libri_conv_a")
THRESHOLD, MIN_CLUSTER_SIZE = 0.86, 12  # pyannote's params.json
HEIGHT_TOLERANCE = 1e-12  # bounded path: centroid distances vs scipy's Lance-Williams updates


def reference_stages() -> list[tuple[str, dict]]:
    if not DIARIZATION.is_dir():
        return []
    out = []
    for name in SETS:
        for uri in sorted(json.loads((DIARIZATION / name / "index.json").read_text())):
            with np.load(DIARIZATION / name / f"{uri}.npz") as data:
                if "embeddings" in data and "hard_clusters" in data:
                    out.append((uri, {k: data[k] for k in ("embeddings", "binarized")}))
    return out


@pytest.fixture(scope="module")
def stages(shared) -> list[tuple[str, dict]]:
    return reference_stages()


def kept_units(stage: dict) -> np.ndarray:
    """Unit vectors of the embeddings clustering keeps, float64, as clustering makes them."""
    chunks, speakers = training_pairs(stage["embeddings"], stage["binarized"].astype(np.float32))
    return unit_vectors(stage["embeddings"][chunks, speakers].astype(np.float64))


@pytest.fixture(scope="module")
def pool(stages) -> np.ndarray:
    """Every shared file's kept unit vectors (real CAM++ embeddings), one array."""
    return np.concatenate([kept_units(stage) for _, stage in stages])


def tiled(pool: np.ndarray, count: int, noise: float, seed: int = 0) -> np.ndarray:
    """``count`` unit vectors: the pool repeated, each copy moved by Gaussian noise."""
    rng = np.random.default_rng(seed)
    points = np.tile(pool, (count // len(pool) + 1, 1))[:count]
    points = points + rng.normal(scale=noise, size=points.shape)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def scipy_centroid(points: np.ndarray) -> np.ndarray:
    return linkage(points, method="centroid", metric="euclidean")


def assert_same_merges(got: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_array_equal(got[:, [0, 1, 3]], expected[:, [0, 1, 3]])
    np.testing.assert_allclose(got[:, 2], expected[:, 2], rtol=0, atol=HEIGHT_TOLERANCE)


def tie_cases() -> list[np.ndarray]:
    """Small inputs where many distances are exactly equal: duplicates, lattice points."""
    rng = np.random.default_rng(7)
    cases = []
    for n in (2, 3, 5, 17, 64, 150):
        for dimension in (1, 2, 5):
            cases.append(rng.integers(0, 3, size=(n, dimension)).astype(np.float64))
            distinct = rng.normal(size=(max(1, n // 4), dimension))
            cases.append(np.repeat(distinct, 4, axis=0)[:max(n, 2)])
            cases.append(rng.normal(size=(n, dimension)))
    return cases


@pytest.mark.parametrize("index", range(len(tie_cases())))
def test_exact_equals_scipy_with_ties(index):
    points = tie_cases()[index]
    np.testing.assert_array_equal(exact_centroid_linkage(points), scipy_centroid(points))


def test_exact_equals_scipy_on_every_shared_file(stages):
    assert len(stages) >= 20
    for uri, stage in stages:
        units = kept_units(stage)
        if len(units) >= 2:
            np.testing.assert_array_equal(exact_centroid_linkage(units), scipy_centroid(units),
                                          err_msg=uri)


def test_exact_and_bounded_on_thousands_of_real_embeddings(pool):
    """3,000 real embeddings (the shared ones tiled, each copy moved by small noise)."""
    points = tiled(pool, 3000, noise=0.01)
    expected = scipy_centroid(points)
    np.testing.assert_array_equal(exact_centroid_linkage(points), expected)
    bounded = bounded_centroid_linkage(points)
    assert_same_merges(bounded, expected)
    np.testing.assert_array_equal(fcluster(bounded, THRESHOLD, "distance"),
                                  fcluster(expected, THRESHOLD, "distance"))


def test_bounded_clustering_stage_equals_exact(stages, monkeypatch):
    """Forced past its budget on every shared file, clustering gives the same clusters."""
    exact = [cluster(s["embeddings"], s["binarized"].astype(np.float32), THRESHOLD,
                     MIN_CLUSTER_SIZE) for _, s in stages]
    monkeypatch.setattr(clustering, "EXACT_LINKAGE_BYTES", 0)
    for (uri, stage), expected in zip(stages, exact):
        got = cluster(stage["embeddings"], stage["binarized"].astype(np.float32), THRESHOLD,
                      MIN_CLUSTER_SIZE)
        np.testing.assert_array_equal(got.hard, expected.hard, err_msg=uri)
        np.testing.assert_array_equal(got.soft, expected.soft, err_msg=uri)
        np.testing.assert_array_equal(got.centroids, expected.centroids, err_msg=uri)


def test_choice_follows_the_budget(pool, monkeypatch):
    from powerseg.runtime.diarization import linkage as module

    calls = []
    for name in ("exact_centroid_linkage", "bounded_centroid_linkage"):
        monkeypatch.setattr(module, name, lambda points, name=name: calls.append(name))
    budget = matrix_bytes(300)
    centroid_linkage(pool[:300], budget)
    centroid_linkage(pool[:300], budget - 1)
    assert calls == ["exact_centroid_linkage", "bounded_centroid_linkage"]


def test_blocks_change_no_value(stages, monkeypatch):
    """Blocks smaller than any shared file (several per file): the same bits as one block."""
    whole = [cluster(s["embeddings"], s["binarized"].astype(np.float32), THRESHOLD,
                     MIN_CLUSTER_SIZE) for _, s in stages]
    monkeypatch.setattr(clustering, "BLOCK_CHUNKS", 7)
    monkeypatch.setattr(clustering, "BLOCK_ROWS", 5)
    for (uri, stage), expected in zip(stages, whole):
        assert len(stage["embeddings"]) > 7
        got = cluster(stage["embeddings"], stage["binarized"].astype(np.float32), THRESHOLD,
                      MIN_CLUSTER_SIZE)
        for key in ("hard", "soft", "centroids", "train_chunks", "train_speakers",
                    "train_clusters", "dendrogram"):
            np.testing.assert_array_equal(getattr(got, key), getattr(expected, key),
                                          err_msg=f"{uri} {key}")


@pytest.mark.parametrize("linkage_of", [exact_centroid_linkage, bounded_centroid_linkage])
def test_non_finite_input_is_refused_like_scipy(linkage_of):
    points = np.ones((4, 3))
    points[2, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        scipy_centroid(points)
    with pytest.raises(ValueError, match="finite"):
        linkage_of(points)


@pytest.mark.slow
def test_two_hours_of_embeddings(pool):
    """11,000 real embeddings, as many as clustering keeps from 2 h of conversation: the exact
    path is scipy's bit for bit, and the bounded one (which clustering takes at this size)
    cuts the same clusters."""
    points = tiled(pool, 11000, noise=0.01, seed=1)
    assert matrix_bytes(len(points)) > clustering.EXACT_LINKAGE_BYTES
    expected = scipy_centroid(points)
    np.testing.assert_array_equal(exact_centroid_linkage(points), expected)
    bounded = bounded_centroid_linkage(points)
    assert_same_merges(bounded, expected)


@pytest.mark.slow
def test_tiled_recording_end_to_end(shared, tmp_path, monkeypatch):
    """6 min of the libri_conv_a conversations back to back, diarized through the exact path
    (its dendrogram scipy's on the same vectors) and again forced through the bounded one:
    the same RTTM bytes."""
    import soundfile as sf

    from powerseg import Diarizer
    from powerseg.runtime.writers import rttm_lines

    rate, parts, total = 16000, [], 0
    for wav in sorted((SHARED / "audio" / "libri_conv_a" / "wav").glob("*.wav")):
        samples, file_rate = sf.read(wav, dtype="float32")
        assert file_rate == rate
        parts.append(samples)
        total += len(samples)
        if total >= 360 * rate:
            break
    path = tmp_path / "tiled.wav"
    sf.write(path, np.concatenate(parts)[:360 * rate], rate, subtype="FLOAT")
    diarizer = Diarizer(providers="cpu")
    exact = diarizer(path)
    clusters = exact.clusters
    units = unit_vectors(exact.embeddings[clusters.train_chunks, clusters.train_speakers]
                         .astype(np.float64))
    assert len(units) > 300
    np.testing.assert_array_equal(clusters.dendrogram, scipy_centroid(units))
    monkeypatch.setattr(clustering, "EXACT_LINKAGE_BYTES", 0)
    bounded = diarizer(path)
    assert "".join(rttm_lines("tiled", bounded.turns())) == \
        "".join(rttm_lines("tiled", exact.turns()))
