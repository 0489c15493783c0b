"""Is an explanation right? Deletion / insertion curves on f_c and ground-truth checks.

Deletion (feature flipping; see the evaluation guide in docs/): for each point, the features
are replaced by a baseline value in decreasing order of relevance, in ``n_steps`` steps of
equal feature fractions, and the logit f_c of the cluster c the point was first assigned to
is recomputed after each step. The area under f_c / f_c(x) over the removed fraction is the
score (lower is better: the first features removed were the ones that mattered). Insertion
starts from the baseline and restores the most relevant features first (higher is better).

Every batch is perturbed as one tensor and each step costs one forward pass of the batch,
so the work is O(n_steps x n x cost of f) and the memory O(batch x d).

Example::

    import whyclust as wc
    from sklearn.cluster import KMeans
    X, y, informative = wc.datasets.make_blobs_with_relevant_features(noise_mean=100)
    km = KMeans(3).fit(X)
    wc.evaluation.compare_methods(km, X, ["neon", "gradient_x_input", "random"])
    wc.evaluation.relevance_on_informative(wc.explain(km, X), informative)  # > 0.9

Each step also records whether the point is still in its cluster:
:attr:`FlippingCurves.flip_fraction` is the fraction of features removed when the
assignment first flips. Third-party metrics (Quantus) and the center-randomisation check
are in :mod:`whyclust.evaluation.quantus_metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from whyclust._features import check_feature_names
from whyclust._validation import SAMPLE_NDIM, as_float_array, row_index_of

__all__ = [
    "FlippingCurves",
    "compare_methods",
    "deletion_curve",
    "flipping_curve",
    "insertion_curve",
    "relevance_on_informative",
]

#: rows per batch are chosen so that one perturbed batch holds about this many values
_BATCH_VALUES = 1 << 20


@dataclass(eq=False)  # arrays have no single truth value: equality is identity
class FlippingCurves:
    """Deletion or insertion curves of the logit f_c, one per point.

    Attributes
    ----------
    kind : {"deletion", "insertion"}
    fractions : ndarray of shape (n_steps + 1,)
        Fraction of the features removed (deletion) or inserted (insertion) at each step.
    curves : ndarray of shape (n, n_steps + 1)
        f_c after each step; ``curves[:, 0]`` is f_c(x) for deletion, f_c(baseline) for
        insertion.
    logit : ndarray of shape (n,)
        f_c(x) of the unperturbed point, the normaliser of the area.
    cluster : ndarray of shape (n,)
        The cluster c each point was first assigned to (whose logit is tracked).
    auc : ndarray of shape (n,)
        Area under ``curves / logit`` over ``fractions`` (trapezoidal rule).
    method : str
        Name of the ranking (explanation method, ``"random"`` or ``"given"``).
    kept : ndarray of shape (n, n_steps + 1), bool
        Whether the point is still (deletion) or already (insertion) assigned to c after
        each step; :attr:`flip_fraction` reads it.
    """

    kind: str
    fractions: np.ndarray
    curves: np.ndarray
    logit: np.ndarray
    cluster: np.ndarray
    auc: np.ndarray
    method: str = "given"
    kept: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def flip_fraction(self) -> np.ndarray:
        """Per point, the fraction of features removed (deletion) when the assignment first
        leaves the original cluster c, or inserted (insertion) when it first is c again
        after the start; ``inf`` where that never happens on the grid.
        """
        if self.kept is None:
            raise ValueError("these curves carry no assignments")
        event = ~self.kept if self.kind == "deletion" else self.kept
        hit = event.any(1)
        first = event.argmax(1)
        return np.where(hit, self.fractions[first], np.inf)

    @property
    def mean_auc(self) -> float:
        return float(np.nanmean(self.auc))

    @property
    def normalized(self) -> np.ndarray:
        """``curves / logit``: 1 at the unperturbed point."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.curves / self.logit[:, None]

    def __repr__(self) -> str:
        return (
            f"FlippingCurves(kind={self.kind!r}, method={self.method!r}, n={len(self.auc)}, "
            f"n_steps={len(self.fractions) - 1}, mean_auc={self.mean_auc:.4g})"
        )


def deletion_curve(model: Any, X: Any, relevance: Any = None, **kwargs: Any) -> FlippingCurves:
    """Deletion curves (lower area is better); see :func:`flipping_curve`."""
    return flipping_curve(model, X, relevance, kind="deletion", **kwargs)


def insertion_curve(model: Any, X: Any, relevance: Any = None, **kwargs: Any) -> FlippingCurves:
    """Insertion curves (higher area is better); see :func:`flipping_curve`."""
    return flipping_curve(model, X, relevance, kind="insertion", **kwargs)


def flipping_curve(
    model: Any,
    X: Any,
    relevance: Any = None,
    *,
    kind: str = "deletion",
    method: str = "neon",
    baseline: Any = "mean",
    n_steps: int = 20,
    batch_size: int | None = None,
    image_shape: Sequence[int] | None = None,
    blur_sigma: float = 2.0,
    random_state: Any = None,
    explain_options: dict[str, Any] | None = None,
) -> FlippingCurves:
    """Flip features in order of relevance and track the logit of the first assigned cluster.

    Parameters
    ----------
    model : fitted clusterer or ClusterNetwork
        Anything :func:`whyclust.networks` accepts; the curves use its network.
    X : array-like of shape (n, d) or (n, C, H, W)
        Points to evaluate.
    relevance : array-like of X's shape or Explanation, optional
        The ranking. When omitted it is computed with ``wc.explain(model, X, method=method)``.
    kind : {"deletion", "insertion"}, default="deletion"
    method : str, default="neon"
        Explanation method when ``relevance`` is None; ``"random"`` ranks the features in a
        random order (per point, seeded by ``random_state``).
    baseline : "mean", "zero", "blur" or array-like, default="mean"
        Value a removed feature takes: the feature mean over ``X``, 0, a Gaussian blur of
        the point itself (images: X of shape (n, C, H, W) or ``image_shape`` given), or an
        array of the shape of one point (or of X, one baseline per point).
    n_steps : int, default=20
        Number of steps; step s flips round(s * d / n_steps) features.
    batch_size : int, optional
        Points per batch (default: about 2**20 values per batch).
    image_shape : (C, H, W) or (H, W), optional
        Shape of one image when X is flattened; needed for ``baseline="blur"`` then.
    blur_sigma : float, default=2.0
        Standard deviation (pixels) of the blur baseline.
    random_state : int, Generator or None
        Seeds the ``"random"`` ranking.
    explain_options : dict, optional
        Passed to :func:`whyclust.explain` when the relevance is computed here.

    Returns
    -------
    FlippingCurves
    """
    from whyclust.api import explain
    from whyclust.explainers import Explanation
    from whyclust.explainers.explanation import check_explains_assignments
    from whyclust.networks import evaluating, neuralize

    if kind not in {"deletion", "insertion"}:
        raise ValueError(f"kind must be 'deletion' or 'insertion', got {kind!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    check_feature_names(model, X)
    index = row_index_of(X)
    net = evaluating(neuralize(model))
    X = as_float_array(X, ndim=SAMPLE_NDIM)
    n = X.shape[0]
    if n == 0:
        raise ValueError("X has no rows to evaluate")
    flat = X.reshape(n, -1)
    d = flat.shape[1]
    bs = batch_size or max(1, _BATCH_VALUES // max(1, d))
    name = "given"
    if relevance is None:
        if method == "random":
            rng = np.random.default_rng(random_state)
            rel = rng.random((n, d))
        else:
            rel = explain(net, X, method=method, **(explain_options or {})).relevance
        name = method
    else:
        if isinstance(relevance, Explanation):
            use = "the curves track"
            check_explains_assignments(relevance, net.logits(X, batch_size=bs), use=use,
                                       index=index)  # fmt: skip
            name = relevance.method
            relevance = relevance.relevance
        rel = np.asarray(relevance)
    rel = _check_relevance(rel, n, d)
    base = _baseline(baseline, X, image_shape, blur_sigma)
    counts = np.rint(np.arange(n_steps + 1) * d / n_steps).astype(np.int64)
    fractions = counts / d

    dtype, device = net.dtype, net.device
    curves = np.empty((n, n_steps + 1), dtype=np.float64)
    logit = np.empty(n, dtype=np.float64)
    cluster = np.empty(n, dtype=np.int64)
    kept = np.empty((n, n_steps + 1), dtype=bool)
    shape = X.shape[1:]
    steps = torch.as_tensor(counts, device=device)
    with torch.no_grad():
        for start in range(0, n, bs):
            rows = slice(start, min(n, start + bs))
            x = torch.from_numpy(np.ascontiguousarray(flat[rows])).to(device, dtype)
            b = _base_rows(base, rows, d).to(device, dtype)
            rank = _ranks(torch.from_numpy(np.ascontiguousarray(rel[rows])).to(device))
            full = net(x.reshape(-1, *shape))
            c = full.argmax(1)
            cluster[rows] = c.cpu().numpy()
            logit[rows] = full.gather(1, c[:, None])[:, 0].double().cpu().numpy()
            # deletion: features ranked < k take the baseline; insertion: they keep x
            start_from, fill = (x, b) if kind == "deletion" else (b, x)
            for s, k in enumerate(steps):
                xs = torch.where(rank < k, fill.expand_as(x), start_from.expand_as(x))
                out = net(xs.reshape(-1, *shape))
                curves[rows, s] = out.gather(1, c[:, None])[:, 0].double().cpu().numpy()
                kept[rows, s] = (out.argmax(1) == c).cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = curves / logit[:, None]
    auc = _trapezoid(norm, fractions, axis=1)
    return FlippingCurves(
        kind=kind,
        fractions=fractions,
        curves=curves,
        logit=logit,
        cluster=cluster,
        auc=auc,
        method=name,
        kept=kept,
        extras={"baseline": _baseline_name(baseline)},
    )


def _baseline_name(baseline: Any) -> str:
    return baseline if isinstance(baseline, str) else "array"


#: numpy >= 2 renamed trapz to trapezoid
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # noqa: NPY201


def _check_relevance(rel: np.ndarray, n: int, d: int) -> np.ndarray:
    if rel.dtype.kind not in "biuf":
        raise TypeError(f"relevance must be numeric, got dtype {rel.dtype}")
    if rel.shape[0] != n or int(np.prod(rel.shape[1:])) != d:
        raise ValueError(
            f"relevance of shape {rel.shape} does not match X with {n} rows of {d} features"
        )
    rel = rel.reshape(n, d)
    if not np.isfinite(rel).all():
        raise ValueError("relevance contains NaN or infinite values")
    return rel


def _ranks(rel: torch.Tensor) -> torch.Tensor:
    """Rank of each feature by decreasing relevance (0 = most relevant; ties by index)."""
    order = torch.sort(rel, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    positions = torch.arange(rel.shape[1], device=rel.device).expand_as(order)
    return rank.scatter_(1, order, positions)


def _baseline(
    baseline: Any, X: np.ndarray, image_shape: Sequence[int] | None, sigma: float
) -> np.ndarray:
    """Baseline as an array of shape (d,) (shared) or (n, d) (one per point)."""
    n = X.shape[0]
    flat = X.reshape(n, -1)
    d = flat.shape[1]
    if isinstance(baseline, str):
        if baseline == "mean":
            return flat.mean(0, dtype=np.float64).astype(X.dtype)
        if baseline == "zero":
            return np.zeros(d, dtype=X.dtype)
        if baseline == "blur":
            return _blur(X, image_shape, sigma).reshape(n, d)
        raise ValueError(f"baseline must be 'mean', 'zero', 'blur' or an array, got {baseline!r}")
    arr = np.asarray(baseline, dtype=X.dtype)
    if arr.ndim == 0:
        arr = np.full(d, arr, dtype=X.dtype)
    if arr.size == d:
        arr = arr.reshape(d)
    elif arr.size == n * d and arr.shape[0] == n:
        arr = arr.reshape(n, d)
    else:
        raise ValueError(
            f"baseline of shape {arr.shape} matches neither one point ({X.shape[1:]}) nor X "
            f"({X.shape})"
        )
    if not np.isfinite(arr).all():
        raise ValueError("baseline contains NaN or infinite values")
    return arr


def _blur(X: np.ndarray, image_shape: Sequence[int] | None, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    n = X.shape[0]
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) not in (2, 3) or int(np.prod(shape)) != X[0].size:
            raise ValueError(
                f"image_shape {shape} must be (H, W) or (C, H, W) with {X[0].size} values"
            )
        images = X.reshape(n, *shape)
    elif X.ndim >= 3:
        images = X
    else:
        raise ValueError(
            "baseline='blur' needs images: X of shape (n, C, H, W) or image_shape=(C, H, W)"
        )
    if not sigma > 0:
        raise ValueError(f"blur_sigma must be > 0, got {sigma}")
    # blur only the two spatial axes, all images at once
    sigmas = (0.0,) * (images.ndim - 2) + (float(sigma), float(sigma))
    return gaussian_filter(images, sigma=sigmas, mode="nearest")


def _base_rows(base: np.ndarray, rows: slice, d: int) -> torch.Tensor:
    if base.ndim == 1:
        return torch.from_numpy(base).reshape(1, d)
    return torch.from_numpy(np.ascontiguousarray(base[rows]))


def relevance_on_informative(
    explanation: Any, informative: Any, *, per_point: bool = False
) -> float | np.ndarray:
    """Share of the positive relevance that lands on the informative features.

    Parameters
    ----------
    explanation : Explanation or array of shape (n, d)
    informative : bool array of shape (d,)
        True for the features that separate the clusters (ground truth), e.g. the third
        output of :func:`whyclust.datasets.make_blobs_with_relevant_features`.
    per_point : bool, default=False
        Return the (n,) shares instead of their mean.

    Returns
    -------
    float or ndarray of shape (n,)
        sum of max(R, 0) over informative features / sum of max(R, 0) over all features;
        NaN for points without positive relevance (ignored by the mean).
    """
    rel = getattr(explanation, "relevance", explanation)
    rel = np.asarray(rel, dtype=np.float64)
    if rel.ndim < 2:
        raise ValueError(f"relevance must have shape (n, d), got {rel.shape}")
    rel = rel.reshape(rel.shape[0], -1)
    mask = np.asarray(informative)
    if mask.dtype != bool:
        raise TypeError(f"informative must be a boolean mask, got dtype {mask.dtype}")
    mask = mask.reshape(-1)
    if mask.shape[0] != rel.shape[1]:
        raise ValueError(
            f"informative has {mask.shape[0]} entries, the relevance {rel.shape[1]} features"
        )
    pos = np.clip(rel, 0.0, None)
    total = pos.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, pos[:, mask].sum(1) / total, np.nan)
    if per_point:
        return share
    return float(np.nanmean(share)) if np.isfinite(share).any() else float("nan")


def compare_methods(
    model: Any,
    X: Any,
    methods: Iterable[str] | None = None,
    *,
    baseline: Any = "mean",
    n_steps: int = 20,
    insertion: bool = True,
    batch_size: int | None = None,
    image_shape: Sequence[int] | None = None,
    random_state: Any = 0,
    method_options: dict[str, dict[str, Any]] | None = None,
):
    """Deletion (and insertion) areas of several explanation methods on the same points.

    Parameters
    ----------
    model, X, baseline, n_steps, batch_size, image_shape
        As in :func:`flipping_curve`.
    methods : iterable of str, optional
        Explanation methods (default: every method of :func:`whyclust.explainers.available_methods`
        plus ``"random"``).
    insertion : bool, default=True
        Also compute insertion areas.
    random_state : int or None, default=0
        Seeds the ``"random"`` ranking.
    method_options : dict, optional
        Per-method options for :func:`whyclust.explain`, e.g.
        ``{"integrated_gradients": {"n_steps": 50}}``.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``deletion_auc`` (mean, lower is better), ``deletion_median``
        (median over points, robust to points whose f_c is near 0), ``deletion_sem``
        (standard error of the mean), ``flip_median`` (median fraction of features removed
        until the assignment flips), ``insertion_auc`` (higher is better), ``explain_seconds`` and
        ``deletion_gap`` ((area - lowest area) / |lowest area|: 0 for the best method,
        0.1 for one 10% worse).
    """
    import pandas as pd

    from whyclust.api import explain
    from whyclust.explainers import available_methods
    from whyclust.networks import neuralize

    check_feature_names(model, X)
    net = neuralize(model)
    X = as_float_array(X, ndim=SAMPLE_NDIM)
    methods = list(methods) if methods is not None else available_methods()
    if not methods:
        raise ValueError("methods must name at least one explanation method")
    options = method_options or {}
    unknown = set(options) - set(methods)
    if unknown:
        raise ValueError(f"method_options for methods not compared: {sorted(unknown)}")
    common = {"baseline": baseline, "n_steps": n_steps, "batch_size": batch_size,
              "image_shape": image_shape}  # fmt: skip
    rows = []
    for m in methods:
        t0 = time.perf_counter()
        if m == "random":
            rel = np.random.default_rng(random_state).random((X.shape[0], X[0].size))
        else:
            rel = explain(net, X, method=m, **options.get(m, {})).relevance
        seconds = time.perf_counter() - t0
        dele = deletion_curve(net, X, rel, **common)
        row = {
            "method": m,
            "deletion_auc": dele.mean_auc,
            "deletion_median": float(np.nanmedian(dele.auc)),
            "deletion_sem": _sem(dele.auc),
            "flip_median": float(np.median(dele.flip_fraction)),
            "explain_seconds": seconds,
        }
        if insertion:
            row["insertion_auc"] = insertion_curve(net, X, rel, **common).mean_auc
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("method")
    best = frame["deletion_auc"].min()
    frame["deletion_gap"] = (frame["deletion_auc"] - best) / max(abs(best), 1e-12)
    return frame


def _sem(values: np.ndarray) -> float:
    v = values[np.isfinite(values)]
    return float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
