"""Relevance through normalisation layers, for the zennit paths of deep NEON.

Autograd through a normalisation that divides by a statistic of its own input (L2
normalisation, LayerNorm, GroupNorm) is the wrong carrier of relevance: such a layer is
scale invariant, so gradient x input over its input sums to zero and the relevance that
reaches it is lost. The relevance view of an encoder replaces each of them by a module with
the same forward and a relevance backward:

- ``L2Normalize`` z = x / ||x||: a fixed per-sample scale, relevance passes unchanged;
- ``LayerNorm`` / ``GroupNorm`` y = w (x - mean(x)) / sigma + b: the identity rule,
  R_x = R_y feature by feature, as for a loose BatchNorm and the activations. (The
  epsilon rule on the map with sigma held fixed is also conservative, but it divides by
  outputs that the bias and the centering bring near zero.)
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from whyclust.networks.base import L2Normalize

__all__ = ["relevance_view", "unruled_modules"]


class _ScaleThrough(torch.autograd.Function):
    """x / ||x|| forward; backward passes relevance unchanged (a fixed per-sample scale)."""

    @staticmethod
    def forward(ctx, x, eps):  # type: ignore[override]
        ctx.shape = x.shape
        flat = x.reshape(x.shape[0], -1)
        return flat / flat.norm(dim=1, keepdim=True).clamp_min(eps)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g.reshape(ctx.shape), None


class _RelevanceL2Normalize(nn.Module):
    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ScaleThrough.apply(x, self.eps)


class _PassThrough(torch.autograd.Function):
    """A normalisation's output forward; backward passes relevance unchanged."""

    @staticmethod
    def forward(ctx, x, module):  # type: ignore[override]
        return module(x)

    @staticmethod
    def backward(ctx, r):  # type: ignore[override]
        return r, None


class _RelevanceNorm(nn.Module):
    """LayerNorm / GroupNorm forward; relevance passes through unchanged (identity rule)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.norm = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _PassThrough.apply(x, self.norm)


_NORMS = (nn.LayerNorm, nn.GroupNorm)


def relevance_view(encoder: nn.Module, *, code: str | None = None) -> nn.Module:
    """A copy of ``encoder`` (eval mode) whose normalisation layers pass relevance (see the
    module docstring). With ``code`` (the name of the folded code layer), the layers after
    it stay as they are: the folded rules handle what follows the code layer."""
    if isinstance(encoder, L2Normalize):
        return _RelevanceL2Normalize(encoder.eps)
    if isinstance(encoder, _NORMS):
        return _RelevanceNorm(encoder)
    enc = copy.deepcopy(encoder)
    names = [n for n, m in enc.named_modules() if not list(m.children())]
    stop = names.index(code) if code in names else len(names)
    for name in names[:stop]:
        module = enc.get_submodule(name)
        if isinstance(module, L2Normalize):
            swap: nn.Module = _RelevanceL2Normalize(module.eps)
        elif isinstance(module, _NORMS):
            swap = _RelevanceNorm(module)
        else:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = enc.get_submodule(parent_name) if parent_name else enc
        setattr(parent, child, swap)
    return enc.eval()


def _conserving_leaves() -> tuple[type, ...]:
    """Leaves that design A's rules or plain autograd carry relevance through intact."""
    from zennit.layer import Sum
    from zennit.types import Activation, AvgPool, BatchNorm, Convolution

    return (
        nn.Linear, Convolution, Activation, BatchNorm, AvgPool, Sum, nn.Flatten, nn.Unflatten,
        nn.Identity, nn.Dropout, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
        nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Upsample,
        L2Normalize, nn.LayerNorm, nn.GroupNorm,  # in the view, norms are wrapped
    )  # fmt: skip


def unruled_modules(encoder: nn.Module) -> list[str]:
    """Type names of the modules relevance may cross by plain autograd: leaves that no
    rule covers, and containers with their own forward code (an ``nn.Sequential`` subclass
    too; not torchvision's canonized ResNet blocks, which route their sums through a Sum)."""
    safe_leaves = _conserving_leaves()
    names: set[str] = set()
    for module in encoder.modules():
        kind = type(module).__name__
        if isinstance(module, (_RelevanceNorm, _RelevanceL2Normalize)):
            continue  # their own backward carries relevance
        if list(module.children()):
            torchvision = type(module).__module__.startswith("torchvision.models.resnet")
            if type(module).forward is not nn.Sequential.forward and not torchvision:
                names.add(kind)
        elif not isinstance(module, safe_leaves):
            names.add(kind)
    return sorted(names)
