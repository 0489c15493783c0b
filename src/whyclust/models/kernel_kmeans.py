"""Gaussian kernel k-means as a scikit-learn clusterer, explainable by NEON (docs/kernel_kmeans.md).

Fitting runs the textbook kernel k-means iteration on the support points (the training
points, or a random subsample of ``max_support`` of them): with the kernel matrix
K_ab = exp(-gamma ||x_a - x_b||^2), the feature-space distance of a point to the mean of
cluster k is

    k(x, x) - 2 / |C_k| sum_{j in C_k} k(x, u_j) + 1 / |C_k|^2 sum_{j, l in C_k} k(u_j, u_l)

and each point moves to the nearest cluster until the assignment is stable.

Prediction uses the neuralized rule of the paper, argmin_k d_k(x) with the soft-min distance
d_k(x) = LME^{-gamma}_{j in C_k} ||x - u_j||^2 = -(1/gamma) log(mean_j k(x, u_j)). It drops
the last, per-cluster, term of the textbook distance, so the two rules can disagree;
:attr:`KernelKMeans.textbook_agreement_` reports how often they agree on the training data.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from whyclust._fileformat import finite_array
from whyclust._validation import as_float_array
from whyclust.engine.kernel import KernelGeometry
from whyclust.models._kmeanspp import kmeans_plusplus

__all__ = ["KernelKMeans"]

_ROW_VALUES = 1 << 22  # kernel entries per block when evaluating rows against support points


class KernelKMeans(ClusterMixin, BaseEstimator):
    """Gaussian kernel k-means, with an exact neuralization for NEON explanations.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters, K >= 1 (the network and its explanations need K >= 2).
    gamma : float or "scale", default="scale"
        Kernel width in k(x, y) = exp(-gamma ||x - y||^2). ``"scale"`` uses
        1 / (n_features * X.var()), as scikit-learn's SVC does.
    n_init : int, default=5
        Restarts from greedy k-means++ seeds in feature space
        (||phi(a) - phi(b)||^2 = K_aa + K_bb - 2 K_ab); the run with the lowest kernel
        k-means objective is kept.
    max_iter : int, default=100
        Maximum iterations of one run.
    tol : float, default=1e-4
        A run stops when the relative decrease of the objective is below ``tol`` or no
        point changes cluster.
    max_support : int or None, default=2000
        Fit on (and keep as support points) at most this many training points, drawn at
        random; ``None`` keeps all of them. The kernel matrix costs max_support^2 values.
    random_state : int, RandomState or None, default=None
        Seeds the subsample and the initialisation.

    Attributes
    ----------
    support_ : ndarray of shape (m, n_features)
        Support points u_j.
    support_labels_ : ndarray of shape (m,)
        Cluster of each support point (textbook kernel k-means fit).
    gamma_ : float
        The kernel width used.
    labels_ : ndarray of shape (n_samples,)
        Clusters of the training points by the neuralized (LME) rule, i.e. ``predict(X)``.
    textbook_agreement_ : float
        Fraction of training points on which the LME rule agrees with the textbook rule.
    inertia_ : float
        Kernel k-means objective (sum of feature-space squared distances) on the support.
    n_iter_ : int
        Iterations of the kept run.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray of str
        Column names of a DataFrame passed to ``fit``.
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "gamma": [StrOptions({"scale"}), Interval(Real, 0, None, closed="neither")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_support": [None, Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        gamma: float | str = "scale",
        n_init: int = 5,
        max_iter: int = 100,
        tol: float = 1e-4,
        max_support: int | None = 2000,
        random_state: Any = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.gamma = gamma
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.max_support = max_support
        self.random_state = random_state

    # --- fitting -----------------------------------------------------------------------------

    def _gamma(self, X: np.ndarray) -> float:
        """Validate the parameters and return the kernel width for data ``X``."""
        self._validate_params()
        if self.max_support is not None and self.max_support < self.n_clusters:
            raise ValueError(
                f"max_support must be None or an integer >= n_clusters, got {self.max_support!r}"
            )
        if self.n_clusters > X.shape[0]:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}.")
        if isinstance(self.gamma, str):  # "scale"
            var = float(X.var())
            return 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        if not np.isfinite(self.gamma):
            raise ValueError(f"gamma must be a positive finite number, got {self.gamma}")
        return float(self.gamma)

    def _check_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """scikit-learn's checks (names, sparse, NaN, feature count), then float32 / float64."""
        X = validate_data(self, X, reset=reset, dtype="numeric")
        return as_float_array(X)

    def fit(self, X: Any, y: Any = None) -> KernelKMeans:
        """Fit kernel k-means on ``X`` (or a random subsample of ``max_support`` rows)."""
        X = self._check_X(X, reset=True)
        gamma = self._gamma(X)
        rng = check_random_state(self.random_state)
        n = X.shape[0]
        if self.max_support is not None and n > self.max_support:
            idx = np.sort(rng.choice(n, self.max_support, replace=False))
            support = X[idx]
        else:
            support = X
        kmat = _gaussian_kernel(support, support, gamma)
        best = None
        for _ in range(self.n_init):
            labels, inertia, n_iter = _kernel_kmeans_run(
                kmat, self.n_clusters, rng, self.max_iter, self.tol
            )
            if best is None or inertia < best[1]:
                best = (labels, inertia, n_iter)
        labels, inertia, n_iter = best
        self.support_ = np.array(support, copy=True)
        self.support_labels_ = labels.astype(np.int64)
        self.gamma_ = gamma
        self.inertia_ = float(inertia)
        self.n_iter_ = int(n_iter)
        self._network = None
        self.labels_ = self._predict(X)
        self.textbook_agreement_ = float(np.mean(self._predict_textbook(X) == self.labels_))
        return self

    # --- prediction --------------------------------------------------------------------------

    def network(self) -> Any:
        """The exact neuralized network, a torch ``KernelKMeansNetwork`` (cached); K >= 2."""
        from whyclust.networks.kernel import KernelKMeansNetwork

        check_is_fitted(self, "support_")
        if getattr(self, "_network", None) is None:
            self._network = KernelKMeansNetwork(self.support_, self.support_labels_, self.gamma_)
        return self._network

    def predict(self, X: Any) -> np.ndarray:
        """Clusters by the neuralized rule argmin_k LME^{-gamma}_{j in C_k} ||x - u_j||^2."""
        check_is_fitted(self, "support_")
        return self._predict(self._check_X(X, reset=False))

    def _predict(self, X: np.ndarray) -> np.ndarray:
        if self.n_clusters == 1:
            return np.zeros(X.shape[0], dtype=np.int64)
        order = np.argsort(self.support_labels_, kind="stable")
        counts = np.bincount(self.support_labels_, minlength=self.n_clusters)
        support = np.ascontiguousarray(self.support_[order])
        geom = KernelGeometry(support, counts, self.gamma_)  # the network's own arithmetic
        rows = max(1, _ROW_VALUES // max(1, self.support_.shape[0]))
        out = np.empty(X.shape[0], dtype=np.int64)
        for start in range(0, X.shape[0], rows):
            xb = X[start : start + rows].astype(support.dtype, copy=False)
            out[start : start + rows] = geom.scores(geom.prepare(xb)).argmax(1)
        return out

    def predict_textbook(self, X: Any) -> np.ndarray:
        """Clusters by the textbook kernel k-means distance (with the per-cluster term)."""
        check_is_fitted(self, "support_")
        return self._predict_textbook(self._check_X(X, reset=False))

    def _predict_textbook(self, X: np.ndarray) -> np.ndarray:
        k = self.n_clusters
        onehot = np.eye(k, dtype=self.support_.dtype)[self.support_labels_]
        counts = onehot.sum(0)
        kss = _gaussian_kernel(self.support_, self.support_, self.gamma_)
        self_term = np.einsum("ak,ab,bk->k", onehot, kss, onehot) / counts**2
        rows = max(1, _ROW_VALUES // max(1, self.support_.shape[0]))
        out = np.empty(X.shape[0], dtype=np.int64)
        for start in range(0, X.shape[0], rows):
            kxs = _gaussian_kernel(X[start : start + rows], self.support_, self.gamma_)
            dist = self_term - 2.0 * (kxs @ onehot) / counts
            out[start : start + rows] = dist.argmin(1)
        return out

    def __neuralize__(self, **_: Any) -> Any:
        """The exact network of the LME rule (:func:`whyclust.neuralize`); needs K >= 2.
        A copy: what the caller does to it (``.float()``, ``.to(device)``) stays with it."""
        import copy

        return copy.deepcopy(self.network())

    @property
    def cluster_sizes_(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return np.bincount(self.support_labels_, minlength=self.n_clusters)


# --- kernel k-means iterations on a kernel matrix -----------------------------------------


def _gaussian_kernel(A: np.ndarray, B: np.ndarray, gamma: float) -> np.ndarray:
    ob = B.mean(0)
    a, b = A - ob, B - ob  # distances are translation invariant; shifting keeps digits
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.exp(-gamma * np.maximum(sq, 0.0))


def _writable(A: np.ndarray) -> np.ndarray:
    """C-contiguous and writable (torch will not wrap read-only memory without a warning)."""
    return np.ascontiguousarray(A) if A.flags.writeable else A.copy(order="C")


def _plus_plus_init(kmat: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
    """Labels from greedy k-means++ seeds in feature space (each point joins its nearest
    seed), with ||phi(a) - phi(b)||^2 = K_aa + K_bb - 2 K_ab."""
    import torch

    km = torch.from_numpy(kmat)
    diag = torch.diagonal(km)

    def sq_dist(idx: torch.Tensor) -> torch.Tensor:
        return diag[idx][..., None] + diag - 2.0 * km[idx]

    chosen = kmeans_plusplus(sq_dist, kmat.shape[0], k, rng=rng)[0].numpy()
    dist = (diag[chosen][None, :] - 2.0 * km[:, chosen]).numpy()  # + K_aa, equal per row
    labels = dist.argmin(1)
    labels[chosen] = np.arange(k)
    return labels


def _kernel_kmeans_run(
    kmat: np.ndarray, k: int, rng: np.random.RandomState, max_iter: int, tol: float
) -> tuple[np.ndarray, float, int]:
    n = kmat.shape[0]
    labels = _plus_plus_init(kmat, k, rng)
    diag = np.diag(kmat)
    prev = np.inf
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        onehot = np.zeros((n, k), dtype=kmat.dtype)
        onehot[np.arange(n), labels] = 1.0
        counts = onehot.sum(0)
        empty = counts == 0
        if empty.any():  # reseed empty clusters with the worst-fitted points
            dist = _feature_distances(kmat, diag, onehot, np.maximum(counts, 1))
            worst = np.argsort(-dist[np.arange(n), labels])[: int(empty.sum())]
            labels[worst] = np.flatnonzero(empty)
            continue
        dist = _feature_distances(kmat, diag, onehot, counts)
        inertia = float(dist[np.arange(n), labels].sum())
        new = dist.argmin(1)
        if np.array_equal(new, labels) or (
            np.isfinite(prev) and prev - inertia <= tol * abs(prev)
        ):
            return labels, inertia, n_iter
        labels, prev = new, inertia
    onehot = np.eye(k, dtype=kmat.dtype)[labels]
    counts = np.maximum(onehot.sum(0), 1)
    dist = _feature_distances(kmat, diag, onehot, counts)
    return labels, float(dist[np.arange(n), labels].sum()), n_iter


def _feature_distances(kmat, diag, onehot, counts) -> np.ndarray:
    kc = kmat @ onehot  # (n, K)
    self_term = (onehot * kc).sum(0) / counts**2
    return diag[:, None] - 2.0 * kc / counts + self_term[None, :]


# --- file format ----------------------------------------------------------------------------


def _dump(model: KernelKMeans) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    check_is_fitted(model, "support_")
    params = {k: v for k, v in model.get_params().items() if k != "random_state"}
    rs = model.random_state
    params["random_state"] = (
        int(rs) if isinstance(rs, Integral) and not isinstance(rs, bool) else None
    )
    tensors = {
        "support": model.support_,
        "support_labels": model.support_labels_,
        "labels": model.labels_,
    }
    config = {
        "params": params,
        "gamma": model.gamma_,
        "inertia": model.inertia_,
        "n_iter": model.n_iter_,
        "textbook_agreement": model.textbook_agreement_,
    }
    if hasattr(model, "feature_names_in_"):
        config["feature_names"] = [str(c) for c in model.feature_names_in_]
    return tensors, config


def _restore(tensors: dict[str, np.ndarray], config: dict[str, Any]) -> KernelKMeans:
    model = KernelKMeans(**config["params"])
    model._validate_params()
    support = finite_array(tensors, "support", ndim=2)
    labels = np.asarray(tensors["support_labels"])
    if labels.shape != (support.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError("support_labels must hold one integer per support point")
    if labels.min() < 0 or labels.max() >= model.n_clusters:
        raise ValueError("support_labels must lie in [0, n_clusters)")
    model.support_ = support
    model.support_labels_ = labels.astype(np.int64)
    model.gamma_ = float(config["gamma"])
    model.inertia_ = float(config["inertia"])
    model.n_iter_ = int(config["n_iter"])
    model.textbook_agreement_ = float(config["textbook_agreement"])
    model.n_features_in_ = support.shape[1]
    if "feature_names" in config:
        names = config["feature_names"]
        if not (isinstance(names, list) and len(names) == support.shape[1]
                and all(isinstance(c, str) for c in names)):
            raise ValueError("feature_names must list one string per input feature")
        model.feature_names_in_ = np.asarray(names, dtype=object)
    model.labels_ = np.asarray(tensors["labels"]).astype(np.int64)
    model._network = None
    if model.n_clusters >= 2:
        model.network()  # validates gamma and labels
    return model


#: the model-file protocol of :mod:`whyclust.io`
to_file = _dump
from_file = _restore
