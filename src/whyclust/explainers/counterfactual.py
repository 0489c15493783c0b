"""Smallest changes that move points into another cluster (docs: mathematics, counterfactuals).

For k-means-type models (and tied Gaussian mixtures, bisecting k-means, affine Pipelines of
these: see :func:`counterfactual`) the cell of cluster k is the polytope
{x : h_kj(x) = w_kj . x + b_kj >= 0 for all j != k}. The smallest L2 change moving x into
it is the Euclidean projection of x onto the (slightly shrunk) polytope {h_kj >= margin}:

    min ||x' - x||^2  s.t.  A x' >= c,   A = (w_kj)_j  (K-1, d),  c = margin - b_kj

Its dual is a non-negative quadratic program in K-1 variables with the same Hessian
G = A A^T for every point of the same target: min_{l >= 0} 1/2 l^T G l + l^T (A x - c), and
x' = x + A^T l. All points with one target are solved at once: accelerated projected gradient
(FISTA) finds the active set, then the equality-constrained system on that active set is
solved exactly and certified by the KKT conditions (l >= 0, A x' >= c). Rows that the
certificate does not accept keep iterating; ``exact`` says which rows were certified.
Loops run over target clusters and iterations, never over points. A weighted norm
||s * (x' - x)|| is the same problem in y = s * x, with A / s in place of A.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from whyclust._validation import SAMPLE_NDIM, as_float_array, frame_labels
from whyclust.explainers.explanation import labelled_frame
from whyclust.explainers.request import resolve_targets

if TYPE_CHECKING:  # torch is imported by the functions that run (importing this is light)
    import torch

__all__ = ["CounterfactualResult", "counterfactual"]


@dataclass(eq=False)  # arrays have no single truth value: equality is identity
class CounterfactualResult:
    """Counterfactual points and the changes that lead to them.

    Attributes
    ----------
    X_cf : ndarray, same shape as X
        The closest points of the target cells (``predict(X_cf) == target``).
    delta : ndarray, same shape as X
        ``X_cf - X``.
    distance : ndarray of shape (n,)
        ``||scale * delta||`` per point, the norm minimised (0 where the point already
        lies in its target cell).
    target : ndarray of shape (n,)
        Target cluster of each point.
    cluster : ndarray of shape (n,)
        Original cluster of each point.
    exact : ndarray of bool, shape (n,)
        True where the projection was certified optimal by the KKT conditions.
    feature_names : list of str or None
        Column names when X was a DataFrame.
    index, columns : pandas.Index or None
        Row and column labels when X was a DataFrame; ``to_frame`` keeps them.
    """

    X_cf: np.ndarray
    delta: np.ndarray
    distance: np.ndarray
    target: np.ndarray
    cluster: np.ndarray
    exact: np.ndarray
    feature_names: list[str] | None = None
    index: Any = None
    columns: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        moved = int((self.distance > 0).sum())
        return (
            f"CounterfactualResult(n={self.distance.shape[0]}, moved={moved}, "
            f"exact={int(self.exact.sum())}, X_cf{tuple(self.X_cf.shape)})"
        )

    def to_frame(self):
        """The changes as a pandas DataFrame (rows = points, with X's row labels when X was
        a DataFrame; columns = features)."""
        return labelled_frame(self.delta, self.columns, self.index, self.feature_names)


def counterfactual(
    model: Any,
    X: Any,
    target: Any,
    *,
    margin: float | None = None,
    max_iter: int = 2000,
    tol: float = 1e-10,
    scale: Any = None,
) -> CounterfactualResult:
    """The smallest (weighted) L2 change that moves each point of ``X`` into ``target``.

    Parameters
    ----------
    model : fitted model with polytope cells
        k-means models (KMeans, centroids, KMeansNetwork, MeanShift), a
        ``GaussianMixture(covariance_type="tied")`` (linear cells), a ``BisectingKMeans``
        (leaf c's cell is the polytope of its path's node constraints), or a Pipeline of
        affine steps ending in one of these (cells pulled back to its input columns). Other
        mixtures have curved cells and are refused.
    X : array-like of shape (n, d)
        Points to move (images are flattened and reshaped back).
    target : int or array-like of shape (n,)
        Cluster each point should move to.
    margin : float, optional
        The counterfactual satisfies h(x') >= margin for every constraint h of the target
        cell, so that it lies strictly inside it despite rounding. Default: 1e-9 (float64)
        or 1e-4 (float32) times the model's typical margin (k-means: the mean squared
        distance between centroids).
    max_iter : int, default=2000
        Iterations of the dual solver per round.
    tol : float, default=1e-10
        Relative tolerance of the KKT certificate.
    scale : None, "model" or array-like of shape (d,), optional
        Weights s of the change's norm, ``||s * (X_cf - X)||``. None: plain L2 in X's
        units. ``"model"``: a Pipeline's column scaling in front of its first step that
        mixes columns (1 / std for a StandardScaler), so that the answer does not depend on
        the columns' units; 1 for models without scalers. An array: positive weights per
        feature (per flattened pixel for images).

    Returns
    -------
    CounterfactualResult
    """
    import torch

    names, index, columns = frame_labels(X)
    cells = _cells_of(model)
    X = as_float_array(X, ndim=SAMPLE_NDIM, n_features=cells.n_features)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    n = X.shape[0]
    flat = torch.tensor(X.reshape(n, -1), dtype=torch.float64)  # a copy: X may be read-only
    if margin is None:
        margin = (1e-9 if X.dtype == np.float64 else 1e-4) * cells.scale
    margin = float(margin)
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")

    weights = torch.from_numpy(_weights(scale, cells)).double()
    xs = (flat - cells.offset) * weights  # in y = s * x, the weighted norm is plain L2
    assigned = cells.assign(xs / weights)
    k = cells.n_clusters
    tgt = resolve_targets(target, assigned, k)
    change = torch.zeros_like(xs)  # the change delta = A^T l, computed without the shift
    exact = torch.ones(n, dtype=torch.bool)
    for c in range(k):
        rows = torch.nonzero(tgt == c)[:, 0]
        if rows.numel() == 0:
            continue
        A, bias = cells.cell(c)  # the cell: A (x - o) + bias >= 0
        A = A / weights  # ... = (A / s) (y - s o) + bias >= 0
        cvec = margin - bias  # A x' >= cvec
        # unit normals: the same polytope, but a dual with unit diagonal converges fast
        # even when two centroids are very close (tiny w_kj)
        norm = A.norm(dim=1).clamp_min(torch.finfo(A.dtype).tiny)
        A, cvec = A / norm[:, None], cvec / norm
        lam, ok = _project(A, cvec, xs[rows], max_iter, tol)
        change[rows] = (lam @ A) / weights
        exact[rows] = ok
    x_cf = (flat + change).numpy().astype(X.dtype).reshape(X.shape)
    delta = x_cf - X
    distance = np.linalg.norm(delta.reshape(n, -1).astype(np.float64) * weights.numpy(), axis=1)
    return CounterfactualResult(
        X_cf=x_cf,
        delta=delta,
        distance=distance.astype(X.dtype),
        target=tgt.numpy(),
        cluster=assigned.numpy(),
        exact=exact.numpy(),
        feature_names=names,
        index=index,
        columns=columns,
        extras={"margin": margin, "model": cells.name, "scale": weights.numpy()},
    )


def _weights(scale: Any, cells: _Cells) -> np.ndarray:
    """(d,) positive finite weights of the norm, from ``counterfactual``'s ``scale``."""
    d = cells.n_features
    if scale is None:
        return np.ones(d)
    if isinstance(scale, str):
        if scale != "model":
            raise ValueError(f"scale must be None, 'model' or an array, got {scale!r}")
        return np.ones(d) if cells.column_scale is None else np.abs(cells.column_scale)
    w = np.asarray(scale, dtype=np.float64).reshape(-1)
    if w.shape != (d,):
        raise ValueError(f"scale has {w.size} weights, the model has {d} features")
    if not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("scale must hold finite weights > 0")
    return w


class _Cells:
    """The polytope cells of a model: cell(c) = (A, bias) with the cell
    {x : A (x - offset) + bias >= 0}, and assign(x - offset) the cluster of each row."""

    def __init__(self, name: str, w: torch.Tensor, b: torch.Tensor, signs: torch.Tensor | None,
                 offset: torch.Tensor, scale: float) -> None:  # fmt: skip
        # k-means / tied mixtures: scores s_k = w_k . x + b_k and cell c = {s_c - s_k >= 0};
        # bisecting: node margins m_j = w_j . x + b_j and cell c = {S_cj m_j >= 0, j on path}
        self.name, self.w, self.b, self.signs = name, w, b, signs
        self.offset, self.scale = offset, float(scale)
        self.column_scale: np.ndarray | None = None  # a Pipeline's, for scale="model"
        self.n_features = int(w.shape[1])
        self.n_clusters = int(w.shape[0]) if signs is None else int(signs.shape[0])

    def assign(self, xs: torch.Tensor) -> torch.Tensor:
        import torch

        s = xs @ self.w.T + self.b
        if self.signs is None:
            return s.argmax(1)
        h = torch.where(self.signs[None] != 0, self.signs[None] * s[:, None, :], torch.inf)
        return h.amin(2).argmax(1)

    def cell(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        if self.signs is None:
            others = torch.tensor([j for j in range(self.n_clusters) if j != c])
            return self.w[c] - self.w[others], self.b[c] - self.b[others]
        on = torch.nonzero(self.signs[c] != 0)[:, 0]
        s = self.signs[c, on]
        return s[:, None] * self.w[on], s * self.b[on]

    def then_affine(self, lin: np.ndarray, off: np.ndarray) -> _Cells:
        """The same cells for inputs u of a preceding affine map z = lin u + off."""
        import torch

        lin_t, off_t = torch.from_numpy(lin).double(), torch.from_numpy(off).double()
        zo = self.offset  # w . (z - o) + b = (w lin) . (u - o_u) + b + w . (lin o_u + off - o)
        w_u = self.w @ lin_t
        o_u = torch.linalg.lstsq(lin_t, (zo - off_t)[:, None]).solution[:, 0]
        b_u = self.b + self.w @ (lin_t @ o_u + off_t - zo)
        return _Cells("pipeline+" + self.name, w_u, b_u, self.signs, o_u, self.scale)


def _cells_of(model: Any) -> _Cells:
    """The polytope cells of ``model``, or a TypeError saying why it has none."""
    import torch

    from whyclust.engine.kinds import model_kind

    kind = model_kind(model)
    if kind == "pipeline":
        return _pipeline_cells(model)
    if kind == "mixture":
        return _tied_cells(model)
    if kind == "bisecting":
        from whyclust.engine.fold import bisecting_arrays

        arr = bisecting_arrays(model)
        left, right = (torch.from_numpy(arr[s]).double() for s in ("left", "right"))
        o = torch.cat([left, right]).mean(0)
        lt, rt = left - o, right - o
        w, b = 2.0 * (lt - rt), (rt * rt).sum(1) - (lt * lt).sum(1)
        signs = torch.from_numpy(arr["signs"]).double()
        return _Cells("bisecting", w, b, signs, o, float(((lt - rt) ** 2).sum(1).mean()))
    if kind == "centers":
        model = np.asarray(model.cluster_centers_)
    from whyclust.networks import KMeansNetwork, neuralize

    net = neuralize(model)
    if not isinstance(net, KMeansNetwork):
        raise TypeError(
            "counterfactual needs a model whose cells are polytopes (k-means models, "
            "tied GaussianMixture, BisectingKMeans, affine Pipelines of these); "
            f"got a {type(net).__name__}"
        )
    mu = net.centers.detach().cpu().double()
    offset = mu.mean(0)
    mu = mu - offset
    k = mu.shape[0]
    pair = ((mu[:, None, :] - mu[None]) ** 2).sum(-1)
    return _Cells("kmeans", 2.0 * mu, -(mu * mu).sum(1), None, offset,
                  float(pair.sum()) / (k * (k - 1)))  # fmt: skip


def _tied_cells(model: Any) -> _Cells:
    import torch

    from whyclust.engine.fold import mixture_arrays

    arr = mixture_arrays(model)
    if arr["covariance_type"] != "tied":
        raise TypeError(
            f"counterfactual needs polytope cells; a GaussianMixture with covariance_type="
            f"{arr['covariance_type']!r} has curved (quadratic) cell boundaries. Refit with "
            "covariance_type='tied' (linear boundaries) for exact counterfactuals"
        )
    mu = torch.from_numpy(arr["means"]).double()
    chol = torch.from_numpy(arr["chol"]).double()
    prec = chol @ chol.T
    offset = mu.mean(0)
    m = mu - offset
    pm = m @ prec  # rows P (mu_k - o)
    b = torch.log(torch.from_numpy(arr["weights"]).double()) - 0.5 * (pm * m).sum(1)
    k = mu.shape[0]
    gap = ((pm[:, None, :] - pm[None]) * (m[:, None, :] - m[None])).sum(-1)  # Mahalanobis^2
    return _Cells("gmm-tied", pm, b, None, offset, float(gap.sum()) / (2 * k * (k - 1)))


def _pipeline_cells(pipe: Any) -> _Cells:
    from whyclust._features import pipeline_n_features
    from whyclust.engine.fold import fold_preprocessing

    steps = list(pipe.steps)
    n_in = pipeline_n_features(pipe) or 0
    folded = fold_preprocessing(steps[:-1], n_in)
    if not folded.keeps_columns(n_in):
        raise TypeError(
            "counterfactual through a Pipeline needs numeric columns without encoders "
            "(imputer, one-hot): a continuous change of an indicator column is no data point"
        )
    head = steps[-1][1]
    if type(head).__name__ in ("KMeans", "MiniBatchKMeans"):
        head = np.asarray(head.cluster_centers_)
    cells = _cells_of(head).then_affine(folded.dense(), folded.offset)
    cells.column_scale = folded.column_scale()
    return cells


def _project(
    A: torch.Tensor, c: torch.Tensor, x: torch.Tensor, max_iter: int, tol: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dual multipliers (n, m) of the projections of the rows of x onto {A y >= c}.

    Returns the multipliers and a boolean (n,) tensor: True where certified by the KKT.
    """
    import torch

    G = A @ A.T
    q = x @ A.T - c  # (n, m); q >= 0 everywhere means x is feasible
    final = torch.zeros_like(q)
    done = (q >= 0).all(1)  # feasible points: l = 0
    step = 1.0 / float(torch.linalg.eigvalsh(G).max().clamp_min(1e-300))
    scale = q.abs().amax(1).clamp_min(1.0)
    pending = torch.nonzero(~done)[:, 0]
    qp, sp = q[pending], scale[pending]
    lam = torch.zeros_like(qp)
    y, t = lam.clone(), 1.0
    for it in range(1, max_iter + 1):
        if pending.numel() == 0:
            break
        new = (y - step * (y @ G + qp)).clamp_min(0.0)
        t_next = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        y = new + ((t - 1.0) / t_next) * (new - lam)
        lam, t = new, t_next
        if it % 20 == 0 or it == max_iter:
            # solve the equality system on each row's active set; keep rows whose KKT hold
            cand, ok = _polish(G, qp, lam, sp, tol)
            final[pending[ok]] = cand[ok]
            done[pending[ok]] = True
            keep = ~ok
            pending, qp, sp = pending[keep], qp[keep], sp[keep]
            lam, y = lam[keep], y[keep]
    final[pending] = lam  # not certified: the best iterate
    return final, done


def _polish(
    G: torch.Tensor, q: torch.Tensor, lam: torch.Tensor, scale: torch.Tensor, tol: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact multipliers on each row's active set, and whether they satisfy the KKT."""
    import torch

    m = G.shape[0]
    active = lam > 0
    mask = active[:, :, None] & active[:, None, :]
    eye = torch.eye(m, dtype=G.dtype)
    Gs = torch.where(mask, G.expand_as(mask), eye.expand_as(mask) * (~active[:, :, None]))
    rhs = torch.where(active, -q, torch.zeros_like(q))
    sol = torch.linalg.pinv(Gs) @ rhs[:, :, None]
    cand = torch.where(active, sol[:, :, 0], torch.zeros_like(q))
    slack = cand @ G + q  # = A x' - c
    tol_abs = tol * scale[:, None] * max(1.0, float(G.diagonal().max()) ** 0.5)
    ok = (
        (cand >= 0).all(1)
        & (slack >= -tol_abs).all(1)
        & ((slack.abs() <= tol_abs) | ~active).all(1)
    )
    return cand.clamp_min(0.0), ok
