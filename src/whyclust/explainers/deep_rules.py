"""The rules of deep NEON: the folded head, design A and design B.

The encoder's last ``Linear`` (the *code layer*, z = (W_L a + b_L) / s, with s = ||u|| for
L2-normalised features and 1 otherwise) is folded into the k-means head, so the head's
margins are linear in the activations ``a`` below it:

    h_ck(a) = v_ck . a + (w_ck . b_L / s + b_ck),   v_ck = W_L^T w_ck / s

Design A (``reference="midpoint"``): min-take-most over competitors, LRP-gamma on ``a`` at the
folded head (:class:`FoldedNeonHead`), zennit's Gamma on hidden Linear / Conv layers and a
first-layer rule chosen from the data (:func:`design_a_composite`).

Design B (``reference=`` a point): the same fold, and the Delta rule relative to the
reference's activations at every layer (:func:`delta_relevance`): LRP-0 on a - a_ref at the
head and DeepLIFT's rescale multipliers through the encoder.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from whyclust.engine.kmeans import KMeansGeometry
from whyclust.engine.pool import margins_for_target, min_take_most, stabilize
from whyclust.networks.base import L2Normalize

__all__ = [
    "FIRST_RULES",
    "CodeLayer",
    "FoldedNeonHead",
    "delta_head",
    "delta_relevance",
    "design_a_composite",
    "exact_batchnorm_merge",
    "find_code_layer",
    "fold_refused",
    "fold_scale",
    "folded_forward",
    "folded_logit",
    "folded_relevance",
    "rescale_multiplier",
    "unshared",
    "window_max_multiplier",
]

#: first-layer rules of design A; "zbox" needs bounds
FIRST_RULES = ("zbox", "flat", "wsquare", "gamma", "epsilon")

#: leaves that may follow the code layer: z must stay a per-point rescaling of W_L a + b_L
_AFTER_CODE = (L2Normalize, nn.Flatten, nn.Identity, nn.Dropout, nn.BatchNorm1d)

#: elementwise activations whose Delta-rule multiplier is (y - y_ref) / (x - x_ref)
_ELEMENTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ReLU6, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Softplus, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid,
    nn.Softsign, nn.Tanhshrink, nn.LogSigmoid, nn.Hardshrink, nn.Softshrink, nn.Threshold,
    nn.RReLU,
)  # fmt: skip


def unshared(module: nn.Module) -> nn.Module:
    """``module`` itself when none of its submodules sits at two places of its tree, else a
    copy in which every repeated place (``act = nn.ReLU()`` put twice in a Sequential, a
    Linear listed twice) holds a module of its own with the same weights: the same
    function, whose layers the rules can take one by one (``named_modules`` lists a shared
    module once). A module called twice by a custom ``forward`` is not split; such
    forwards get the leak warning."""
    uses = [m for _, m in module.named_modules(remove_duplicate=False)]
    if len(uses) == len({id(m) for m in uses}):
        return module
    out = copy.deepcopy(module)  # keeps the sharing: undone below, on the copy only
    seen = {id(out)}

    def split(parent: nn.Module) -> None:
        for name, child in list(parent._modules.items()):
            if child is None:
                continue
            if id(child) in seen:
                child = copy.deepcopy(child)
                parent._modules[name] = child
            seen.add(id(child))
            split(child)

    split(out)
    return out


def _leaves(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in module.named_modules() if not list(m.children())]


@dataclass
class CodeLayer:
    """The encoder's last ``Linear`` and its name; what follows it only rescales z."""

    name: str
    module: nn.Linear
    first: bool  # the code layer is also the encoder's first Linear / Conv


def find_code_layer(encoder: nn.Module) -> CodeLayer | None:
    """The foldable code layer of ``encoder``, or None.

    The leaves are taken in registration order (the forward order of nested
    ``nn.Sequential``); the code layer is the last ``Linear`` after which only flattening,
    identity, eval-mode dropout, BatchNorm1d (merged into it) and ``L2Normalize`` follow.
    The explanation checks at run time that z equals (W_L a + b_L) / s.
    """
    leaves = _leaves(encoder)
    for i in range(len(leaves) - 1, -1, -1):
        name, mod = leaves[i]
        if isinstance(mod, nn.Linear):
            first = not any(
                isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)) for _, m in leaves[:i]
            )
            return CodeLayer(name, mod, first)
        if not isinstance(mod, _AFTER_CODE):
            return None
    return None


class _Capture:
    """Forward pre-hook that stores the input of the code layer."""

    def __init__(self) -> None:
        self.value: torch.Tensor | None = None

    def __call__(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self.value = args[0]


def folded_forward(
    encoder: nn.Module, code: CodeLayer, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(a, u, s): input of the code layer, u = W_L a + b_L (detached) and the scale s (n,).

    The encoder's output must be u / s for a positive per-point s; otherwise ValueError.
    """
    cap = _Capture()
    handle = code.module.register_forward_pre_hook(cap)
    try:
        out = encoder(x)
    finally:
        handle.remove()
    a = cap.value
    if a is None:
        raise ValueError(f"the encoder did not call its code layer {code.name!r}")
    z = out.reshape(out.shape[0], -1).detach()
    with torch.no_grad():
        u = code.module(a.detach()).reshape(a.shape[0], -1)
    return a, u, fold_scale(u, z, code.name)


@torch.no_grad()
def fold_refused(encoder: nn.Module, code: CodeLayer, x: torch.Tensor) -> str | None:
    """Why the encoder's output on ``x`` is not a per-point rescaling of its code layer (a
    BatchNorm1d right after it included, as the rules merge it), or None when it is: the
    code layer is found in registration order, which a custom forward may not follow."""
    leaves = [m for _, m in _leaves(encoder)]
    at = next(i for i, m in enumerate(leaves) if m is code.module)
    nxt = leaves[at + 1] if at + 1 < len(leaves) else None
    cap = _Capture()
    handle = code.module.register_forward_pre_hook(cap)
    try:
        z = encoder(x)
    finally:
        handle.remove()
    if cap.value is None:
        return f"the encoder did not call its code layer {code.name!r}"
    u = code.module(cap.value)
    if isinstance(nxt, nn.BatchNorm1d):
        u = nxt(u)
    try:
        fold_scale(u.reshape(u.shape[0], -1), z.reshape(z.shape[0], -1), code.name)
    except ValueError as exc:
        return str(exc)
    return None


@torch.no_grad()
def fold_scale(u: torch.Tensor, z: torch.Tensor, name: str) -> torch.Tensor:
    """The per-point scale s (n,) with z = u / s for code-layer outputs u; ValueError when
    the encoder's output z is not such a rescaling of its code layer ``name``."""
    if u.shape != z.shape:
        raise ValueError(
            f"the encoder's output ({tuple(z.shape[1:])}) is not its code layer "
            f"{name!r} ({tuple(u.shape[1:])}): deep NEON cannot fold it"
        )
    zn = z.norm(dim=1)
    s = u.norm(dim=1) / zn.clamp_min(torch.finfo(z.dtype).tiny)
    s = torch.where(zn > 0, s, torch.ones_like(s))
    err = (u / s[:, None] - z).abs().amax(1)
    tol = 1e3 * torch.finfo(z.dtype).eps * (1.0 + z.abs().amax(1))
    if bool((err > tol).any()):
        raise ValueError(
            f"the encoder's output is not a per-point rescaling of its code layer "
            f"{name!r}: deep NEON cannot fold it"
        )
    return s


class FoldedNeonHead(torch.autograd.Function):
    """NEON's k-means head folded onto the activations ``a`` below the code layer.

    Forward: the explained logit f_c(a) = min_k h_ck(a) (or the margin h_ck for a contrast),
    with h_ck(a) = v_ck . a + const, v_ck = W_L^T 2 (mu_c - mu_k) / s and s a fixed per-point
    scale (TELL's L2 normalisation). Backward: the incoming relevance g is split over the
    competitors by min-take-most (R_k = g softmin_beta(h)_k), and each share goes to ``a`` by
    LRP-gamma, R_i = sum_k R_k a_i (v_ck,i + gamma v+_ck,i) / sum_j a_j (v_ck,j + gamma v+_ck,j)
    (generalised to a_i < 0 with v- in place of v+). The denominators hold no bias, so the
    relevance on ``a`` sums to g exactly up to the stabiliser. ``sink`` (a list or None)
    receives that sum per point.
    """

    @staticmethod
    def forward(ctx, a, weight, bias, scale, rel, target, beta, contrast, gamma, sink):  # type: ignore[override]
        with torch.no_grad():
            z = (a.reshape(a.shape[0], -1) @ weight.T + bias) / scale[:, None]
            f, share = folded_logit(z, rel, target, beta, contrast)
        ctx.save_for_backward(a, weight, scale, share)
        ctx.args = (rel, target, gamma, sink)
        return f

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        a, weight, scale, share = ctx.saved_tensors
        rel, target, gamma, sink = ctx.args
        r = folded_relevance(a, weight, scale, share * g[:, None], rel, target, gamma)
        if sink is not None:
            sink.append(r.sum(1))
        return r.reshape(a.shape), None, None, None, None, None, None, None, None, None


@torch.no_grad()
def folded_logit(
    z: torch.Tensor, rel: KMeansGeometry, target: torch.Tensor, beta: Any, contrast: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """The explained logit (n,) of features z and each competitor's share of it (n, K):
    min-take-most, or everything to the ``contrast`` cluster."""
    scores = rel.scores(rel.prepare(z))
    if contrast is None:
        h = margins_for_target(scores, target)
        return h.amin(1), min_take_most(h, beta)
    sc = scores.gather(1, target[:, None])[:, 0]
    f = sc - scores.gather(1, contrast[:, None])[:, 0]
    return f, torch.zeros_like(scores).scatter_(1, contrast[:, None], 1.0)


@torch.no_grad()
def folded_relevance(
    a: torch.Tensor,
    weight: torch.Tensor,
    scale: torch.Tensor,
    amounts: torch.Tensor,
    rel: KMeansGeometry,
    target: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """LRP-gamma of the competitors' ``amounts`` (n, K) onto the activations a (n, m_a).

    The folded weights v_ck = W_L^T 2 (mu_c - mu_k) / s depend on a point only through
    its target c and scale s, so the rows of each target share one (K, m_a) matrix
    G = V + gamma V+ (V- for negative activations): two products per target, O(n K m_a).
    """
    flat = a.reshape(a.shape[0], -1)
    proj = rel.shifted @ weight  # (K, m_a): W_L^T mu'_k
    pos = flat.clamp(min=0)
    neg = flat.clamp(max=0) if bool((flat < 0).any()) else None
    eps = _stabiliser(flat)
    order = torch.argsort(target)
    counts = torch.bincount(target, minlength=proj.shape[0]).tolist()
    pos, inv, share = pos[order], 1.0 / scale[order][:, None], amounts[order]
    neg = None if neg is None else neg[order]
    out = torch.empty_like(flat)
    start = 0
    for c, count in enumerate(counts):  # rows sorted by target: one slice per cluster
        if count == 0:
            continue
        rows = slice(start, start + count)
        start += count
        v = 2.0 * (proj[c][None, :] - proj)  # (K, m_a); row c is 0
        g_pos = v + gamma * v.clamp(min=0)
        den = pos[rows] @ g_pos.T
        if neg is not None:
            g_neg = v + gamma * v.clamp(max=0)
            den = den + neg[rows] @ g_neg.T
        coef = share[rows] / stabilize(den * inv[rows], eps) * inv[rows]
        r = pos[rows] * (coef @ g_pos)
        if neg is not None:
            r = r + neg[rows] * (coef @ g_neg)
        out[order[rows]] = r
    return out


def _stabiliser(t: torch.Tensor) -> float:
    """A denominator floor that is a normal number of ``t``'s dtype (1e-12 is 0 in float16)."""
    return {torch.float64: 1e-12, torch.float32: 1e-6}.get(t.dtype, 1e-3)


def design_a_composite(
    code: CodeLayer,
    *,
    first_rule: str,
    bounds: tuple[float, float] | None,
    gamma: float = 0.25,
    zero_bias: bool = False,
):
    """The zennit composite below the fold: ``first_rule`` on the first Linear / Conv,
    Gamma(``gamma``) on the other Linear / Conv layers, none on the code layer; activations
    and BatchNorm pass relevance, average pools and torchvision's residual sums normalise;
    BatchNorm is merged into the layer before it. ``zero_bias`` gives every rule zennit's
    ``zero_params="bias"``, so that biases absorb no relevance.
    """
    from zennit.core import Composite
    from zennit.layer import Sum
    from zennit.rules import Epsilon, Flat, Norm, Pass, WSquare, ZBox
    from zennit.types import Activation, AvgPool, BatchNorm, Convolution

    zp = "bias" if zero_bias else None
    if first_rule == "zbox":
        if bounds is None:
            raise ValueError("first_rule='zbox' needs bounds=(low, high)")
        first = ZBox(low=float(bounds[0]), high=float(bounds[1]), zero_params=zp)
    elif first_rule == "flat":
        first = Flat(zero_params=zp)
    elif first_rule == "wsquare":
        first = WSquare(zero_params=zp)
    elif first_rule == "gamma":
        first = non_negative_gamma(gamma, zp)
    elif first_rule == "epsilon":
        first = Epsilon(zero_params=zp)
    else:
        raise ValueError(f"first_rule must be one of {', '.join(FIRST_RULES)}, got {first_rule!r}")
    hidden = non_negative_gamma(gamma, zp)

    def module_map(ctx: dict[str, Any], name: str, module: nn.Module):
        if module is code.module:
            return None
        if isinstance(module, (nn.Linear, Convolution)):
            if not ctx.get("first_layer_visited", False):
                ctx["first_layer_visited"] = True
                return first
            return hidden
        if isinstance(module, (Activation, BatchNorm, nn.Mish)):  # Mish: not zennit's
            return Pass()
        if isinstance(module, (AvgPool, Sum)):
            return Norm()
        return None

    from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer

    # torchvision's residual blocks add their input in forward code: the canonizers route
    # that sum through a Sum module (Norm rule), so it is split, not counted twice
    canonizers = [exact_batchnorm_merge(), ResNetBasicBlockCanonizer(),
                  ResNetBottleneckCanonizer()]  # fmt: skip
    return Composite(module_map=module_map, canonizers=canonizers)


def non_negative_gamma(gamma: float, zero_params: Any = None) -> Any:
    """zennit's generalised Gamma rule, computed with two of its five modified forwards
    when the layer's input has no negative entry (below a ReLU): there the forwards of
    the negative input part are zero and the rule reduces to
    R = a * (d(out+)/da (g [z > 0] / out+) + d(out-)/da (g [z < 0] / out-)), with out+- the
    outputs of the weights W + gamma W+- (biases likewise). Any other input takes zennit's
    own computation. The same numbers either way."""
    from zennit.core import ParamMod
    from zennit.rules import Gamma

    class NonNegativeGamma(Gamma):
        def backward(self, module, grad_input, grad_output):  # type: ignore[override]
            original = self.stored_tensors["input"][0]
            if bool((original < 0).any()):
                return super().backward(module, grad_input, grad_output)
            inputs, outputs = [], []
            for index in (0, 2):  # (a+, W + gamma W+, b + gamma b+), (a+, W + gamma W-, ...)
                x = original.clone().requires_grad_()
                with ParamMod.ensure(self.param_modifiers[index])(module) as modified, \
                        torch.autograd.enable_grad():  # fmt: skip
                    outputs.append(modified.forward(x))
                inputs.append(x)
            with torch.no_grad():
                z = module.forward(original)
            zero = torch.zeros_like(outputs[0])
            mapped = self.gradient_mapper(
                grad_output[0], [outputs[0], zero, outputs[1], zero, z]
            )
            gradients = torch.autograd.grad(
                outputs, inputs, grad_outputs=[mapped[0], mapped[2]],
                create_graph=grad_output[0].requires_grad,
            )  # fmt: skip
            relevance = inputs[0] * gradients[0] + inputs[1] * gradients[1]
            return tuple(relevance if g.shape == relevance.shape else None for g in grad_input)

    return NonNegativeGamma(gamma=gamma, zero_params=zero_params)


def exact_batchnorm_merge():
    """zennit's ``SequentialMergeBatchNorm`` that also sets the merged BatchNorm's eps to 0
    while merged, so that the merged network computes the original function exactly
    (zennit's leaves eps, which scales each merged output by 1 / sqrt(1 + eps))."""
    from zennit.canonizers import SequentialMergeBatchNorm

    class ExactMergeBatchNorm(SequentialMergeBatchNorm):
        def register(self, linears, batch_norm):  # type: ignore[override]
            self.saved_eps = batch_norm.eps
            super().register(linears, batch_norm)
            batch_norm.eps = 0.0

        def remove(self) -> None:
            super().remove()
            self.batch_norm.eps = self.saved_eps

    return ExactMergeBatchNorm()


# --- design B: the Delta rule relative to a reference ----------------------------------------


class _Rescale(torch.autograd.Function):
    """Output ``y`` of an elementwise layer; backward multiplies by m = dy / dx (fixed).

    The batch holds the points in its first half and their references in the second; the
    reference half gets no gradient.
    """

    @staticmethod
    def forward(ctx, x, y, multiplier):  # type: ignore[override]
        ctx.save_for_backward(multiplier)
        return y.clone()

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        (m,) = ctx.saved_tensors
        n = m.shape[0]
        gx = torch.zeros_like(g)
        gx[:n] = g[:n] * m
        return gx, None, None


def rescale_multiplier(
    module: nn.Module, x: torch.Tensor, x_ref: torch.Tensor, y: torch.Tensor, y_ref: torch.Tensor
) -> torch.Tensor:
    """DeepLIFT's multiplier of an elementwise activation: (y - y_ref) / (x - x_ref), and
    its derivative at x where x and x_ref (nearly) coincide."""
    dx = x - x_ref
    close = dx.abs() <= 1e2 * torch.finfo(x.dtype).eps * (1.0 + x.abs())
    if not bool(close.any()):
        return (y - y_ref) / dx
    with torch.enable_grad():  # module.forward: no hooks
        xi = x.detach().clone().requires_grad_(True)
        (deriv,) = torch.autograd.grad(module.forward(xi.clone()).sum(), xi)
    return torch.where(close, deriv, (y - y_ref) / torch.where(close, torch.ones_like(dx), dx))


def window_max_multiplier(
    pool: nn.Module, x: torch.Tensor, x_ref: torch.Tensor, g: torch.Tensor
) -> torch.Tensor | None:
    """Delta-rule multipliers at the input of a max pool with disjoint windows of at most
    four entries (``nn.MaxPool2d(2)``, ``nn.MaxPool1d(k <= 4)``), or None for other pools.

    Each window's change of max, max(x_w) - max(x_ref_w), is split among its entries by
    their Shapley values (the max of a window whose entries move from the reference to x
    in every order); entry i's multiplier is phi_i / (x_i - x_ref_i), in [0, 1] because the
    max is monotone and 1-Lipschitz in each entry, so the sum over a window is exact.
    """
    windows_of = disjoint_windows(pool)
    if windows_of is None:
        return None
    dims, size = windows_of
    spatial = x.shape[-dims:]
    cut = tuple(s - s % k for s, k in zip(spatial, size, strict=True))
    lead = x.shape[:-dims]

    def windows(t: torch.Tensor) -> torch.Tensor:  # (..., windows, entries)
        t = t[(..., *(slice(0, c) for c in cut))]
        if dims == 1:
            return t.reshape(*lead, cut[0] // size[0], size[0])
        h, w = cut[0] // size[0], cut[1] // size[1]
        t = t.reshape(*lead, h, size[0], w, size[1]).transpose(-3, -2)
        return t.reshape(*lead, h * w, size[0] * size[1])

    xw, rw = windows(x), windows(x_ref.expand_as(x))
    m = xw.shape[-1]
    masks = torch.tensor(list(itertools.product((0, 1), repeat=m)), dtype=torch.bool,
                         device=x.device)  # (2^m, m) fmt: skip
    # the window's max for every coalition (..., 2^m), one coalition at a time: memory
    # stays a few times the input's
    value = torch.stack([torch.where(mask, xw, rw).amax(-1) for mask in masks], dim=-1)
    phi = torch.zeros_like(xw)
    sizes = masks.sum(1)
    for i in range(m):
        without = ~masks[:, i]
        k = sizes[without]
        weight = torch.tensor([math.factorial(int(a)) * math.factorial(m - int(a) - 1)
                               / math.factorial(m) for a in k], dtype=x.dtype,
                              device=x.device)  # fmt: skip
        rows = torch.nonzero(without)[:, 0]
        gain = value[..., rows + (1 << (m - 1 - i))] - value[..., rows]
        phi[..., i] = (gain * weight).sum(-1)
    dx = xw - rw
    mult = torch.where(dx != 0, phi / torch.where(dx != 0, dx, torch.ones_like(dx)), 0.0)
    gw = g.reshape(*lead, -1)[..., :, None] * mult  # (..., windows, entries)
    out = torch.zeros_like(x)
    if dims == 1:
        out[..., : cut[0]] = gw.reshape(*lead, cut[0])
    else:
        h, w = cut[0] // size[0], cut[1] // size[1]
        gw = gw.reshape(*lead, h, w, size[0], size[1]).transpose(-3, -2)
        out[..., : cut[0], : cut[1]] = gw.reshape(*lead, *cut)
    return out


def disjoint_windows(pool: nn.Module) -> tuple[int, tuple[int, ...]] | None:
    """(number of spatial axes, window size) of a max pool whose windows are disjoint and
    hold at most four entries, else None."""
    if not isinstance(pool, (nn.MaxPool1d, nn.MaxPool2d)) or pool.return_indices:
        return None
    dims = 1 if isinstance(pool, nn.MaxPool1d) else 2
    size, stride = (_tuple(getattr(pool, a), dims) for a in ("kernel_size", "stride"))
    if (size != stride or _tuple(pool.padding, dims) != (0,) * dims or pool.ceil_mode
            or _tuple(pool.dilation, dims) != (1,) * dims or math.prod(size) > 4):  # fmt: skip
        return None
    return dims, size


def _tuple(value: Any, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * dims


class _WindowMax(torch.autograd.Function):
    """Output ``y`` of a max pool; backward by the pool's Shapley multipliers (the points
    in the batch's first half, their references in the second get no gradient)."""

    @staticmethod
    def forward(ctx, x, y, pool, n):  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.pool, ctx.n = pool, n
        return y.clone()

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        n = ctx.n
        gx = torch.zeros_like(x)
        gx[:n] = window_max_multiplier(ctx.pool, x[:n], x[n:], g[:n])
        return gx, None, None, None


class _RescaleHooks:
    """Hooks that give every elementwise activation DeepLIFT's rescale multiplier, and
    max pools of small disjoint windows their Shapley multipliers."""

    def __init__(self, encoder: nn.Module, n: int) -> None:
        self.n = n
        self.inputs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.handles = []
        for _, mod in _leaves(encoder):
            if isinstance(mod, _ELEMENTWISE):
                self.handles.append(mod.register_forward_pre_hook(self._pre))
                self.handles.append(mod.register_forward_hook(self._post))
            elif disjoint_windows(mod) is not None:
                self.handles.append(mod.register_forward_hook(self._window_max))

    def _window_max(self, module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor):
        return _WindowMax.apply(args[0], out, module, self.n)

    def _pre(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> Any:
        node = args[0]
        self.inputs[id(module)] = (node, node.detach().clone())
        if getattr(module, "inplace", False):  # it works on a copy: the multiplier must
            return (node.clone(), *args[1:])  # reach the pre-activation, not the op's output
        return None

    def _post(self, module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor):
        node, x = self.inputs.pop(id(module))
        n = self.n
        y = out.detach()
        m = rescale_multiplier(module, x[:n], x[n:], y[:n], y[n:])
        return _Rescale.apply(node, out, m)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def delta_relevance(
    encoder: nn.Module,
    code: CodeLayer,
    x: torch.Tensor,
    ref: torch.Tensor,
    rel: KMeansGeometry,
    target: torch.Tensor,
    beta: float | None,
    contrast: torch.Tensor | None,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(relevance (n, ...), explained logit (n,), part explained by the reference (n,)).

    Head: R_k = f_c softmin_beta(h)_k as in design A, then LRP-0 on a - a_ref,
    R_i = sum_k (R_k / h_ck(a)) (a_i - a_ref,i) v_ck,i. Encoder: DeepLIFT-rescale
    multipliers (linear layers by their gradient, elementwise activations by
    (y - y_ref) / (x - x_ref)), R = (x - x_ref) * multiplier. The relevance sums to
    f_c(x) - sum_k (R_k / h_ck(a)) h_ck(a_ref) exactly on networks of affine layers and
    elementwise activations (the second term is the returned reference part).
    """
    n = x.shape[0]
    both = torch.cat([x, ref.expand_as(x)]).detach().requires_grad_(True)
    hooks = _RescaleHooks(encoder, n)
    try:
        with torch.enable_grad():
            a, u, scale = folded_forward(encoder, code, both)
    finally:
        hooks.remove()
    grad_a, f, ref_part = delta_head(u, scale, n, rel, code.module.weight, target, beta,
                                     contrast, eps)  # fmt: skip
    flat_a = a.reshape(a.shape[0], -1)
    gout = torch.zeros_like(flat_a)
    gout[:n] = grad_a.to(flat_a.dtype)
    (mult,) = torch.autograd.grad(flat_a, both, grad_outputs=gout)
    r = (x - ref) * mult[:n]
    return r.detach(), f, ref_part


@torch.no_grad()
def delta_head(
    u: torch.Tensor,
    scale: torch.Tensor,
    n: int,
    rel: KMeansGeometry,
    weight: torch.Tensor,
    target: torch.Tensor,
    beta: float | None,
    contrast: torch.Tensor | None,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Design B at the folded head, for code outputs ``u`` of the n points followed by their
    n references: (multipliers on the code layer's input (n, m_a), logit (n,), reference
    part (n,)). The scale s of each point fixes both its own and its reference's features."""
    zn = scale[:n]
    z = u[:n] / zn[:, None]
    z_ref = u[n:] / zn[:, None]
    s_x = rel.scores(rel.prepare(z))
    s_ref = rel.scores(rel.prepare(z_ref))
    if contrast is None:
        h = margins_for_target(s_x, target)
        f = h.amin(1)
        coef = min_take_most(h, beta) * f[:, None] / stabilize(h, eps)  # 0 at c (h = inf)
    else:
        k = contrast[:, None]
        f = s_x.gather(1, target[:, None])[:, 0] - s_x.gather(1, k)[:, 0]
        coef = torch.zeros_like(s_x).scatter_(1, k, (f / stabilize(f, eps))[:, None])
    h_ref = s_ref.gather(1, target[:, None]) - s_ref  # h_ck(a_ref), 0 at c
    ref_part = (coef * h_ref).sum(1)
    proj = rel.shifted @ weight  # (K, m_a)
    total = coef.sum(1, keepdim=True)
    grad_a = 2.0 * (total * proj[target] - coef @ proj) / zn[:, None]
    return grad_a, f, ref_part


def check_gamma(value: Any, name: str) -> float:
    try:
        g = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number >= 0, got {value!r}") from None
    if not math.isfinite(g) or g < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return g


__all__ += ["check_gamma"]
