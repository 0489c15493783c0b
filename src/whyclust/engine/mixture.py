"""Gaussian mixtures as a network, and NEON's rules for their quadratic margins (array API).

Component scores are the weighted log densities of scikit-learn's ``GaussianMixture``:

    g_k(x) = log pi_k + log|L_k| - 1/2 ||(x - mu_k) L_k||^2 - d/2 log(2 pi),

with ``L_k`` the Cholesky factor of the precision P_k = L_k L_k^T (``precisions_cholesky_``);
``predict`` is argmax_k g_k. Layer 1 gives the margins h_ck = g_c - g_k, quadratic in x
(linear for ``"tied"``), layer 2 the min over competitors, the logit f_c.

Relevance of one margin: for a quadratic h and any point r,
h(x) - h(r) = grad h((x + r) / 2) . (x - r) exactly, so R = (x - r) * grad h((x + r) / 2)
sums to h(x) when h(r) = 0 (for ``"diag"`` / ``"spherical"`` margins it is the separable
R_i = phi_i(x_i) - phi_i(r_i); for k-means it is the midpoint rule). The root r, per
competitor, is the first of these that exists (its code is returned):

- ``ROOT_MEANS`` (0): on the segment mu_c..mu_k (the root nearest its middle);
- ``ROOT_SEGMENT`` (1): on the segment x..mu_k (the one nearest x);
- ``ROOT_GRADIENT`` (2): on the line through x along grad h(x) (the one nearest x);
- ``ROOT_NONE`` (3): no root on that line either (h keeps its sign along it): r is the
  point of least |h| on the line and the remainder h(r) is spread evenly over the features;
- ``ROOT_REFERENCE`` (4): with a reference x0, on the segment x..x0 where h changes sign
  there (tried first).

Everything is vectorised over a batch of rows and the K competitors: the working tensors
are (batch, K, d); ``"full"`` costs O(batch K d^2), the other types O(batch K d).
"""

from __future__ import annotations

import math
from typing import Any

from whyclust.engine._xp import device_of, namespace
from whyclust.engine.kmeans import assigned_logits, logits_from_scores
from whyclust.engine.pool import competitor_weights, margins_for_target, stabilize

__all__ = [
    "COVARIANCE_TYPES",
    "ROOT_GRADIENT",
    "ROOT_MEANS",
    "ROOT_NAMES",
    "ROOT_NONE",
    "ROOT_REFERENCE",
    "ROOT_SEGMENT",
    "MixtureGeometry",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
ROOT_MEANS, ROOT_SEGMENT, ROOT_GRADIENT, ROOT_NONE, ROOT_REFERENCE = 0, 1, 2, 3, 4
ROOT_NAMES = ("means-segment", "x-segment", "gradient-line", "none", "reference-segment")


class MixtureGeometry:
    """The arrays of one fitted Gaussian mixture in one namespace, dtype and device.

    Parameters
    ----------
    means : array of shape (K, d)
    precisions_cholesky : array
        scikit-learn's ``precisions_cholesky_``: (K, d, d) ``"full"``, (d, d) ``"tied"``,
        (K, d) ``"diag"``, (K,) ``"spherical"``; same namespace and dtype as ``means``.
    weights : array of shape (K,)
    covariance_type : {"full", "tied", "diag", "spherical"}
    eps : float, optional
        Relative stabiliser of 1 / h_ck (default: the dtype's machine epsilon), scaled by
        the mean |h_ck(mu_c)|.
    """

    def __init__(
        self,
        means: Any,
        precisions_cholesky: Any,
        weights: Any,
        covariance_type: str,
        eps: float | None = None,
    ) -> None:
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}"
            )
        xp = namespace(means)
        self.xp = xp
        self.covariance_type = covariance_type
        k, d = int(means.shape[0]), int(means.shape[1])
        self.n_clusters, self.n_features = k, d
        # everything is translation invariant: work relative to the mean of the means, so
        # that float32 keeps its digits for data far from the origin
        self.offset = xp.mean(means, axis=0)
        self.means = means - self.offset
        chol = precisions_cholesky
        if covariance_type == "spherical":
            chol = xp.broadcast_to(chol[:, None], (k, d))
        self.chol = chol
        if covariance_type in ("full", "tied"):
            self.precision = chol @ xp.matrix_transpose(chol)  # P = L L^T
            diag = xp.linalg.diagonal(chol)
            log_det = xp.sum(xp.log(diag), axis=-1)
            if covariance_type == "tied":
                log_det = log_det * xp.ones(k, dtype=means.dtype, device=device_of(means))
        else:
            self.precision = chol * chol  # (K, d) diagonal precisions
            log_det = xp.sum(xp.log(chol), axis=1)
        self.score_bias = xp.log(weights) + log_det - 0.5 * d * math.log(2.0 * math.pi)
        # roots on the segments mu_c..mu_k, for every pair (x-independent)
        idx = xp.arange(k, device=device_of(means))
        mu = self.means  # shifted, like prepared rows
        hm = margins_for_target(self.scores(mu), idx)  # h_ck(mu_c), inf on the diagonal
        v = mu[None, :, :] - mu[:, None, :]  # mu_k - mu_c, row c
        a, b = self._line(mu, idx, v)
        t, ok = _quadratic_root(a, b, xp.where(xp.isfinite(hm), hm, 0.0), 0.0, 1.0, 0.5, xp)
        self.mean_root_t = xp.where(ok, t, 0.0)
        self.mean_root_ok = ok & xp.isfinite(hm)
        finfo = xp.finfo(means.dtype)
        scale = float(xp.mean(xp.abs(xp.where(xp.isfinite(hm), hm, 0.0)))) * k / max(1, k - 1)
        rel = float(finfo.eps) if eps is None else float(eps)
        self.eps = rel * max(scale, float(finfo.smallest_normal))

    # ---- forward ------------------------------------------------------------------------

    def prepare(self, x: Any) -> Any:
        """(n, d) rows in the compute dtype, relative to the mean of the means."""
        xp = self.xp
        x = xp.reshape(x, (x.shape[0], -1))
        x = x if x.dtype == self.means.dtype else xp.astype(x, self.means.dtype)
        return x - self.offset

    def scores(self, x: Any) -> Any:
        """Weighted log densities g_k(x) (n, K) of prepared rows."""
        xp = self.xp
        diff = x[:, None, :] - self.means[None, :, :]  # (n, K, d)
        if self.covariance_type == "full":
            y = (diff[:, :, None, :] @ self.chol[None])[:, :, 0, :]
        elif self.covariance_type == "tied":
            y = diff @ self.chol
        else:
            y = diff * self.chol[None]
        return self.score_bias - 0.5 * xp.sum(y * y, axis=-1)

    def logits(self, x: Any) -> Any:
        """Cluster logits f_k(x) = g_k(x) - max_{j != k} g_j(x) (n, K)."""
        return logits_from_scores(self.scores(self.prepare(x)))

    def assigned_logit(self, scores: Any) -> Any:
        """f of the assigned component: best minus second-best score (n,)."""
        return assigned_logits(scores)

    # ---- precision products ---------------------------------------------------------------

    def _apply(self, v: Any) -> Any:
        """P_k v_k for v of shape (n, K, d)."""
        if self.covariance_type == "full":
            return (v[:, :, None, :] @ self.precision[None])[:, :, 0, :]
        if self.covariance_type == "tied":
            return v @ self.precision
        return v * self.precision[None]

    def _apply_target(self, v: Any, target: Any) -> Any:
        """P_c v for the row's target c; v (n, K, d) or (n, d)."""
        xp = self.xp
        if self.covariance_type == "tied":
            return v @ self.precision
        p = xp.take(self.precision, target, axis=0)  # (n, d, d) or (n, d)
        if v.ndim == 2:
            if self.covariance_type == "full":
                return (v[:, None, :] @ p)[:, 0, :]
            return v * p
        if self.covariance_type == "full":
            return v @ p
        return v * p[:, None, :]

    def _gradient(self, y: Any, target: Any) -> Any:
        """grad h_ck at points y (n, K, d): P_k (y - mu_k) - P_c (y - mu_c)."""
        mu_c = self.xp.take(self.means, target, axis=0)
        return self._apply(y - self.means[None]) - self._apply_target(y - mu_c[:, None, :], target)

    def _line(self, x: Any, target: Any, v: Any) -> tuple[Any, Any]:
        """h(x + t v) = a t^2 + b t + h(x): the coefficients a, b (n, K)."""
        xp = self.xp
        grad = self._gradient(xp.broadcast_to(x[:, None, :], v.shape), target)
        b = xp.sum(grad * v, axis=-1)
        quad_k = xp.sum(v * self._apply(v), axis=-1)
        a = 0.5 * (quad_k - xp.sum(v * self._apply_target(v, target), axis=-1))
        return a, b

    # ---- relevance ----------------------------------------------------------------------

    def roots(self, x: Any, h: Any, target: Any, reference: Any = None) -> tuple[Any, Any, Any]:
        """Roots r (n, K, d) of every margin, their codes (n, K) and remainders h(r) (n, K).

        ``h`` are the margins of the row's target (+inf in its column); the remainder is 0
        except for code ``ROOT_NONE``.
        """
        xp = self.xp
        finite = xp.isfinite(h)
        h0 = xp.where(finite, h, 0.0)
        mu_c = xp.take(self.means, target, axis=0)
        xb = xp.broadcast_to(x[:, None, :], (x.shape[0], self.n_clusters, self.n_features))
        # segment mu_c..mu_k (precomputed per pair)
        t_mu = xp.take(self.mean_root_t, target, axis=0)
        ok_mu = xp.take(self.mean_root_ok, target, axis=0)
        root = mu_c[:, None, :] + t_mu[:, :, None] * (self.means[None] - mu_c[:, None, :])
        code = xp.where(ok_mu, ROOT_MEANS, ROOT_NONE)
        pending = finite & ~ok_mu
        if reference is not None:
            v = xp.broadcast_to(reference[:, None, :], xb.shape) - xb
            a, b = self._line(x, target, v)
            t, ok = _quadratic_root(a, b, h0, 0.0, 1.0, 0.0, xp)
            ok = ok & finite
            root = xp.where(ok[:, :, None], xb + t[:, :, None] * v, root)
            code = xp.where(ok, ROOT_REFERENCE, code)
            pending = finite & ~ok & ~ok_mu
        if bool(xp.any(pending)):
            v = self.means[None] - xb  # segment x..mu_k
            a, b = self._line(x, target, v)
            t, ok = _quadratic_root(a, b, h0, 0.0, 1.0, 0.0, xp)
            ok = ok & pending
            root = xp.where(ok[:, :, None], xb + t[:, :, None] * v, root)
            code = xp.where(ok, ROOT_SEGMENT, code)
            pending = pending & ~ok
        remainder = xp.zeros_like(h0)
        if bool(xp.any(pending)):
            g = self._gradient(xb, target)  # line along the gradient, either direction
            a, b = self._line(x, target, g)
            inf = math.inf
            t, ok = _quadratic_root(a, b, h0, -inf, inf, 0.0, xp)
            # a root farther than the points and means span (a near-flat margin, e.g. two
            # components with one mean) would cost (x - r) . grad h its digits: refused
            reach = 10.0 * (
                xp.linalg.vector_norm(xb - self.means[None], axis=2)
                + xp.linalg.vector_norm(x - mu_c, axis=1)[:, None]
            )
            step = xp.linalg.vector_norm(g, axis=2)
            ok = ok & (xp.abs(t) * step <= reach)
            # no root: the stationary point of the parabola (least |h| on the line), or x
            # itself when that is out of reach too (h then spread evenly)
            safe_a = xp.where(a == 0.0, 1.0, a)
            t_min = xp.where(a == 0.0, 0.0, -b / (2.0 * safe_a))
            t_min = xp.where(xp.abs(t_min) * step <= reach, t_min, 0.0)
            t = xp.where(ok, t, t_min)
            on = pending[:, :, None]
            root = xp.where(on, xb + t[:, :, None] * g, root)
            code = xp.where(pending & ok, ROOT_GRADIENT, code)
            none = pending & ~ok
            code = xp.where(none, ROOT_NONE, code)
            remainder = xp.where(none, h0 + t * (b + a * t), 0.0)
        code = xp.where(finite, code, -1)
        return root, code, remainder

    def pair_maps(self, x: Any, root: Any, remainder: Any, target: Any) -> Any:
        """(x - r_k) * grad h_ck((x + r_k) / 2) (+ remainder / d), (n, K, d)."""
        xb = x[:, None, :]
        grad = self._gradient(0.5 * (xb + root), target)
        return (xb - root) * grad + remainder[:, :, None] / self.n_features

    def neon(
        self,
        x: Any,
        scores: Any,
        target: Any,
        beta: float,
        *,
        contrast: Any = None,
        reference: Any = None,
        pairs: bool = False,
    ) -> tuple[Any, Any, Any]:
        """NEON relevance (n, d), the explained logit (n,) and the root codes (n, K).

        ``contrast`` (n,) explains the margin h_ck over that one competitor; ``reference``
        (n, d) or (1, d) tries the root on the segment x..reference first. ``pairs=True``
        returns, instead of the codes, a dict with them and the per-competitor factors
        ``coef`` (n, K), ``delta`` = x - r and ``grad`` (n, K, d) and ``remainder`` (n, K)
        (relevance = sum_k coef_k (delta_k * grad_k + remainder_k / d)).
        """
        xp = self.xp
        h = margins_for_target(scores, target)
        f, weights = competitor_weights(h, beta, contrast)
        share = weights * f[:, None]
        coef = share / stabilize(h, self.eps)  # 0 in the target column (h = inf)
        root, code, remainder = self.roots(x, h, target, reference)
        if pairs:
            finite = xp.isfinite(h)[:, :, None]
            delta = xp.where(finite, x[:, None, :] - root, 0.0)
            grad = self._gradient(0.5 * (x[:, None, :] + root), target)
            info = {"code": code, "coef": coef, "delta": delta, "grad": grad,
                    "remainder": remainder}  # fmt: skip
            return None, f, info
        maps = self.pair_maps(x, root, remainder, target)
        rel = xp.sum(coef[:, :, None] * xp.where(xp.isfinite(h)[:, :, None], maps, 0.0), axis=1)
        return rel, f, code

    def contrast_map(self, x: Any, scores: Any, target: Any, other: Any) -> tuple[Any, Any]:
        """The map of h_ck for c = target, k = other (default root rule) and h_ck."""
        rel, f, _ = self.neon(x, scores, target, 0.0, contrast=other)
        return rel, f


def _quadratic_root(a: Any, b: Any, c: Any, lo: float, hi: float, prefer: float, xp: Any):
    """The root of a t^2 + b t + c in [lo, hi] nearest ``prefer``, and whether one exists."""
    disc = b * b - 4.0 * a * c
    real = disc >= 0.0
    sq = xp.sqrt(xp.where(real, disc, 0.0))
    q = -0.5 * (b + xp.where(b >= 0.0, sq, -sq))  # stable form: roots q / a and c / q
    nonzero_q = q != 0.0
    t1 = q / xp.where(a == 0.0, 1.0, a)
    ok1 = real & (a != 0.0) & (t1 >= lo) & (t1 <= hi) & xp.isfinite(t1)
    t2 = c / xp.where(nonzero_q, q, 1.0)
    ok2 = real & nonzero_q & (t2 >= lo) & (t2 <= hi) & xp.isfinite(t2)
    zero = c == 0.0  # x itself is a root
    t2 = xp.where(zero, 0.0, t2)
    ok2 = ok2 | (zero & (lo <= 0.0) & (hi >= 0.0))
    take1 = ok1 & (~ok2 | (xp.abs(t1 - prefer) < xp.abs(t2 - prefer)))
    t = xp.where(take1, t1, xp.where(ok2, t2, 0.0))
    return t, ok1 | ok2
