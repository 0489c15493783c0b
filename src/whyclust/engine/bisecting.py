"""Bisecting k-means as a network, and NEON's midpoint rule for it (array-API code).

``BisectingKMeans.predict`` descends the bisection tree, taking at each internal node j the
nearer of its two children L_j, R_j. With the node margin
m_j(x) = ||x - R_j||^2 - ||x - L_j||^2 = 2 (L_j - R_j) . x + ||R_j||^2 - ||L_j||^2 (> 0:
go left) and the path signs S_cj (+1 if leaf c lies under L_j, -1 under R_j, 0 if node j
is not on c's path), leaf c is predicted iff every node on its path prefers the path child:

    f_c(x) = min_{j on path(c)} S_cj m_j(x),

a min-pool of linear margins, a different competitor set per leaf (+inf elsewhere). Off
the predicted leaf's path some node prefers the other child, so argmax_c f_c = predict.
Each margin's root is the midpoint (L_j + R_j) / 2 of its two children: with mixing
coefficients alpha_j = S_cj R_j / h_cj over the nodes,

    R = 2 (x - o) * (alpha @ (L' - R')) - alpha @ (L'^2 - R'^2)

(primes: shifted by the mean centroid o), two (n, J) x (J, d) products.
"""

from __future__ import annotations

import math
from typing import Any

from whyclust.engine._xp import namespace
from whyclust.engine.pool import competitor_weights, stabilize

__all__ = ["BisectingGeometry"]


class BisectingGeometry:
    """The node arrays of one bisection tree in one namespace, dtype and device.

    Parameters
    ----------
    left, right : arrays of shape (J, d)
        The two children's centres of every internal node (J = K - 1 for K leaves).
    signs : array of shape (K, J)
        S_cj in {+1, -1, 0}, in the compute dtype.
    divergence : array of shape (K, K), integer
        For leaves c != k, the node where their paths part (diagonal: any value).
    eps : float, optional
        Relative stabiliser of 1 / h (default: machine epsilon), scaled by the mean
        squared distance between two children.
    """

    def __init__(
        self, left: Any, right: Any, signs: Any, divergence: Any, eps: float | None = None
    ) -> None:
        xp = namespace(left, right, signs)
        self.xp = xp
        self.n_nodes, self.n_features = int(left.shape[0]), int(left.shape[1])
        self.n_clusters = int(signs.shape[0])
        self.signs = signs
        self.divergence = divergence
        self.on_path = signs != 0
        offset = xp.mean(xp.concat([left, right], axis=0), axis=0)
        lt, rt = left - offset, right - offset
        self.offset = offset
        self.midpoints = 0.5 * (lt + rt)  # shifted roots of the node margins
        self.direction = 2.0 * (lt - rt)  # (J, d): m_j = direction . (x - o) + bias
        self.bias = xp.sum(rt * rt, axis=1) - xp.sum(lt * lt, axis=1)
        self.quadratic = -(lt * lt - rt * rt)  # alpha @ quadratic: minus the midpoint term
        self.direction_t = xp.asarray(xp.matrix_transpose(self.direction), copy=True)
        finfo = xp.finfo(left.dtype)
        rel = float(finfo.eps) if eps is None else float(eps)
        sep = float(xp.mean(xp.sum((lt - rt) ** 2, axis=1)))
        self.eps = rel * max(sep, float(finfo.smallest_normal))

    # ---- forward ------------------------------------------------------------------------

    def prepare(self, x: Any) -> Any:
        """(n, d) rows in the compute dtype, shifted by the mean centre."""
        xp = self.xp
        x = xp.reshape(x, (x.shape[0], -1))
        if x.dtype != self.direction.dtype:
            x = xp.astype(x, self.direction.dtype)
        return x - self.offset

    def node_margins(self, xprep: Any) -> Any:
        """m_j(x) (n, J): > 0 where node j sends x to its left child."""
        return xprep @ self.direction_t + self.bias

    def path_margins(self, m: Any, target: Any) -> Any:
        """h_cj = S_cj m_j on the target's path, +inf off it (n, J)."""
        xp = self.xp
        s = xp.take(self.signs, target, axis=0)
        return xp.where(s != 0, s * m, math.inf)

    def scores(self, xprep: Any) -> Any:
        """The logits f_c(x) of every leaf (n, K); O(n K J)."""
        xp = self.xp
        m = self.node_margins(xprep)
        h = xp.where(self.on_path[None], self.signs[None] * m[:, None, :], math.inf)
        return xp.min(h, axis=2)

    logits_of_prepared = scores

    def logits(self, x: Any) -> Any:
        return self.scores(self.prepare(x))

    def assigned_logit(self, scores: Any) -> Any:
        return self.xp.max(scores, axis=1)

    # ---- relevance ----------------------------------------------------------------------

    def coefficients(
        self, xprep: Any, target: Any, beta: float, *, contrast: Any = None, reference: Any = None
    ) -> tuple[Any, Any, Any, Any]:
        """Mixing coefficients of the midpoint and baseline roots (n, J) each, the logit
        (n,) and the baseline share (n,) or None."""
        xp = self.xp
        m = self.node_margins(xprep)
        h = self.path_margins(m, target)
        s = xp.take(self.signs, target, axis=0)
        node = None  # with a contrast: the node where the two leaves' paths part
        if contrast is not None:
            node = xp.take(xp.reshape(self.divergence, (-1,)), target * self.n_clusters + contrast)
        f, weights = competitor_weights(h, beta, node)
        share = weights * f[:, None]
        if reference is None:
            return s * share / stabilize(h, self.eps), None, f, None
        proj = s * ((xprep - reference) @ self.direction_t)  # w_cj . (x - x0)
        finite = xp.isfinite(h)
        h0 = xp.where(finite, h, 0.0)
        proj = xp.where(finite, proj, 0.0)
        valid = finite & (xp.abs(proj) > self.eps) & (h0 * (h0 - proj) <= 0.0)
        base = xp.where(valid, s * share / xp.where(valid, proj, 1.0), 0.0)
        mid = s * xp.where(valid, 0.0, share) / stabilize(h, self.eps)
        total = xp.sum(share, axis=1)
        took = xp.sum(xp.where(valid, share, 0.0), axis=1) / xp.where(total == 0.0, 1.0, total)
        return mid, base, f, took

    def neon(
        self,
        xprep: Any,
        scores: Any,
        target: Any,
        beta: float,
        *,
        contrast: Any = None,
        reference: Any = None,
    ) -> tuple[Any, Any, Any]:
        """NEON relevance (n, d), the explained logit (n,) and the baseline-root share."""
        mid, base, f, took = self.coefficients(
            xprep, target, beta, contrast=contrast, reference=reference
        )
        rel = xprep * (mid @ self.direction) + mid @ self.quadratic
        if base is not None:
            rel = rel + (xprep - reference) * (base @ self.direction)
        return rel, f, took
