"""Exact identities of neuralized k-means and its NEON explanation (docs: mathematics, k-means)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans, MiniBatchKMeans

import whyclust as wc
from whyclust.networks import KMeansNetwork

TOL = {np.float32: 1e-4, np.float64: 1e-9}


def make_problem(seed: int, n: int, k: int, d: int, dtype=np.float64, spread: float = 3.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=spread, size=(k, d))
    X = centers[rng.integers(0, k, n)] + rng.normal(size=(n, d))
    return X.astype(dtype), centers.astype(dtype)


def direct_logits(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """f_c(x) = min_{k != c} ||x - mu_k||^2 - ||x - mu_c||^2, in float64 via scipy."""
    D = cdist(X.astype(np.float64), centers.astype(np.float64), "sqeuclidean")
    k = centers.shape[0]
    out = np.empty_like(D)
    for c in range(k):
        others = np.delete(D, c, axis=1)
        out[:, c] = others.min(1) - D[:, c]
    return out


def rel_error(expl) -> float:
    scale = max(np.abs(expl.logit).max(), np.finfo(np.float64).tiny)
    return float(np.abs(expl.relevance_sum() - expl.logit).max() / scale)


# --- the network -------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    k=st.integers(2, 20),
    d=st.integers(1, 300),
    n=st.integers(1, 40),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_network_equals_difference_of_squared_distances(seed, k, d, n, dtype):
    X, centers = make_problem(seed, n, k, d, dtype)
    net = KMeansNetwork(centers)
    x = torch.from_numpy(X)
    logits = net(x).double().numpy()
    explicit = net.forward_layers(x).double().numpy()
    expected = direct_logits(X, centers)
    scale = np.abs(expected).max() + 1.0
    tol = TOL[dtype] * 10
    assert np.abs(logits - expected).max() / scale < tol
    assert np.abs(explicit - expected).max() / scale < tol
    assert net.weight.shape == (k, k - 1, d)
    assert net.bias.shape == (k, k - 1)


def test_module_view_parameters_are_the_paper_formulas():
    X, centers = make_problem(0, 5, 4, 3)
    net = KMeansNetwork(centers)
    W, b = net.weight.numpy(), net.bias.numpy()
    for c in range(4):
        others = [k for k in range(4) if k != c]
        for j, k in enumerate(others):
            np.testing.assert_allclose(W[c, j], 2 * (centers[c] - centers[k]))
            np.testing.assert_allclose(b[c, j], centers[k] @ centers[k] - centers[c] @ centers[c])
    h = net.margin.forward_explicit(torch.from_numpy(X)).numpy()
    D = cdist(X, centers, "sqeuclidean")
    for c in range(4):
        others = [k for k in range(4) if k != c]
        np.testing.assert_allclose(h[:, c, :], D[:, others] - D[:, [c]], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cls", [KMeans, MiniBatchKMeans])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_argmax_equals_sklearn_predict(cls, dtype):
    X, _ = make_problem(1, 500, 7, 12, dtype)
    model = cls(n_clusters=7, n_init=3, random_state=0).fit(X)
    net = wc.neuralize(model)
    logits = net(torch.from_numpy(X).to(net.dtype))
    np.testing.assert_array_equal(logits.argmax(1).numpy(), model.predict(X))
    np.testing.assert_array_equal(net.predict(X), model.predict(X))
    assert (logits.max(1).values > 0).all()  # f_c > 0 exactly for the assigned cluster
    assert (np.sort(logits.numpy(), 1)[:, -2] < 0).all()


def test_neuralize_accepts_centroid_arrays_and_tensors():
    _, centers = make_problem(2, 3, 3, 4)
    for obj in (centers, torch.from_numpy(centers), centers.tolist()):
        net = wc.neuralize(obj)
        assert isinstance(net, KMeansNetwork)
        np.testing.assert_allclose(net.centers.double().numpy(), centers, rtol=1e-6)
    assert wc.neuralize(net) is net


# --- NEON relevance ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    k=st.integers(2, 20),
    d=st.integers(1, 300),
    n=st.integers(1, 40),
    dtype=st.sampled_from([np.float32, np.float64]),
    beta=st.one_of(
        st.just("auto"),
        st.just(0.0),
        st.just(float("inf")),
        st.floats(1e-3, 1e3, allow_nan=False),
    ),
)
def test_relevance_is_conserved(seed, k, d, n, dtype, beta):
    if dtype == np.float32:
        # float32 rounding is relative to the squared norms, not to f: a batch of one point
        # sitting on a boundary (f ~ 1e-3 ||x||^2) cannot meet 1e-4 relative to its own f,
        # so the tolerance is relative to the largest |f| of a batch of real size.
        n = max(n, 16)
    X, centers = make_problem(seed, n, k, d, dtype)
    expl = wc.explain(centers, X, beta=beta)
    assert expl.relevance.shape == X.shape
    assert expl.relevance.dtype == dtype
    assert np.isfinite(expl.relevance).all()
    assert rel_error(expl) < TOL[dtype]
    np.testing.assert_allclose(
        expl.logit, direct_logits(X, centers)[np.arange(n), expl.cluster],
        rtol=TOL[dtype] * 10, atol=TOL[dtype] * 10 * (np.abs(expl.logit).max() + 1),
    )
    assert (expl.logit > 0).all()
    np.testing.assert_array_equal(expl.target, expl.cluster)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    k=st.integers(2, 20),
    d=st.integers(1, 100),
    dtype=st.sampled_from([np.float32, np.float64]),
    beta=st.sampled_from(["auto", 0.0, 1.0, float("inf")]),
)
def test_non_assigned_targets_are_finite_and_negative(seed, k, d, dtype, beta):
    X, centers = make_problem(seed, 30, k, d, dtype)
    rng = np.random.default_rng(seed)
    target = rng.integers(0, k, 30)
    expl = wc.explain(centers, X, target=target, beta=beta)
    assert np.isfinite(expl.relevance).all()
    assert np.isfinite(expl.logit).all()
    np.testing.assert_array_equal(expl.target, target)
    other = target != expl.cluster
    assert (expl.logit[other] < 0).all()
    if dtype == np.float64:  # away from exact ties, conservation still holds
        assert rel_error(expl) < 1e-6


def test_point_on_a_boundary_stays_finite():
    centers = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    X = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 5.0]])  # exact ties
    for target in (0, 1, 2, "assigned"):
        for beta in (0.0, 1.0, "auto", float("inf")):
            expl = wc.explain(centers, X, target=target, beta=beta)
            assert np.isfinite(expl.relevance).all(), (target, beta)


def contrast_maps(centers, X, target):
    """(K, n, d) maps (x - m_ck) * w_ck and margins (K, n) for every competitor k."""
    k = centers.shape[0]
    maps = np.zeros((k, *X.shape))
    margins = np.full((k, X.shape[0]), np.inf)
    for other in range(k):
        mask = target != other
        e = wc.explain(centers, X[mask], target=target[mask], contrast=other)
        maps[other, mask] = e.relevance
        margins[other, mask] = e.logit
    return maps, margins


def test_beta_zero_is_the_even_split_over_competitors():
    X, centers = make_problem(3, 50, 5, 6)
    expl = wc.explain(centers, X, beta=0.0)
    maps, margins = contrast_maps(centers, X, expl.cluster)
    share = expl.logit / (centers.shape[0] - 1)  # R_k = f / (K - 1)
    expected = np.einsum("kn,knd->nd", share[None, :] / margins, maps)
    np.testing.assert_allclose(expl.relevance, expected, rtol=1e-9, atol=1e-9)


def test_large_beta_gives_everything_to_the_nearest_competitor():
    X, centers = make_problem(4, 50, 5, 6)
    maps, margins = contrast_maps(centers, X, KMeansNetwork(centers).predict(X))
    nearest = margins.argmin(0)
    expected = maps[nearest, np.arange(X.shape[0])]
    for beta in (1e6, float("inf")):
        expl = wc.explain(centers, X, beta=beta)
        np.testing.assert_allclose(expl.relevance, expected, rtol=1e-7, atol=1e-7)


def test_contrastive_map_sums_to_the_pairwise_margin():
    X, centers = make_problem(5, 40, 4, 9)
    D = cdist(X, centers, "sqeuclidean")
    e = wc.explain(centers, X, target=0, contrast=2)
    np.testing.assert_allclose(e.logit, D[:, 2] - D[:, 0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(e.relevance_sum(), e.logit, rtol=1e-10, atol=1e-10)
    m = (centers[0] + centers[2]) / 2
    np.testing.assert_allclose(e.relevance, (X - m) * 2 * (centers[0] - centers[2]), atol=1e-10)
    assert e.method == "neon-contrast"
    with pytest.raises(ValueError, match="differ"):
        wc.explain(centers, X, target=1, contrast=1)


def test_beta_auto_is_inverse_mean_assigned_logit():
    X, centers = make_problem(6, 80, 4, 5)
    expl = wc.explain(centers, X)
    assert expl.beta == pytest.approx(1.0 / direct_logits(X, centers).max(1).mean(), rel=1e-9)
    fixed = wc.explain(centers, X, beta=expl.beta)
    np.testing.assert_allclose(fixed.relevance, expl.relevance, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_batch_size(dtype):
    X, centers = make_problem(7, 203, 6, 17, dtype)
    ref = wc.explain(centers, X, batch_size=10_000)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    scale = np.abs(ref.relevance).max()
    for bs in (1, 7, 64):
        e = wc.explain(centers, X, batch_size=bs)
        assert e.beta == pytest.approx(ref.beta, rel=tol)
        np.testing.assert_array_equal(e.cluster, ref.cluster)
        np.testing.assert_allclose(e.relevance, ref.relevance, rtol=tol, atol=tol * scale)
        np.testing.assert_allclose(e.logit, ref.logit, rtol=tol, atol=tol * scale)


def test_translation_invariance_for_data_far_from_the_origin():
    X, centers = make_problem(8, 300, 5, 30, np.float64)
    shift = 1000.0
    near = wc.explain(centers.astype(np.float32), X.astype(np.float32))
    far = wc.explain((centers + shift).astype(np.float32), (X + shift).astype(np.float32))
    assert rel_error(far) < 1e-4
    np.testing.assert_array_equal(far.cluster, near.cluster)
    scale = np.abs(near.relevance).max()
    # float32 keeps ~7 digits of 1000 + x: the inputs themselves carry ~1e-4 absolute error
    np.testing.assert_allclose(far.relevance, near.relevance, atol=1e-2 * scale)


def test_dtype_rules_and_image_shaped_input():
    X, centers = make_problem(9, 20, 3, 16)
    e64 = wc.explain(centers, X)
    e32 = wc.explain(centers, X.astype(np.float32))
    assert e64.relevance.dtype == np.float64 and e32.relevance.dtype == np.float32
    e_int = wc.explain(centers, np.rint(X * 10).astype(np.int64))
    assert e_int.relevance.dtype == np.float32
    images = X.reshape(20, 1, 4, 4)
    e_img = wc.explain(centers, images)
    assert e_img.relevance.shape == images.shape
    np.testing.assert_allclose(e_img.relevance.reshape(20, -1), e64.relevance)


def test_dataframe_input_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    X, centers = make_problem(10, 30, 3, 4)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    e = wc.explain(centers, frame)
    assert e.feature_names == ["a", "b", "c", "d"]
    assert list(e.to_frame().columns) == ["a", "b", "c", "d"]
    assert "Explanation(method='neon'" in repr(e)
    # results holding arrays compare by identity (no "truth value of an array" error)
    assert e == e and e != copy.deepcopy(e) and len({e, e}) == 1


def test_float64_head_behind_float32_encoder_predicts():
    from whyclust.networks import EncodedClusterNetwork

    encoder = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.ReLU())
    _, centers = make_problem(11, 1, 4, 3, np.float64)
    net = EncodedClusterNetwork(encoder, KMeansNetwork(centers), n_features=5)
    X = np.random.default_rng(1).normal(size=(30, 5)).astype(np.float32)
    assert net.dtype == torch.float32
    with torch.no_grad():
        z = encoder(torch.from_numpy(X)).double().numpy()
    np.testing.assert_array_equal(net.predict(X), direct_logits(z, centers).argmax(1))


def test_out_buffer_receives_the_relevance_and_is_checked():
    X = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    km = KMeans(3, n_init=1, random_state=0).fit(X)
    buf = np.empty_like(X)
    e = wc.explain(km, X, out=buf)
    assert np.shares_memory(e.relevance, buf)
    np.testing.assert_array_equal(buf, wc.explain(km, X).relevance)
    for bad in (np.empty((60, 4), np.float32), np.empty((60, 5), np.int32)):
        with pytest.raises(ValueError, match="out must be a float array of shape"):
            wc.explain(km, X, out=bad)


@pytest.mark.parametrize("offset", [0.0, 1e4])  # 1e4: the engine shifts the inputs
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("target", ["assigned", 1])
def test_one_pass_with_a_given_beta_equals_the_two_passes(offset, dtype, target):
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(700, 6)) + offset).astype(dtype)
    km = KMeans(4, n_init=2, random_state=0).fit(X)
    one = wc.explain(km, X, beta=0.7, target=target, batch_size=64)
    labels = one.cluster if target == "assigned" else np.full(len(X), target)
    two = wc.explain(km, X, beta=0.7, target=labels, batch_size=64)  # an array: two passes
    np.testing.assert_array_equal(one.cluster, two.cluster)
    np.testing.assert_array_equal(one.target, two.target)
    np.testing.assert_allclose(one.relevance, two.relevance, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(one.logit, two.logit, rtol=1e-5, atol=1e-6)
    assert one.beta == two.beta == 0.7
    bad = X.copy()
    bad[333, 2] = np.nan
    with pytest.raises(ValueError, match=r"first at row 333\)"):
        wc.explain(km, bad, beta=0.7, batch_size=64)
