"""k-means NEON in numpy alone: the torch-free engine of the streaming functions.

:mod:`whyclust.explainers.neon` holds these equations in torch, for every device and for the
deep heads. This module repeats the k-means part with numpy so that
:func:`whyclust.scale.explain_to` and :func:`whyclust.scale.predict_stream` can work through
an on-disk array of a k-means model without importing torch, whose import alone holds
about 550 MB of resident memory (CUDA build). The tests keep both engines equal.

With M' the centroids minus their mean o, the scores are s_k = 2 (x - o) . mu'_k -
||mu'_k||^2, the margins h_ck = s_c - s_k, and the relevance
R = (x - o) * (alpha @ 2M') - alpha @ M'^2 for the mixing coefficients alpha of NEON's
min-take-most rule (see DESIGN.md section 1 and :class:`whyclust.explainers.neon.KMeansRelevance`).
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from whyclust._validation import check_centers

__all__ = ["NumpyKMeans", "kmeans_centers"]

#: shift the inputs by the mean centroid only when it is far from the origin against the
#: centroid spread (same threshold as the torch engine)
_SHIFT_RATIO = 8.0

#: values of the (rows, 2d) temporary of the relevance product (4 MB of float32)
_MIXING_VALUES = 1 << 20

_SKLEARN_KMEANS = {"KMeans", "MiniBatchKMeans"}


def kmeans_centers(model: Any) -> np.ndarray | None:
    """The (K, d) centroids of a plain nearest-centroid model, or None for anything else.

    Recognises numpy arrays, scikit-learn ``KMeans`` / ``MiniBatchKMeans``, dask-ml
    ``KMeans`` and :class:`~whyclust.networks.KMeansNetwork`, without importing torch.
    Models that transform their inputs first (TELL, kernel k-means, encoders) return None.
    """
    if isinstance(model, np.ndarray):
        return check_centers(model)
    module = type(model).__module__
    name = type(model).__name__
    if name in _SKLEARN_KMEANS and module.startswith(("sklearn.", "dask_ml.")):
        centers = getattr(model, "cluster_centers_", None)
        if centers is None:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                f"This {name} instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using this estimator."
            )
        return check_centers(np.asarray(centers))
    if name == "KMeansNetwork" and "whyclust.networks.kmeans" in sys.modules:
        from whyclust.networks.kmeans import KMeansNetwork

        if type(model) is KMeansNetwork:
            return model.centers.detach().cpu().numpy()
    return None


class NumpyKMeans:
    """Scores, assignments and NEON relevance of a k-means model in one float dtype.

    Parameters
    ----------
    centers : ndarray of shape (K, d)
        Centroids (K >= 2, finite).
    dtype : numpy float dtype
        Compute dtype (float32 or float64).
    eps : float, optional
        Relative stabiliser of 1 / h_ck (default: the dtype's machine epsilon).
    """

    def __init__(self, centers: np.ndarray, dtype: Any, eps: float | None = None) -> None:
        dtype = np.dtype(dtype)
        centers = np.asarray(centers, dtype=dtype)
        self.dtype = dtype
        self.n_clusters, self.n_features = centers.shape
        self.centers = centers
        offset = centers.mean(0)
        shifted = centers - offset
        sq_norm = np.einsum("kd,kd->k", shifted, shifted)
        self.offset = offset
        self.shifted_t = np.ascontiguousarray(shifted.T)
        self.shift_inputs = bool(
            np.linalg.norm(offset) > _SHIFT_RATIO * math.sqrt(float(sq_norm.max()))
        )
        if self.shift_inputs:
            self.score_bias = -sq_norm
            quadratic = -(shifted * shifted)
        else:
            self.score_bias = -(sq_norm + 2.0 * (shifted @ offset))
            quadratic = -(shifted * (shifted + 2.0 * offset))
        self.mixing = np.concatenate([2.0 * shifted, quadratic], axis=1)
        k = self.n_clusters
        # mean squared distance between two distinct centroids, in closed form (O(K d))
        total = shifted.sum(0)
        pair_sq = 2.0 * k * float(sq_norm.sum()) - 2.0 * float(total @ total)
        finfo = np.finfo(dtype)
        rel_eps = float(finfo.eps) if eps is None else float(eps)
        self.eps = rel_eps * max(pair_sq / (k * (k - 1)), float(finfo.tiny))

    # ---- forward ------------------------------------------------------------------------

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """(n, d) rows in the compute dtype, shifted by o when the engine shifts inputs."""
        x = np.asarray(x).reshape(x.shape[0], -1)
        if self.shift_inputs:
            return np.subtract(x, self.offset, dtype=self.dtype)
        return x if x.dtype == self.dtype else x.astype(self.dtype)

    def scores(self, xp: np.ndarray) -> np.ndarray:
        """s_k = ||x - o||^2 - ||x - mu_k||^2 of prepared rows; (n, K)."""
        s = xp @ self.shifted_t
        s *= 2.0
        s += self.score_bias
        return s

    def checked_scores(self, x: np.ndarray, first_row: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(prepared rows, scores) of raw rows ``x``; non-finite rows raise ``ValueError``
        naming their index, counted from ``first_row``."""
        xp = self.prepare(x)
        scores = self.scores(xp)
        self.check_finite(scores, first_row)
        return xp, scores

    @staticmethod
    def assigned_logits(scores: np.ndarray) -> np.ndarray:
        """f of the assigned cluster: best minus second-best score."""
        top2 = -np.partition(-scores, 1, axis=1)[:, :2]
        return top2[:, 0] - top2[:, 1]

    @staticmethod
    def check_finite(scores: np.ndarray, first_row: int = 0) -> None:
        finite = np.isfinite(scores).all(1)
        if not finite.all():
            row = first_row + int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"X contains NaN or infinite values, or the network gives NaN or infinite "
                f"logits for it (first at row {row})"
            )

    # ---- NEON -----------------------------------------------------------------------------

    def neon_alpha(
        self, scores: np.ndarray, target: np.ndarray, beta: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mixing coefficients alpha (n, K) and the target logits f (n,)."""
        rows = np.arange(scores.shape[0])
        h = scores[rows, target][:, None] - scores
        h[rows, target] = np.inf
        f = h.min(1)
        if math.isinf(beta):
            w = (h == f[:, None]).astype(self.dtype)
        elif beta == 0.0:
            w = np.isfinite(h).astype(self.dtype)
        else:
            with np.errstate(under="ignore"):
                w = np.exp(-beta * (h - f[:, None]))
        w /= w.sum(1, keepdims=True)
        share = w * f[:, None]
        a = share / (h + np.where(h >= 0, self.eps, -self.eps))  # 0 in the target column
        alpha = -a
        alpha[rows, target] = a.sum(1)
        return alpha, f

    @staticmethod
    def contrast_alpha(
        scores: np.ndarray, target: np.ndarray, other: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """alpha = e_c - e_k (the contrastive map "why c and not k") and h_ck."""
        rows = np.arange(scores.shape[0])
        alpha = np.zeros_like(scores)
        alpha[rows, target] = 1.0
        alpha[rows, other] -= 1.0
        return alpha, scores[rows, target] - scores[rows, other]

    def relevance(
        self, xp: np.ndarray, alpha: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """R = xp * (alpha @ 2M') + alpha @ Q, written into ``out`` (n, d) if given.

        The (rows, 2d) product is formed for a few rows at a time, so that the only
        temporary stays small beside the batch.
        """
        d = self.n_features
        if out is None:
            out = np.empty_like(xp, dtype=self.dtype)
        step = max(1, _MIXING_VALUES // (2 * d))
        for start in range(0, xp.shape[0], step):
            rows = slice(start, start + step)
            vq = alpha[rows] @ self.mixing
            np.multiply(xp[rows], vq[:, :d], out=out[rows])
            out[rows] += vq[:, d:]
        return out
