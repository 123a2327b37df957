"""``powerseg embed`` and the embedding lines of ``powerseg info``, on real audio."""

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


def test_bad_file_is_reported_and_skipped(tmp_path, capsys):
    good = excerpt(tmp_path, "good.wav", 6, 12)
    out = tmp_path / "emb.npz"
    assert main(["embed", str(good), str(tmp_path / "missing.wav"), "-o", str(out)]) == 1
    assert "missing.wav: no such file" in capsys.readouterr().err
    with np.load(out) as data:
        assert data["uris"].tolist() == ["good"]


def test_nothing_partial_is_written(tmp_path, capsys):
    bad = tmp_path / "text.wav"
    bad.write_text("not audio")
    out = tmp_path / "emb.npz"
    assert main(["embed", str(bad), "-o", str(out)]) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]
    assert capsys.readouterr().err.startswith("powerseg: error:")


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


def test_embed_output_dir_one_npz_per_input_resumes_and_matches_one_file(tmp_path, capsys):
    """``embed`` runs through the batch machinery like the other commands: ``--output-dir``
    (one npz per input, the same row as in the one-file npz), ``--jobs``, resume, summary."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name, start, end in (("a.wav", 6, 12), ("b.wav", 15, 25), ("c.wav", 3, 9)):
        excerpt(folder, name, start, end)
    (folder / "broken.wav").write_bytes(b"not audio")
    one = tmp_path / "all.npz"
    assert main(["embed", str(folder), "-o", str(one), "--provider", "cpu"]) == 1
    out = tmp_path / "out"
    args = ["embed", str(folder), "--output-dir", str(out), "--jobs", "2", "--provider", "cpu"]
    assert main(args) == 1
    assert "1 failed" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "_powerseg_summary.json", "a.npz", "b.npz", "c.npz"]
    with np.load(one) as together:
        for row, uri in enumerate(together["uris"].tolist()):
            with np.load(out / f"{uri}.npz") as alone:
                assert alone["uris"].tolist() == [uri]
                np.testing.assert_array_equal(alone["embeddings"][0], together["embeddings"][row])
                assert alone["num_frames"][0] == together["num_frames"][row]
    before = (out / "a.npz").read_bytes()
    assert main(args) == 1  # the broken input again; the others skipped
    assert "0 done, 3 skipped" in capsys.readouterr().err
    assert (out / "a.npz").read_bytes() == before
