"""TELL's initial centers in encoder mode: Lloyd's k-means on the pretrained features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans

from whyclust.models.tell import TELL
from whyclust.models.tell._centers import assign, lloyd, seed_centers, unit_rows


def blobs(n, k, d, seed, spread=0.3):
    rng = np.random.RandomState(seed)
    means = rng.standard_normal((k, d)) * 3.0
    y = rng.randint(k, size=n)
    return torch.from_numpy(means[y] + spread * rng.standard_normal((n, d))), y


@settings(max_examples=25, deadline=None)
@given(n=st.integers(20, 300), k=st.integers(1, 6), d=st.integers(1, 5),
       restarts=st.integers(1, 4), seed=st.integers(0, 10_000),
       block=st.sampled_from([7, 64, 65536]))
def test_euclidean_lloyd_equals_scikit_learn_from_the_same_seeds(n, k, d, restarts, seed, block):
    Z, _ = blobs(n, k, d, seed)
    rng = np.random.RandomState(seed)
    seeds = seed_centers(Z, k, restarts, rng, "euclidean")
    centers, inertia = lloyd(Z, seeds, "euclidean", tol=0.0, max_iter=300, block=block)
    labels = assign(Z, centers)[0]
    # scikit-learn moves an emptied center to a far point, Lloyd here keeps it in place
    assume(all(labels[r].unique().numel() == k for r in range(restarts)))
    for r in range(restarts):
        km = KMeans(k, init=seeds[r].numpy(), n_init=1, algorithm="lloyd", tol=0.0,
                    max_iter=300).fit(Z.numpy())
        np.testing.assert_allclose(centers[r].numpy(), km.cluster_centers_, atol=1e-9)
        assert inertia[r].item() == pytest.approx(km.inertia_, rel=1e-9, abs=1e-9)


def test_cosine_lloyd_ends_at_a_fixed_point_of_unit_mean_directions():
    Z, _ = blobs(400, 4, 6, 3)
    Z = Z / Z.norm(dim=1, keepdim=True)
    seeds = seed_centers(Z, 4, 3, np.random.RandomState(0), "cosine")
    centers, inertia = lloyd(Z, seeds, "cosine", tol=0.0)
    torch.testing.assert_close(centers.norm(dim=-1), torch.ones(3, 4, dtype=Z.dtype))
    labels, dist = assign(Z, centers)
    for r in range(3):
        means = torch.stack([Z[labels[r] == j].mean(0) for j in range(4)])
        torch.testing.assert_close(centers[r], unit_rows(means))
    torch.testing.assert_close(inertia, dist.sum(1, dtype=torch.float64))


def test_a_center_without_points_stays_and_the_others_converge():
    Z, _ = blobs(200, 2, 3, 1)
    far = torch.full((1, 3), 1e3, dtype=Z.dtype)
    seeds = torch.cat([Z[:2], far])[None]
    centers, _ = lloyd(Z, seeds, "euclidean")
    torch.testing.assert_close(centers[0, 2:], far)
    assert torch.isfinite(centers).all()


@pytest.mark.filterwarnings("ignore:TELL. only")  # noise images hold no clusters
def test_encoder_mode_starts_from_the_restart_with_the_lowest_inertia(monkeypatch):
    import whyclust.models.tell._encoder as encoder_mode

    seen = {}

    def recording(Z, seeds, metric, **kw):
        centers, inertia = lloyd(Z, seeds, metric, **kw)
        seen.update(centers=centers, inertia=inertia, restarts=seeds.shape[0])
        return centers, inertia

    def first_centers(self, centers, *args):
        seen.setdefault("start", centers.detach().clone())
        original_init(self, centers, *args)

    original_init = encoder_mode.CenterTrainer.__init__
    monkeypatch.setattr(encoder_mode, "lloyd", recording)
    monkeypatch.setattr(encoder_mode.CenterTrainer, "__init__", first_centers)
    rng = np.random.RandomState(0)
    X = rng.rand(64, 1, 8, 8).astype(np.float32)
    TELL(3, encoder="conv", pretrain_epochs=1, max_iter=2, batch_size=32, n_latent=4,
         random_state=0).fit(X)
    assert seen["restarts"] == 20  # n_init="auto" in encoder mode
    best = int(seen["inertia"].argmin())
    torch.testing.assert_close(seen["start"][0], seen["centers"][best])
    assert TELL(3)._n_init() == 4 and TELL(3, n_init=7, encoder="mlp")._n_init() == 7
