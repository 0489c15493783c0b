"""Dask, distributed and bounded-memory streaming explanations equal the in-memory ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans

import whyclust as wc
from whyclust.scale import explain_dask, explain_to, predict_dask, predict_stream

da = pytest.importorskip("dask.array", reason="dask is an optional extra (whyclust[dask])")
import dask  # noqa: E402


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, KMeans]:
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=4.0, size=(5, 9))
    X = (centers[rng.integers(0, 5, 1500)] + rng.normal(size=(1500, 9))).astype(np.float32)
    return X, KMeans(5, n_init=1, random_state=0).fit(X)


@pytest.fixture(autouse=True)
def _synchronous_dask():
    with dask.config.set(scheduler="synchronous"):
        yield


def _close(a, b, dtype=np.float32) -> None:
    a, b = np.asarray(a), np.asarray(b)
    scale = max(1.0, float(np.abs(b).max()))
    tol = 1e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(a, b, rtol=0, atol=tol * scale)


# -- dask -------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    rows=st.integers(40, 1600),
    cols=st.integers(1, 9),
    float64=st.booleans(),
    beta=st.sampled_from(["auto", 0.0, 0.7, float("inf")]),
)
def test_dask_equals_in_memory(data, rows, cols, float64, beta) -> None:
    X, km = data
    X = X.astype(np.float64) if float64 else X
    ref = wc.explain(km, X, beta=beta)
    e = wc.explain(km, da.from_array(X, chunks=(rows, cols)), beta=beta)
    assert isinstance(e.relevance, da.Array) and isinstance(e.logit, da.Array)
    assert e.relevance.chunks[1] == (9,)  # columns in one chunk
    rel, logit, cluster, target = dask.compute(e.relevance, e.logit, e.cluster, e.target)
    assert rel.dtype == X.dtype and rel.shape == X.shape
    assert e.beta == pytest.approx(ref.beta, rel=1e-6 if X.dtype == np.float32 else 1e-12)
    _close(rel, ref.relevance, X.dtype)
    _close(logit, ref.logit, X.dtype)
    np.testing.assert_array_equal(cluster, ref.cluster)
    np.testing.assert_array_equal(target, ref.target)
    _close(rel.sum(1), logit, X.dtype)  # conservation survives the chunking


def test_dask_target_contrast_and_images(data) -> None:
    X, km = data
    rng = np.random.default_rng(1)
    tgt = rng.integers(0, 5, X.shape[0])
    Xd = da.from_array(X, chunks=400)
    for t in (tgt, da.from_array(tgt, chunks=350), 3):
        e = wc.explain(km, Xd, target=t, beta=0.5)
        ref = wc.explain(km, X, target=np.asarray(t), beta=0.5)
        _close(e.relevance.compute(), ref.relevance)
        np.testing.assert_array_equal(e.target.compute(), ref.target)
    other = (km.predict(X) + 2) % 5
    e = wc.explain(km, Xd, contrast=other)
    ref = wc.explain(km, X, contrast=other)
    assert e.method == ref.method == "neon-contrast" and e.beta is None
    _close(e.relevance.compute(), ref.relevance)
    np.testing.assert_array_equal(e.contrast.compute(), other)

    # (n, C, H, W) input keeps its shape; a flat k-means head explains it
    km_img = KMeans(3, n_init=1, random_state=0).fit(X[:, :8])
    imgs = X[:, :8].reshape(-1, 2, 2, 2)
    e = wc.explain(km_img, da.from_array(imgs, chunks=(500, 1, 2, 2)))
    ref = wc.explain(km_img, imgs)
    assert e.relevance.shape == imgs.shape
    _close(e.relevance.compute(), ref.relevance)


def test_dask_one_pass_shares_tasks_and_network_is_one_key() -> None:
    rng = np.random.default_rng(2)
    centers = rng.normal(size=(10, 4000))  # 320 kB of float64
    n_chunks = 40
    X = da.ones((n_chunks * 5, 4000), chunks=(5, 1000))
    e = explain_dask(centers, X, beta=1.0)
    graph = dict(e.relevance.__dask_graph__())
    net_keys = [k for k in graph if str(k).startswith("whyclust-network-")]
    assert len(net_keys) == 1
    import cloudpickle

    # the network travels once, not once per task: the graph is not n_chunks times the net
    assert len(cloudpickle.dumps(graph)) < 3 * centers.nbytes
    # the fields are views of one record array: computed together, NEON runs once per chunk
    def explain_keys(arr) -> set:
        return {k for k in dict(arr.__dask_graph__()) if str(k[0]).startswith("whyclust-explain")}

    assert len(explain_keys(e.relevance)) == n_chunks
    assert explain_keys(e.relevance) == explain_keys(e.logit) == explain_keys(e.cluster)


def test_predict_dask(data) -> None:
    X, km = data
    labels = predict_dask(km, da.from_array(X, chunks=(333, 4)))
    assert isinstance(labels, da.Array) and labels.dtype == np.int64
    np.testing.assert_array_equal(labels.compute(), km.predict(X))


def test_dask_bad_input(data) -> None:
    X, km = data
    Xd = da.from_array(X, chunks=500)
    with pytest.raises(ValueError, match="features"):
        wc.explain(km, Xd[:, :5])
    with pytest.raises(ValueError, match="unknown row chunk"):
        wc.explain(km, Xd[Xd[:, 0] > 0])
    with pytest.raises(TypeError, match="numeric"):
        wc.explain(km, da.from_array(np.full((4, 9), "a")))
    with pytest.raises(ValueError, match="shape"):
        wc.explain(km, Xd, target=np.zeros(7, dtype=int))
    with pytest.raises(ValueError, match="beta"):
        wc.explain(km, Xd, beta="large")
    with pytest.raises(TypeError, match="dask array"):
        explain_dask(km, X)
    # options are checked at the call, not when the arrays are computed
    with pytest.raises(TypeError, match="does not take bogus="):
        wc.explain(km, Xd, bogus=1)
    with pytest.raises(ValueError, match="target clusters"):
        wc.explain(km, Xd, target=km.n_clusters)
    # NaN is found when the chunk is computed
    bad = X.copy()
    bad[1234, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        wc.explain(km, da.from_array(bad, chunks=500), beta=1.0).relevance.compute()


@pytest.mark.slow
def test_distributed_local_cluster(data) -> None:
    distributed = pytest.importorskip("distributed")
    X, km = data
    ref = wc.explain(km, X)
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        Xd = da.from_array(X, chunks=300)
        e = wc.explain(km, Xd)
        with distributed.get_task_stream(client) as stream:
            rel, logit, cluster_ = client.compute([e.relevance, e.logit, e.cluster], sync=True)
        labels = predict_dask(km, Xd).compute()
        addresses = set(client.scheduler_info()["workers"])
    assert len(addresses) == 2  # two worker processes
    # the explain tasks ran in those worker processes
    workers = {t["worker"] for t in stream.data if "whyclust-explain" in str(t["key"])}
    assert workers and workers <= addresses
    assert e.beta == pytest.approx(ref.beta, rel=1e-6)
    _close(rel, ref.relevance)
    _close(logit, ref.logit)
    np.testing.assert_array_equal(cluster_, ref.cluster)
    np.testing.assert_array_equal(labels, km.predict(X))


# -- dask-ml ----------------------------------------------------------------------------


def test_dask_ml_kmeans_neuralized(data) -> None:
    try:
        from dask_ml.cluster import KMeans as DaskKMeans
    except Exception as exc:  # dask-ml can break on newer dask / sklearn
        pytest.skip(f"dask-ml is not importable with this dask / scikit-learn: {exc}")
    from sklearn.exceptions import NotFittedError

    X, _ = data
    Xd = da.from_array(X, chunks=500)
    model = DaskKMeans(n_clusters=4, random_state=0, init_max_iter=3).fit(Xd)
    assert type(model).__module__.startswith("dask_ml.")
    net = wc.neuralize(model)
    with torch.no_grad():
        logits = net(torch.from_numpy(X))
    np.testing.assert_array_equal(logits.argmax(1).numpy(), model.predict(Xd).compute())
    assert bool((logits.amax(1) >= 0).all())
    e = wc.explain(model, Xd)
    _close(e.relevance.compute(), wc.explain(model, X).relevance)
    with pytest.raises(NotFittedError):
        wc.neuralize(DaskKMeans(n_clusters=3))


def test_neuralize_device_argument(data) -> None:
    _, km = data
    net = wc.neuralize(km, device="cpu")
    assert net.device.type == "cpu"
    with pytest.raises((RuntimeError, ValueError)):
        wc.neuralize(km, device="no-such-device")


# -- streaming to memmap / zarr ---------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(batch=st.integers(20, 1600), beta=st.sampled_from(["auto", 0.3]))
def test_explain_to_equals_in_memory(data, batch, beta) -> None:
    X, km = data
    ref = wc.explain(km, X, beta=beta)
    out = np.full(X.shape, np.nan, dtype=np.float32)
    e = explain_to(km, X, out, batch_size=batch, beta=beta)
    assert e.relevance is out
    assert e.beta == pytest.approx(ref.beta, rel=1e-6)
    _close(out, ref.relevance)
    _close(e.logit, ref.logit)
    np.testing.assert_array_equal(e.cluster, ref.cluster)


def test_explain_to_memmap_files(data, tmp_path) -> None:
    X, km = data
    src = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32,
                                    shape=X.shape)
    src[:] = X
    src.flush()
    del src
    Xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    out = np.lib.format.open_memmap(tmp_path / "r.npy", mode="w+", dtype=np.float32,
                                    shape=X.shape)
    tgt = np.random.default_rng(3).integers(0, 5, X.shape[0])
    e = explain_to(km, Xm, out, batch_size=257, target=tgt)
    out.flush()
    del out
    # pages handed back to the kernel after each batch are written to and re-read from disk;
    # the reference is the same (numpy) engine in memory, because relevance for
    # non-assigned targets is ill-conditioned near boundaries: engines with different BLAS
    # differ there by more than rounding (tests/test_neon_numpy.py bounds that difference)
    ref = explain_to(km, X, np.empty_like(X), target=tgt)
    _close(np.load(tmp_path / "r.npy"), ref.relevance)
    np.testing.assert_array_equal(e.target, tgt)
    np.testing.assert_array_equal(predict_stream(km, Xm, batch_size=300), km.predict(X))
    np.testing.assert_array_equal(Xm, X)  # the input is untouched


def test_dropped_pages_keep_written_data(tmp_path) -> None:
    from whyclust.scale._pages import _drop_pages

    m = np.memmap(tmp_path / "a.bin", mode="w+", dtype=np.float64, shape=(4096, 8))
    values = np.arange(m.size, dtype=np.float64).reshape(m.shape)
    m[:] = values
    _drop_pages(m)
    np.testing.assert_array_equal(m, values)  # re-read from the page cache / file


def test_explain_to_zarr_and_contrast(data, tmp_path) -> None:
    zarr = pytest.importorskip("zarr")
    X, km = data
    zx = zarr.open_array(tmp_path / "x.zarr", mode="w", shape=X.shape, chunks=(200, 9),
                         dtype="float32")
    zx[:] = X
    zr = zarr.open_array(tmp_path / "r.zarr", mode="w", shape=X.shape, chunks=(200, 9),
                         dtype="float32")
    other = (km.predict(X) + 1) % 5
    e = explain_to(km, zx, zr, contrast=other, batch_size=400)
    ref = wc.explain(km, X, contrast=other)
    _close(zr[:], ref.relevance)
    assert e.method == "neon-contrast" and e.beta is None
    np.testing.assert_array_equal(e.contrast, other)
    # a dask array backed by the zarr store streams too
    e2 = explain_to(km, da.from_zarr(zx), np.empty(X.shape, np.float32))
    _close(e2.relevance, wc.explain(km, X).relevance)


def test_explain_to_bad_input(data) -> None:
    X, km = data
    with pytest.raises(ValueError, match="out must have shape"):
        explain_to(km, X, np.empty((10, 9), np.float32))
    with pytest.raises(TypeError, match="floating"):
        explain_to(km, X, np.empty(X.shape, np.int32))
    with pytest.raises(TypeError, match="writable"):
        explain_to(km, X, [[0.0] * 9])
    with pytest.raises(TypeError, match="to_zarr"):
        explain_to(km, X, da.zeros(X.shape, dtype=np.float32))
    with pytest.raises(TypeError, match="sliceable"):
        explain_to(km, X.tolist(), np.empty(X.shape, np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        explain_to(km, X, np.empty(X.shape, np.float32), batch_size=0)
    with pytest.raises(ValueError, match="features"):
        predict_stream(km, X[:, :4])
    with pytest.raises(ValueError, match="target"):
        explain_to(km, X, np.empty(X.shape, np.float32), target=np.zeros(3, int))


def test_deep_encoder_dask_and_streaming_use_global_bounds(data) -> None:
    X, _ = data
    X = X[:600]
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(9, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        Z = encoder(torch.from_numpy(X)).numpy()
    net = wc.neuralize((encoder, KMeans(4, n_init=1, random_state=0).fit(Z).cluster_centers_))
    ref = wc.explain(net, X)  # ZBox bounds default to the range of all of X
    # chunks and batches see narrower ranges; the global range must be used everywhere
    e = wc.explain(net, da.from_array(X, chunks=100))
    rel, logit = dask.compute(e.relevance, e.logit)
    assert e.beta == pytest.approx(ref.beta, rel=1e-5)
    _close(rel, ref.relevance, np.float32)
    _close(logit, ref.logit, np.float32)
    out = np.empty_like(X)
    explain_to(net, X, out, batch_size=100)
    _close(out, ref.relevance, np.float32)
    # given bounds pass through unchanged
    ref_b = wc.explain(net, X, bounds=(-20.0, 20.0))
    _close(wc.explain(net, da.from_array(X, chunks=100), bounds=(-20.0, 20.0))
           .relevance.compute(), ref_b.relevance, np.float32)


def test_tell_through_dask(data) -> None:
    if not hasattr(wc, "TELL"):
        pytest.skip("TELL is not part of this build")
    X, _ = data
    model = wc.TELL(n_clusters=5, n_init=1, max_iter=3, random_state=0).fit(X)
    ref = wc.explain(model, X)
    e = wc.explain(model, da.from_array(X, chunks=400))
    rel, cluster = dask.compute(e.relevance, e.cluster)
    np.testing.assert_array_equal(cluster, model.predict(X))
    assert e.beta == pytest.approx(ref.beta, rel=1e-5)
    _close(rel, ref.relevance)
    np.testing.assert_array_equal(predict_dask(model, da.from_array(X, chunks=400)).compute(),
                                  model.predict(X))


def test_read_only_output_is_refused_before_any_write(tmp_path):
    """With torch loaded (this module imports it), a read-only memmap must not reach torch's
    in-place writes."""
    X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    km = KMeans(3, n_init=1, random_state=0).fit(X)
    np.save(tmp_path / "r.npy", np.zeros(X.shape, np.float32))
    out = np.load(tmp_path / "r.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="read-only"):
        explain_to(km, X, out)


def _models_with_mean_references(X):
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(9, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        Z = encoder(torch.from_numpy(X.astype(np.float32))).numpy()
    deep = wc.neuralize((encoder, KMeans(4, n_init=1, random_state=0).fit(Z).cluster_centers_))
    pipe = make_pipeline(StandardScaler(), PCA(4, random_state=0), KMeans(4, n_init=1,
                                                                          random_state=0))
    return {
        "kmeans": KMeans(4, n_init=1, random_state=0).fit(X),  # its own (training) mean
        "network": wc.neuralize(KMeans(4, n_init=1, random_state=0).fit(X)),  # X's mean
        "mixture": GaussianMixture(3, random_state=0).fit(X),
        "pipeline": pipe.fit(X),
        "deep": deep,
        "tell-cosine": wc.TELL(n_clusters=4, metric="cosine", max_iter=3, random_state=0).fit(X),
    }


@pytest.mark.parametrize("name", ["kmeans", "network", "mixture", "pipeline", "deep",
                                  "tell-cosine"])
def test_mean_reference_is_one_point_for_all_batches_and_chunks(data, name) -> None:
    # batches and chunks must not each use their own mean: results equal the in-memory ones
    X = data[0][:300].astype(np.float64)
    model = _models_with_mean_references(X[:200])[name]
    ref = wc.explain(model, X, reference="mean")
    out = np.empty_like(X)
    e = explain_to(model, X, out, batch_size=37, reference="mean")
    _close(out, ref.relevance, np.float32 if name == "deep" else np.float64)
    rows = {k: v for k, v in ref.extras.items()
            if isinstance(v, np.ndarray) and v.ndim and v.shape[0] == len(X)}  # fmt: skip
    assert set(rows) <= set(e.extras)  # per-point extras (reference part, ...) are joined
    assert name != "deep" or {"reference_part", "conservation"} <= set(rows)
    for key, value in rows.items():
        np.testing.assert_allclose(e.extras[key], value, rtol=1e-4, atol=1e-6)
    e = wc.explain(model, da.from_array(X, chunks=41), reference="mean")
    _close(e.relevance.compute(), ref.relevance, np.float32 if name == "deep" else np.float64)


@pytest.mark.parametrize("name", ["kmeans", "network", "mixture", "pipeline", "deep",
                                  "tell-cosine"])
def test_a_reference_per_point_is_sliced_with_the_batches_and_chunks(data, name) -> None:
    X = data[0][:300].astype(np.float64)
    model = _models_with_mean_references(X[:200])[name]
    refs = np.random.default_rng(1).permutation(X)  # another point for every point
    try:
        ref = wc.explain(model, X, reference=refs)
    except ValueError as exc:  # design B takes one point
        assert name == "deep" and "reference" in str(exc)
        return
    tol = np.float32 if name == "deep" else np.float64
    out = np.empty_like(X)
    explain_to(model, X, out, batch_size=37, reference=refs)
    _close(out, ref.relevance, tol)
    for rows in (refs, da.from_array(refs, chunks=55)):
        e = wc.explain(model, da.from_array(X, chunks=41), reference=rows)
        _close(e.relevance.compute(), ref.relevance, tol)
    with pytest.raises(ValueError, match="reference has 299 rows, X has 300"):
        explain_to(model, X, out, batch_size=37, reference=refs[:-1])


@pytest.mark.parametrize("method", ["gradient_x_input", "integrated_gradients"])
def test_mean_baseline_is_one_point_for_all_batches_and_chunks(data, method) -> None:
    X, km = data
    X = X[:120]
    opts = {"baseline": "mean"} | ({"n_steps": 8} if method == "integrated_gradients" else {})
    ref = wc.explain(km, X, method=method, **opts)
    out = np.empty_like(X)
    explain_to(km, X, out, method=method, batch_size=25, **opts)
    _close(out, ref.relevance)
    e = wc.explain(km, da.from_array(X, chunks=30), method=method, **opts)
    _close(e.relevance.compute(), ref.relevance)


def test_dask_graph_names_tell_option_values_apart(data) -> None:
    X, km = data
    dX = da.from_array(X[:100], chunks=50)
    a = wc.explain(km, dX, reference=X[0])
    b = wc.explain(km, dX, reference=X[1])
    assert a.relevance.name != b.relevance.name
    assert not np.allclose(a.relevance.compute(), b.relevance.compute())


def test_cosine_tell_reads_a_reference_as_a_point_of_input_space(data) -> None:
    X = data[0][:80].astype(np.float64)
    model = wc.TELL(n_clusters=3, metric="cosine", max_iter=3, random_state=0).fit(X)
    m = np.abs(X).mean(0)
    a, b = wc.explain(model, X, reference=m), wc.explain(model, X, reference=5 * m)
    _close(b.relevance, a.relevance, np.float64)  # the model ignores scale, and so must this
