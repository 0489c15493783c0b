"""Small helpers over ``array_api_compat`` shared by the engine."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

__all__ = ["device_of", "float_dtype_of", "namespace", "onehot", "to_numpy"]


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
    """A host numpy array of ``x`` (numpy arrays pass through, torch tensors are copied)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)
