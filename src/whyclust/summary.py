"""Cluster-level and contrastive views of explanations.

- :func:`cluster_relevance`: the mean relevance of each cluster's members (clusters x features).
- :func:`cluster_summary`: per cluster, its top features by mean relevance (a tidy table).
- :func:`contrastive`: "why cluster c and not cluster k" for any pair, for any model NEON
  explains (k-means, TELL, kernel k-means, deep).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from whyclust.explainers.explanation import Explanation

__all__ = ["cluster_relevance", "cluster_summary", "contrastive"]


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
    from scipy import sparse

    groups = _groups(expl, by)
    rel = np.asarray(expl.relevance).reshape(expl.n_samples, -1)
    ids, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    onehot = sparse.csr_matrix(
        (np.ones(len(groups)), (inverse, np.arange(len(groups)))), shape=(len(ids), len(groups))
    )
    mean = np.asarray(onehot @ rel.astype(np.float64)) / counts[:, None]
    names = _feature_names(expl, rel.shape[1])
    return pd.DataFrame(mean, index=pd.Index(ids, name=by), columns=names)


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
        ``share`` (fraction of the cluster's total mean relevance), ``size`` (members) and
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
    total = values.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total != 0, picked / total, np.nan)
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
