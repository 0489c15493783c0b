"""The result type shared by every explanation method."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Explanation"]


@dataclass
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
        """sum(R) / logit per point: 1 where relevance is conserved (NaN where logit is 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.relevance_sum() / self.logit

    def to_frame(self):
        """Relevance as a pandas DataFrame (rows = points, with X's row labels when X was a
        DataFrame; columns = features)."""
        return labelled_frame(self.relevance, self.feature_names, self.index)

    def __repr__(self) -> str:
        shape = tuple(getattr(self.relevance, "shape", ()))
        beta = "None" if self.beta is None else f"{self.beta:.4g}"
        return (
            f"Explanation(method={self.method!r}, n={self.n_samples}, relevance{shape}, "
            f"beta={beta})"
        )


def labelled_frame(values: Any, names: list[str] | None, index: Any) -> Any:
    """``values`` (n, ...) as a DataFrame of n rows, named ``x0, x1, ...`` without names."""
    import pandas as pd

    arr = np.asarray(values)
    arr = arr.reshape(arr.shape[0], -1)
    cols = names or [f"x{i}" for i in range(arr.shape[1])]
    if index is not None and len(index) != arr.shape[0]:
        raise ValueError(f"index has {len(index)} labels for {arr.shape[0]} rows")
    return pd.DataFrame(arr, columns=cols, index=index)
