"""Design A on a chain of standard layers, computed layer by layer without hooks.

For an encoder that is a (nested) ``nn.Sequential`` of Linear / ConvNd layers, BatchNorm,
elementwise activations, max pools and shape layers, :class:`DesignAChain` computes the
relevance that :func:`~whyclust.explainers.deep_rules.design_a_composite` gives through
zennit (the same numbers up to rounding; tested), with fewer passes. With z = op(a, W) + b
the layer's output, W+ / W- its weight's positive / negative parts and T_V the transposed
layer of weight V:

- Gamma on an input a >= 0 (below a ReLU): the denominators z + g (op(a, W+) + b+) where
  z > 0 and z + g (op(a, W-) + b-) where z < 0, with op(a, W-) = op(a, W) - op(a, W+), and
  R = a * (T_W(r+ + (1 + g) r-) + g T_W+(r+ - r-)) for the two masked ratios r+-: one
  extra forward and one transposed layer of doubled width.
- ZBox on [l, h]: the denominator op(x, W) - op(l, W+) - op(h, W-), whose second part does
  not depend on x (computed once), and R = (x - h) * T_W(r) + (h - l) * T_W+(r).
- Epsilon: R = x * T_W(R / z).

Activations pass relevance unchanged, max pools route it to their maxima, BatchNorm right
after a Linear / Conv is merged into it (as zennit's canonizer does, exactly). Anything
else, and Gamma on a negative input, is :class:`Unsupported`: the caller falls back to
zennit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from whyclust.explainers.deep_rules import (
    _ELEMENTWISE,
    CodeLayer,
    fold_scale,
    rescale_multiplier,
    window_max_multiplier,
)
from whyclust.networks.base import L2Normalize

__all__ = ["INEXACT_DELTA", "DesignA", "EncoderChain", "Unsupported"]

#: zennit's ``Activation`` types that are elementwise (zennit gives them its Pass rule)
_PASS = (
    nn.ELU, nn.Hardshrink, nn.Hardsigmoid, nn.Hardtanh, nn.Hardswish, nn.LeakyReLU,
    nn.LogSigmoid, nn.PReLU, nn.ReLU, nn.ReLU6, nn.RReLU, nn.SELU, nn.CELU, nn.GELU,
    nn.Sigmoid, nn.SiLU, nn.Softplus, nn.Softshrink, nn.Softsign, nn.Tanh, nn.Tanhshrink,
    nn.Threshold,
)  # fmt: skip
_SHAPE = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout)
_MAXPOOL = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)  # fmt: skip
#: layers the Delta rule may not be exact through: max pools other than small disjoint
#: windows are routed at the point's maxima, normalisations over features take their gradient
INEXACT_DELTA = (
    *_MAXPOOL, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
    nn.InstanceNorm3d, nn.LocalResponseNorm,
)  # fmt: skip
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: leaves that may follow the code layer (they only rescale or reshape z)
_AFTER_CODE = (L2Normalize, nn.Flatten, nn.Identity, nn.Dropout)
#: zennit's stabiliser of the rules below the head
_STABILISER = 1e-6


class Unsupported(Exception):
    """The encoder (or this input) needs zennit's general machinery."""


def _stabilize(t: torch.Tensor) -> torch.Tensor:
    """zennit's ``stabilize``: t + eps sign(t), with sign(0) = +1."""
    return t + _STABILISER * ((t == 0).to(t) + t.sign())


def _merged(module: nn.Module, bn: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of a Linear / Conv with a following BatchNorm merged (zennit's
    formula; the BatchNorm then computes the identity exactly)."""
    w = module.weight.detach()
    if module.bias is not None:
        b = module.bias.detach()
    else:
        b = torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
    if bn is None:
        return w, b
    scale = bn.weight.detach() / (bn.running_var + bn.eps) ** 0.5
    index = (slice(None), *((None,) * (w.ndim - 1)))
    return w * scale[index], (b - bn.running_mean) * scale + bn.bias.detach()


@dataclass
class _Affine:
    """A Linear or ConvNd layer (BatchNorm merged) and the rule that explains it."""

    module: nn.Module
    batch_norm: nn.Module | None
    weight: torch.Tensor
    bias: torch.Tensor
    first: bool  # the encoder's first Linear / Conv (design A's first-layer rule)

    def __post_init__(self) -> None:
        self.conv = isinstance(self.module, _CONV)
        m = self.module
        if self.conv and (m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str)):
            raise Unsupported("grouped, non-zero-padded or string-padded convolution")
        self.positive = self.weight.clamp(min=0)
        # [W | W+] stacked along the inputs (one g, two results) or the outputs (two g, summed)
        self.by_input = torch.cat([self.weight, self.positive], dim=1)
        self.by_output = torch.cat([self.weight, self.positive], dim=0)

    def op(self, a: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The layer without bias, with another weight."""
        if not self.conv:
            return F.linear(a, weight)
        m = self.module
        conv = (F.conv1d, F.conv2d, F.conv3d)[a.ndim - 3]
        return conv(a, weight, None, m.stride, m.padding, m.dilation, 1)

    def transposed(self, g: torch.Tensor, weight: torch.Tensor, shape: torch.Size) -> Any:
        """T_weight g: the transposed layer for outputs ``g`` and inputs of ``shape``."""
        if not self.conv:
            return g @ weight
        m = self.module
        grad = (torch.nn.grad.conv1d_input, torch.nn.grad.conv2d_input,
                torch.nn.grad.conv3d_input)[len(shape) - 3]  # fmt: skip
        return grad(shape, weight, g, m.stride, m.padding, m.dilation, 1)

    def both(self, g: torch.Tensor, shape: torch.Size) -> tuple[Any, Any]:
        """(T_W g, T_W+ g) in one transposed layer of doubled width."""
        size = torch.Size((shape[0], 2 * shape[1], *shape[2:]))
        return self.transposed(g, self.by_input, size).split(shape[1], dim=1)

    def summed(self, g: torch.Tensor, g_pos: torch.Tensor, shape: torch.Size) -> Any:
        """T_W g + T_W+ g_pos in one transposed layer of doubled width."""
        return self.transposed(torch.cat([g, g_pos], dim=1), self.by_output, shape)


@dataclass
class _Trace:
    """What the backward needs from one forward pass."""

    inputs: list[torch.Tensor]
    outputs: list[torch.Tensor | None]  # op(a, W) without bias, for affine steps
    a: torch.Tensor  # input of the code layer
    u: torch.Tensor  # code layer output W_L a + b_L
    scale: torch.Tensor  # z = u / scale
    z: torch.Tensor

    @property
    def n_values(self) -> int:
        """Values kept per batch (inputs and pre-activations of every layer)."""
        kept = [*self.inputs, *(t for t in self.outputs if t is not None), self.a, self.u]
        return sum(t.numel() for t in kept)


class EncoderChain:
    """The encoder as a list of steps (BatchNorm merged), with the forward the rules read."""

    def __init__(self, encoder: nn.Module, code: CodeLayer) -> None:
        leaves = _sequential_leaves(encoder)
        names = [n for n, _ in leaves]
        if code.name not in names:
            raise Unsupported("code layer not among the leaves")
        at = names.index(code.name)
        below, after = leaves[:at], leaves[at + 1 :]
        self.steps: list[Any] = []
        i = 0
        while i < len(below):
            _, mod = below[i]
            if isinstance(mod, (nn.Linear, *_CONV)):
                nxt = below[i + 1][1] if i + 1 < len(below) else None
                bn = nxt if isinstance(nxt, _BATCHNORM) else None
                w, b = _merged(mod, bn)
                first = not any(isinstance(st, _Affine) for st in self.steps)
                self.steps.append(_Affine(mod, bn, w, b, first))
                i += 2 if bn is not None else 1
                continue
            if isinstance(mod, (*_PASS, *_SHAPE, *_MAXPOOL, *_BATCHNORM)):
                self.steps.append(mod)  # BatchNorm not after a layer: zennit's Pass
                i += 1
                continue
            raise Unsupported(type(mod).__name__)
        bn = after[0][1] if after and isinstance(after[0][1], nn.BatchNorm1d) else None
        rest = after[1:] if bn is not None else after
        if not all(isinstance(m, _AFTER_CODE) for _, m in rest):
            raise Unsupported("layers after the code layer")
        self.code_name, self.code_module, self.code_norm = code.name, code.module, bn
        self.code_weight, _ = _merged(code.module, bn)
        self.after = [m for _, m in rest]

    # ---- forward --------------------------------------------------------------------

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> _Trace:
        """The encoder's own modules on ``x`` (so z is the network's), keeping what the
        rules need: each layer's input and its merged pre-activation without bias."""
        inputs, outputs = [], []
        h = x
        for step in self.steps:
            inputs.append(h)
            if isinstance(step, _Affine):
                if not step.conv and h.ndim != 2:
                    raise Unsupported("a Linear layer on inputs of more than one axis")
                h = step.module(h)
                if step.batch_norm is not None:
                    h = step.batch_norm(h)
                outputs.append(h - step.bias.reshape(-1, *((1,) * (h.ndim - 2))))
            else:
                outputs.append(None)  # in-place activations must not overwrite their input
                h = step(h.clone() if getattr(step, "inplace", False) else h)
        a = h
        u = self.code_module(a)
        if self.code_norm is not None:
            u = self.code_norm(u)
        z = u
        for mod in self.after:
            z = mod(z)
        u, z = u.reshape(u.shape[0], -1), z.reshape(z.shape[0], -1)
        return _Trace(inputs, outputs, a, u, fold_scale(u, z, self.code_name), z)

    # ---- design B: the Delta rule (DeepLIFT's rescale multipliers) ------------------

    @torch.no_grad()
    def delta_multiplier(self, trace: _Trace, g: torch.Tensor, n: int) -> torch.Tensor:
        """DeepLIFT multipliers at the input of the first ``n`` rows, whose references are
        the last ``n`` rows of the traced batch, for the multipliers ``g`` (n, m_a) at the
        code layer's input: linear layers by their transpose, elementwise activations by
        (y - y_ref) / (x - x_ref) (their derivative where the two nearly coincide), loose
        BatchNorm by its scale, max pools by :func:`window_max_multiplier` (or routing at
        the point's maxima where it does not apply)."""
        g = g.reshape(n, *trace.a.shape[1:])
        ins = trace.inputs
        for i in range(len(self.steps) - 1, -1, -1):
            step, inp = self.steps[i], ins[i]
            if isinstance(step, _Affine):
                g = step.transposed(g, step.weight, torch.Size((n, *inp.shape[1:])))
            elif isinstance(step, _ELEMENTWISE):
                out = ins[i + 1] if i + 1 < len(ins) else trace.a
                g = g * rescale_multiplier(step, inp[:n], inp[n:], out[:n], out[n:])
            elif isinstance(step, _BATCHNORM):
                scale = step.weight / (step.running_var + step.eps) ** 0.5
                g = g * scale.reshape(-1, *((1,) * (g.ndim - 2)))
            elif isinstance(step, _MAXPOOL):
                exact = window_max_multiplier(step, inp[:n], inp[n:], g)
                if exact is not None:
                    g = exact
                else:  # routed at the point's maxima: not exact (whyclust warns)
                    with torch.enable_grad():
                        xi = inp[:n].detach().requires_grad_(True)
                        (g,) = torch.autograd.grad(step(xi), xi, g)
            elif isinstance(step, _SHAPE):
                g = g.reshape(n, *inp.shape[1:])
            else:  # an activation the Delta rule has no multiplier for
                raise Unsupported(type(step).__name__)
        return g


class DesignA:
    """Design A's rules on an :class:`EncoderChain`: ``first_rule`` ("zbox" on
    ``bounds``, "epsilon" or "gamma") at the first layer, Gamma(``gamma``) above it."""

    def __init__(
        self,
        chain: EncoderChain,
        *,
        first_rule: str,
        bounds: tuple[float, float],
        gamma: float,
        zero_bias: bool,
    ) -> None:
        if first_rule not in ("gamma", "zbox", "epsilon"):
            raise Unsupported(f"first rule {first_rule}")
        self.chain, self.first_rule = chain, first_rule
        self.gamma, self.zero_bias = float(gamma), bool(zero_bias)
        self.low, self.high = float(bounds[0]), float(bounds[1])
        self._box: dict[tuple[int, ...], torch.Tensor] = {}

    @torch.no_grad()
    def relevance(self, trace: _Trace, r: torch.Tensor) -> torch.Tensor:
        """Relevance on the input, given the relevance ``r`` on the code layer's input."""
        r = r.reshape(trace.a.shape)
        for step, inp, out in zip(
            reversed(self.chain.steps), reversed(trace.inputs), reversed(trace.outputs),
            strict=True,
        ):  # fmt: skip
            if isinstance(step, _Affine):
                r = self._affine(step, inp, out, r)
            elif isinstance(step, _MAXPOOL):
                with torch.enable_grad():
                    xi = inp.detach().requires_grad_(True)
                    (r,) = torch.autograd.grad(step(xi), xi, r)
            elif isinstance(step, _SHAPE):
                r = r.reshape(inp.shape)
        return r

    def _affine(self, step: _Affine, a: torch.Tensor, zw: torch.Tensor, r: torch.Tensor):
        b = step.bias.reshape(-1, *((1,) * (zw.ndim - 2)))
        rule = self.first_rule if step.first else "gamma"
        if rule == "zbox":
            t_w, t_pos = step.both(r / _stabilize(zw - self._box_offset(step, a)), a.shape)
            return (a - self.high) * t_w + (self.high - self.low) * t_pos
        if rule == "epsilon":
            den = zw if self.zero_bias else zw + b
            return a * step.transposed(r / _stabilize(den), step.weight, a.shape)
        if bool((a < 0).any()):
            raise Unsupported("gamma on a negative input")
        g = self.gamma
        pos = step.op(a, step.positive)  # op(a, W+); op(a, W-) = zw - pos
        z = zw + b
        if self.zero_bias:
            den_pos, den_neg = zw + g * pos, zw + g * (zw - pos)
        else:
            den_pos = z + g * (pos + b.clamp(min=0))
            den_neg = z + g * (zw - pos + b.clamp(max=0))
        r_pos = torch.where(z > 0, r / _stabilize(den_pos), 0.0)
        r_neg = torch.where(z < 0, r / _stabilize(den_neg), 0.0)
        return a * step.summed(r_pos + (1.0 + g) * r_neg, g * (r_pos - r_neg), a.shape)

    def _box_offset(self, step: _Affine, a: torch.Tensor) -> torch.Tensor:
        """op(l, W+) + op(h, W-) for one input of a's shape (it does not depend on x)."""
        key = tuple(a.shape[1:])
        if key not in self._box:
            ones = torch.ones((1, *key), dtype=a.dtype, device=a.device)
            neg = step.weight - step.positive
            self._box[key] = step.op(self.low * ones, step.positive) + step.op(
                self.high * ones, neg
            )
        return self._box[key]


def _sequential_leaves(encoder: nn.Module) -> list[tuple[str, nn.Module]]:
    """The leaves of a tree of ``nn.Sequential`` (their forward order), else Unsupported."""
    leaves = []
    for name, mod in encoder.named_modules():
        if list(mod.children()):
            if type(mod).forward is not nn.Sequential.forward:
                raise Unsupported(f"container {type(mod).__name__}")
        else:
            leaves.append((name, mod))
    if not leaves:
        raise Unsupported("no leaves")
    return leaves
