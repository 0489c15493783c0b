"""Output buffers, row reductions and the softmin's negligible weights of the engine."""

from __future__ import annotations

import gc
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whyclust._buffers import output_array
from whyclust.engine._xp import row_max, row_min
from whyclust.engine.kmeans import KMeansGeometry, assigned_logits, check_finite_scores
from whyclust.engine.pool import _NEGLIGIBLE, margins_for_target, min_take_most, spread
from whyclust.explainers.kmeans import explain_kmeans

#: 32 MiB and more in float32: huge pages where Linux gives them, many worker threads' rows
_LARGE_BYTES = 1 << 25
_LARGE = (_LARGE_BYTES // (4 * 1024) + 3, 1024)


@pytest.mark.parametrize("shape", [(0, 5), (3, 4), _LARGE])
@pytest.mark.parametrize("faulted", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_array_is_a_plain_writable_array(shape, faulted, dtype) -> None:
    out = output_array(shape, dtype, faulted=faulted)
    assert out.shape == shape and out.dtype == dtype
    assert out.flags.c_contiguous and out.flags.writeable and out.flags.aligned
    values = np.arange(out.size, dtype=dtype).reshape(shape)
    out[...] = values
    view = out[1:]
    del out
    gc.collect()  # the memory lives as long as any array that uses it
    np.testing.assert_array_equal(view, values[1:])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(view)), values[1:])


def test_two_outputs_never_share_memory() -> None:
    a = output_array(_LARGE, np.float32)
    b = output_array(_LARGE, np.float32)
    a[...] = 1.0
    b[...] = 2.0
    assert not np.shares_memory(a, b) and float(a.max()) == 1.0


def test_large_explanation_equals_the_small_one_row_by_row() -> None:
    """A large output (threads write and fault it) holds what the same rows give when
    explained alone."""
    rng = np.random.default_rng(0)
    n, d = _LARGE
    X = rng.normal(size=(n, d))
    centers = rng.normal(size=(6, d))
    big = explain_kmeans(centers, X, beta=0.5)
    small = explain_kmeans(centers, X[:50], beta=0.5)
    assert big.relevance.nbytes >= _LARGE_BYTES
    scale = np.abs(big.relevance).sum(axis=1)
    np.testing.assert_allclose(big.relevance[:50], small.relevance, rtol=0, atol=1e-9 * scale.max())
    assert np.all(np.abs(big.relevance.sum(axis=1) - big.logit) <= 1e-9 * scale)


_FLOATS = st.floats(-1e6, 1e6, width=32) | st.sampled_from([np.inf, -np.inf, np.nan, 0.0])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 60),
    k=st.integers(1, 9),
    dtype=st.sampled_from([np.float32, np.float64]),
    data=st.data(),
)
def test_row_reductions_equal_numpy(n, k, dtype, data) -> None:
    values = data.draw(st.lists(_FLOATS, min_size=n * k, max_size=n * k))
    a = np.array(values, dtype=dtype).reshape(n, k)
    for mine, ref in ((row_min, np.min), (row_max, np.max)):
        for keepdims in (False, True):
            got = mine(a, keepdims=keepdims)
            want = ref(a, axis=1, keepdims=keepdims)
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)


def test_row_reductions_of_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    a = torch.randn(50, 4, dtype=torch.float64)
    assert torch.equal(row_min(a), a.min(dim=1).values)
    assert torch.equal(row_max(a, keepdims=True), a.max(dim=1, keepdim=True).values)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    k=st.integers(2, 8),
    log_beta=st.floats(-3.0, 4.0),
    spread_=st.floats(1.0, 1e5),
)
def test_dropped_softmin_weights_are_negligible(seed, k, log_beta, spread_) -> None:
    """Weights under 2^-64 of the nearest competitor's are 0; the rest are the softmin."""
    rng = np.random.default_rng(seed)
    h = rng.random((40, k)) * spread_
    h[np.arange(40), rng.integers(0, k, 40)] = np.inf  # the target column
    beta = 10.0**log_beta
    w = min_take_most(h, beta)
    f = h.min(axis=1, keepdims=True)
    exact = np.exp(-beta * (h - f))
    exact /= exact.sum(axis=1, keepdims=True)
    assert np.all((w == 0) | (w >= _NEGLIGIBLE / k))
    assert np.all(w[exact >= _NEGLIGIBLE] > 0)
    np.testing.assert_allclose(w, exact, rtol=1e-12, atol=_NEGLIGIBLE)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-14)


def test_steep_softmin_leaves_no_subnormal_mixing() -> None:
    """A beta large against the margins would give subnormal float32 weights (and every
    product using them runs many times slower); none are left, and R still sums to f."""
    rng = np.random.default_rng(1)
    X = rng.random((500, 30), dtype=np.float32) * 255
    centers = (rng.random((8, 30), dtype=np.float32) * 255).astype(np.float32)
    geom = KMeansGeometry(centers)
    scores = geom.scores(geom.prepare(X))
    target = np.argmax(scores, axis=1)
    h = margins_for_target(scores, target)
    w = min_take_most(h, 1.0)
    alpha = spread(w * h.min(axis=1, keepdims=True), target, h, geom.eps)
    tiny = np.finfo(np.float32).smallest_normal
    for a in (w, alpha):
        assert not np.any((a != 0) & (np.abs(a) < tiny))
    e = explain_kmeans(centers, X, beta=1.0)
    sums = e.relevance.astype(np.float64).sum(axis=1)
    assert np.all(np.abs(sums - e.logit) <= 1e-4 * np.abs(e.relevance).sum(axis=1) + 1e-6)


def test_assigned_logits_with_a_known_argmax() -> None:
    rng = np.random.default_rng(2)
    s = rng.normal(size=(300, 5))
    s[:10, 1] = s[:10, 3] = s[:10].max(axis=1) + 1.0  # ties for the best: f = 0
    assigned = np.argmax(s, axis=1)
    np.testing.assert_array_equal(assigned_logits(s, assigned), assigned_logits(s))
    assert np.all(assigned_logits(s)[:10] == 0.0)
    top2 = np.sort(s, axis=1)[:, -2:]
    np.testing.assert_allclose(assigned_logits(s), top2[:, 1] - top2[:, 0])


def test_finite_check_names_the_first_bad_row() -> None:
    s = np.zeros((200, 3))
    check_finite_scores(s)
    s[[57, 120], 1] = [np.nan, np.inf]
    with pytest.raises(ValueError, match="row 1057"):
        check_finite_scores(s, first_row=1000)
