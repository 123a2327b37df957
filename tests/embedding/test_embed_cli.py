"""``powerseg embed`` and the embedding lines of ``powerseg info``, on real audio (bad inputs,
batches and writers, as for every command: tests/contracts/test_commands.py)."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from powerseg import Embedder
from powerseg.cli import main
from powerseg.samples import sample_path


def excerpt(tmp_path, name: str, start: float, end: float):
    samples, rate = sf.read(str(sample_path()), dtype="float32")
    path = tmp_path / name
    sf.write(path, samples[int(start * rate):int(end * rate)], rate)
    return path


def test_embed_writes_one_row_per_file(tmp_path):
    first, second = excerpt(tmp_path, "a.wav", 6, 12), excerpt(tmp_path, "b b.wav", 15, 25)
    out = tmp_path / "emb.npz"
    assert main(["embed", str(first), str(second), "--output", str(out), "--provider", "cpu"]) == 0
    with np.load(out) as data:
        assert sorted(data.files) == ["embeddings", "num_frames", "uris"]
        assert data["embeddings"].shape == (2, 192) and data["embeddings"].dtype == np.float32
        assert data["uris"].tolist() == ["a", "b_b"]
        assert data["num_frames"].tolist() == [598, 998]
        embedder = Embedder(providers="cpu")
        np.testing.assert_array_equal(data["embeddings"][1], embedder.embed(second).vector)


def test_wrong_kind_of_model_is_an_input_error(tmp_path, capsys):
    good = excerpt(tmp_path, "good.wav", 6, 12)
    assert main(["embed", str(good), "-o", str(tmp_path / "e.npz"), "--model", "fp32"]) == 1
    assert "'fp32' is the segmentation model" in capsys.readouterr().err


def test_info_lists_the_embedding_model(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "embedding model: " in out and out.count("campplus.onnx") == 1
    assert "  kind: speaker_embedding" in out and "  embedding_dim: 192" in out
    assert "  fbank_window: povey" in out and "  min_frames: 3" in out
