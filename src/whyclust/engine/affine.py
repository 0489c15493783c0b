"""Affine preprocessing folded into layer 1, and relevance pulled back through it (array API).

A chain of affine steps is one map z = A u + a from the encoded inputs u (p,) to the
model's inputs z (m,). A margin h(z) composed with it is h(A u + a). For a root r_z of h in
z-space, the u-space root nearest u along the preimage is r_u = u - B (z - r_z) with
B = A^+ (A B = I_m: A must have full row rank), and

    R_u = (B (z - r_z)) * (A^T grad h(mid_z)),   sum_i R_u,i = (z - r_z) . grad h(mid_z),

the same total as the z-space map (exact for linear and quadratic margins, section 9 of
the design). A diagonal A (scalers) gives R_u = R_z column by column, so the model-space
relevance is used as is. For the linear heads the pull-back factorises into
(n, K) x (K, p) products:

- k-means, midpoint roots m_ck: with zh = B (z - o), nu = B (mu - o), tau = A^T (mu - o)
  (rows per centroid), mixing alpha = s e_c - a,
  R = 2 zh * (alpha @ tau) - nu_c * (alpha @ tau) - tau_c * (a @ nu) + a @ (nu * tau);
  where B = D A^T for a diagonal D (scalers and unwhitened PCA / TruncatedSVD: nu = d * tau)
  the cross terms cancel and R = 2 zh * (alpha @ tau) - alpha @ (nu * tau), the shape of
  bare k-means' map;
- node margins (bisecting) with roots at their midpoints q_j and normals w_j:
  R = zh * (alpha @ tau) - alpha @ (nu * tau), nu = B (q - o), tau = A^T w;
- a baseline root on the segment z..z0: R = (zh - zh0) * (beta @ tau_w), tau_w = A^T w.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from whyclust.engine._xp import namespace, onehot
from whyclust.engine.kmeans import KMeansGeometry, assigned_logits
from whyclust.engine.pool import competitor_weights, margins_for_target, spread

__all__ = ["AffineMap", "DiagonalKMeans", "kmeans_coefficients"]

#: numpy pulls back rows in blocks whose (rows, p) temporaries hold about this many values
_BLOCK_VALUES = 1 << 17


class AffineMap:
    """z = u * diag + offset (``diag`` (p,), m = p) or z = u @ linear^T + offset
    (``linear`` (m, p)); ``pinv`` (p, m) is A^+ for the dense form (needed by the
    pull-backs only)."""

    def __init__(self, offset: Any, *, diag: Any = None, linear: Any = None, pinv: Any = None):
        if (diag is None) == (linear is None):
            raise ValueError("give exactly one of diag and linear")
        self.xp = namespace(offset)
        self.offset = offset
        self.diag = diag
        self.linear = linear
        self.is_diagonal = diag is not None
        if linear is not None:
            xp = self.xp
            self.linear_t = xp.asarray(xp.matrix_transpose(linear), copy=True)
            self.pinv = pinv  # None: a forward-only map
            if pinv is not None:
                self.pinv_t = xp.asarray(xp.matrix_transpose(pinv), copy=True)
        self.n_in = int((diag if diag is not None else linear[0]).shape[0])
        self.n_out = int(offset.shape[0])

    def __call__(self, u: Any) -> Any:
        if self.is_diagonal:
            return u * self.diag + self.offset
        return u @ self.linear_t + self.offset

    def back(self, v: Any) -> Any:
        """B v for rows v (..., m) -> (..., p)."""
        return v @ self.pinv_t

    def adjoint(self, g: Any) -> Any:
        """A^T g for rows g (..., m) -> (..., p)."""
        return g @ self.linear

    # ---- pull-backs (dense A) -----------------------------------------------------------

    def pull_pairs(self, info: dict[str, Any]) -> Any:
        """sum_k coef_k ((B delta_k) * (A^T grad_k) + remainder_k / p) (n, p)."""
        xp = self.xp
        maps = self.back(info["delta"]) * self.adjoint(info["grad"])
        maps = maps + info["remainder"][:, :, None] / self.n_in
        return xp.sum(info["coef"][:, :, None] * maps, axis=1)

    def pull_kmeans(
        self,
        zs: Any,
        target: Any,
        alpha: Any,
        shifted: Any,
        tau: Any,
        stack: Any,
        out: Any = None,
    ) -> Any:
        """The k-means midpoint map pulled back (formula in the module docstring).

        ``zs`` = z - o (n, m), ``shifted`` = mu - o (K, m), ``tau`` (K, p) and ``stack`` =
        [nu | nu * tau] (K, 2p), or nu * tau (K, p) where nu = d * tau (the cross terms
        vanish): with 2 zh - nu_c = B (2 zs - mu'_c), one (n, m) x (m, p) and two or three
        (n, K) x (K, p) products. numpy rows go in cache-sized blocks (the products'
        temporaries are (n, p)), written into ``out`` (n, p) when given.
        """
        xp = self.xp
        (n, k), p = alpha.shape, tau.shape[1]
        is_target = onehot(target, k, alpha.dtype, xp)
        own = xp.sum(alpha * is_target, axis=1, keepdims=True)
        a = is_target * own - alpha  # a_c = 0, alpha = s e_c - a
        step = max(1, _BLOCK_VALUES // p) if isinstance(alpha, np.ndarray) else n
        if step >= n and out is None:
            return self._pull_rows(zs, target, alpha, a, shifted, tau, stack)
        if out is None:
            out = np.empty((n, p), dtype=alpha.dtype)
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            self._pull_rows(
                zs[lo:hi], target[lo:hi], alpha[lo:hi], a[lo:hi], shifted, tau, stack,
                out=out[lo:hi],
            )  # fmt: skip
        return out

    def _pull_rows(
        self,
        zs: Any,
        target: Any,
        alpha: Any,
        a: Any,
        shifted: Any,
        tau: Any,
        stack: Any,
        out: Any = None,
    ) -> Any:
        """R = B (2 zs - mu'_c) * (alpha @ tau) - tau_c * (a @ nu) + a @ (nu * tau), or
        B (2 zs) * (alpha @ tau) - alpha @ (nu * tau) for a (K, p) ``stack``; numpy ``out``
        receives it without temporaries of its size beyond the products'."""
        xp = self.xp
        p = tau.shape[1]
        if stack.shape[1] == p:  # nu = d * tau: no cross terms
            back = self.back(2.0 * zs)
            if out is None:
                return back * (alpha @ tau) - alpha @ stack
            np.multiply(back, alpha @ tau, out=out)
            out -= alpha @ stack
            return out
        rest = a @ stack  # [a @ nu | a @ (nu * tau)]
        tau_c = xp.take(tau, target, axis=0)
        back = self.back(2.0 * zs - xp.take(shifted, target, axis=0))
        if out is None:
            return back * (alpha @ tau) - tau_c * rest[:, :p] + rest[:, p:]
        np.multiply(back, alpha @ tau, out=out)
        tau_c *= rest[:, :p]
        out -= tau_c
        out += rest[:, p:]
        return out


def kmeans_coefficients(
    geom: Any,
    scores: Any,
    target: Any,
    beta: float,
    *,
    contrast: Any = None,
    delta: Any = None,
) -> tuple[Any, Any, Any, Any]:
    """The mixing coefficients of k-means NEON: midpoint ``alpha`` (n, K), baseline
    ``beta_mix`` (n, K) or None, the logit (n,) and the baseline share (n,) or None.

    ``geom`` is a :class:`~whyclust.engine.kmeans.KMeansGeometry`; ``delta`` (n, m) is
    z - z0 for a baseline reference z0 (None: midpoint roots only). The same rule as
    :meth:`KMeansGeometry.neon`, returned before the product with the centroids so that it
    can be pulled back through an affine map.
    """
    xp = geom.xp
    h = margins_for_target(scores, target)
    k = geom.n_clusters
    f, weights = competitor_weights(h, beta, contrast)
    share = weights * f[:, None]
    if delta is None:
        return spread(share, target, h, geom.eps), None, f, None
    dproj = margins_for_target(2.0 * (delta @ geom.shifted_t), target)
    finite = xp.isfinite(h)
    h0 = xp.where(finite, h, 0.0)
    dproj = xp.where(finite, dproj, 0.0)
    valid = finite & (xp.abs(dproj) > geom.eps) & (h0 * (h0 - dproj) <= 0.0)
    b = xp.where(valid, share / xp.where(valid, dproj, 1.0), 0.0)
    beta_mix = onehot(target, k, b.dtype, xp) * xp.sum(b, axis=1, keepdims=True) - b
    alpha = spread(xp.where(valid, 0.0, share), target, h, geom.eps)
    total = xp.sum(share, axis=1)
    took = xp.sum(xp.where(valid, share, 0.0), axis=1) / xp.where(total == 0.0, 1.0, total)
    return alpha, beta_mix, f, took


class DiagonalKMeans(KMeansGeometry):
    """k-means on z = u * diag + offset, run on u directly (no per-batch transform).

    With o the mean centroid and M' the shifted centroids, the scores are
    s_k = 2 (z - o) . M'_k - ||M'_k||^2 = 2 u . (diag M'_k) + 2 (offset - o) . M'_k - ||M'_k||^2,
    so the diagonal folds into the centroid matrix and the relevance
    R = (z - o) * (alpha @ 2M') - alpha @ M'^2 (equal per column in z and u) comes out of
    the same two products as bare k-means. Inputs are shifted by the preimage of o when
    the image of u = 0 lies far from the centroids (float32 accuracy), as in
    :class:`~whyclust.engine.kmeans.KMeansGeometry`. ``diag`` must have no zero entry.
    """

    def __init__(self, centers: Any, diag: Any, offset: Any, eps: float | None = None) -> None:
        super().__init__(centers, eps)
        xp = self.xp
        m = self.shifted
        o = self.offset
        gap = offset - o  # where u = 0 lands, relative to the mean centroid
        sq_norm = xp.sum(m * m, axis=1)
        self.shift_inputs = float(xp.linalg.vector_norm(gap)) > 8.0 * math.sqrt(
            float(xp.max(sq_norm))
        )
        scaled = m * diag
        self.shifted_t = xp.asarray(xp.matrix_transpose(scaled), copy=True)
        if self.shift_inputs:
            self.offset = -gap / diag  # prepare(u) = u - u_o = (z - o) / diag
            self.score_bias = -sq_norm
            quadratic = -(m * m)
        else:
            self.score_bias = 2.0 * (m @ gap) - sq_norm
            quadratic = m * (2.0 * gap - m)
        self.mixing = xp.concat([2.0 * scaled, quadratic], axis=1)

    def assigned_logit(self, scores: Any) -> Any:
        return assigned_logits(scores)
