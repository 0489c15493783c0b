"""The one array-API NEON engine (``whyclust.engine``) on numpy and on torch.

The same lines must give the same scores, assignments, beta and relevance in both
namespaces, to float64 rounding; streaming must equal the in-memory pass; float32 must stay
close to an independent float64 formula; and explaining or streaming a k-means model on
numpy must never import torch.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import whyclust as wc
from whyclust.engine.kmeans import KMeansGeometry, assigned_logits
from whyclust.explainers.kmeans import explain_kmeans, kmeans_centers
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
def test_numpy_torch_and_streaming_agree(seed, n, k, d, offset, beta, target_kind, batch) -> None:
    import torch

    centers, X = _problem(seed, n, k, d, offset, np.float64)
    rng = np.random.default_rng(seed + 1)
    target = {"assigned": "assigned", "int": int(rng.integers(k)),
              "random": rng.integers(0, k, n)}[target_kind]  # fmt: skip
    ref = wc.explain(centers, X, target=target, beta=beta)
    from_tensor = explain_kmeans(torch.from_numpy(centers), X, target=target, beta=beta)
    np.testing.assert_array_equal(from_tensor.relevance, ref.relevance)  # numpy path on CPU
    by_torch = _torch_engine(centers, X, target, beta)
    scale0 = max(1.0, float(np.abs(ref.relevance).max()))
    np.testing.assert_allclose(by_torch, ref.relevance, rtol=0, atol=1e-9 * scale0)
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
def test_float32_close_to_float64(seed, k, d, offset, beta, random_target) -> None:
    centers, X64 = _problem(seed, 64, k, d, offset, np.float64)
    X32, c32 = X64.astype(np.float32), centers.astype(np.float32)
    # two centres that float32 rounds to one point (d = 1, far from the origin) leave a
    # margin of 0 in the oracle's division: no explanation is defined there
    assume(np.unique(c32, axis=0).shape[0] == k)
    truth = _loop_neon(centers, X64, None, beta)
    # fixed targets: at a near-tie float32 may assign differently, and "assigned" would
    # then explain another logit altogether
    target = np.random.default_rng(seed).integers(0, k, 64) if random_target else None
    t = truth[1] if target is None else target
    # the oracle sees the same float32-rounded numbers: what is measured is the arithmetic
    R, _, gain = _loop_neon(c32.astype(np.float64), X32.astype(np.float64), t, beta)
    got = explain_to(c32, X32, np.empty_like(X32), target=t, beta=beta).relevance
    # float32 scores s_k round by eps |s|; each margin's error then grows by ``gain``
    xs = X32.astype(np.float64) - c32.mean(0)
    s_max = 2 * np.abs(xs).max(1) * np.abs(c32 - c32.mean(0)).max() * d + 1.0
    bound = 64 * float(np.finfo(np.float32).eps) * (gain * s_max + np.abs(R).max(1))
    assert (np.abs(got - R).max(1) <= bound).all()


def _loop_neon(centers, X, target, beta):
    """Independent per-point NEON (min-take-most + midpoint rule), in float64."""
    d2 = ((X[:, None, :] - centers[None]) ** 2).sum(-1)
    assigned = d2.argmin(1)
    tgt = assigned if target is None else np.asarray(target)
    if isinstance(beta, str):
        srt = np.sort(d2, 1)
        beta = 1.0 / (srt[:, 1] - srt[:, 0]).mean()
    R = np.zeros_like(X)
    # condition of each row: an error dh in the margin h_ck moves R by R_k (x-m)w dh / h^2
    gain = np.zeros(len(X))
    for i in range(len(X)):
        c = tgt[i]
        ks = [k for k in range(len(centers)) if k != c]
        h = np.array([d2[i, k] - d2[i, c] for k in ks])
        if np.isinf(beta):
            w = (h == h.min()).astype(float)
        else:
            w = np.exp(-beta * (h - h.min()))
        w /= w.sum()
        for j, k in enumerate(ks):
            wv = 2 * (centers[c] - centers[k])
            m = (centers[c] + centers[k]) / 2
            R[i] += (X[i] - m) * wv / h[j] * h.min() * w[j]
            gain[i] += abs(h.min() * w[j]) * np.abs((X[i] - m) * wv).max() / h[j] ** 2
    return R, tgt, gain


def _torch_engine(centers, X, target, beta):
    """The engine's lines run on torch tensors (the namespace the deep head uses)."""
    import torch

    from whyclust.explainers.request import resolve_request

    geom = KMeansGeometry(torch.from_numpy(centers))
    xp_rows = geom.prepare(torch.from_numpy(X))
    scores = geom.scores(xp_rows)
    _, tgt, _, b = resolve_request(
        scores, target=target, beta=beta, contrast=None,
        assigned_logit=lambda assigned: assigned_logits(scores, assigned),
    )  # fmt: skip
    rel, _, _ = geom.neon(xp_rows, scores, tgt, b)
    return rel.numpy()


def test_baseline_root_matches_a_loop() -> None:
    centers, X = _problem(7, 120, 4, 6, 0.0, np.float64)
    x0 = X.mean(0)
    e = explain_kmeans(centers, X, reference=x0, beta=0.7)
    d2 = ((X[:, None, :] - centers[None]) ** 2).sum(-1)
    d0 = ((x0[None] - centers) ** 2).sum(-1)
    R = np.zeros_like(X)
    for i in range(len(X)):
        c = e.cluster[i]
        ks = [k for k in range(4) if k != c]
        h = np.array([d2[i, k] - d2[i, c] for k in ks])
        w = np.exp(-0.7 * (h - h.min()))
        Rk = h.min() * w / w.sum()
        for j, k in enumerate(ks):
            wv = 2 * (centers[c] - centers[k])
            h0 = d0[k] - d0[c]
            if h[j] * h0 <= 0:  # the margin changes sign between x and x0: root on the segment
                r = X[i] - h[j] / (wv @ (X[i] - x0)) * (X[i] - x0)
            else:
                r = (centers[c] + centers[k]) / 2
            R[i] += (X[i] - r) * wv / h[j] * Rk[j]
    np.testing.assert_allclose(e.relevance, R, rtol=0, atol=1e-9 * np.abs(R).max())
    np.testing.assert_allclose(e.relevance.sum(1), e.logit, rtol=0, atol=1e-9 * e.logit.max())
    assert e.extras["reference"] == "array"
    share = e.extras["baseline_root_share"]
    assert ((share >= 0) & (share <= 1)).all() and 0 < share.mean() < 1


def test_reference_mean_is_the_fitted_mean() -> None:
    from sklearn.cluster import KMeans

    _, X = _problem(2, 400, 3, 5, 0.0, np.float64)
    km = KMeans(3, n_init=3, random_state=0).fit(X)
    e = wc.explain(km, X[:50], reference="mean")
    ref = explain_kmeans(km.cluster_centers_, X[:50], reference=X.mean(0))
    # Lloyd's fixed point: the size-weighted centroids are the training mean
    np.testing.assert_allclose(e.relevance, ref.relevance, rtol=0, atol=1e-6)
    assert e.extras["reference"] == "mean"


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


def test_eps_keeps_boundary_points_finite() -> None:
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


def test_geometry_pieces() -> None:
    centers, X = _problem(5, 50, 5, 7, 0.0, np.float64)
    engine = KMeansGeometry(centers)
    scores = engine.scores(engine.prepare(X))
    direct = -((X[:, None, :] - centers[None]) ** 2).sum(-1)  # s_k up to a per-row constant
    np.testing.assert_allclose(scores - scores[:, :1], direct - direct[:, :1], atol=1e-9)
    top = np.sort(direct, 1)
    np.testing.assert_allclose(assigned_logits(scores), top[:, -1] - top[:, -2], atol=1e-9)


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
    e2 = wc.explain(km, X[:100], reference="mean")
    assert np.allclose(e2.relevance.sum(1), e2.logit, atol=1e-3 * e2.logit.max())
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


def test_driver_runs_the_same_lines_on_torch_tensors(monkeypatch) -> None:
    """The GPU path of the batched driver, exercised with CPU tensors."""
    import torch

    import whyclust.explainers.kmeans as drv

    centers, X = _problem(11, 257, 5, 9, 0.0, np.float64)
    ref = drv.explain_kmeans(centers, X, reference="mean", batch_size=50, target=1)
    monkeypatch.setattr(drv, "_centers_for", lambda c, dtype, device: torch.from_numpy(c))
    monkeypatch.setattr(drv, "_to_namespace", lambda block, geom: torch.from_numpy(block))
    got = drv.explain_kmeans(centers, X, reference="mean", batch_size=50, target=1)
    np.testing.assert_allclose(got.relevance, ref.relevance, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(got.cluster, ref.cluster)
    np.testing.assert_allclose(got.extras["baseline_root_share"], ref.extras["baseline_root_share"])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(2, 4), reference=st.booleans())
def test_kernel_engine_numpy_equals_torch_and_conserves(seed, k, reference) -> None:
    import torch

    from whyclust.engine.kernel import KernelGeometry

    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 5, k)
    support = rng.normal(size=(int(counts.sum()), 3)) * 2
    X = rng.normal(size=(40, 3)) * 2
    ref = X.mean(0, keepdims=True) if reference else None
    out = {}
    for name, conv in (("numpy", np.asarray), ("torch", torch.from_numpy)):
        geom = KernelGeometry(conv(support), counts, 0.5)
        xs = geom.prepare(conv(X))
        scores = geom.scores(xs)
        target = np.asarray(scores).argmax(1) if name == "numpy" else scores.argmax(1)
        rr = None if ref is None else geom.prepare(conv(ref))
        rel, f = geom.neon(xs, target, 1.0, reference=rr)
        out[name] = (np.asarray(rel), np.asarray(f))
    # 1e-9 of the largest relevance, as for k-means: float64 rounding relative to the data
    scale = max(1.0, float(np.abs(out["numpy"][0]).max()))
    np.testing.assert_allclose(out["torch"][0], out["numpy"][0], rtol=0, atol=1e-9 * scale)
    rel, f = out["numpy"]
    # direct formula: f_c = min_k (d_k - d_c) with d_k the soft-min distance
    d2 = ((X[:, None, :] - support[None]) ** 2).sum(-1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    dk = np.stack([-np.log(np.exp(-0.5 * d2[:, s : s + c]).mean(1)) / 0.5
                   for s, c in zip(starts, counts, strict=True)], 1)  # fmt: skip
    srt = np.sort(dk, 1)
    np.testing.assert_allclose(f, srt[:, 1] - srt[:, 0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(rel.sum(1), f, rtol=0, atol=1e-8 * max(1.0, np.abs(f).max()))


def test_float32_stays_float32_through_the_rules() -> None:
    # a float64 temporary would double the memory traffic of the relevance products
    from whyclust.engine.pool import min_take_most, spread, stabilize

    h = np.array([[np.inf, 1.0, 2.0], [0.5, np.inf, 0.0]], dtype=np.float32)
    target = np.array([0, 1])
    assert stabilize(h, 1e-3).dtype == np.float32
    assert min_take_most(h, 1.0).dtype == np.float32
    assert spread(min_take_most(h, 1.0), target, h, 1e-3).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_and_host_torch_paths_agree(monkeypatch, dtype) -> None:
    """With torch imported, CPU runs use its kernels; without, numpy's: same numbers."""
    import torch

    import whyclust.explainers.kmeans as drv

    assert isinstance(drv._centers_for(np.eye(2), np.float64, None), torch.Tensor)

    centers, X = _problem(4, 3000, 6, 20, 1000.0, dtype)
    kwargs = {"reference": "mean", "batch_size": 700, "target": 2}
    with_torch = drv.explain_kmeans(centers, X, **kwargs)
    monkeypatch.setattr(drv, "_centers_for", lambda c, dt, dev: np.asarray(c, dtype=dt))
    with_numpy = drv.explain_kmeans(centers, X, **kwargs)
    scale = float(np.abs(with_numpy.relevance).max())
    tol = 1e-9 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(with_torch.relevance, with_numpy.relevance, atol=tol * scale)
    np.testing.assert_array_equal(with_torch.cluster, with_numpy.cluster)
