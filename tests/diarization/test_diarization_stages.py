"""Each diarization stage from pyannote's own previous stage, on every shared file.

The reference npz holds what pyannote.audio 4.0.7's SpeakerDiarization computed at each stage
(binarized segmentation, count, embeddings, clusters, discrete diarization, RTTM). Feeding
powerseg's stage the reference's input isolates it: count, clustering and reconstruction are
deterministic numpy/scipy, so they must give pyannote's arrays exactly. The one exception is
written down where it is: reconstruction ranks clusters with numpy's argsort, whose order
for exactly equal activations depends on the CPU's sorting kernel.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import SHARED
from powerseg.runtime.diarization.clustering import cluster
from powerseg.runtime.framing import Framing
from powerseg.runtime.segmentation.model import SegmentationModel
from powerseg.runtime.diarization.diarizer import Turn
from powerseg.runtime.diarization.reconstruct import (cluster_activations, column_turns, reconstruct,
                                                      speaker_count, speaker_labels)
from powerseg.runtime.writers import rttm_lines

DIARIZATION = SHARED / "reference" / "diarization"
SETS = ("pyannote_sample", "ami_pyannote_debug", "librispeech_sim_a", "libri_conv_a")
THRESHOLD, MIN_CLUSTER_SIZE = 0.86, 12  # params.json


def diarization_files() -> list[tuple[str, str]]:
    if not DIARIZATION.is_dir():
        return []
    return [(name, uri) for name in SETS
            for uri in sorted(json.loads((DIARIZATION / name / "index.json").read_text()))]


FILES = diarization_files()
IDS = [uri for _, uri in FILES]


@pytest.fixture(scope="module")
def framing(shared) -> Framing:
    return Framing(SegmentationModel("fp32", providers="cpu").spec, 1.0)


def stages(name: str, uri: str) -> dict[str, np.ndarray]:
    with np.load(DIARIZATION / name / f"{uri}.npz") as data:
        return dict(data)


def check_discrete(got: np.ndarray, expected: np.ndarray, activations_of) -> None:
    """Equal, except that a frame whose count-th and next cluster tie exactly may pick either."""
    assert got.shape == expected.shape
    differ = np.flatnonzero((got != expected).any(axis=1))
    if len(differ):
        activations = activations_of()
        for t in differ:
            on, off = activations[t][got[t] == 1], activations[t][got[t] == 0]
            assert got[t].sum() == expected[t].sum(), t
            assert on.min(initial=np.inf) >= off.max(initial=-np.inf), t  # still a top-count choice
    assert len(differ) <= 0.001 * len(got)


@pytest.mark.parametrize(("name", "uri"), FILES, ids=IDS)
def test_speaker_count(name, uri, framing):
    ref = stages(name, uri)
    np.testing.assert_array_equal(speaker_count(ref["binarized"].astype(np.float32), framing),
                                  ref["count"])


@pytest.mark.parametrize("oracle", [False, True], ids=["threshold", "num_speakers"])
@pytest.mark.parametrize(("name", "uri"), FILES, ids=IDS)
def test_clustering_and_reconstruction(name, uri, oracle, framing):
    ref = stages(name, uri)
    if "hard_clusters" not in ref:
        pytest.skip(f"{uri}: pyannote found no speech (count is 0 everywhere), nothing clustered")
    pre = "oracle_" if oracle else ""
    num = int(ref["num_speakers_oracle"]) if oracle else None
    binarized = ref["binarized"].astype(np.float32)
    got = cluster(ref["embeddings"], binarized, THRESHOLD, MIN_CLUSTER_SIZE, num_clusters=num)
    np.testing.assert_array_equal(got.train_chunks, ref["train_chunk_idx"])
    np.testing.assert_array_equal(got.train_speakers, ref["train_speaker_idx"])
    if pre + "train_clusters" in ref:  # absent when fewer than two embeddings were kept
        # the same numpy/scipy float operations as pyannote: the same bits
        np.testing.assert_array_equal(got.dendrogram, ref[pre + "dendrogram"])
        np.testing.assert_array_equal(got.train_clusters, ref[pre + "train_clusters"])
        np.testing.assert_array_equal(got.centroids, ref[pre + "centroids"])
        np.testing.assert_array_equal(got.soft, ref[pre + "soft_clusters"])
    np.testing.assert_array_equal(got.hard, ref[pre + "hard_clusters"])

    count = ref["count"] if num is None else np.minimum(ref["count"], num)

    def activations():
        return cluster_activations(binarized, got.hard, framing, ref[pre + "discrete"].shape[1])

    check_discrete(reconstruct(binarized, got.hard, count, framing), ref[pre + "discrete"],
                   activations)
    if not oracle:
        check_discrete(reconstruct(binarized, got.hard, np.minimum(count, 1), framing),
                       ref["exclusive_discrete"], activations)


@pytest.mark.parametrize("kind", ["", "exclusive_", "oracle_"])
@pytest.mark.parametrize(("name", "uri"), FILES, ids=IDS)
def test_turns_and_rttm_from_discrete(name, uri, kind, framing):
    """pyannote's discrete diarization -> exactly pyannote's RTTM lines and label order."""
    ref = stages(name, uri)
    suffix = {"": "", "exclusive_": ".exclusive", "oracle_": ".oracle"}[kind]
    expected = (DIARIZATION / name / f"{uri}{suffix}.rttm").read_text()
    if kind + "discrete" not in ref:
        assert expected == ""
        return
    turns = column_turns(ref[kind + "discrete"], framing)
    # exclusive turns carry the labels of the diarization they come from
    labels = speaker_labels(turns if kind != "exclusive_" else column_turns(ref["discrete"], framing))
    columns = ref["oracle_label_columns" if kind == "oracle_" else "label_columns"]
    assert list(labels) == [int(c) for c in columns]
    lines = rttm_lines(uri, [Turn(s, e, labels[c]) for s, e, c in turns])
    assert "".join(lines) == expected
