"""numpy explanations whose second pass runs in threads give what one serial batch gives."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import BisectingKMeans, KMeans
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture

import whyclust as wc
import whyclust.explainers._threads as threads
from whyclust.explainers._threads import run_batches
from whyclust.explainers.request import row_batches


def test_run_batches_calls_every_batch_once_in_order_groups() -> None:
    seen: list[tuple[int, int]] = []
    batches = list(row_batches(103, 7))
    run_batches(lambda i, rows: seen.append((i, rows.start)), batches, parallel=True)
    assert sorted(seen) == [(i, b.start) for i, b in enumerate(batches)]
    with pytest.raises(ZeroDivisionError):
        run_batches(lambda i, rows: 1 / (i - 5), batches, parallel=True)


@pytest.mark.parametrize(
    "model",
    [
        lambda: KMeans(5, n_init=2, random_state=0),
        lambda: GaussianMixture(5, covariance_type="full", random_state=0),
        lambda: GaussianMixture(5, covariance_type="diag", random_state=0),
        lambda: BisectingKMeans(5, random_state=0),
    ],
    ids=["kmeans", "gmm-full", "gmm-diag", "bisecting"],
)
@pytest.mark.parametrize("reference", ["midpoint", "mean"])
def test_threads_change_nothing(monkeypatch, model, reference) -> None:
    import whyclust.explainers.kmeans as drv

    # k-means runs on numpy, as without torch in the process (its host path is serial)
    monkeypatch.setattr(drv, "_centers_for", lambda c, dt, dev: np.asarray(c, dtype=dt))
    X, _ = make_blobs(3000, n_features=6, centers=5, random_state=1)
    X = X * np.arange(1, 7) + 30.0
    est = model().fit(X)
    whole = wc.explain(est, X, beta=0.2, reference=reference, batch_size=len(X))
    calls: list[int] = []
    monkeypatch.setattr(threads, "_n_workers", lambda n: calls.append(n) or 3)
    split = wc.explain(est, X, beta=0.2, reference=reference, batch_size=61)
    assert calls, "the second pass did not go through the threads"
    tol = 1e-10 * np.abs(whole.relevance).max()
    np.testing.assert_allclose(split.relevance, whole.relevance, rtol=0, atol=tol)
    np.testing.assert_allclose(split.logit, whole.logit, rtol=1e-12)
    np.testing.assert_array_equal(split.cluster, est.predict(X))
    for key in ("baseline_root_share", "root"):
        if key in whole.extras:
            np.testing.assert_array_equal(split.extras[key], whole.extras[key])
