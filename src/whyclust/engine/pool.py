"""Rules of the min-pool layer f_c = min_{k != c} h_ck (NEON's min-take-most)."""

from __future__ import annotations

import math
from typing import Any

from whyclust.engine._xp import device_of, namespace, onehot, row_min

__all__ = ["competitor_weights", "margins_for_target", "min_take_most", "pooled_logit", "stabilize"]


def margins_for_target(scores: Any, target: Any) -> Any:
    """h_ck = s_c - s_k for each row's target c, with +inf in the target column.

    ``scores`` (n, K) are any scores whose differences are the margins (k-means: minus the
    squared distances up to a per-row constant); ``target`` (n,) integer indices.
    """
    xp = namespace(scores)
    own = xp.take_along_axis(scores, target[:, None], axis=1)
    cols = xp.arange(scores.shape[1], device=device_of(scores))
    return xp.where(cols[None, :] == target[:, None], math.inf, own - scores)


def pooled_logit(h: Any) -> Any:
    """The hard min over competitors, f_c (n,)."""
    return row_min(h)


#: softmin weights below this fraction of the nearest competitor's are set to 0: each
#: carried less than 2^-64 of the logit, and subnormal weights slow every product using them
_NEGLIGIBLE = 2.0**-64


def min_take_most(h: Any, beta: float, f: Any = None) -> Any:
    """Softmin weights over the competitors of each row; +inf columns get weight 0.

    beta = 0 splits evenly, beta = inf gives everything to the nearest competitor (ties
    shared). Computed stably by subtracting the row minimum (``f`` (n,) when known).
    """
    xp = namespace(h)
    f = row_min(h, keepdims=True) if f is None else f[:, None]
    if math.isinf(beta):
        w = xp.astype(h == f, h.dtype)
    elif beta == 0.0:
        w = xp.astype(xp.isfinite(h), h.dtype)
    else:
        w = xp.exp(-beta * (h - f))
        w = xp.where(w < _NEGLIGIBLE, 0.0, w)
    return w / xp.sum(w, axis=1, keepdims=True)


def competitor_weights(h: Any, beta: float, contrast: Any = None) -> tuple[Any, Any]:
    """The explained logit (n,) and each competitor's share of it (n, K).

    Without ``contrast`` the logit is the min-pool f_c and the shares are min-take-most's;
    with ``contrast`` (n,) column indices it is that column's margin, which takes it all.
    """
    xp = namespace(h)
    if contrast is None:
        f = row_min(h)
        return f, min_take_most(h, beta, f)
    weights = onehot(contrast, h.shape[1], h.dtype, xp)
    return xp.sum(xp.where(weights > 0, h, 0.0), axis=1), weights


def stabilize(h: Any, eps: float) -> Any:
    """h + eps * sign(h) with sign(0) := +1: keeps 1/h finite for non-assigned targets."""
    xp = namespace(h)
    e = xp.asarray(eps, dtype=h.dtype, device=device_of(h))  # two scalars would give float64
    return h + xp.where(h >= 0, e, -e)


def spread(share: Any, target: Any, h: Any, eps: float) -> Any:
    """Mixing coefficients alpha = s e_c - a of a linear layer below the pool.

    ``share`` (n, K) is the relevance R_k of each competitor (0 in the target column), ``h``
    the margins. a_k = R_k / h_ck and s = sum_k a_k: for k-means
    R = sum_k a_k (x - m_ck) * w_ck is linear in alpha (see :mod:`whyclust.engine.kmeans`).
    """
    xp = namespace(share)
    a = share / stabilize(h, eps)  # h = +inf in the target column gives a_c = 0
    return onehot(target, share.shape[1], share.dtype, xp) * xp.sum(a, axis=1, keepdims=True) - a


__all__ += ["spread"]
