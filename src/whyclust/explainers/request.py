"""What one explanation call asks for: targets, contrast, beta, reference (any namespace)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from whyclust._validation import beta_from_mean, check_beta, check_targets
from whyclust.engine._xp import device_of, namespace

__all__ = ["resolve_beta", "resolve_reference", "resolve_request", "resolve_targets", "row_batches"]


def row_batches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive row slices of at most ``batch_size`` rows covering ``range(n)``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def resolve_targets(target: Any, assigned: Any, n_clusters: int, name: str = "target") -> Any:
    """``"assigned"`` / an int / an (n,) array as an (n,) integer array like ``assigned``."""
    arr = check_targets(target, assigned.shape[0], n_clusters, name)
    if arr is None:
        return assigned
    xp = namespace(assigned)
    return xp.asarray(arr, dtype=assigned.dtype, device=device_of(assigned))


def resolve_beta(beta: Any, assigned_logits: Any = None) -> float:
    """``"auto"``: 1 / mean of the assigned-cluster logits; else a float >= 0 (inf allowed)."""
    beta = check_beta(beta)
    if isinstance(beta, str):
        if assigned_logits is None or assigned_logits.shape[0] == 0:
            raise ValueError("beta='auto' needs at least one point to explain")
        xp = namespace(assigned_logits)
        return beta_from_mean(float(xp.mean(xp.astype(assigned_logits, xp.float64))))
    return beta


def resolve_request(
    logits: Any,
    *,
    target: Any,
    beta: Any,
    contrast: Any,
    assigned_logit: Callable[[Any], Any] | None = None,
) -> tuple[Any, Any, Any, float | None]:
    """Assignments, targets, contrast clusters and beta of one explanation call.

    ``logits`` (n, K) are the cluster logits, or any scores with the same argmax; then
    ``assigned_logit(assigned)`` must give f of each point's assigned cluster (default: the row
    maximum of the logits), called only for ``beta="auto"``. Returns
    ``(assigned, target, contrast or None, beta or None)``.
    """
    xp = namespace(logits)
    assigned = xp.argmax(logits, axis=1)
    n_clusters = logits.shape[1]
    tgt = resolve_targets(target, assigned, n_clusters)
    if contrast is None:
        if isinstance(beta, str) and beta == "auto":
            f = xp.max(logits, axis=1) if assigned_logit is None else assigned_logit(assigned)
            return assigned, tgt, None, resolve_beta(beta, f)
        return assigned, tgt, None, resolve_beta(beta)
    other = resolve_targets(contrast, assigned, n_clusters, "contrast")
    same = other == tgt
    if bool(xp.any(same)):
        raise ValueError(
            f"contrast cluster must differ from the target cluster, but they are equal for "
            f"{int(xp.sum(xp.astype(same, xp.int64)))} point(s): leave those out (e.g. the "
            "points already in the contrast cluster) or give an (n,) contrast array"
        )
    return assigned, tgt, other, None


def resolve_reference(reference: Any, flat: np.ndarray, model_mean: Any = None) -> Any:
    """None for the midpoint rule, else the (1, d) or (n, d) reference rows.

    ``"mean"`` is ``model_mean`` (the mean the model was fitted on) when known, else the
    mean of ``flat``; an array of shape (d,), (n, d) or X's shape is taken as given.
    """
    if isinstance(reference, str):
        if reference == "midpoint":
            return None
        if reference != "mean":
            raise ValueError(
                f"reference must be 'midpoint', 'mean' or an array, got {reference!r}"
            )
        mean = flat.mean(0, dtype=np.float64) if model_mean is None else model_mean
        return np.asarray(mean, dtype=flat.dtype).reshape(1, -1)
    n, d = flat.shape
    arr = np.asarray(reference.detach().cpu() if hasattr(reference, "detach") else reference)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"reference must be numeric, got dtype {arr.dtype}")
    if arr.size == d:
        arr = arr.reshape(1, d)
    elif arr.size == n * d and arr.shape[0] == n:
        arr = arr.reshape(n, d)
    else:
        raise ValueError(
            f"reference must have {d} features (shape ({d},) or ({n}, {d})), got {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("reference contains NaN or infinite values")
    return np.ascontiguousarray(arr, dtype=flat.dtype)
