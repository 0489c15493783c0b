"""NEON through a deep encoder, down to the input (DESIGN.md sections 1 and 4).

The cluster head is a :class:`torch.autograd.Function` (:class:`NeonHead`) whose forward is
the exact logit f_c(z) and whose backward *is* NEON on the head: min-take-most over the
competitors, then the midpoint rule. The encoder's layers carry that relevance to the input
with the backward hooks of a zennit composite (LRP rules are gradient hooks in zennit), so
one ``torch.autograd.grad`` call gives the whole explanation:

    relevance = grad(f, x, grad_outputs=f)     (inside ``composite.context(encoder)``)

Since the head's backward distributes whatever arrives as its output gradient g (R_k = g p_k
instead of f_c p_k), feeding g = f_c makes the head exactly conservative. ``L2Normalize``
layers (TELL's features) are a fixed per-sample scale: relevance passes them unchanged.
Conservation through the encoder is approximate (epsilon / gamma rules, biases absorb some
relevance); ``extras["conservation"]`` reports sum(R) / f_c per point and
``extras["head_conservation"]`` the same ratio for the relevance on z.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from whyclust.engine.kernel import KernelGeometry
from whyclust.engine.kmeans import KMeansGeometry
from whyclust.explainers.explanation import Explanation
from whyclust.explainers.neon import (
    batched_logits,
    resolve_request,
    row_batches,
    stabilize,
    to_tensor,
)
from whyclust.networks.base import ClusterNetwork, EncodedClusterNetwork, L2Normalize
from whyclust.networks.kernel import KernelKMeansNetwork
from whyclust.networks.kmeans import KMeansNetwork

__all__ = [
    "NeonHead",
    "explain_encoded",
    "explain_encoded_network",
    "head_relevance",
    "resolve_composite",
]

_DEFAULT_ROWS = 256


# --- relevance at the head ----------------------------------------------------------------


def head_relevance(
    head: ClusterNetwork,
    z: torch.Tensor,
    target: torch.Tensor,
    beta: float | None,
    g: torch.Tensor,
    contrast: torch.Tensor | None = None,
    eps: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(relevance on z (n, m), explained logit (n,)) for a head, distributing ``g``.

    ``g = logit`` gives NEON proper: the relevance sums to f_c (or to h_ck with
    ``contrast``). Heads other than k-means provide ``head.neon_relevance`` with the same
    signature.
    """
    if isinstance(head, KMeansNetwork):
        geom = KMeansGeometry(head.centers.to(device=z.device, dtype=z.dtype), eps)
        xp = geom.prepare(z)
        scores = geom.scores(xp)
        if contrast is None:
            rel, f, _ = geom.neon(xp, scores, target, beta, amount=g)
        else:
            rel, f = geom.contrast_map(xp, scores, target, contrast)
            rel = rel * (g / stabilize(f, geom.eps))[:, None]
        return rel, f
    if isinstance(head, KernelKMeansNetwork):
        geom = head.geometry()
        geom = KernelGeometry(geom.support.to(z.dtype), geom.counts, geom.gamma)
        return geom.neon(geom.prepare(z), target, beta, amount=g, contrast=contrast, eps=eps)
    raise TypeError(f"NEON has no rule for a {type(head).__name__} head")


class NeonHead(torch.autograd.Function):
    """Forward: the explained logit of the head. Backward: NEON relevance on the features.

    ``sink`` (a list or None) receives the relevance sum on z of each backward call.
    """

    @staticmethod
    def forward(ctx, z, head, target, beta, contrast, eps, sink):  # type: ignore[override]
        with torch.no_grad():
            if contrast is None:
                f = head(z).gather(1, target[:, None])[:, 0]
            else:
                s = head.scores(z)
                f = s.gather(1, target[:, None])[:, 0] - s.gather(1, contrast[:, None])[:, 0]
        ctx.save_for_backward(z)
        ctx.args = (head, target, beta, contrast, eps, sink)
        return f

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        (z,) = ctx.saved_tensors
        head, target, beta, contrast, eps, sink = ctx.args
        with torch.no_grad():
            r, _ = head_relevance(head, z.detach(), target, beta, g, contrast, eps)
        if sink is not None:
            sink.append(r.sum(1))
        return r, None, None, None, None, None, None


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


def _relevance_view(encoder: nn.Module) -> nn.Module:
    """A copy of the encoder whose L2Normalize layers pass relevance unchanged."""
    if isinstance(encoder, L2Normalize):
        return _RelevanceL2Normalize(encoder.eps)
    enc = copy.deepcopy(encoder)
    for name, module in list(enc.named_modules()):
        if isinstance(module, L2Normalize):
            parent_name, _, child = name.rpartition(".")
            parent = enc.get_submodule(parent_name) if parent_name else enc
            setattr(parent, child, _RelevanceL2Normalize(module.eps))
    return enc.eval()


# --- composites ---------------------------------------------------------------------------


def resolve_composite(composite: Any, bounds: tuple[float, float] | None, **kwargs: Any):
    """A zennit Composite from a name, an instance, or None (EpsilonGammaBox on ``bounds``).

    Named composites get the ``SequentialMergeBatchNorm`` canonizer, so that BatchNorm
    layers after Linear / Conv layers are merged into them before LRP.
    """
    try:
        from zennit.canonizers import SequentialMergeBatchNorm
        from zennit.composites import COMPOSITES, Composite
    except ImportError as exc:  # pragma: no cover - zennit is in the "explain" extra
        raise ImportError(
            "NEON through an encoder needs zennit: pip install 'whyclust[explain]'"
        ) from exc
    if isinstance(composite, Composite):
        return composite
    name = "epsilon_gamma_box" if composite is None else composite
    if not isinstance(name, str):
        raise TypeError(
            f"composite must be a name or a zennit Composite, got {type(composite).__name__}"
        )
    key = name.lower().replace("-", "_")
    if key not in COMPOSITES:
        raise ValueError(f"unknown composite {name!r}; available: {', '.join(sorted(COMPOSITES))}")
    if key == "epsilon_gamma_box":
        if bounds is None:
            raise ValueError("the epsilon_gamma_box composite needs bounds=(low, high)")
        kwargs = {"low": float(bounds[0]), "high": float(bounds[1]), **kwargs}
    return COMPOSITES[key](canonizers=[SequentialMergeBatchNorm()], **kwargs)


def _check_bounds(bounds: Any) -> tuple[float, float]:
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (low, high) of numbers, got {bounds!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ValueError(f"bounds must be finite with low < high, got ({low}, {high})")
    return low, high


# --- driver -------------------------------------------------------------------------------


def explain_encoded(
    net: EncodedClusterNetwork,
    X: np.ndarray,
    *,
    target: Any = "assigned",
    beta: Any = "auto",
    contrast: Any = None,
    batch_size: int | None = None,
    composite: Any = None,
    bounds: Any = None,
    epsilon: float | None = None,
    eps: float | None = None,
    device: str | torch.device | None = None,
) -> Explanation:
    """NEON relevance in input space for an encoder + cluster-head network.

    Parameters
    ----------
    net : EncodedClusterNetwork
    X : ndarray of shape (n, ...)
        Validated input; the relevance has the same shape.
    target, beta, contrast, batch_size
        As in :func:`whyclust.explain`.
    composite : str or zennit Composite, optional
        LRP rules of the encoder. Default ``"epsilon_gamma_box"`` with ``bounds`` (the data's
        min and max when not given); ``"epsilon_plus_flat"``, ``"epsilon_plus"``, ... or any
        zennit Composite instance (used as is, canonizers included).
    bounds : (low, high), optional
        Input range for the ZBox rule of the first layer.
    epsilon : float, optional
        Stabiliser of zennit's epsilon rule (its own default when None).
    eps : float, optional
        Relative stabiliser of the head's 1/h (non-assigned targets).
    """
    dev = torch.device(device) if device is not None else net.device
    param = next(iter(net.encoder.parameters()), None)
    dtype = (
        param.dtype
        if param is not None
        else (torch.float64 if X.dtype == np.float64 else torch.float32)
    )
    n = X.shape[0]
    bs = _DEFAULT_ROWS if batch_size is None else int(batch_size)
    if bs < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    net = net.to(dev).eval()

    head = net.head
    if head.dtype != dtype:  # e.g. float64 centers behind a float32 encoder
        head = copy.deepcopy(head).to(dtype=dtype)

    # pass 1: logits of every point give assignments, targets and beta="auto"
    def forward(x: torch.Tensor) -> torch.Tensor:
        z = net.encoder(x)
        return head(z.reshape(z.shape[0], -1))

    logits = batched_logits(forward, X, bs, dev, dtype)
    assigned, tgt, other, beta_value = resolve_request(
        logits, target=target, beta=beta, contrast=contrast
    )

    if bounds is not None:
        bounds = _check_bounds(bounds)
    elif composite is None:
        low, high = float(X.min()), float(X.max())
        bounds = (low, high if high > low else low + 1.0)
    extra = {} if epsilon is None else {"epsilon": float(epsilon)}
    comp = resolve_composite(composite, bounds, **extra)
    encoder = _relevance_view(net.encoder).to(dev)

    out = np.empty(X.shape, dtype=X.dtype)
    logit = np.empty(n, dtype=X.dtype)
    head_sum = np.empty(n, dtype=X.dtype)
    with comp.context(encoder) as hooked:
        for rows in row_batches(n, bs):
            x = to_tensor(X[rows], dev, dtype).requires_grad_(True)
            with torch.enable_grad():
                z = hooked(x)
                z = z.reshape(z.shape[0], -1)
                sink: list[torch.Tensor] = []
                t = tgt[rows].to(dev)
                o = None if other is None else other[rows].to(dev)
                f = NeonHead.apply(z, head, t, beta_value, o, eps, sink)
                (r,) = torch.autograd.grad(f, x, grad_outputs=f.detach())
            out[rows] = r.detach().cpu().numpy().astype(X.dtype, copy=False)
            logit[rows] = f.detach().cpu().numpy()
            head_sum[rows] = sink[0].cpu().numpy()
    total = out.reshape(n, -1).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        conservation = total / logit
        head_conservation = head_sum / logit
    return Explanation(
        relevance=out,
        logit=logit,
        cluster=assigned.numpy(),
        target=tgt.numpy(),
        beta=beta_value,
        method="neon" if other is None else "neon-contrast",
        contrast=None if other is None else other.numpy(),
        extras={
            "conservation": conservation,
            "head_conservation": head_conservation,
            "composite": type(comp).__name__,
            "bounds": bounds,
        },
    )


# --- entry of the method table --------------------------------------------------------------


def explain_encoded_network(
    net: EncodedClusterNetwork, X: np.ndarray, **options: Any
) -> Explanation:
    """``method="neon"`` for an encoder + head network.

    Encoders that only rescale each point (L2 normalisation) pass relevance unchanged: the
    exact k-means path runs on the normalised points.
    """
    if isinstance(net.encoder, L2Normalize) and isinstance(net.head, KMeansNetwork):
        from whyclust.explainers.kmeans import explain_kmeans

        for key in ("composite", "bounds", "epsilon"):
            options.pop(key, None)
        with torch.no_grad():
            z = net.encoder(torch.from_numpy(X.reshape(X.shape[0], -1))).numpy()
        expl = explain_kmeans(net.head.centers.detach(), z, **options)
        expl.relevance = expl.relevance.reshape(X.shape)
        expl.extras["conservation"] = expl.conservation
        return expl
    return explain_encoded(net, X, **options)
