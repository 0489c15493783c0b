"""NEON for k-means heads: min-take-most + midpoint rule, vectorised (DESIGN.md section 1).

With a_k = R_k / h_ck (a_c = 0), s = sum_k a_k and alpha = s e_c - a, the relevance

    R = sum_k a_k (x - m_ck) * w_ck = 2 (x - o) * (alpha @ M') - alpha @ M'^2

comes from one (n, K) x (K, 2d) matrix product, where M' are the centroids shifted by their
mean o (translation invariance keeps float32 accurate for data far from the origin). The
margins h_ck = s_c - s_k come from the K scores s_k = 2 (x - o) . mu'_k - ||mu'_k||^2.
Cost O(n K d), memory O(batch x (d + K)) beside the output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from whyclust._validation import beta_from_mean, check_beta, check_targets
from whyclust.networks.kmeans import KMeansNetwork, logits_from_scores

__all__ = [
    "KMeansRelevance",
    "margins_for_target",
    "min_take_most",
    "resolve_beta",
    "resolve_targets",
    "stabilize",
]

#: rows per batch are chosen so that one batch holds about this many input values
_BATCH_VALUES = 1 << 20


def default_batch_size(n_features: int) -> int:
    return max(64, _BATCH_VALUES // max(1, n_features))


def row_batches(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def resolve_targets(target, assigned: torch.Tensor, n_clusters: int) -> torch.Tensor:
    """Turn ``"assigned"`` / an int / an (n,) array into an (n,) long tensor of clusters."""
    arr = check_targets(target, assigned.shape[0], n_clusters)
    if arr is None:
        return assigned
    return torch.as_tensor(arr, dtype=torch.long, device=assigned.device)


def resolve_beta(beta, assigned_logits: torch.Tensor | None = None) -> float:
    """``"auto"``: 1 / mean of the assigned-cluster logits; else a float >= 0 (inf allowed)."""
    beta = check_beta(beta)
    if isinstance(beta, str):
        if assigned_logits is None or assigned_logits.numel() == 0:
            raise ValueError("beta='auto' needs at least one point to explain")
        return beta_from_mean(float(assigned_logits.double().mean()))
    return beta


def margins_for_target(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """h_ck = s_c - s_k for each row's target c; the target column itself is set to +inf."""
    h = scores.gather(1, target[:, None]) - scores
    return h.scatter_(1, target[:, None], math.inf)


def min_take_most(h: torch.Tensor, beta: float) -> torch.Tensor:
    """Softmin weights over competitors (target column holds +inf and gets weight 0).

    beta = 0 splits evenly, beta = inf gives everything to the nearest competitor (ties
    shared). Computed stably by subtracting the row minimum.
    """
    f = h.amin(1, keepdim=True)
    if math.isinf(beta):
        w = (h == f).to(h.dtype)
    elif beta == 0.0:
        w = torch.isfinite(h).to(h.dtype)
    else:
        w = torch.exp(-beta * (h - f))  # exp(-inf) = 0 for the target column
    return w / w.sum(1, keepdim=True)


def stabilize(h: torch.Tensor, eps: float) -> torch.Tensor:
    """h + eps * sign(h) with sign(0) := +1: keeps 1/h finite for non-assigned targets."""
    return h + torch.where(h >= 0, eps, -eps)


#: the inputs are shifted by the mean centroid o before any product only when o is large
#: against the centroid spread; otherwise the shift is folded into biases (one pass less)
_SHIFT_RATIO = 8.0


@dataclass
class KMeansRelevance:
    """Precomputed centroid tensors for fast NEON on one device and dtype.

    With M' the centroids minus their mean o, scores are s_k = 2 (x - o) . mu'_k - ||mu'_k||^2
    and relevance is R = (x - o) * (alpha @ 2M') - alpha @ M'^2. When ||o|| is small against
    the spread of the centroids, (x - o) is never formed: o moves into the biases
    (``shift_inputs`` is False) at a negligible cost in rounding; data far from the origin
    are shifted first, which keeps float32 accurate (translation invariance).
    """

    offset: torch.Tensor  # (d,) mean centroid o
    shifted: torch.Tensor  # (K, d) centroids minus o
    score_bias: torch.Tensor  # (K,)
    mixing: torch.Tensor  # (K, 2d): [2 M', -M'^2 (- 2 o M' when o is folded in)]
    shift_inputs: bool
    eps: float  # absolute stabiliser

    @classmethod
    def from_network(
        cls, net: KMeansNetwork, dtype: torch.dtype, device: torch.device, eps: float | None
    ) -> KMeansRelevance:
        centers = net.centers.to(device=device, dtype=dtype)
        offset = centers.mean(0)
        shifted = centers - offset
        sq_norm = (shifted * shifted).sum(1)
        shift_inputs = float(offset.norm()) > _SHIFT_RATIO * float(sq_norm.max().sqrt())
        if shift_inputs:
            score_bias = -sq_norm
            quadratic = -(shifted * shifted)
        else:
            score_bias = -(sq_norm + 2.0 * (shifted @ offset))
            quadratic = -(shifted * (shifted + 2.0 * offset))
        k = shifted.shape[0]
        total = shifted.sum(0)  # mean squared distance of two centroids in O(K d) memory
        scale = (2.0 * k * float(sq_norm.sum()) - 2.0 * float(total @ total)) / (k * (k - 1))
        rel_eps = torch.finfo(dtype).eps if eps is None else float(eps)
        return cls(
            offset=offset,
            shifted=shifted,
            score_bias=score_bias,
            mixing=torch.cat([2.0 * shifted, quadratic], dim=1),
            shift_inputs=shift_inputs,
            eps=rel_eps * max(scale, torch.finfo(dtype).tiny),
        )

    def prepare(self, x: torch.Tensor, work: torch.Tensor | None = None) -> torch.Tensor:
        """The input as the products expect it: x - o when shifting, else x itself."""
        if not self.shift_inputs:
            return x
        return (
            torch.sub(x, self.offset, out=work[: x.shape[0]])
            if work is not None
            else (x - self.offset)
        )

    def scores(self, xp: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """s_k = ||x - o||^2 - ||x - mu_k||^2 for prepared input ``xp``; (n, K)."""
        return torch.addmm(self.score_bias, xp, self.shifted.T, alpha=2.0, out=out)

    def relevance(
        self,
        xp: torch.Tensor,
        alpha: torch.Tensor,
        out: torch.Tensor | None = None,
        work: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """R = xp * (alpha @ 2M') + alpha @ Q for prepared input ``xp``, into ``out``."""
        d = xp.shape[1]
        vq = torch.mm(alpha, self.mixing, out=None if work is None else work[: xp.shape[0]])
        return torch.addcmul(vq[:, d:], xp, vq[:, :d], out=out)

    def neon_alpha(
        self,
        scores: torch.Tensor,
        target: torch.Tensor,
        beta: float,
        amount: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixing coefficients alpha (n, K) and the target logits f (n,) of NEON.

        ``amount`` (n,) is the relevance to distribute; NEON proper uses f itself (the
        default), a backward pass uses the relevance arriving from above.
        """
        h = margins_for_target(scores, target)
        f = h.amin(1)
        g = f if amount is None else amount
        share = min_take_most(h, beta) * g[:, None]  # R_k; 0 in the target column
        a = share / stabilize(h, self.eps)  # h = inf there, so a_c = 0
        alpha = (-a).scatter_(1, target[:, None], a.sum(1, keepdim=True))
        return alpha, f

    def contrast_alpha(
        self, scores: torch.Tensor, target: torch.Tensor, other: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """alpha = e_c - e_k gives the contrastive map (x - m_ck) * w_ck, summing to h_ck."""
        alpha = torch.zeros_like(scores)
        alpha.scatter_(1, target[:, None], 1.0)
        alpha.scatter_add_(1, other[:, None], torch.full_like(scores[:, :1], -1.0))
        h = scores.gather(1, target[:, None])[:, 0] - scores.gather(1, other[:, None])[:, 0]
        return alpha, h


def assigned_logits(scores: torch.Tensor) -> torch.Tensor:
    """f of the assigned cluster: best minus second-best score."""
    top = scores.topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


__all__ += ["assigned_logits", "default_batch_size", "logits_from_scores", "row_batches"]


# --- the first pass shared by every explainer ------------------------------------------------


def to_tensor(block: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A numpy row block as a tensor on ``device`` with ``dtype`` (no copy when possible)."""
    return torch.from_numpy(np.ascontiguousarray(block)).to(device=device, dtype=dtype)


def check_finite_rows(logits: torch.Tensor) -> None:
    """NaN / inf in an input row makes its logits non-finite: an O(n K) check of X."""
    finite = torch.isfinite(logits).all(1)
    if not bool(finite.all()):
        row = int(torch.nonzero(~finite)[0, 0])
        raise ValueError(
            f"X contains NaN or infinite values, or the network gives NaN or infinite logits "
            f"for it (first at row {row})"
        )


def batched_logits(
    forward, X: np.ndarray, batch_size: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """(n, K) outputs of ``forward`` over row batches of ``X``, on the CPU, checked finite."""
    chunks = []
    with torch.no_grad():
        for rows in row_batches(X.shape[0], batch_size):
            chunks.append(forward(to_tensor(X[rows], device, dtype)).cpu())
    logits = torch.cat(chunks)
    check_finite_rows(logits)
    return logits


def resolve_request(
    logits: torch.Tensor,
    *,
    target,
    beta,
    contrast,
    assigned_logit=None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float | None]:
    """Assignments, targets, contrast clusters and beta of one explanation call.

    ``logits`` (n, K) are the cluster logits, or any scores with the same argmax; then
    ``assigned_logit()`` must give f of each point's assigned cluster (default: the row
    maximum of the logits). It is only called for ``beta="auto"``. Returns
    ``(assigned, target, contrast or None, beta or None)``.
    """
    assigned = logits.argmax(1)
    n_clusters = logits.shape[1]
    tgt = resolve_targets(target, assigned, n_clusters)
    if contrast is None:
        if isinstance(beta, str) and beta == "auto":
            f = logits.amax(1) if assigned_logit is None else assigned_logit()
            return assigned, tgt, None, resolve_beta(beta, f)
        return assigned, tgt, None, resolve_beta(beta)
    other = resolve_targets(contrast, assigned, n_clusters)
    if bool((other == tgt).any()):
        raise ValueError("contrast cluster must differ from the target cluster")
    return assigned, tgt, other, None


__all__ += ["batched_logits", "check_finite_rows", "resolve_request", "to_tensor"]
