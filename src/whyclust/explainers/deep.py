"""NEON through a deep encoder, down to the input (docs: deep models).

By default the encoder's last Linear layer is folded into a k-means head and the rules of
:mod:`whyclust.explainers.deep_rules` apply (design A, or design B with ``reference=``).
The unfolded chain below serves kernel heads, encoders without a foldable code layer and
``composite=``: the cluster head is a :class:`torch.autograd.Function` (:class:`NeonHead`)
whose forward is the exact logit f_c(z) and whose backward *is* NEON on the head:
min-take-most over the competitors, then the midpoint rule. The encoder's layers carry
that relevance to the input with the backward hooks of a zennit composite (LRP rules are
gradient hooks in zennit), so one ``torch.autograd.grad`` call gives the whole explanation:

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
import functools
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from whyclust._validation import warn_caller
from whyclust.engine._xp import to_numpy
from whyclust.engine.kernel import KernelGeometry
from whyclust.engine.kmeans import KMeansGeometry
from whyclust.explainers.deep_chain import DesignA, EncoderChain, Unsupported
from whyclust.explainers.deep_checks import (
    warn_if_absorbed,
    warn_if_leaking,
    warn_if_not_conserved,
)
from whyclust.explainers.deep_norms import relevance_view, unruled_modules
from whyclust.explainers.deep_rules import (
    FIRST_RULES,
    FoldedNeonHead,
    check_gamma,
    delta_head,
    delta_relevance,
    design_a_composite,
    exact_batchnorm_merge,
    find_code_layer,
    fold_refused,
    folded_forward,
    folded_logit,
    folded_relevance,
    unshared,
)
from whyclust.explainers.explanation import Explanation
from whyclust.explainers.neon import (
    batched_logits,
    resolve_request,
    row_batches,
    stabilize,
    to_tensor,
)
from whyclust.networks.base import ClusterNetwork, EncodedClusterNetwork, L2Normalize, evaluating
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


# --- composites ---------------------------------------------------------------------------


def resolve_composite(composite: Any, bounds: tuple[float, float] | None, **kwargs: Any):
    """A zennit Composite from a name, an instance, or None (EpsilonGammaBox on ``bounds``).

    Named composites get an exact BatchNorm merge (zennit's ``SequentialMergeBatchNorm``
    with the merged eps set to 0), so that BatchNorm layers after Linear / Conv layers are
    merged into them before LRP and the hooked network computes the original logits.
    """
    try:
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
    # zennit's names (epsilon_gamma_box) or its class names (EpsilonGammaBox)
    by_letters = {k.replace("_", ""): k for k in COMPOSITES}
    key = by_letters.get(name.lower().replace("-", "").replace("_", ""), name)
    if key not in COMPOSITES:
        raise ValueError(f"unknown composite {name!r}; available: {', '.join(sorted(COMPOSITES))}")
    if key == "epsilon_gamma_box":
        if bounds is None:
            raise ValueError("the epsilon_gamma_box composite needs bounds=(low, high)")
        kwargs = {"low": float(bounds[0]), "high": float(bounds[1]), **kwargs}
    return COMPOSITES[key](canonizers=[exact_batchnorm_merge()], **kwargs)


def _check_bounds(bounds: Any) -> tuple[float, float]:
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (low, high) of numbers, got {bounds!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ValueError(f"bounds must be finite with low < high, got ({low}, {high})")
    return low, high


# --- driver -------------------------------------------------------------------------------


#: the rules attach hooks to the encoder's modules while they run: explanations of one
#: network from several threads (dask's threaded scheduler) take turns
_HOOKS = threading.RLock()


def _one_at_a_time(fn: Any) -> Any:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _HOOKS:
            return fn(*args, **kwargs)

    return run


@_one_at_a_time
def explain_encoded(
    net: EncodedClusterNetwork,
    X: np.ndarray,
    *,
    target: Any = "assigned",
    beta: Any = "auto",
    contrast: Any = None,
    batch_size: int | None = None,
    reference: Any = "midpoint",
    first_rule: str = "auto",
    gamma: float = 0.25,
    head_gamma: float = 1.0,
    zero_bias: bool = False,
    composite: Any = None,
    bounds: Any = None,
    epsilon: float | None = None,
    eps: float | None = None,
    device: str | torch.device | None = None,
) -> Explanation:
    """NEON relevance in input space for an encoder + cluster-head network.

    With a k-means head behind a ``Linear`` code layer the code layer is folded into the
    head (:mod:`whyclust.explainers.deep_rules`); otherwise, or with ``composite=``, NEON's
    midpoint rule runs on the features z and a zennit composite carries it to the input.

    Parameters
    ----------
    net : EncodedClusterNetwork
    X : ndarray of shape (n, ...)
        Validated input; the relevance has the same shape.
    target, beta, contrast, batch_size
        As in :func:`whyclust.explain`.
    reference : "midpoint", "mean" or array-like, default="midpoint"
        ``"midpoint"``: design A (LRP-gamma at the folded head, zennit rules below).
        ``"mean"`` (the mean of ``X``) or one point of X's shape: design B, the Delta rule
        relative to the reference's activations at every layer; the relevance sums to f_c
        minus ``extras["reference_part"]``.
    first_rule : {"auto", "zbox", "flat", "wsquare", "gamma", "epsilon"}, default="auto"
        Design A's rule at the encoder's first Linear / Conv. ``"auto"``: ZBox on
        ``bounds`` when the lower bound is >= 0 (images, intensities), else Epsilon (signed
        input such as standardised tables).
    gamma : float, default=0.25
        Gamma of the hidden Linear / Conv layers (design A).
    head_gamma : float, default=1.0
        Gamma of the rule at the folded head (design A).
    zero_bias : bool, default=False
        Design A: biases absorb no relevance (zennit's ``zero_params="bias"``).
    composite : str or zennit Composite, optional
        Use the unfolded rules: midpoint on z, then this composite (e.g.
        ``"epsilon_gamma_box"``, ``"epsilon_plus_flat"`` or any zennit Composite).
    bounds : (low, high), optional
        Input range for ZBox (default: the data's min and max).
    epsilon : float, optional
        Stabiliser of zennit's epsilon rule (unfolded rules only).
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
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    net = unshared(evaluating(net, dev))  # a module used twice is two layers to the rules
    head = net.head
    if head.dtype != dtype:  # e.g. float64 centers behind a float32 encoder
        head = copy.deepcopy(head).to(dtype=dtype)
    ref_name, ref_value = _check_reference(reference, X)
    with torch.no_grad():  # shape and dtype errors in the user's terms, before any pass
        net(to_tensor(X[:1], dev, dtype))
    code = find_code_layer(net.encoder) if isinstance(head, KMeansNetwork) else None
    why = "does not end in a Linear code layer (followed at most by flattening, dropout, "
    why += "BatchNorm1d or L2Normalize)"
    if code is not None and composite is None:
        refused = fold_refused(net.encoder, code, to_tensor(X[:8], dev, dtype))
        if refused is not None:
            code, why = None, f"cannot be folded ({refused})"
    if bounds is not None:
        bounds = _check_bounds(bounds)
    else:
        low, high = float(X.min()), float(X.max())
        bounds = (low, high if high > low else low + 1.0)
    if composite is not None or code is None:
        if ref_name != "midpoint":
            raise ValueError(
                "reference= needs a k-means head behind a Linear code layer (the folded "
                "rules); this network "
                + ("was given composite=" if composite is not None else "has none")
            )
        if composite is None and isinstance(head, KMeansNetwork):
            warn_caller(
                f"the encoder {why}: NEON uses the unfolded rules (midpoint on z, "
                "EpsilonGammaBox below), whose explanations depend on the origin of the code "
                "space"
            )
        bs = _DEFAULT_ROWS if batch_size is None else int(batch_size)
        return _explain_unfolded(
            net, head, X, target, beta, contrast, bs, composite, bounds, epsilon, eps, dev, dtype
        )

    bs = _DEFAULT_ROWS if batch_size is None else int(batch_size)

    def forward(x: torch.Tensor) -> torch.Tensor:
        z = net.encoder(x)
        return head(z.reshape(z.shape[0], -1))

    midpoint = ref_name == "midpoint"
    rules = None
    if midpoint:
        g_head, g_hidden = check_gamma(head_gamma, "head_gamma"), check_gamma(gamma, "gamma")
        rule = _resolve_first_rule(first_rule, bounds)
        rules = _layer_rules(net.encoder, code, rule, bounds, g_hidden, bool(zero_bias))
    trace = None
    try:
        if rules is not None and batch_size is None and n > bs:  # rows within the budget
            per_row = rules.chain.forward(to_tensor(X[:1], dev, dtype)).n_values
            bs = max(1, min(_MAX_ROWS, _TRACE_VALUES // per_row))
        if rules is not None and n <= bs:  # one batch: one forward gives logits and rules
            trace = rules.chain.forward(to_tensor(X, dev, dtype))
    except Unsupported:  # a layer the forward found it cannot follow: zennit's hooks
        rules = None
    if trace is not None:
        with torch.no_grad():
            logits = head(trace.z).cpu()
    else:
        logits = batched_logits(forward, X, bs, dev, dtype)
    assigned, tgt, other, beta_value = resolve_request(
        logits, target=target, beta=beta, contrast=contrast
    )
    rel = KMeansGeometry(head.centers.to(device=dev, dtype=dtype), eps)
    out = np.empty(X.shape, dtype=X.dtype)
    logit = np.empty(n, dtype=X.dtype)
    head_sum = np.empty(n, dtype=X.dtype)
    extras: dict[str, Any] = {"fold": code.name, "reference": ref_value,
                              "reference_name": ref_name}  # fmt: skip
    batches = list(row_batches(n, bs))
    if midpoint:
        run = _Run(X, batches, rel, tgt, other, beta_value, dev, dtype, out, logit)
        if rules is None or not _design_a_layers(rules, trace, g_head, run, head_sum):
            options = {"first_rule": rule, "bounds": bounds, "gamma": g_hidden,
                       "zero_bias": bool(zero_bias)}  # fmt: skip
            _design_a_zennit(net.encoder, options, g_head, run, head_sum)
        explained = logit
        warn_if_absorbed(out, logit, bool(zero_bias))
        extras.update(
            rule="fold-gamma", first_rule=rule, bounds=bounds, gamma=float(gamma),
            head_gamma=g_head, zero_bias=bool(zero_bias),
        )  # fmt: skip
    else:
        run = _Run(X, batches, rel, tgt, other, beta_value, dev, dtype, out, logit)
        ref_t = to_tensor(ref_value[None], dev, dtype)
        part = np.empty(n, dtype=X.dtype)
        if not _design_b_layers(net.encoder, code, ref_t, run, part):
            _design_b_hooks(net.encoder, ref_t, run, part)
        explained = logit - part
        head_sum[:] = explained
        extras.update(rule="fold-delta", reference_part=part)
        warn_if_not_conserved(out, logit, explained, net.encoder, torch.finfo(dtype).eps)
    return _encoded_explanation(out, logit, head_sum, explained, assigned, tgt, beta_value,
                                other, extras)  # fmt: skip


@dataclass
class _Run:
    """One explanation call's inputs, resolved request and outputs, for the drivers."""

    X: np.ndarray
    batches: list[slice]
    rel: KMeansGeometry
    tgt: torch.Tensor
    other: torch.Tensor | None
    beta: float | None
    dev: torch.device
    dtype: torch.dtype
    out: np.ndarray
    logit: np.ndarray

    def rows(self, rows: slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Input, targets and contrast clusters of one batch, on the device."""
        o = None if self.other is None else self.other[rows].to(self.dev)
        return to_tensor(self.X[rows], self.dev, self.dtype), self.tgt[rows].to(self.dev), o

    def write(self, rows: slice, r: torch.Tensor, f: torch.Tensor) -> None:
        self.out[rows] = to_numpy(r).astype(self.X.dtype, copy=False)
        self.logit[rows] = to_numpy(f)


def _layer_rules(
    encoder: nn.Module,
    code: Any,
    rule: str,
    bounds: tuple[float, float],
    gamma: float,
    zero_bias: bool,
) -> DesignA | None:
    """Design A layer by layer for this encoder, or None where it needs zennit."""
    try:
        return DesignA(EncoderChain(encoder, code), first_rule=rule, bounds=bounds,
                       gamma=gamma, zero_bias=zero_bias)  # fmt: skip
    except Unsupported:
        return None


def _design_a_layers(rules: DesignA, trace: Any, g_head: float, run: _Run, head_sum) -> bool:
    """Design A batch by batch without hooks; False (nothing to keep) where zennit must."""
    chain = rules.chain
    try:
        for rows in run.batches:
            x, t, o = run.rows(rows)
            tr = trace or chain.forward(x)
            f, share = folded_logit(tr.z, run.rel, t, run.beta, o)
            r_a = folded_relevance(tr.a, chain.code_weight, tr.scale, share * f[:, None],
                                   run.rel, t, g_head)  # fmt: skip
            run.write(rows, rules.relevance(tr, r_a), f)
            head_sum[rows] = to_numpy(r_a.sum(1))
    except Unsupported:  # Gamma on an activation with negative outputs
        return False
    return True


def _design_b_layers(encoder: nn.Module, code: Any, ref: torch.Tensor, run: _Run, part) -> bool:
    """Design B batch by batch without hooks (each batch with its references in one
    forward); False where the hooks must."""
    try:
        chain = EncoderChain(encoder, code)
        for rows in run.batches:
            x, t, o = run.rows(rows)
            m = x.shape[0]
            tr = chain.forward(torch.cat([x, ref.expand_as(x)]))
            grad_a, f, p = delta_head(tr.u, tr.scale, m, run.rel, chain.code_weight, t,
                                      run.beta, o, run.rel.eps)  # fmt: skip
            run.write(rows, (x - ref) * chain.delta_multiplier(tr, grad_a, m), f)
            part[rows] = to_numpy(p)
    except Unsupported:
        return False
    return True


def _design_b_hooks(net_encoder: nn.Module, ref: torch.Tensor, run: _Run, part) -> None:
    """Design B through autograd with rescale hooks, on a copy with BatchNorm merged."""
    encoder = copy.deepcopy(net_encoder).to(run.dev).eval()
    code = find_code_layer(encoder)
    assert code is not None
    handles = exact_batchnorm_merge().apply(encoder)
    try:
        for rows in run.batches:
            x, t, o = run.rows(rows)
            r, f, p = delta_relevance(encoder, code, x, ref, run.rel, t, run.beta, o,
                                      run.rel.eps)  # fmt: skip
            run.write(rows, r, f)
            part[rows] = to_numpy(p)
    finally:
        for h in handles:
            h.remove()


def _design_a_zennit(
    net_encoder: nn.Module, options: dict[str, Any], g_head: float, run: _Run, head_sum
) -> None:
    """Design A through zennit's hooks on a copy of the encoder, batch by batch; ``options``
    are :func:`design_a_composite`'s. Warns when the rules do not conserve relevance
    through this encoder (see :func:`~whyclust.explainers.deep_checks.warn_if_leaking`)."""
    named = find_code_layer(net_encoder)
    assert named is not None
    encoder = relevance_view(net_encoder, code=named.name).to(run.dev)
    code = find_code_layer(encoder)
    assert code is not None
    unruled = unruled_modules(encoder)
    if unruled and not options["zero_bias"]:  # do they leak? a few rows without biases
        probe = run.batches[0].start, min(run.batches[0].stop, run.batches[0].start + 16)
        rows = slice(*probe)
        with design_a_composite(code, **{**options, "zero_bias": True}).context(encoder) as h:
            r, _, reached = _zennit_rows(h, code, run, rows, g_head)
        warn_if_leaking(to_numpy(r.reshape(r.shape[0], -1).sum(1)), reached, unruled)
    with design_a_composite(code, **options).context(encoder) as hooked:
        for rows in run.batches:
            r, f, reached = _zennit_rows(hooked, code, run, rows, g_head)
            run.write(rows, r, f)
            head_sum[rows] = reached
    if unruled and options["zero_bias"]:
        out = run.out.reshape(run.out.shape[0], -1)
        warn_if_leaking(out.sum(1, dtype=np.float64), head_sum, unruled)


def _zennit_rows(hooked: nn.Module, code: Any, run: _Run, rows: slice, g_head: float):
    """(relevance, logit, relevance reaching the code layer) of ``rows`` through ``hooked``."""
    x, t, o = run.rows(rows)
    x.requires_grad_(True)
    sink: list[torch.Tensor] = []
    with torch.enable_grad():
        a, _, s = folded_forward(hooked, code, x)
        f = FoldedNeonHead.apply(a, code.module.weight.detach(), _bias(code.module), s, run.rel,
                                 t, run.beta, o, g_head, sink)  # fmt: skip
        (r,) = torch.autograd.grad(f, x, grad_outputs=f.detach())
    return r, f, to_numpy(sink[0])


def _encoded_explanation(
    out: np.ndarray,
    logit: np.ndarray,
    head_sum: np.ndarray,
    explained: np.ndarray,
    assigned: Any,
    tgt: Any,
    beta: float | None,
    other: Any,
    extras: dict[str, Any],
) -> Explanation:
    """The Explanation of a deep NEON pass, with its conservation ratios in ``extras``:
    sum(R) and the relevance reaching the code (``head_sum``) over the ``explained`` part."""
    total = out.reshape(logit.shape[0], -1).sum(1)
    # NaN, not 0 or a huge ratio, where the explained part is rounding noise (x == reference)
    scale = np.maximum(np.abs(logit), np.abs(logit - explained))
    noise = np.abs(explained) <= 64 * np.finfo(out.dtype).eps * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        extras["conservation"] = np.where(noise, np.nan, total / explained)
        extras["head_conservation"] = np.where(noise, np.nan, head_sum / explained)
    return Explanation.neon(
        relevance=out,
        logit=logit,
        cluster=assigned.numpy(),
        target=tgt.numpy(),
        beta=beta,
        contrast=None if other is None else other.numpy(),
        extras=extras,
    )


#: values of the activations one batch of the layer-by-layer path keeps (and its most rows)
_TRACE_VALUES, _MAX_ROWS = 1 << 24, 4096


def _bias(layer: nn.Linear) -> torch.Tensor:
    if layer.bias is None:
        return torch.zeros(layer.out_features, dtype=layer.weight.dtype, device=layer.weight.device)
    return layer.bias.detach()


def _resolve_first_rule(first_rule: Any, bounds: tuple[float, float]) -> str:
    if not isinstance(first_rule, str) or first_rule not in ("auto", *FIRST_RULES):
        raise ValueError(
            f"first_rule must be 'auto' or one of {', '.join(FIRST_RULES)}, got {first_rule!r}"
        )
    if first_rule == "auto":
        return "zbox" if bounds[0] >= 0 else "epsilon"
    return first_rule


def _check_reference(reference: Any, X: np.ndarray) -> tuple[str, np.ndarray | None]:
    """("midpoint", None), ("mean", the mean of X) or ("array", the point), validated."""
    if isinstance(reference, str):
        if reference == "midpoint":
            return "midpoint", None
        if reference == "mean":
            return "mean", X.mean(0, dtype=np.float64).astype(X.dtype)
        raise ValueError(f"reference must be 'midpoint', 'mean' or an array, got {reference!r}")
    arr = np.asarray(reference, dtype=X.dtype)
    if arr.size != X[0].size:
        raise ValueError(
            f"reference of shape {arr.shape} does not match one point of X {X.shape[1:]}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("reference contains NaN or infinite values")
    return "array", arr.reshape(X.shape[1:])


def _explain_unfolded(
    net, head, X, target, beta, contrast, bs, composite, bounds, epsilon, eps, dev, dtype
) -> Explanation:
    """Midpoint rule on z, then a zennit composite through the whole encoder."""
    n = X.shape[0]

    def forward(x: torch.Tensor) -> torch.Tensor:
        z = net.encoder(x)
        return head(z.reshape(z.shape[0], -1))

    logits = batched_logits(forward, X, bs, dev, dtype)
    assigned, tgt, other, beta_value = resolve_request(
        logits, target=target, beta=beta, contrast=contrast
    )
    extra = {} if epsilon is None else {"epsilon": float(epsilon)}
    comp = resolve_composite(composite, bounds, **extra)
    encoder = relevance_view(net.encoder).to(dev)

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
            out[rows] = to_numpy(r).astype(X.dtype, copy=False)
            logit[rows] = to_numpy(f)
            head_sum[rows] = sink[0].cpu().numpy()
    extras = {"composite": type(comp).__name__, "bounds": bounds, "rule": "midpoint-composite",
              "reference": None, "reference_name": "midpoint", "fold": None}  # fmt: skip
    return _encoded_explanation(out, logit, head_sum, logit, assigned, tgt, beta_value, other,
                                extras)  # fmt: skip


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

        for key in ("composite", "bounds", "epsilon", "first_rule", "gamma", "head_gamma",
                    "zero_bias"):  # fmt: skip
            options.pop(key, None)
        from whyclust.explainers.request import resolve_reference

        flat = X.reshape(X.shape[0], -1)
        given = options.get("reference", "midpoint")
        ref = resolve_reference(given, flat)  # a point of input space, normalised as X is
        with torch.no_grad():
            z = net.encoder(torch.from_numpy(flat)).numpy()
            if ref is not None:
                options["reference"] = net.encoder(torch.from_numpy(ref)).numpy()
        expl = explain_kmeans(net.head.centers.detach(), z, **options)
        expl.relevance = expl.relevance.reshape(X.shape)
        if ref is not None:
            expl.extras["reference"] = given if isinstance(given, str) else "array"
        expl.extras["conservation"] = expl.conservation
        return expl
    return explain_encoded(net, X, **options)
