"""Small helpers over ``array_api_compat`` shared by the engine."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

__all__ = ["device_of", "float_dtype_of", "namespace", "onehot", "row_max", "row_min", "to_numpy"]


def namespace(*arrays: Any) -> Any:
    """The array-API namespace of ``arrays`` (numpy arrays get numpy's compat namespace)."""
    return array_api_compat.array_namespace(*arrays)


def device_of(x: Any) -> Any:
    return array_api_compat.device(x)


def float_dtype_of(x: Any, xp: Any) -> Any:
    """float64 stays float64; anything else computes in float32."""
    return xp.float64 if x.dtype == xp.float64 else xp.float32


def onehot(index: Any, n: int, dtype: Any, xp: Any) -> Any:
    """(m, n) array with a 1 at column ``index[i]`` of row i."""
    cols = xp.arange(n, device=device_of(index))
    return xp.astype(cols[None, :] == index[:, None], dtype)


def to_numpy(x: Any) -> np.ndarray:
    """A host numpy array of ``x`` (numpy arrays pass through, torch tensors are copied;
    bfloat16, which numpy lacks, becomes float32)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def row_min(a: Any, keepdims: bool = False) -> Any:
    """Minimum over axis 1 of an (n, K) array (see :func:`_rows_reduced`)."""
    return _rows_reduced(a, "min", keepdims)


def row_max(a: Any, keepdims: bool = False) -> Any:
    """Maximum over axis 1 of an (n, K) array (see :func:`_rows_reduced`)."""
    return _rows_reduced(a, "max", keepdims)


def _rows_reduced(a: Any, name: str, keepdims: bool) -> Any:
    """numpy reduces a short contiguous axis one row at a time; over a column-major copy
    of a tall (n, K) array the same reduction is elementwise across K columns, several
    times faster. Other namespaces reduce as they are."""
    if isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[0] > 4 * a.shape[1]:
        a = np.asfortranarray(a)
        return getattr(a, name)(axis=1, keepdims=keepdims)
    xp = namespace(a)
    return getattr(xp, name)(a, axis=1, keepdims=keepdims)
