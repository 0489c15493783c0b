"""TELL online and streaming: partial_fit, dask / memmap / zarr arrays, iterators of batches."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from whyclust.models.tell import TELL


def directional_blobs(n=400, k=4, d=8, seed=0, spread=0.15, dirs=None):
    rng = np.random.RandomState(seed)
    if dirs is None:
        dirs = rng.standard_normal((k, d))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    y = rng.randint(len(dirs), size=n)
    X = rng.uniform(1.0, 3.0, size=(n, 1)) * (dirs[y] + spread * rng.standard_normal((n, d)))
    return X.astype(np.float32), y


# the directional fixtures are cosine data; euclidean runs name their metric
FAST = {"metric": "cosine", "n_init": 2, "max_iter": 8, "batch_size": 50}


class RowReader:
    """An on-disk-like array that refuses any read larger than ``limit`` rows."""

    def __init__(self, X: np.ndarray, limit: int) -> None:
        self.X, self.limit, self.reads = X, limit, []
        self.shape, self.dtype = X.shape, X.dtype

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise AssertionError(f"unexpected fancy read {key!r}")
        rows = len(range(*key.indices(self.shape[0])))
        if rows > self.limit:
            raise AssertionError(f"read {rows} rows at once")
        self.reads.append(rows)
        return self.X[key]


def test_partial_fit_initialises_then_adapts():
    X, y = directional_blobs()
    model = TELL(4, metric="cosine", batch_size=50, random_state=0)
    model.partial_fit(X[:100])
    assert model.cluster_centers_.shape == (4, 8) and model.n_steps_ == 2
    first = model.cluster_centers_.copy()
    for start in range(100, 400, 50):
        model.partial_fit(X[start : start + 50])
    assert model.n_steps_ == 8 and model.n_iter_ == 7
    assert not np.array_equal(first, model.cluster_centers_)
    np.testing.assert_allclose(np.linalg.norm(model.cluster_centers_, axis=1), 1.0, atol=1e-5)
    assert model.labels_.shape == (50,)  # labels of the last batch, as MiniBatchKMeans
    assert adjusted_rand_score(y, model.predict(X)) > 0.9


def test_partial_fit_follows_drifting_clusters():
    X, _ = directional_blobs(seed=1)
    rng = np.random.RandomState(2)
    dirs = rng.standard_normal((4, 8))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    new, y_new = directional_blobs(n=2000, seed=3, dirs=dirs)  # the clusters move
    model = TELL(4, random_state=0, **FAST).fit(X)
    frozen_score = model.score(new)
    frozen_ari = adjusted_rand_score(y_new, model.predict(new))
    for start in range(0, len(new), 50):
        model.partial_fit(new[start : start + 50])
    assert model.score(new) > frozen_score
    assert adjusted_rand_score(y_new, model.predict(new)) >= frozen_ari


def test_partial_fit_needs_enough_rows_and_same_features():
    X, _ = directional_blobs()
    with pytest.raises(ValueError, match="n_clusters"):
        TELL(4).partial_fit(X[:3])
    model = TELL(4, random_state=0).partial_fit(X)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:, :5])


def test_streams_an_array_without_reading_it_whole(monkeypatch):
    import whyclust._batches

    monkeypatch.setattr(whyclust._batches, "BLOCK_BYTES", 64 * 4 * 8)  # 64 rows of 8 float32
    X, y = directional_blobs(n=600)
    reader = RowReader(X, limit=64)
    model = TELL(4, random_state=0, init_size=40, **FAST).fit(reader)
    assert max(reader.reads) <= reader.limit
    assert model.labels_.shape == (600,)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    assert adjusted_rand_score(y, model.labels_) > 0.9


def test_dask_array_is_streamed_and_predicted():
    da = pytest.importorskip("dask.array")
    X, y = directional_blobs(n=600)
    dX = da.from_array(X, chunks=(128, 8))
    model = TELL(4, random_state=0, **FAST).fit(dX)
    assert adjusted_rand_score(y, model.labels_) > 0.9
    np.testing.assert_array_equal(model.predict(dX), model.predict(X))
    np.testing.assert_allclose(model.transform(dX), model.transform(X), rtol=1e-6)
    model.partial_fit(dX[:200])


def test_memmap_and_zarr(tmp_path):
    X, y = directional_blobs(n=500)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=X.dtype, shape=X.shape)
    mm[:] = X
    mm.flush()
    ro = np.load(tmp_path / "x.npy", mmap_mode="r")
    model = TELL(4, random_state=0, **FAST).fit(ro)
    assert adjusted_rand_score(y, model.labels_) > 0.9
    np.testing.assert_array_equal(model.predict(ro), model.predict(X))
    zarr = pytest.importorskip("zarr")
    z = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=X.shape, chunks=(100, 8),
                        dtype="float32")  # fmt: skip
    z[:] = X
    zmodel = TELL(4, random_state=0, **FAST).fit(z)
    assert adjusted_rand_score(y, zmodel.labels_) > 0.9
    np.testing.assert_array_equal(zmodel.predict(z), zmodel.predict(X))


def test_iterator_of_batches_is_read_once():
    X, y = directional_blobs(n=2000)
    batches = (X[s : s + 100] for s in range(0, len(X), 100))
    model = TELL(4, random_state=0, init_size=300, **FAST).fit(batches)
    assert model.n_iter_ == 1  # one pass: an iterator cannot be rewound
    assert model.labels_.shape == (2000,)
    assert adjusted_rand_score(y, model.predict(X)) > 0.9
    assert adjusted_rand_score(y, model.labels_) > 0.8


def test_reiterable_source_gives_several_epochs():
    X, y = directional_blobs(n=600)

    class Chunks:
        def __iter__(self):
            return (X[s : s + 128] for s in range(0, len(X), 128))

    model = TELL(4, random_state=0, tol=0.0, **FAST).fit(Chunks())
    assert model.n_iter_ == FAST["max_iter"]
    assert adjusted_rand_score(y, model.labels_) > 0.9
    with pytest.raises(ValueError, match="empty"):
        TELL(4).fit(iter([]))


def test_encoder_mode_refuses_a_one_shot_iterator():
    X, _ = directional_blobs(n=100)
    with pytest.raises(ValueError, match="one-shot"):
        TELL(3, encoder="mlp").fit(iter([X]))


def test_euclidean_partial_fit_and_streams_match_in_memory(tmp_path):
    from sklearn.datasets import make_blobs

    X, y = make_blobs(600, centers=4, n_features=5, cluster_std=1.0, random_state=0)
    X = X.astype(np.float32)
    model = TELL(4, batch_size=50, random_state=0)
    assert model.metric == "auto"
    model.partial_fit(X[:100])
    assert model.metric_ == "euclidean"
    for start in range(100, 600, 50):
        model.partial_fit(X[start : start + 50])
    assert adjusted_rand_score(y, model.predict(X)) > 0.95
    # the same fit from memory, a memmap and re-iterable chunks
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=X.dtype, shape=X.shape)
    mm[:] = X
    mm.flush()
    full = TELL(4, random_state=0, n_init=2, batch_size=50).fit(X)
    ro = TELL(4, random_state=0, n_init=2, batch_size=50).fit(np.load(tmp_path / "x.npy",
                                                                     mmap_mode="r"))
    assert adjusted_rand_score(full.labels_, ro.labels_) > 0.99
    assert adjusted_rand_score(y, full.labels_) > 0.95
