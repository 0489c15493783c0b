"""Gaussian kernel k-means as a 4-layer network, and NEON's rules for it (array-API code).

Cluster k is represented by its support points u_j, j in C_k. With D_j = ||x - u_j||^2 and
the log-mean-exp LME^g_{j in C} s_j = (1/g) log((1/|C|) sum_j exp(g s_j)):

    h_ij = w_ij . x + b_ij = D_j - D_i,  w_ij = 2 (u_i - u_j)       (i in C_c, j in C_k)
    h_jk = LME^{+gamma}_{i in C_c} h_ij = D_j - d_c                 (soft max-pool, own points)
    h_k  = LME^{-gamma}_{j in C_k} h_jk = d_k - d_c                 (soft min-pool, competitors)
    f_c  = min_{k != c} h_k,          d_k = LME^{-gamma}_{j in C_k} D_j

NEON: min-take-most with stiffness beta at the hard min, softmin weights with stiffness gamma
at the LME^{-gamma} pool, softmax weights at the LME^{+gamma} pool, and at the linear layer
the midpoint rule m_ij = (u_i + u_j) / 2, or the root on the segment from x to a reference.
Every pool passes relevance in proportions summing to one and sum (x - m_ij) * w_ij = h_ij,
so sum(R) = f_c. Pairs with an exact tie (h_ij = 0 to rounding) get no share at the LME+
pool; their share goes to the other own points. With a_ij = R_ij / h_ij, A_i = sum_j a_ij
(i in C_c) and A_j = -sum_i a_ij (j outside C_c): R = 2 (x - o) * (A @ U') - A @ U'^2.
Loops run over clusters (points grouped by target), never over points.
"""

from __future__ import annotations

from typing import Any

from whyclust.engine._xp import device_of, namespace
from whyclust.engine.kmeans import logits_from_scores
from whyclust.engine.pool import competitor_weights, margins_for_target, stabilize

__all__ = ["KernelGeometry"]

#: pairwise (i, j) margins per block: rows x |C_c| x m values
_PAIR_VALUES = 1 << 22


class KernelGeometry:
    """Support points of kernel k-means in one namespace, dtype and device.

    Parameters
    ----------
    support : array of shape (m, d)
        Support points, sorted by cluster (``labels`` non-decreasing).
    counts : sequence of int
        Number of support points of each cluster (all >= 1, at least two clusters).
    gamma : float
        Kernel width, k(x, u) = exp(-gamma ||x - u||^2); the stiffness of both pools.
    """

    def __init__(self, support: Any, counts: Any, gamma: float) -> None:
        xp = namespace(support)
        self.xp = xp
        self.support = support
        self.counts = [int(c) for c in counts]
        self.n_clusters, self.n_features = len(self.counts), int(support.shape[1])
        starts = [0]
        for c in self.counts[:-1]:
            starts.append(starts[-1] + c)
        self.slices = [slice(s, s + c) for s, c in zip(starts, self.counts, strict=True)]
        self.gamma = float(gamma)
        self.offset = xp.mean(support, axis=0)
        self.shifted = support - self.offset
        self.shifted_sq = xp.sum(self.shifted * self.shifted, axis=1)
        self.shifted_t = xp.asarray(xp.matrix_transpose(self.shifted), copy=True)

    # ---- forward ------------------------------------------------------------------------

    def prepare(self, x: Any) -> Any:
        """(n, d) rows in the compute dtype, shifted by the mean support point."""
        xp = self.xp
        x = xp.reshape(x, (x.shape[0], -1))
        if x.dtype != self.support.dtype:
            x = xp.astype(x, self.support.dtype)
        return x - self.offset

    def sq_distances(self, xs: Any) -> Any:
        """D (n, m): squared distances of prepared rows to the support points."""
        xp = self.xp
        d = self.shifted_sq - 2.0 * (xs @ self.shifted_t) + xp.sum(xs * xs, axis=1)[:, None]
        return xp.clip(d, min=0.0)

    def scores(self, xs: Any) -> Any:
        """s_k = -d_k (n, K) of prepared rows: minus the soft-min distance to each cluster."""
        xp = self.xp
        a = -self.gamma * self.sq_distances(xs)
        cols = [_log_mean_exp(a[:, sl], xp) for sl in self.slices]
        return xp.stack(cols, axis=1) / self.gamma

    def logits(self, x: Any) -> Any:
        return logits_from_scores(self.scores(self.prepare(x)))

    # ---- relevance ----------------------------------------------------------------------

    def neon(
        self,
        xs: Any,
        target: Any,
        beta: float,
        *,
        amount: Any = None,
        contrast: Any = None,
        reference: Any = None,
        eps: float | None = None,
    ) -> tuple[Any, Any]:
        """NEON relevance (n, d) and explained logit (n,) of prepared rows ``xs``.

        ``amount`` is what is distributed at the top (default: the logit f_c itself);
        ``contrast`` explains the margin over one competitor cluster; ``reference``
        (prepared rows, (1, d) or (n, d)) takes the root on the segment from x to it where
        h_ij changes sign there, else the midpoint.
        """
        xp = self.xp
        n, m = xs.shape[0], self.support.shape[0]
        dtype = xs.dtype
        dist = self.sq_distances(xs)
        s = self.scores(xs)
        h = margins_for_target(s, target)
        f, share = competitor_weights(h, beta, contrast)
        r_top = share * (f if amount is None else amount)[:, None]  # R_k (n, K)
        finfo = xp.finfo(dtype)
        scale = max(2.0 * float(xp.mean(self.shifted_sq)), float(finfo.smallest_normal))
        stab = (float(finfo.eps) if eps is None else float(eps)) * scale
        tie = 16.0 * float(finfo.eps) * scale  # rounding level of D_j - D_i
        dev = device_of(xs)
        alpha = xp.zeros((n, m), dtype=dtype, device=dev)
        base = None if reference is None else xp.zeros((n, m), dtype=dtype, device=dev)
        proj = None
        if reference is not None:
            delta = xs - reference
            proj = 2.0 * (delta @ self.shifted_t)  # w_ij . (x - x0) = proj_i - proj_j
        for c, own in enumerate(self.slices):
            rows = xp.nonzero(target == c)[0]
            if rows.shape[0] == 0:
                continue
            other = _complement(own, m, xp, device_of(xs))
            labels_other = xp.concat(
                [xp.full((cnt,), k, device=device_of(xs))
                 for k, cnt in enumerate(self.counts) if k != c]
            )  # fmt: skip
            d_rows = xp.take(dist, rows, axis=0)
            d_own = d_rows[:, own]
            d_oth = xp.take(d_rows, other, axis=1)
            q = _softmax(-self.gamma * d_own, xp)  # LME+ weights over i in C_c
            p = xp.concat(  # LME- weights over j within each competitor cluster
                [_softmax(-self.gamma * d_rows[:, sl], xp)
                 for k, sl in enumerate(self.slices) if k != c],
                axis=1,
            )  # fmt: skip
            top = xp.take(xp.take(r_top, rows, axis=0), labels_other, axis=1) * p  # R_jk
            p_rows = None if proj is None else xp.take(proj, rows, axis=0)
            step = max(1, _PAIR_VALUES // max(1, d_own.shape[1] * d_oth.shape[1]))
            for start in range(0, rows.shape[0], step):
                sl = slice(start, start + step)
                h_ij = d_oth[sl][:, None, :] - d_own[sl][:, :, None]  # (b, |C_c|, m')
                mask = xp.abs(h_ij) > tie
                live = xp.astype(mask, dtype)
                qb = q[sl]
                z = (qb[:, None, :] @ live)[:, 0, :]  # Z_j = sum_i q_i live_ij
                t = top[sl] / xp.clip(z, min=float(finfo.smallest_normal))
                if stab > tie:  # a user-set stabiliser larger than the tie level
                    h_ij = stabilize(h_ij, stab)
                inv = xp.where(mask, 1.0 / xp.where(mask, h_ij, 1.0), 0.0)  # live / h
                if p_rows is None:
                    a_own, a_oth = _pair_sums(qb, inv, t)
                else:
                    pb = p_rows[sl]
                    dp = pb[:, own][:, :, None] - xp.take(pb, other, axis=1)[:, None, :]
                    h0 = xp.where(mask, h_ij, 0.0)
                    valid = mask & (xp.abs(dp) > stab) & (h0 * (h0 - dp) <= 0.0)
                    a_own, a_oth = _pair_sums(qb, xp.where(valid, 0.0, inv), t)
                    ratio = xp.where(valid, h0 / xp.where(valid, dp, 1.0), 0.0) * inv
                    b_own, b_oth = _pair_sums(qb, ratio, t)
                    base[rows[sl], own] = b_own
                    _put_columns(base, rows[sl], other, -b_oth, xp)
                alpha[rows[sl], own] = a_own
                _put_columns(alpha, rows[sl], other, -a_oth, xp)
        rel = 2.0 * xs * (alpha @ self.shifted) - alpha @ (self.shifted * self.shifted)
        if base is not None:
            rel = rel + delta * (2.0 * (base @ self.shifted))
        return rel, f


def _pair_sums(q: Any, inv: Any, t: Any) -> tuple[Any, Any]:
    """a_own_i = q_i sum_j inv_ij t_j and a_oth_j = t_j sum_i q_i inv_ij (batched)."""
    a_own = q * (inv @ t[:, :, None])[:, :, 0]
    a_oth = t * (q[:, None, :] @ inv)[:, 0, :]
    return a_own, a_oth


def _put_columns(dest: Any, rows: Any, cols: Any, values: Any, xp: Any) -> None:
    """dest[rows[:, None], cols[None, :]] = values (numpy and torch advanced indexing)."""
    dest[rows[:, None], cols[None, :]] = values


def _complement(own: slice, m: int, xp: Any, device: Any) -> Any:
    idx = xp.arange(m, device=device)
    return xp.concat([idx[: own.start], idx[own.stop :]])


def _log_mean_exp(a: Any, xp: Any) -> Any:
    """log(mean(exp(a))) over axis 1, stably."""
    peak = xp.max(a, axis=1, keepdims=True)
    return xp.log(xp.mean(xp.exp(a - peak), axis=1)) + peak[:, 0]


def _softmax(a: Any, xp: Any) -> Any:
    e = xp.exp(a - xp.max(a, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)

