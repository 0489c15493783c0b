"""The torch-free k-means engine of the streaming functions (``whyclust._neon_numpy``).

It must compute what the torch engine computes: the same scores, assignments, beta and
relevance, to float64 rounding, and in float32 no further from the float64 result than the
torch engine is. A process that only streams a k-means model must never import torch.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import whyclust as wc
from whyclust._neon_numpy import NumpyKMeans, kmeans_centers
from whyclust.scale import explain_to, predict_stream


def _problem(seed: int, n: int, k: int, d: int, offset: float, dtype):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d)) + offset
    X = centers[rng.integers(0, k, n)] + rng.normal(size=(n, d))
    return centers.astype(dtype), X.astype(dtype)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 150),
    k=st.integers(2, 12),
    d=st.integers(1, 40),
    offset=st.sampled_from([0.0, 1000.0]),
    beta=st.sampled_from(["auto", 0.0, float("inf"), 0.3, 2.5]),
    target_kind=st.sampled_from(["assigned", "random", "int"]),
    batch=st.integers(1, 64),
)
def test_float64_engines_agree(seed, n, k, d, offset, beta, target_kind, batch) -> None:
    centers, X = _problem(seed, n, k, d, offset, np.float64)
    rng = np.random.default_rng(seed + 1)
    target = {"assigned": "assigned", "int": int(rng.integers(k)),
              "random": rng.integers(0, k, n)}[target_kind]  # fmt: skip
    ref = wc.explain(wc.neuralize(centers), X, target=target, beta=beta)
    out = np.empty_like(X)
    e = explain_to(centers, X, out, target=target, beta=beta, batch_size=batch)
    scale = max(1.0, float(np.abs(ref.relevance).max()))
    np.testing.assert_allclose(out, ref.relevance, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(e.logit, ref.logit, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_array_equal(e.cluster, ref.cluster)
    np.testing.assert_array_equal(e.target, ref.target)
    assert e.beta == pytest.approx(ref.beta, rel=1e-12)
    # conservation: every row's relevance sums to its logit
    np.testing.assert_allclose(out.sum(1), e.logit, rtol=0, atol=1e-9 * scale)
    np.testing.assert_array_equal(predict_stream(centers, X, batch_size=batch), ref.cluster)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    k=st.integers(2, 12),
    d=st.integers(1, 60),
    offset=st.sampled_from([0.0, 1000.0]),
    beta=st.sampled_from([0.0, float("inf"), 0.3]),
    random_target=st.booleans(),
)
def test_float32_as_accurate_as_torch(seed, k, d, offset, beta, random_target) -> None:
    centers, X64 = _problem(seed, 64, k, d, offset, np.float64)
    X32, c32 = X64.astype(np.float32), centers.astype(np.float32)
    truth = wc.explain(wc.neuralize(centers), X64, beta=beta)
    # fixed targets: at a near-tie float32 may assign differently, and "assigned" would
    # then explain another logit altogether
    target = np.random.default_rng(seed).integers(0, k, 64) if random_target else truth.cluster
    truth = wc.explain(wc.neuralize(centers), X64, target=target, beta=beta)
    by_torch = wc.explain(wc.neuralize(c32), X32, target=target, beta=beta).relevance
    by_numpy = explain_to(c32, X32, np.empty_like(X32), target=target, beta=beta).relevance
    scale = float(np.abs(truth.relevance).max())
    err_torch = float(np.abs(by_torch - truth.relevance).max())
    err_numpy = float(np.abs(by_numpy - truth.relevance).max())
    assert err_numpy <= 4 * err_torch + 1e-5 * scale


def test_contrast_and_images() -> None:
    centers, X = _problem(3, 300, 4, 36, 0.0, np.float32)
    images = X.reshape(300, 1, 6, 6)
    other = (wc.neuralize(centers).predict(X) + 1) % 4
    ref = wc.explain(centers, images, contrast=other)
    out = np.empty_like(images)
    e = explain_to(centers, images, out, contrast=other, batch_size=70)
    assert e.method == ref.method == "neon-contrast" and e.beta is None
    np.testing.assert_allclose(out, ref.relevance, rtol=0, atol=1e-5 * np.abs(ref.relevance).max())
    np.testing.assert_array_equal(e.contrast, other)
    with pytest.raises(ValueError, match="differ"):
        explain_to(centers, X, np.empty_like(X), target=0, contrast=0)


def test_engine_choice() -> None:
    from sklearn.cluster import KMeans

    _, X = _problem(0, 200, 3, 5, 0.0, np.float64)
    km = KMeans(3, n_init=1, random_state=0).fit(X)
    np.testing.assert_array_equal(kmeans_centers(km), km.cluster_centers_)
    np.testing.assert_array_equal(kmeans_centers(wc.neuralize(km)), km.cluster_centers_)
    assert kmeans_centers(wc.TELL(3, random_state=0).fit(X)) is None  # normalises inputs
    assert kmeans_centers([[0.0], [1.0]]) is None  # lists go through wc.neuralize
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        kmeans_centers(KMeans(3))
    with pytest.raises(ValueError, match="at least 2 clusters"):
        kmeans_centers(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="NaN"):
        kmeans_centers(np.array([[0.0, np.nan], [1.0, 1.0]]))


def test_nan_row_reported_with_its_global_index() -> None:
    centers, X = _problem(0, 500, 3, 4, 0.0, np.float32)
    X[333, 2] = np.nan
    with pytest.raises(ValueError, match="row 333"):
        explain_to(centers, X, np.empty_like(X), batch_size=100)
    with pytest.raises(ValueError, match="row 333"):
        predict_stream(centers, X, batch_size=100)


def test_eps_stabilises_like_torch() -> None:
    # points exactly on a boundary with a non-assigned target: 1 / h needs the stabiliser
    centers = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    X = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    for eps in (None, 1e-3):
        kw = {} if eps is None else {"eps": eps}
        ref = wc.explain(centers, X, target=2, beta=1.0, **kw)
        e = explain_to(centers, X, np.empty_like(X), target=2, beta=1.0, **kw)
        assert np.isfinite(e.relevance).all()
        # 1 / (h + eps) amplifies rounding by 1 / eps: equal to 1e-9 of the largest value
        scale = float(np.abs(ref.relevance).max())
        np.testing.assert_allclose(e.relevance, ref.relevance, rtol=0, atol=1e-9 * scale)


def test_numpy_kmeans_pieces() -> None:
    centers, X = _problem(5, 50, 5, 7, 0.0, np.float64)
    engine = NumpyKMeans(centers, np.float64)
    scores = engine.scores(engine.prepare(X))
    direct = -((X[:, None, :] - centers[None]) ** 2).sum(-1)  # s_k up to a per-row constant
    np.testing.assert_allclose(scores - scores[:, :1], direct - direct[:, :1], atol=1e-9)
    top = np.sort(direct, 1)
    np.testing.assert_allclose(engine.assigned_logits(scores), top[:, -1] - top[:, -2],
                               atol=1e-9)  # fmt: skip


_NO_TORCH = textwrap.dedent(
    """
    import sys
    import numpy as np
    from sklearn.cluster import KMeans
    import whyclust as wc
    from whyclust.scale import explain_to, predict_stream

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 12)).astype(np.float32)
    km = KMeans(4, n_init=1, random_state=0).fit(X)
    out = np.empty_like(X)
    e = explain_to(km, X, out)
    labels = predict_stream(km.cluster_centers_, X)
    assert (labels == e.cluster).all()
    np.save(sys.argv[1] + "/x.npy", X)
    wc.save(km, sys.argv[1] + "/km.safetensors")
    from whyclust.cli import main
    rc = main(["explain", sys.argv[1] + "/km.safetensors", sys.argv[1] + "/x.npy",
               "-o", sys.argv[1] + "/r.npy", "-q"])
    assert rc == 0, rc
    print("torch" in sys.modules)
    """
)


def test_streaming_a_kmeans_model_never_imports_torch(tmp_path) -> None:
    res = subprocess.run([sys.executable, "-c", _NO_TORCH, str(tmp_path)], capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "False"
    rel = np.load(tmp_path / "r.npy")
    X = np.load(tmp_path / "x.npy")
    ref = wc.explain(wc.load(tmp_path / "km.safetensors"), X)
    np.testing.assert_allclose(rel, ref.relevance, rtol=0, atol=1e-5 * np.abs(ref.relevance).max())
