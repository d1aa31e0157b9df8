import numpy as np
import pytest

faiss = pytest.importorskip("faiss", reason="retrieval needs the [index] extra (faiss-cpu)")

from unmask.inference.retrieval import build_index, knn_vote, load_index, save_index  # noqa: E402


def test_index_query_returns_itself_first(tmp_path, rng):
    emb = rng.normal(size=(50, 16)).astype(np.float32)
    items = [
        {
            "path": f"{i}.png",
            "label": "real" if i % 2 else "gan",
            "source": f"s{i % 3}",
            "split": "train",
        }
        for i in range(50)
    ]
    save_index(tmp_path / "idx", build_index(emb), items, {"model": "m", "dims": 16})
    idx = load_index(tmp_path / "idx")
    sims, ids = idx.search(emb[[7, 21]], k=5)
    assert ids[:, 0].tolist() == [7, 21]
    assert np.allclose(sims[:, 0], 1.0, atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-6).all()  # sorted by similarity


def test_ivf_index_finds_itself(rng):
    emb = rng.normal(size=(800, 8)).astype(np.float32)
    index = build_index(emb, ivf_lists=8)
    from unmask.inference.retrieval import l2_normalise

    index.nprobe = 8
    _, ids = index.search(l2_normalise(emb[:20]), 1)
    assert (ids[:, 0] == np.arange(20)).mean() >= 0.95


def test_knn_vote_majority_and_tie_break():
    items = [{"label": "a"}, {"label": "b"}, {"label": "b"}, {"label": "a"}]
    assert knn_vote(np.array([[1, 2, 0], [0, 1, -1]]), items, "label") == ["b", "a"]


def test_load_index_rejects_non_index(tmp_path):
    from unmask.errors import UnmaskError

    with pytest.raises(UnmaskError, match="not an unmask index"):
        load_index(tmp_path)


def test_index_of_a_composite_names_its_members(tmp_path, capsys):
    """A composite has no single embedding: `--member` picks one; a wrong name lists them."""
    from unmask.cli import main

    code = main(["index", str(tmp_path), "-o", str(tmp_path / "idx"), "--member", "nope"])
    err = capsys.readouterr().err
    assert code == 2 and "has members gan, frozen, blend" in err and len(err.splitlines()) == 1


def test_similar_on_a_folder_is_one_line(tmp_path, rng, capsys):
    """`unmask similar IDX some_folder` ended in StopIteration (issue 24)."""
    from doubles.models import tiny_torch_model
    from unmask.cli import main

    model = tiny_torch_model(tmp_path / "model")
    emb = rng.normal(size=(4, 8)).astype(np.float32)
    items = [
        {"path": f"{i}.png", "label": "real", "source": "s", "split": "train"} for i in range(4)
    ]
    save_index(tmp_path / "idx", build_index(emb), items, {"model": str(model), "dims": 8})
    (tmp_path / "folder").mkdir()
    for target in (tmp_path / "folder", tmp_path / "missing.jpg"):
        capsys.readouterr()
        assert main(["similar", str(tmp_path / "idx"), str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "similar looks up one IMAGE" in err, err


def test_index_write_failure_is_one_line(tmp_path, rng, monkeypatch):
    """FAISS raises RuntimeError on a full disk: one UnmaskError, no half-written file."""
    from unmask.errors import UnmaskError

    def full_disk(index, path):
        with open(path, "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("Error in faiss::FileIOWriter: ret == 1 failed: No space left on device")

    monkeypatch.setattr(faiss, "write_index", full_disk)
    emb = rng.normal(size=(4, 8)).astype(np.float32)
    items = [{"path": "a.png", "label": "real", "source": "s", "split": "train"}] * 4
    with pytest.raises(UnmaskError, match="no space left on device"):
        save_index(tmp_path / "idx", build_index(emb), items, {"model": "m", "dims": 8})
    assert not (tmp_path / "idx" / "index.faiss").exists()
