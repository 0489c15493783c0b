"""Conservation checks of deep explanations: warnings that say where relevance is lost."""

from __future__ import annotations

import math

import numpy as np
from torch import nn

from whyclust._validation import warn_caller
from whyclust.explainers.deep_chain import INEXACT_DELTA
from whyclust.explainers.deep_norms import unruled_modules

__all__ = ["warn_if_absorbed", "warn_if_leaking", "warn_if_not_conserved"]


def warn_if_leaking(total: np.ndarray, reached: np.ndarray, unruled: list[str]) -> None:
    """Warn when the modules that no rule covers (``unruled``) lose or duplicate relevance:
    with the rules' biases left out, most rows' sums miss the relevance at the code."""
    ok = np.abs(reached) > 1e-12
    if not ok.any():
        return
    ratio = total[ok] / reached[ok]
    if np.mean(np.abs(ratio - 1.0) > 0.05) < 0.5:
        return
    warn_caller(
        "the relevance is not conserved through this encoder: it crosses "
        f"{', '.join(unruled)} by plain autograd (no LRP rule covers the operations in "
        "their forward: a residual x + f(x) counts x's relevance twice, a Softmax loses "
        "it); without biases "
        f"it sums to {float(np.median(ratio)):.3g} times the relevance that reaches the "
        "code layer (median over points). extras['conservation'] gives sum(R) / f_c per point"
    )


def warn_if_absorbed(out: np.ndarray, logit: np.ndarray, zero_bias: bool) -> None:
    """Warn when the biases below the code layer take more than half of most points' f_c
    (with ``zero_bias``: units that only their bias switches on, whose relevance no input
    can take)."""
    total = out.reshape(logit.shape[0], -1).sum(1, dtype=np.float64)
    ok = np.abs(logit) > 0
    if not ok.any():
        return
    ratio = float(np.median(total[ok] / logit[ok]))
    if 0.5 <= ratio <= 1.5:
        return
    if zero_bias:
        warn_caller(
            f"the relevance sums to {ratio:.3g} times f_c (median over points) with "
            "zero_bias=True: units that their bias alone switches on (no input contributes "
            "to them) pass their relevance to no input; reference='mean' explains f_c "
            "relative to the mean point; extras['conservation'] has the ratio per point"
        )
        return
    warn_caller(
        f"the relevance sums to {ratio:.3g} times f_c (median over points): the encoder's "
        "biases (merged BatchNorm included) take the rest. zero_bias=True gives them none, "
        "reference='mean' explains f_c relative to the mean point; extras['conservation'] "
        "has the ratio per point"
    )


def warn_if_not_conserved(
    out: np.ndarray, logit: np.ndarray, explained: np.ndarray, encoder: nn.Module, eps: float
) -> None:
    """Design B sums to f_c - reference_part exactly through affine layers, elementwise
    activations and BatchNorm; warn, naming the layers, when a point's sum misses."""
    n = explained.shape[0]
    flat = out.reshape(n, -1)
    total = flat.sum(1, dtype=np.float64)
    scale = np.maximum(np.abs(flat).sum(1, dtype=np.float64), np.abs(logit))
    scale = np.maximum(scale, np.abs(explained))
    tol = math.sqrt(eps) * np.maximum(scale, np.finfo(out.dtype).tiny)  # eps: compute dtype
    miss = np.abs(total - explained) > tol
    if not miss.any():
        return
    names = {type(m).__name__ for m in encoder.modules() if isinstance(m, INEXACT_DELTA)}
    names.update(unruled_modules(encoder))  # custom forward code, leaves like Softmax
    where = ", ".join(sorted(names)) if names else "some of the encoder's layers"
    warn_caller(
        f"reference=: the relevance of {int(miss.sum())} of {n} points does not sum to "
        f"f_c - reference_part: the Delta rule is exact through affine layers, elementwise "
        f"activations and BatchNorm, not through {where}; extras['conservation'] has the "
        "ratio per point"
    )
