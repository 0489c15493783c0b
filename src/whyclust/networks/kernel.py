"""Gaussian kernel k-means rewritten exactly as a 4-layer network (DESIGN.md section 2).

Cluster k is represented by its support points u_j, j in C_k. With D_j = ||x - u_j||^2 and
the log-mean-exp LME^g_{j in C} s_j = (1/g) log((1/|C|) sum_j exp(g s_j)):

    d_k(x) = LME^{-gamma}_{j in C_k} D_j                 (soft-min distance to cluster k)
    f_c(x) = min_{k != c} (d_k(x) - d_c(x))

and the same logits come out of the network

    h_ij = w_ij . x + b_ij = D_j - D_i,  w_ij = 2 (u_i - u_j), b_ij = ||u_j||^2 - ||u_i||^2
    h_jk = LME^{+gamma}_{i in C_c} h_ij = D_j - d_c        (soft max-pool, own points)
    h_k  = LME^{-gamma}_{j in C_k} h_jk = d_k - d_c        (soft min-pool, competitor points)
    f_c  = min_{k != c} h_k

:meth:`KernelKMeansNetwork.forward` evaluates the direct formula with logsumexp (O(n m d) for
m support points); :meth:`~KernelKMeansNetwork.forward_layers` evaluates the literal layers.

NEON (:meth:`~KernelKMeansNetwork.neon_relevance`): min-take-most with stiffness beta at the
hard min, softmin weights with stiffness gamma at the LME^{-gamma} pool, softmax weights with
stiffness gamma at the LME^{+gamma} pool, midpoint rule m_ij = (u_i + u_j)/2 at the linear
layer. Every pool passes relevance in proportions summing to one and
sum_features (x - m_ij) * w_ij = h_ij, so sum(R) = f_c. Pairs with an exact tie
(h_ij = 0 to rounding, so 0 / 0 at the midpoint rule) get no share at the LME+ pool; their
share goes to the other own points, which keeps the total. With a_ij = R_ij / h_ij,
A_i = sum_j a_ij (i in C_c) and A_j = -sum_i a_ij (j outside C_c), the relevance is
R = 2 x * (A @ U) - A @ U^2: one product with the support points.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from whyclust.networks.base import ClusterNetwork
from whyclust.networks.kmeans import logits_from_scores

__all__ = ["KernelKMeansNetwork"]

#: pairwise (i, j) margins per block when explaining: rows x |C_c| x m values
_PAIR_VALUES = 1 << 22


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
        offset = u.mean(0)
        self.register_buffer("support", torch.from_numpy(u))
        self.register_buffer("labels", torch.from_numpy(lab.astype(np.int64)))
        self.register_buffer("offset", torch.from_numpy(offset))
        shifted = torch.from_numpy(u - offset)
        self.register_buffer("shifted", shifted)
        self.register_buffer("shifted_sq", (shifted * shifted).sum(1))
        self.register_buffer("log_counts", torch.from_numpy(np.log(counts).astype(u.dtype)))
        self.register_buffer("counts", torch.from_numpy(counts.astype(np.int64)))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.register_buffer("starts", torch.from_numpy(starts.astype(np.int64)))
        # (K, max |C_k|) index of each cluster's support points, padded with -1
        width = int(counts.max())
        idx = np.full((k, width), -1, dtype=np.int64)
        for c in range(k):
            idx[c, : counts[c]] = np.arange(starts[c], starts[c] + counts[c])
        self.register_buffer("members", torch.from_numpy(idx))

    # --- forward ---------------------------------------------------------------------------

    def sq_distances(self, x: torch.Tensor) -> torch.Tensor:
        """D (n, m): squared distances to the support points (shifted for accuracy)."""
        xs = self._flat(x) - self.offset
        d = torch.addmm(self.shifted_sq, xs, self.shifted.T, alpha=-2.0)
        return (d + (xs * xs).sum(1, keepdim=True)).clamp_min_(0.0)

    def soft_distances(self, x: torch.Tensor) -> torch.Tensor:
        """d_k(x) = LME^{-gamma}_{j in C_k} ||x - u_j||^2, (n, K), via logsumexp."""
        a = -self.gamma * self.sq_distances(x)  # (n, m)
        pad = torch.cat([a, torch.full_like(a[:, :1], -math.inf)], dim=1)
        grouped = pad[:, self.members]  # index -1 is the -inf column
        return -(torch.logsumexp(grouped, dim=2) - self.log_counts) / self.gamma

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """s_k = -d_k; the logits are f_c = s_c - max_{k != c} s_k."""
        return -self.soft_distances(x)

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

    # --- NEON ------------------------------------------------------------------------------

    def neon_relevance(
        self,
        x: torch.Tensor,
        target: torch.Tensor,
        beta: float | None,
        g: torch.Tensor | None = None,
        contrast: torch.Tensor | None = None,
        eps: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """NEON relevance (n, d) and explained logit (n,) for target clusters.

        ``g`` is the quantity distributed at the top (default: the logit f_c itself, so that
        the relevance sums to f_c); with ``contrast`` the explained quantity is the margin
        h_k = d_k - d_c of that single competitor. Loops run over the K clusters (points are
        grouped by target), never over points.
        """
        from whyclust.explainers.neon import margins_for_target, min_take_most, stabilize

        x = self._flat(x)
        n = x.shape[0]
        dist = self.sq_distances(x)
        s = self.scores(x)
        if contrast is None:
            h = margins_for_target(s, target)  # h_k = d_k - d_c, +inf at c
            f = h.amin(1)
            share = min_take_most(h, beta)
        else:
            f = s.gather(1, target[:, None])[:, 0] - s.gather(1, contrast[:, None])[:, 0]
            share = torch.zeros_like(s).scatter_(1, contrast[:, None], 1.0)
        r_top = share * (f if g is None else g)[:, None]  # R_k, (n, K)
        tiny = torch.finfo(x.dtype).eps if eps is None else float(eps)
        scale = max(float(self.shifted_sq.mean()) * 2.0, torch.finfo(x.dtype).tiny)
        stab = tiny * scale
        tie = 16.0 * torch.finfo(x.dtype).eps * scale  # rounding level of D_j - D_i
        alpha = torch.zeros((n, self.support.shape[0]), dtype=x.dtype, device=x.device)
        lab = self.labels
        for c in range(self.n_clusters):
            rows = torch.nonzero(target == c)[:, 0]
            if rows.numel() == 0:
                continue
            ci = self._slice(c)
            own = torch.zeros_like(lab, dtype=torch.bool)
            own[ci] = True
            other = torch.nonzero(~own)[:, 0]
            d_own = dist[rows][:, ci]  # (r, |C_c|)
            d_oth = dist[rows][:, other]  # (r, m')
            q = torch.softmax(-self.gamma * d_own, dim=1)  # LME+ weights over i in C_c
            # LME- weights over j within each competitor cluster, times R_k of its cluster
            p = _group_softmax(-self.gamma * d_oth, lab[other], self.n_clusters)
            top = r_top[rows][:, lab[other]] * p  # R_jk, (r, m')
            step = max(1, _PAIR_VALUES // max(1, d_own.shape[1] * d_oth.shape[1]))
            for start in range(0, rows.numel(), step):
                sl = slice(start, start + step)
                h_ij = d_oth[sl][:, None, :] - d_own[sl][:, :, None]  # (b, |C_c|, m')
                # exact ties (h_ij = 0, common on integer data) carry no evidence and would
                # turn R_ij / h_ij into 0 / 0: the LME+ pool passes their share to the other
                # own points instead, which keeps the total. With live_ij the non-ties,
                # a_ij = q_i live_ij R_jk / (Z_j h_ij), Z_j = sum_i q_i live_ij, and the
                # sums over i and j are two batched matrix-vector products.
                mask = h_ij.abs() > tie
                live = mask.to(x.dtype)
                qb = q[sl]
                z = torch.bmm(qb[:, None, :], live)[:, 0, :]  # Z_j
                t = top[sl] / z.clamp_min(torch.finfo(x.dtype).tiny)
                if stab > tie:  # a user-set stabiliser larger than the tie level
                    h_ij = stabilize(h_ij, stab)
                inv = h_ij.reciprocal_().masked_fill_(~mask, 0.0)  # live_ij / h_ij
                a_own = qb * torch.bmm(inv, t[:, :, None])[:, :, 0]
                a_oth = t * torch.bmm(qb[:, None, :], inv)[:, 0, :]
                block = alpha[rows[sl]]
                block[:, ci] = a_own
                block[:, other] = -a_oth
                alpha[rows[sl]] = block
        xs = x - self.offset
        rel = 2.0 * xs * (alpha @ self.shifted) - alpha @ (self.shifted * self.shifted)
        return rel, f

    def extra_repr(self) -> str:
        return (
            f"n_clusters={self.n_clusters}, n_features={self.n_features}, "
            f"n_support={self.support.shape[0]}, gamma={self.gamma:.4g}"
        )


def _lme(s: torch.Tensor, g: float, dim: int) -> torch.Tensor:
    """LME^g over ``dim``: (1/g) log(mean exp(g s)), stable through logsumexp."""
    return (torch.logsumexp(g * s, dim=dim) - math.log(s.shape[dim])) / g


def _group_softmax(a: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Softmax of the columns of ``a`` (n, m) within each group of columns."""
    idx = groups[None, :].expand_as(a)
    peak = torch.full((a.shape[0], n_groups), -math.inf, dtype=a.dtype, device=a.device)
    peak = peak.scatter_reduce(1, idx, a, reduce="amax", include_self=True)
    e = torch.exp(a - peak.gather(1, idx))
    total = torch.zeros_like(peak).scatter_add_(1, idx, e)
    return e / total.gather(1, idx)
