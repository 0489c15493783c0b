"""Gaussian kernel k-means rewritten exactly as a 4-layer network (docs: kernel k-means).

The torch view of :class:`whyclust.engine.kernel.KernelGeometry`, which holds the
equations (linear pairwise margins, LME+ pool over own support points, LME- pool over
competitor points, min over clusters) and their NEON rules. :meth:`forward` evaluates the
direct formula with log-sum-exp (O(n m d) for m support points);
:meth:`~KernelKMeansNetwork.forward_layers` evaluates the literal layers.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from whyclust.engine.kernel import KernelGeometry
from whyclust.engine.kmeans import logits_from_scores
from whyclust.networks.base import ClusterNetwork

__all__ = ["KernelKMeansNetwork"]

class KernelKMeansNetwork(ClusterNetwork):
    """Neuralized Gaussian kernel k-means: logits f_k(x) from support points and labels.

    Parameters
    ----------
    support : array-like of shape (m, d)
        Support points u_j.
    labels : array-like of shape (m,)
        Cluster of each support point; every cluster 0..K-1 needs at least one point.
    gamma : float
        Kernel width, k(x, u) = exp(-gamma ||x - u||^2); also the stiffness of both pools.
    """

    def __init__(self, support, labels, gamma: float) -> None:
        super().__init__()
        from whyclust._validation import as_float_array

        if isinstance(support, torch.Tensor):
            support = support.detach().cpu().numpy()
        u = as_float_array(support, name="support", copy=True)
        lab = np.asarray(labels)
        if lab.shape != (u.shape[0],) or lab.dtype.kind not in "iu":
            raise ValueError(
                f"labels must be {u.shape[0]} integer cluster indices, got shape {lab.shape} "
                f"and dtype {lab.dtype}"
            )
        gamma = float(gamma)
        if not (math.isfinite(gamma) and gamma > 0):
            raise ValueError(f"gamma must be a positive finite number, got {gamma}")
        k = int(lab.max()) + 1 if lab.size else 0
        counts = np.bincount(lab, minlength=k) if lab.size else np.zeros(0, int)
        if lab.size and lab.min() < 0:
            raise ValueError("labels must be >= 0")
        if k < 2:
            raise ValueError("kernel k-means needs at least 2 clusters to be explained")
        if np.any(counts == 0):
            raise ValueError(f"clusters without support points: {np.flatnonzero(counts == 0)}")
        order = np.argsort(lab, kind="stable")
        u, lab = u[order], lab[order]
        self.n_clusters, self.n_features = k, int(u.shape[1])
        self.gamma = gamma
        self.register_buffer("support", torch.from_numpy(u))
        self.register_buffer("labels", torch.from_numpy(lab.astype(np.int64)))
        self.register_buffer("counts", torch.from_numpy(counts.astype(np.int64)))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.register_buffer("starts", torch.from_numpy(starts.astype(np.int64)))

    # --- forward ---------------------------------------------------------------------------

    def geometry(self) -> KernelGeometry:
        return KernelGeometry(self.support, self.counts.tolist(), self.gamma)

    def sq_distances(self, x: torch.Tensor) -> torch.Tensor:
        """D (n, m): squared distances to the support points (shifted for accuracy)."""
        geom = self.geometry()
        return geom.sq_distances(geom.prepare(self._flat(x)))

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """s_k = -d_k, minus the soft-min distance to each cluster; f_c = s_c - max_{k!=c} s_k."""
        geom = self.geometry()
        return geom.scores(geom.prepare(self._flat(x)))

    def soft_distances(self, x: torch.Tensor) -> torch.Tensor:
        """d_k(x) = LME^{-gamma}_{j in C_k} ||x - u_j||^2, (n, K)."""
        return -self.scores(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_from_scores(self.scores(x))

    def forward_layers(self, x: torch.Tensor) -> torch.Tensor:
        """The logits through the literal 4 layers (linear, LME+, LME-, min), per cluster pair.

        For checks and teaching: memory O(n |C_c| |C_k|) per pair.
        """
        x = self._flat(x)
        u, g = self.support, self.gamma
        sq = (u * u).sum(1)
        out = torch.empty((x.shape[0], self.n_clusters), dtype=x.dtype, device=x.device)
        for c in range(self.n_clusters):
            ci = self._slice(c)
            hk = []
            for k in range(self.n_clusters):
                if k == c:
                    continue
                kj = self._slice(k)
                w = 2.0 * (u[ci][:, None, :] - u[kj][None, :, :])  # (|C_c|, |C_k|, d)
                b = sq[kj][None, :] - sq[ci][:, None]
                h_ij = torch.einsum("nd,ijd->nij", x, w) + b
                h_jk = _lme(h_ij, g, dim=1)
                hk.append(_lme(h_jk, -g, dim=1))
            out[:, c] = torch.stack(hk, 1).amin(1)
        return out

    def _slice(self, c: int) -> slice:
        start = int(self.starts[c])
        return slice(start, start + int(self.counts[c]))

    def extra_repr(self) -> str:
        return (
            f"n_clusters={self.n_clusters}, n_features={self.n_features}, "
            f"n_support={self.support.shape[0]}, gamma={self.gamma:.4g}"
        )


def _lme(s: torch.Tensor, g: float, dim: int) -> torch.Tensor:
    """LME^g over ``dim``: (1/g) log(mean exp(g s)), stable through logsumexp."""
    return (torch.logsumexp(g * s, dim=dim) - math.log(s.shape[dim])) / g
