"""Input checks shared by every entry point: one place that turns bad input into clear errors."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

__all__ = [
    "as_float_array",
    "beta_from_mean",
    "check_beta",
    "check_centers",
    "check_n_clusters",
    "check_targets",
    "feature_names_of",
    "frame_values",
    "resolve_dtype",
    "warn_caller",
]


def resolve_dtype(dtype: Any) -> np.dtype:
    """Compute dtype for an input dtype: float64 stays float64, everything else is float32."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def feature_names_of(X: Any) -> list[str] | None:
    """Column names of a pandas DataFrame, else None."""
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    return [str(c) for c in columns]


def row_index_of(X: Any) -> Any:
    """The row labels of a pandas DataFrame (its ``index``), else None."""
    if getattr(X, "columns", None) is None:
        return None
    return getattr(X, "index", None)


def frame_labels(X: Any) -> tuple[list[str] | None, Any, Any]:
    """``(feature_names, index, columns)`` of a DataFrame, as results record them (None
    for arrays)."""
    return feature_names_of(X), row_index_of(X), getattr(X, "columns", None)


def refuse_sparse(X: Any, name: str = "X") -> None:
    """``TypeError`` for a scipy sparse matrix or array (relevance is dense)."""
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise TypeError(f"{name} is a sparse matrix; pass a dense array ({name}.toarray())")


def frame_values(frame: Any, *, name: str = "X") -> np.ndarray:
    """The values of a numeric DataFrame as a writeable numpy array.

    ``TypeError`` names non-numeric columns. pandas may hand out a read-only view of its
    data (copy-on-write); such a view is copied, so that no later step (torch's
    ``from_numpy``) warns about, or writes into, the caller's frame.
    """
    bad = [
        str(c) for c, t in zip(frame.columns, frame.dtypes, strict=True) if not is_numeric_dtype(t)
    ]
    if bad:
        raise TypeError(
            f"{name} has non-numeric columns: {', '.join(bad[:5])}"
            + (" ..." if len(bad) > 5 else "")
            + "; encode or drop them before clustering"
        )
    arr = frame.to_numpy()
    if arr.dtype == object:  # pandas' nullable dtypes (Int64, Float64, boolean): pd.NA -> NaN
        arr = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(arr, np.ndarray) and not arr.flags.writeable:
        arr = arr.copy()
    return arr


#: the shapes a batch of samples may take: rows of features, sequences (n, C, L), images
#: (n, C, H, W) and volumes (n, C, D, H, W)
SAMPLE_NDIM = (2, 3, 4, 5)


def as_float_array(
    X: Any,
    *,
    name: str = "X",
    ndim: int | tuple[int, ...] = 2,
    min_samples: int = 1,
    n_features: int | None = None,
    allow_nan: bool = False,
    copy: bool = False,
) -> np.ndarray:
    """Validate ``X`` and return it as a C-contiguous float32 / float64 numpy array.

    Float64 input stays float64; any other numeric input becomes float32. Raises
    ``TypeError`` for non-numeric input and ``ValueError`` for wrong
    shapes, too few samples, a wrong number of features and NaN / inf.
    """
    if hasattr(X, "dtypes") and hasattr(X, "columns"):  # pandas DataFrame
        X = frame_values(X, name=name)
    elif hasattr(X, "detach") and hasattr(X, "cpu"):  # torch tensor
        X = X.detach().cpu().numpy()
    refuse_sparse(X, name)
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as exc:  # ragged nested lists and the like
        raise ValueError(f"{name} could not be read as a numeric array: {exc}") from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if arr.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        hint = " (reshape a single sample with X.reshape(1, -1))" if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be a {want} array, got shape {arr.shape}{hint}")
    if arr.shape[0] < min_samples:
        raise ValueError(f"{name} has {arr.shape[0]} sample(s), at least {min_samples} required")
    if arr.ndim >= 2 and int(np.prod(arr.shape[1:])) == 0:
        raise ValueError(f"{name} has no features (shape {arr.shape})")
    if n_features is not None:
        got = int(np.prod(arr.shape[1:]))
        if got != n_features:
            raise ValueError(
                f"{name} has {got} features, but the model was fitted with {n_features}"
            )
    dtype = resolve_dtype(arr.dtype)
    arr = (
        np.array(arr, dtype=dtype, order="C", copy=True)
        if copy
        else np.ascontiguousarray(arr, dtype=dtype)
    )
    if not allow_nan:
        check_finite(arr, name=name)
    return arr


def check_finite(arr: np.ndarray, *, name: str = "X") -> None:
    """Raise ``ValueError`` naming the first NaN / inf found, chunked to bound memory."""
    step = max(1, (1 << 22) // max(1, int(np.prod(arr.shape[1:])) if arr.ndim > 1 else 1))
    for start in range(0, arr.shape[0], step):
        block = arr[start : start + step]
        if not np.isfinite(block).all():
            bad = np.argwhere(~np.isfinite(block))[0]
            row = int(bad[0]) + start
            kind = "NaN" if np.isnan(block[tuple(bad)]) else "infinite values"
            raise ValueError(f"{name} contains {kind} (first at row {row})")


def check_n_clusters(n_clusters: Any, n_samples: int | None = None) -> int:
    """Validate a number of clusters: an integer >= 2 and at most the number of samples."""
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)):
        raise TypeError(f"n_clusters must be an integer, got {type(n_clusters).__name__}")
    if n_clusters < 2:
        raise ValueError(
            f"n_clusters must be at least 2 (got {n_clusters}): with one cluster there is "
            "no assignment to explain"
        )
    if n_samples is not None and n_clusters > n_samples:
        raise ValueError(
            f"n_clusters={n_clusters} is larger than the number of samples ({n_samples})"
        )
    return int(n_clusters)


def check_centers(centers: Any) -> np.ndarray:
    """(K, d) finite centroids with K >= 2, as a float32 / float64 array (a copy)."""
    arr = as_float_array(centers, name="centers", copy=True)
    if arr.shape[0] < 2:
        raise ValueError("a clustering needs at least 2 clusters to be explained (got 1 center)")
    return arr


def check_targets(
    target: Any, n: int, n_clusters: int, name: str = "target"
) -> np.ndarray | None:
    """An int / (n,) array of cluster indices as an (n,) int64 array; None for "assigned".
    ``name`` is the argument the errors name (``"target"``, ``"contrast"``)."""
    if isinstance(target, str):
        if target != "assigned":
            raise ValueError(f"{name} must be 'assigned', an int or an array, got {target!r}")
        return None
    if hasattr(target, "detach") and hasattr(target, "cpu"):  # torch tensor
        target = target.detach().cpu().numpy()
    arr = np.asarray(target)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold cluster indices (integers), got dtype {arr.dtype}")
    if arr.ndim == 0:
        arr = np.full(n, int(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {arr.shape}")
    if n and (arr.min() < 0 or arr.max() >= n_clusters):
        raise ValueError(
            f"{name} clusters must lie in [0, {n_clusters - 1}], got values in "
            f"[{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.int64, copy=False)


def check_beta(beta: Any) -> float | str:
    """``"auto"`` or a float >= 0 (inf allowed)."""
    if isinstance(beta, str):
        if beta != "auto":
            raise ValueError(f"beta must be 'auto' or a number >= 0, got {beta!r}")
        return beta
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
        raise TypeError(f"beta must be 'auto' or a number, got {type(beta).__name__}")
    beta = float(beta)
    if math.isnan(beta) or beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    return beta


def beta_from_mean(mean: float) -> float:
    """beta="auto": 1 / mean assigned-cluster logit, or 1 when that mean is not positive."""
    return 1.0 / mean if mean > 0 and math.isfinite(mean) else 1.0


def is_numeric_dtype(dtype: Any) -> bool:
    """Whether a numpy or pandas column dtype holds numbers (a categorical: its categories)."""
    try:  # by kind: numpy files timedelta64 under the integers
        return np.dtype(dtype).kind in "biufc"
    except TypeError:  # pandas extension dtypes
        categories = getattr(dtype, "categories", None)  # categoricals of numbers are numbers
        if categories is not None:
            return is_numeric_dtype(categories.dtype)
        return getattr(dtype, "_is_numeric", False)


def warn_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside whyclust (the user's line)."""
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(0), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def unknown_option(exc: TypeError, model: Any, method: str, options: Any) -> TypeError:
    """``exc``, or, when it is an internal function refusing one of the caller's
    ``options``, a ``TypeError`` naming that option as ``explain()``'s."""
    found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
    if found is None or found.group(1) not in options:
        return exc
    kind = "an (encoder, centers) pair" if isinstance(model, (tuple, list)) else (
        f"a {type(model).__name__}"
    )
    return TypeError(
        f"explain() does not take {found.group(1)}= for {kind} with "
        f"method={method!r}; see help(whyclust.explain) for each model's options"
    )
