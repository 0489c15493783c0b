"""k-means as a network, and NEON's rules for its linear layer (array-API code).

Layer 1 is linear: h_ck(x) = w_ck . x + b_ck with w_ck = 2 (mu_c - mu_k) and
b_ck = ||mu_k||^2 - ||mu_c||^2, the difference of squared distances
||x - mu_k||^2 - ||x - mu_c||^2. Layer 2 is the min over the K-1 competitors, the logit f_c.
Both come from the K scores s_k = 2 (x - o) . mu'_k - ||mu'_k||^2 of the centroids mu' = mu - o
shifted by their mean o (h_ck = s_c - s_k): one (n, d) x (d, K) product, and translation
invariance keeps float32 accurate for data far from the origin.

Relevance of the linear layer, for mixing coefficients alpha = s e_c - a
(:func:`whyclust.engine.pool.spread`):

- midpoint root m_ck = (mu_c + mu_k) / 2:
  R = sum_k a_k (x - m_ck) * w_ck = 2 (x - o) * (alpha @ M') - alpha @ M'^2;
- baseline root on the segment from x to a reference x0 (where h_ck changes sign there):
  R = sum_k b_k (x - x0) * w_ck = (x - x0) * (2 beta @ M'), with b_k = R_k / (w_ck . (x - x0)).

Both are (n, K) x (K, d) products: cost O(n K d), the order of ``KMeans.predict``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from whyclust.engine._xp import device_of, namespace, onehot, row_max
from whyclust.engine.pool import competitor_weights, margins_for_target, spread

__all__ = [
    "KMeansGeometry",
    "assigned_logits",
    "check_finite_scores",
    "logits_from_scores",
]

#: inputs are shifted by the mean centroid o before any product only when o is far from the
#: origin against the centroid spread; otherwise o is folded into the biases (one pass less)
_SHIFT_RATIO = 8.0
#: numpy writes R in row blocks of about this many values (cache-sized temporaries)
_BLOCK_VALUES = 1 << 16


def logits_from_scores(s: Any) -> Any:
    """f_c = s_c - max_{k != c} s_k for every c (n, K)."""
    xp = namespace(s)
    cols = xp.arange(s.shape[1], device=device_of(s))
    is_best = cols[None, :] == xp.argmax(s, axis=1)[:, None]
    best = row_max(s, keepdims=True)
    second = row_max(xp.where(is_best, -math.inf, s), keepdims=True)
    return s - xp.where(is_best, second, best)


def assigned_logits(s: Any, assigned: Any = None) -> Any:
    """f of the assigned cluster: best minus second-best score (n,).

    ``assigned`` (n,) is the argmax of ``s`` when the caller has it already.
    """
    xp = namespace(s)
    cols = xp.arange(s.shape[1], device=device_of(s))
    best = row_max(s)
    if assigned is None:
        assigned = xp.argmax(s, axis=1)
    is_best = cols[None, :] == assigned[:, None]
    return best - row_max(xp.where(is_best, -math.inf, s))


def check_finite_scores(scores: Any, first_row: int = 0) -> None:
    """NaN / inf in an input row makes its scores non-finite: an O(n K) check of X."""
    xp = namespace(scores)
    finite = xp.isfinite(scores)
    if bool(xp.all(finite)):
        return
    row = first_row + int(xp.argmax(xp.astype(~xp.all(finite, axis=1), xp.int32)))
    raise ValueError(
        "X contains NaN or infinite values, or the network gives NaN or infinite "
        f"logits for it (first at row {row})"
    )


class KMeansGeometry:
    """The centroid arrays of one k-means model in one namespace, dtype and device.

    Parameters
    ----------
    centers : array of shape (K, d)
        Finite centroids, K >= 2, already in the compute dtype and on the compute device.
    eps : float, optional
        Relative stabiliser of 1 / h_ck (default: the dtype's machine epsilon), scaled by
        the mean squared distance between two centroids.
    """

    def __init__(self, centers: Any, eps: float | None = None) -> None:
        xp = namespace(centers)
        self.xp = xp
        self.n_clusters, self.n_features = int(centers.shape[0]), int(centers.shape[1])
        self.centers = centers
        offset = xp.mean(centers, axis=0)
        shifted = centers - offset
        sq_norm = xp.sum(shifted * shifted, axis=1)
        self.offset = offset
        self.shifted = shifted
        self.shift_inputs = float(xp.linalg.vector_norm(offset)) > _SHIFT_RATIO * math.sqrt(
            float(xp.max(sq_norm))
        )
        if self.shift_inputs:
            self.score_bias = -sq_norm
            quadratic = -(shifted * shifted)
        else:
            self.score_bias = -(sq_norm + 2.0 * (shifted @ offset))
            quadratic = -(shifted * (shifted + 2.0 * offset))
        self.shifted_t = _contiguous(xp.matrix_transpose(shifted), xp)
        self.mixing = xp.concat([2.0 * shifted, quadratic], axis=1)
        self._split: tuple[Any, Any] | None = None
        k = self.n_clusters
        total = xp.sum(shifted, axis=0)  # mean squared distance of two centroids, O(K d)
        pair_sq = 2.0 * k * float(xp.sum(sq_norm)) - 2.0 * float(xp.sum(total * total))
        finfo = xp.finfo(centers.dtype)
        rel = float(finfo.eps) if eps is None else float(eps)
        self.eps = rel * max(pair_sq / (k * (k - 1)), float(finfo.smallest_normal))

    # ---- forward ------------------------------------------------------------------------

    def prepare(self, x: Any) -> Any:
        """(n, d) rows in the compute dtype, shifted by o when the engine shifts inputs."""
        xp = self.xp
        x = xp.reshape(x, (x.shape[0], -1))
        if x.dtype != self.centers.dtype:
            x = xp.astype(x, self.centers.dtype)
        return x - self.offset if self.shift_inputs else x

    def scores(self, xprep: Any) -> Any:
        """s_k = ||x - o||^2 - ||x - mu_k||^2 of prepared rows (n, K)."""
        return 2.0 * (xprep @ self.shifted_t) + self.score_bias

    def logits(self, x: Any) -> Any:
        """Cluster logits f_k(x) (n, K) of raw rows."""
        return logits_from_scores(self.scores(self.prepare(x)))

    # ---- relevance ----------------------------------------------------------------------

    def neon(
        self,
        xprep: Any,
        scores: Any,
        target: Any,
        beta: float,
        *,
        amount: Any = None,
        contrast: Any = None,
        reference: Any = None,
        out: Any = None,
        work: Any = None,
    ) -> tuple[Any, Any, Any]:
        """NEON relevance (n, d), the explained logit (n,) and the baseline-root mask.

        ``amount`` (n,) is the relevance to distribute (default: the logit itself, NEON
        proper; a backward pass gives what arrives from above). ``contrast`` (n,) explains
        the margin h_ck over that one competitor instead of the min-pool. ``reference``
        (prepared rows, (n, d) or (1, d)) takes the root on the segment from x to it where
        h_ck changes sign there, else the midpoint; the share (n,) is the part of the
        distributed amount that took the baseline root (None for the midpoint rule).
        """
        xp = self.xp
        if reference is None:
            alpha, f = self.midpoint_mixing(scores, target, beta, amount=amount, contrast=contrast)
            return self.relevance(xprep, alpha, out, work), f, None
        h = margins_for_target(scores, target)
        k = self.n_clusters
        f, weights = competitor_weights(h, beta, contrast)
        g = f if amount is None else amount
        share = weights * g[:, None]  # R_k; 0 in the target column
        delta = xprep - reference
        proj = 2.0 * (delta @ self.shifted_t)  # w_ck . (x - x0) = proj_c - proj_k
        dproj = margins_for_target(proj, target)
        # root on the segment: h_ck(x0) = h_ck(x) - dproj has the other sign (t in [0, 1])
        finite = xp.isfinite(h)
        h0 = xp.where(finite, h, 0.0)
        dproj = xp.where(finite, dproj, 0.0)
        valid = finite & (xp.abs(dproj) > self.eps) & (h0 * (h0 - dproj) <= 0.0)
        safe = xp.where(valid, dproj, 1.0)
        b = xp.where(valid, share / safe, 0.0)
        beta_mix = onehot(target, k, b.dtype, xp) * xp.sum(b, axis=1, keepdims=True) - b
        alpha = spread(xp.where(valid, 0.0, share), target, h, self.eps)
        rel = self.relevance(xprep, alpha, out, work)
        rel += delta * (beta_mix @ self.mixing[:, : self.n_features])
        total = xp.sum(share, axis=1)
        took = xp.sum(xp.where(valid, share, 0.0), axis=1)
        return rel, f, took / xp.where(total == 0.0, 1.0, total)

    def midpoint_mixing(
        self, scores: Any, target: Any, beta: float, *, amount: Any = None, contrast: Any = None
    ) -> tuple[Any, Any]:
        """Mixing alpha (n, K) of the midpoint rule and the explained logit (n,).

        Needs only the scores, so a caller can resolve it for every row at once and then
        write :meth:`relevance` block by block; ``amount`` and ``contrast`` as in :meth:`neon`.
        """
        h = margins_for_target(scores, target)
        f, weights = competitor_weights(h, beta, contrast)
        g = f if amount is None else amount
        return spread(weights * g[:, None], target, h, self.eps), f

    def relevance(self, xprep: Any, alpha: Any, out: Any = None, work: Any = None) -> Any:
        """R = xp * (alpha @ 2M') + alpha @ Q for prepared rows and mixing alpha (n, K).

        ``out`` (n, d; numpy or a torch tensor) receives R. numpy writes it in cache-sized
        row blocks; for a torch ``out``, ``work`` (a tensor of at least (n, d)) holds
        alpha @ 2M', so that a batch allocates nothing of its size.
        """
        d = self.n_features
        if out is None:
            vq = alpha @ self.mixing
            return xprep * vq[:, :d] + vq[:, d:]
        if self._split is None:  # contiguous halves: each product lands where it is used
            self._split = (_contiguous(self.mixing[:, :d], self.xp),
                           _contiguous(self.mixing[:, d:], self.xp))  # fmt: skip
        scale_by_x, offset = self._split
        m = alpha.shape[0]
        if isinstance(out, np.ndarray):  # cache-sized blocks: only x and R touch memory
            step = min(m, max(1, _BLOCK_VALUES // max(1, d)))
            scaled, shift = np.empty((2, step, d), dtype=out.dtype)
            for a in range(0, m, step):
                b = min(m, a + step)
                w = np.matmul(alpha[a:b], scale_by_x, out=scaled[: b - a])
                w *= xprep[a:b]
                np.add(w, np.matmul(alpha[a:b], offset, out=shift[: b - a]), out=out[a:b])
            return out
        # a torch tensor (a view of the caller's output): fused, threaded, in place
        w = alpha @ scale_by_x if work is None else work[:m].addmm_(alpha, scale_by_x, beta=0)
        out.addmm_(alpha, offset, beta=0)
        return out.addcmul_(w, xprep)

    def contrast_map(self, xprep: Any, scores: Any, target: Any, other: Any) -> tuple[Any, Any]:
        """(x - m_ck) * w_ck for c = target, k = other, and h_ck (it sums to it exactly)."""
        xp = self.xp
        k = self.n_clusters
        alpha = onehot(target, k, scores.dtype, xp) - onehot(other, k, scores.dtype, xp)
        h = xp.sum(alpha * scores, axis=1)
        return self.relevance(xprep, alpha), h


def _contiguous(a: Any, xp: Any) -> Any:
    if hasattr(a, "contiguous"):  # torch
        return a.contiguous()
    return xp.asarray(a, copy=True)
