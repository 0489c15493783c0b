"""The result type shared by every explanation method."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PER_POINT_EXTRAS", "Explanation", "check_explains_assignments"]

#: the ``extras`` that hold one entry per explained point (their first axis is the rows);
#: every other extra describes the model or the call
PER_POINT_EXTRAS = frozenset({
    "baseline_root_share", "conservation", "head_conservation", "imputed", "model_relevance",
    "reference_part", "root",
})


@dataclass(eq=False)  # arrays have no single truth value: equality is identity
class Explanation:
    """Relevance of every input feature for one cluster logit per point.

    Attributes
    ----------
    relevance : ndarray, same shape as X
        Contribution of each feature. For NEON, ``relevance.sum`` over the features of a
        point equals ``logit`` (exactly for k-means heads, approximately through encoders).
    logit : ndarray of shape (n,)
        The explained quantity: f_target(x), or the margin h_ck for contrastive maps.
    cluster : ndarray of shape (n,)
        The cluster each point is assigned to.
    target : ndarray of shape (n,)
        The cluster whose logit is explained (equals ``cluster`` for ``target="assigned"``).
    beta : float or None
        Stiffness of the min-take-most rule (NEON only).
    method : str
        Name of the explanation method.
    contrast : ndarray of shape (n,) or None
        The competitor k of a contrastive "why target and not k" map.
    feature_names : list of str or None
        Column names when the input was a DataFrame.
    index : pandas.Index or None
        Row labels when the input was a DataFrame; ``to_frame`` keeps them.
    columns : pandas.Index or None
        The DataFrame's column labels as given (integers, tuples of a MultiIndex, ...);
        ``to_frame`` uses them, ``feature_names`` holds them as text.
    """

    relevance: Any
    logit: np.ndarray
    cluster: np.ndarray
    target: np.ndarray
    beta: float | None = None
    method: str = "neon"
    contrast: np.ndarray | None = None
    feature_names: list[str] | None = None
    index: Any = None
    columns: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def neon(cls, *, contrast: Any = None, **fields: Any) -> Explanation:
        """A NEON explanation: ``method`` is ``"neon"``, or ``"neon-contrast"`` for the map
        of one margin when ``contrast`` (the competitor of each point) is given."""
        return cls(method="neon" if contrast is None else "neon-contrast", contrast=contrast,
                   **fields)  # fmt: skip

    @property
    def n_samples(self) -> int:
        return int(self.logit.shape[0])

    def relevance_sum(self) -> np.ndarray:
        """Total relevance per point (a (n,) array)."""
        rel = self.relevance
        return np.asarray(rel.reshape(rel.shape[0], -1).sum(1))

    @property
    def conservation(self) -> np.ndarray:
        """sum(R) / :meth:`explained_logit` per point: 1 where relevance is conserved (NaN
        where that is 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.relevance_sum() / self.explained_logit()

    def explained_logit(self) -> np.ndarray:
        """What the relevance of each point sums to when conserved: the logit, less
        ``extras["reference_part"]`` where a deep explanation against a reference point
        leaves that part to the reference."""
        part = self.extras.get("reference_part")
        return np.asarray(self.logit) if part is None else self.logit - np.asarray(part)

    def to_frame(self):
        """Relevance as a pandas DataFrame (rows = points, with X's row labels when X was a
        DataFrame; columns = features)."""
        return labelled_frame(self.relevance, self.columns, self.index, self.feature_names)

    def __repr__(self) -> str:
        shape = tuple(getattr(self.relevance, "shape", ()))
        beta = "None" if self.beta is None else f"{self.beta:.4g}"
        return (
            f"Explanation(method={self.method!r}, n={self.n_samples}, relevance{shape}, "
            f"beta={beta})"
        )


def labelled_frame(values: Any, columns: Any, index: Any, names: list[str] | None) -> Any:
    """``values`` (n, ...) as a DataFrame of n rows: columns labelled by ``columns`` (X's
    own labels) when they fit, else by ``names``, else ``x0, x1, ...``."""
    import pandas as pd

    arr = np.asarray(values)
    arr = arr.reshape(arr.shape[0], -1)
    if columns is not None and len(columns) == arr.shape[1]:
        cols = columns
    else:
        cols = names or [f"x{i}" for i in range(arr.shape[1])]
    if index is not None and len(index) != arr.shape[0]:
        raise ValueError(f"index has {len(index)} labels for {arr.shape[0]} rows")
    return pd.DataFrame(arr, columns=cols, index=index)


def check_explains_assignments(
    expl: Explanation, logits: Any, *, use: str, index: Any = None
) -> None:
    """``ValueError`` unless ``expl`` explains each point's own cluster, for the rows whose
    cluster logits (n, K) are ``logits`` (and row labels ``index``, when X has them): an
    explanation of other rows, of the rows in another order or of another model would be
    shown or scored against the wrong points. Clusters and logits are compared to
    rounding; points whose two best clusters tie may differ."""
    logits = np.asarray(logits, dtype=np.float64)
    n = logits.shape[0]
    if expl.n_samples != n:
        raise ValueError(f"the explanation covers {expl.n_samples} points, X has {n}")
    if index is not None and expl.index is not None and not expl.index.equals(index):
        raise ValueError(
            "the explanation's rows are labelled otherwise than X's (its index differs): "
            "explain X itself, in this order"
        )
    if expl.contrast is not None or not np.array_equal(
        np.asarray(expl.target), np.asarray(expl.cluster)
    ):
        raise ValueError(
            f"{use} each point's own cluster: pass an explanation computed with "
            "target='assigned' and no contrast"
        )
    given = np.asarray(expl.cluster, dtype=np.int64)
    rows = np.arange(n)
    assigned = logits.argmax(1)
    gap = logits[rows, assigned] - logits[rows, np.clip(given, 0, logits.shape[1] - 1)]
    tol = 1e-4 * np.maximum(1.0, np.abs(logits).max(1))
    off = (given != assigned) & ((gap > tol) | (given < 0) | (given >= logits.shape[1]))
    own = logits[rows, np.clip(given, 0, logits.shape[1] - 1)]
    off |= np.abs(np.asarray(expl.logit, dtype=np.float64) - own) > 10 * tol
    if off.any():
        raise ValueError(
            f"the explanation's clusters or logits differ from the model's on X for "
            f"{int(off.sum())} of {n} points (first: row {int(np.flatnonzero(off)[0])}): "
            "was it computed on these rows, in this order, with this model?"
        )
