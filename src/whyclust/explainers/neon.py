"""Torch-side helpers of the explanation drivers (tensors in, batched logits out).

The NEON rules themselves are array-API code in :mod:`whyclust.engine`; the request
resolution is :mod:`whyclust.explainers.request`. Both are re-exported here for the
torch drivers (deep models, baselines).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from whyclust.engine.kmeans import check_finite_scores as check_finite_rows
from whyclust.engine.pool import margins_for_target, min_take_most, stabilize
from whyclust.explainers.request import (
    resolve_beta,
    resolve_request,
    resolve_targets,
    row_batches,
)

__all__ = [
    "batched_logits",
    "check_finite_rows",
    "margins_for_target",
    "min_take_most",
    "resolve_beta",
    "resolve_request",
    "resolve_targets",
    "row_batches",
    "stabilize",
    "to_tensor",
]


def to_tensor(block: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A numpy row block as a tensor on ``device`` with ``dtype`` (no copy when possible)."""
    return torch.from_numpy(np.ascontiguousarray(block)).to(device=device, dtype=dtype)


def batched_logits(
    forward: Callable[[torch.Tensor], torch.Tensor],
    X: np.ndarray,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """(n, K) outputs of ``forward`` over row batches of ``X``, on the CPU, checked finite."""
    chunks: list[Any] = []
    with torch.no_grad():
        for rows in row_batches(X.shape[0], batch_size):
            chunks.append(forward(to_tensor(X[rows], device, dtype)).cpu())
    logits = torch.cat(chunks)
    check_finite_rows(logits)
    return logits
