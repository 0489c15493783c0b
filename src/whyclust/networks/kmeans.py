"""k-means rewritten exactly as a two-layer network (docs: mathematics, k-means).

Layer 1 (:class:`PairwiseMargin`) is linear: h_ck(x) = w_ck . x + b_ck with
w_ck = 2 (mu_c - mu_k) and b_ck = ||mu_k||^2 - ||mu_c||^2, the difference of squared
distances ||x - mu_k||^2 - ||x - mu_c||^2. Layer 2 (:class:`MinPool`) takes the hard minimum
over the K-1 competitors, giving the cluster logit f_c(x).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from whyclust.engine.kmeans import KMeansGeometry, logits_from_scores
from whyclust.networks.base import ClusterNetwork

__all__ = ["KMeansNetwork", "MinPool", "PairwiseMargin", "competitor_index", "logits_from_scores"]


def competitor_index(n_clusters: int, device: torch.device | None = None) -> torch.Tensor:
    """(K, K-1) long tensor: row c lists the clusters k != c in increasing order."""
    idx = torch.arange(n_clusters, device=device)
    full = idx.expand(n_clusters, n_clusters)
    return full[full != idx[:, None]].reshape(n_clusters, n_clusters - 1)


class PairwiseMargin(nn.Module):
    """Linear layer x -> h (n, K, K-1), the margins of every cluster over each competitor.

    ``weight`` (K, K-1, d) and ``bias`` (K, K-1) are the explicit parameters of the module
    view. :meth:`forward` evaluates the same affine map through the K centred scores of
    :class:`whyclust.engine.kmeans.KMeansGeometry`, which costs O(n K d) instead of
    O(n K^2 d); :meth:`forward_explicit` is the literal einsum with ``weight`` and ``bias``.
    """

    def __init__(self, centers: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("centers", centers)
        self.register_buffer("competitors", competitor_index(centers.shape[0], centers.device))

    def geometry(self) -> KMeansGeometry:
        return KMeansGeometry(self.centers)

    @property
    def weight(self) -> torch.Tensor:
        mu = self.centers
        return 2.0 * (mu[:, None, :] - mu[self.competitors])

    @property
    def bias(self) -> torch.Tensor:
        sq = (self.centers * self.centers).sum(1)
        return sq[self.competitors] - sq[:, None]

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """s_k(x) = ||x - o||^2 - ||x - mu_k||^2 with o the mean centroid; (n, K)."""
        geom = self.geometry()
        return geom.scores(geom.prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scores(x)
        return s[:, :, None] - s[:, self.competitors]

    def forward_explicit(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nd,kjd->nkj", x, self.weight) + self.bias


class MinPool(nn.Module):
    """Hard minimum over the last axis (the competitors)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.amin(-1)


class KMeansNetwork(ClusterNetwork):
    """Neuralized k-means: ``pool(margin(x))`` gives the logits f_k(x) for all K clusters.

    Parameters
    ----------
    centers : array-like of shape (K, d)
        Cluster centroids. float64 input stays float64, anything else becomes float32.

    Attributes
    ----------
    margin : PairwiseMargin
        Layer 1, with ``weight`` of shape (K, K-1, d) and ``bias`` of shape (K, K-1).
    pool : MinPool
        Layer 2.
    """

    def __init__(self, centers) -> None:
        super().__init__()
        centers = _as_center_tensor(centers)
        self.n_clusters, self.n_features = int(centers.shape[0]), int(centers.shape[1])
        self.margin = PairwiseMargin(centers)
        self.pool = MinPool()

    @property
    def centers(self) -> torch.Tensor:
        return self.margin.centers

    @property
    def weight(self) -> torch.Tensor:
        return self.margin.weight

    @property
    def bias(self) -> torch.Tensor:
        return self.margin.bias

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.margin.scores(self._flat(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (n, K): f_c = s_c - max_{k != c} s_k, equal to ``pool(margin(x))``."""
        return logits_from_scores(self.scores(x))

    def forward_layers(self, x: torch.Tensor) -> torch.Tensor:
        """The same logits through the explicit module view (weight and bias tensors)."""
        return self.pool(self.margin.forward_explicit(self._flat(x)))

    def extra_repr(self) -> str:
        return f"n_clusters={self.n_clusters}, n_features={self.n_features}"


def _as_center_tensor(centers) -> torch.Tensor:
    if isinstance(centers, torch.Tensor):
        t = centers.detach()
        if t.dtype != torch.float64:
            t = t.to(torch.float32)
    else:
        from whyclust._validation import as_float_array

        t = torch.from_numpy(as_float_array(centers, name="centers", copy=True))
    if t.ndim != 2:
        raise ValueError(f"centers must have shape (K, d), got {tuple(t.shape)}")
    if t.shape[0] < 2:
        raise ValueError(
            "a clustering needs at least 2 clusters to be explained (got 1 center)"
        )
    if not torch.isfinite(t).all():
        raise ValueError("centers contain NaN or infinite values")
    return t.clone()


def centers_of(model) -> np.ndarray:
    """Centroids of a fitted scikit-learn style k-means model."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "cluster_centers_")
    return np.asarray(model.cluster_centers_)
