"""Clustering quality against known labels: accuracy under the best matching, NMI, ARI."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

__all__ = [
    "ari", "cluster_accuracy", "contingency", "evaluate", "first_missing", "matching", "nmi",
]  # fmt: skip


def _labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(
            f"labels must be 1-D, got shapes {y_true.shape} and {y_pred.shape}"
        )
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred differ in length: {y_true.shape[0]} vs {y_pred.shape[0]}"
        )
    if y_true.size == 0:
        raise ValueError("cannot score an empty clustering")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        row = first_missing(y)
        if row is not None:
            raise ValueError(f"{name} has a missing label (NaN) at row {row}")
    return y_true, y_pred


def first_missing(labels) -> int | None:
    """Index of the first missing label (NaN or None) of a 1-D array, or None."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "f":
        bad = np.isnan(labels)
    elif labels.dtype == object:
        bad = np.array([v is None or (isinstance(v, float) and v != v) for v in labels], bool)
    else:
        return None
    return int(bad.argmax()) if bad.any() else None


def contingency(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts table (true classes x clusters), with the class and cluster values."""
    y_true, y_pred = _labels(y_true, y_pred)
    classes, ti = np.unique(y_true, return_inverse=True)
    clusters, pi = np.unique(y_pred, return_inverse=True)
    table = np.zeros((classes.size, clusters.size), dtype=np.int64)
    np.add.at(table, (ti, pi), 1)
    return table, classes, clusters


def matching(y_true, y_pred) -> dict:
    """Best one-to-one map cluster -> class (Hungarian algorithm on the counts table)."""
    table, classes, clusters = contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {clusters[c]: classes[r] for r, c in zip(rows, cols, strict=True)}


def cluster_accuracy(y_true, y_pred) -> float:
    """Share of points whose cluster maps to their class under the best 1-to-1 matching.

    Clusters and classes may differ in number; unmatched clusters count as errors.
    """
    table, _, _ = contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def nmi(y_true, y_pred) -> float:
    """Normalized mutual information (arithmetic mean normalisation, as scikit-learn)."""
    return float(normalized_mutual_info_score(*_labels(y_true, y_pred)))


def ari(y_true, y_pred) -> float:
    """Adjusted Rand index."""
    return float(adjusted_rand_score(*_labels(y_true, y_pred)))


def evaluate(y_true, y_pred) -> dict[str, float]:
    """``{"acc": ..., "nmi": ..., "ari": ...}`` for a clustering against true labels."""
    return {
        "acc": cluster_accuracy(y_true, y_pred),
        "nmi": nmi(y_true, y_pred),
        "ari": ari(y_true, y_pred),
    }
