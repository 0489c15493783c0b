"""Cluster-level and contrastive views of explanations.

- :func:`cluster_relevance`: the mean relevance of each cluster's members (clusters x features).
- :func:`cluster_summary`: per cluster, its top features by mean relevance (a tidy table).
- :func:`contrastive`: "why cluster c and not cluster k" for any pair, for any model NEON
  explains (k-means, TELL, kernel k-means, deep).
- :func:`relevance_share`: each feature's share of a relevance profile (the one definition
  used here and by the HTML report).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from whyclust.explainers.explanation import Explanation

__all__ = [
    "cluster_relevance",
    "cluster_summary",
    "contrastive",
    "group_means",
    "relevance_share",
]

#: rows per block of the group means (bounds the float64 working copy)
_BLOCK_ROWS = 8192


def _groups(expl: Explanation, by: str) -> np.ndarray:
    if not isinstance(expl, Explanation):
        raise TypeError(f"expected an Explanation, got {type(expl).__name__}")
    if by not in ("cluster", "target"):
        raise ValueError(f"by must be 'cluster' or 'target', got {by!r}")
    return np.asarray(expl.cluster if by == "cluster" else expl.target)


def _feature_names(expl: Explanation, d: int) -> list[str]:
    names = expl.feature_names
    if names is not None and len(names) == d:
        return [str(n) for n in names]
    return [f"x{i}" for i in range(d)]


def cluster_relevance(expl: Explanation, *, by: str = "cluster"):
    """Mean relevance of the members of each cluster, as a (clusters x features) DataFrame.

    Parameters
    ----------
    expl : Explanation
    by : {"cluster", "target"}, default="cluster"
        Group points by their assigned cluster or by the explained target cluster.

    Returns
    -------
    pandas.DataFrame
        Index: cluster ids present in the explanation; columns: feature names (the input's
        DataFrame columns, else ``x0, x1, ...`` over the flattened features).
    """
    import pandas as pd

    groups = _groups(expl, by)
    rel = np.asarray(expl.relevance).reshape(expl.n_samples, -1)
    ids, inverse = np.unique(groups, return_inverse=True)
    mean = group_means(rel, inverse, len(ids))
    names = _feature_names(expl, rel.shape[1])
    return pd.DataFrame(mean, index=pd.Index(ids, name=by), columns=names)


def group_means(values: Any, groups: Any, n_groups: int) -> np.ndarray:
    """Mean of the rows of ``values`` in each group, in float64, one block of rows at a time.

    Parameters
    ----------
    values : array-like of shape (n, d)
    groups : array-like of int of shape (n,)
        Group of each row, in ``[0, n_groups)``.
    n_groups : int

    Returns
    -------
    ndarray of shape (n_groups, d)
        Row means per group; NaN for a group without rows.
    """
    from scipy import sparse

    values = np.asarray(values)
    groups = np.asarray(groups)
    if groups.dtype.kind not in "iu":
        raise TypeError(f"groups must be integers, got dtype {groups.dtype}")
    if values.ndim != 2 or groups.shape != (values.shape[0],):
        raise ValueError(
            f"values must be (n, d) and groups (n,), got {values.shape} and {groups.shape}"
        )
    if groups.size and (groups.min() < 0 or groups.max() >= n_groups):
        raise ValueError(f"groups must lie in [0, {n_groups})")
    n, d = values.shape
    sums = np.zeros((n_groups, d), dtype=np.float64)
    for start in range(0, n, _BLOCK_ROWS):
        rows = slice(start, min(n, start + _BLOCK_ROWS))
        g = groups[rows]
        onehot = sparse.csr_matrix(
            (np.ones(g.size), (g, np.arange(g.size))), shape=(n_groups, g.size)
        )
        sums += onehot @ values[rows].astype(np.float64)
    counts = np.bincount(groups, minlength=n_groups).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return sums / counts[:, None]


def relevance_share(relevance: Any) -> np.ndarray:
    """Share of each feature in a relevance profile: ``R_i / sum_j |R_j|`` along the last axis.

    The total is the sum of the **absolute** relevances, so shares lie in [-1, 1], their
    absolute values sum to 1, and a feature speaking against the cluster gets a negative
    share. (Dividing by the signed total, i.e. the logit for NEON, would make shares
    explode where evidence for and against nearly cancels.) Rows whose relevance is all
    zero get NaN.

    Parameters
    ----------
    relevance : array-like of shape (..., d)
        E.g. the (clusters x features) mean relevance of :func:`cluster_relevance`.

    Returns
    -------
    ndarray of the same shape, float64
    """
    rel = np.asarray(relevance, dtype=np.float64)
    total = np.abs(rel).sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, rel / total, np.nan)


def cluster_summary(expl: Explanation, top: int = 10, *, by: str = "cluster"):
    """Per cluster, the ``top`` features with the largest mean relevance of its members.

    Parameters
    ----------
    expl : Explanation
        Any explanation (NEON or a baseline).
    top : int, default=10
        Features listed per cluster.
    by : {"cluster", "target"}, default="cluster"
        Group points by their assigned cluster or by the explained target.

    Returns
    -------
    pandas.DataFrame
        One row per (cluster, rank) with columns ``cluster``, ``rank`` (1 = most relevant),
        ``feature``, ``feature_index`` (in the flattened input), ``mean_relevance``,
        ``share`` (:func:`relevance_share`: the feature's mean relevance over the sum of the
        absolute mean relevances of the cluster), ``size`` (members) and
        ``mean_logit``.
    """
    import pandas as pd

    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    mean = cluster_relevance(expl, by=by)
    groups = _groups(expl, by)
    ids, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    logit_mean = np.bincount(inverse, weights=np.asarray(expl.logit, dtype=np.float64)) / counts
    values = mean.to_numpy()
    k = min(int(top), values.shape[1])
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(values, order, axis=1)
    share = np.take_along_axis(relevance_share(values), order, axis=1)
    names = np.asarray(mean.columns, dtype=object)
    return pd.DataFrame(
        {
            "cluster": np.repeat(ids, k),
            "rank": np.tile(np.arange(1, k + 1), len(ids)),
            "feature": names[order].ravel(),
            "feature_index": order.ravel(),
            "mean_relevance": picked.ravel(),
            "share": share.ravel(),
            "size": np.repeat(counts, k),
            "mean_logit": np.repeat(logit_mean, k),
        }
    )


def contrastive(
    model: Any, X: Any, c: Any = "assigned", k: Any = None, **options: Any
) -> Explanation:
    """Why cluster ``c`` and not cluster ``k``: NEON's contrastive map for any model.

    The relevance sums to the margin h_ck (d_k - d_c in the model's distance; positive when
    x is closer to c): exactly for k-means and kernel k-means, through the LRP rules of the
    encoder for deep models.

    Parameters
    ----------
    model : fitted clusterer or ClusterNetwork
    X : array-like
    c : "assigned", int or array of shape (n,), default="assigned"
        The cluster to explain.
    k : int or array of shape (n,)
        The competitor. Required.
    **options
        Passed to :func:`whyclust.explain` (e.g. ``batch_size``, ``composite``).
    """
    from whyclust.api import explain

    if k is None:
        raise ValueError("contrastive needs the competitor cluster k")
    return explain(model, X, method="neon", target=c, contrast=k, **options)
