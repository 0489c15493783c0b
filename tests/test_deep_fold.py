"""Deep NEON with the code layer folded into the head (design A) and the Delta rule (design B).

The oracle is a plain-torch transcription of the rules, layer by layer (no zennit): ZBox at
the first layer, generalised LRP-gamma with biases in the denominators at hidden layers,
LRP-gamma(1) on the activations below the code layer at the folded head.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

import whyclust as wc
from whyclust.networks import L2Normalize

EPS_ZENNIT = 1e-6  # zennit's stabiliser of the rules below the head
EPS_HEAD = 1e-12  # the folded head's stabiliser in float64


def _stab(d: torch.Tensor, eps: float) -> torch.Tensor:
    return d + eps * (d.sign() + (d == 0).to(d))


def _transpose(op, a, weight, bias, grad):
    """(d op(a) / d a)^T grad, i.e. the transposed layer applied to ``grad``."""
    a = a.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(op(a, weight.detach(), bias.detach()), a, grad)
    return g


def _gamma_rule(op, a, weight, bias, relevance, gamma):
    """Generalised gamma for a >= 0 (zennit's choice of branch by the sign of z)."""
    z = op(a, weight, bias)
    wp, bp = weight + gamma * weight.clamp(min=0), bias + gamma * bias.clamp(min=0)
    wn, bn = weight + gamma * weight.clamp(max=0), bias + gamma * bias.clamp(max=0)
    zp, zn = op(a, wp, bp), op(a, wn, bn)
    gp = relevance * (z > 0) / _stab(zp, EPS_ZENNIT)
    gn = relevance * (z < 0) / _stab(zn, EPS_ZENNIT)
    return a * (_transpose(op, a, wp, bp, gp) + _transpose(op, a, wn, bn, gn))


def _zbox_rule(op, x, weight, bias, relevance, low, high):
    wp, wn = weight.clamp(min=0), weight.clamp(max=0)
    lo, hi = torch.full_like(x, low), torch.full_like(x, high)
    zero = torch.zeros_like(bias)
    den = op(x, weight, zero) - op(lo, wp, zero) - op(hi, wn, zero)
    g = relevance / _stab(den, EPS_ZENNIT)
    return (
        x * _transpose(op, x, weight, zero, g)
        - lo * _transpose(op, lo, wp, zero, g)
        - hi * _transpose(op, hi, wn, zero, g)
    )


def _folded_head(a, code_w, code_b, centers, beta, normalize):
    """f_c, and relevance on a: min-take-most, then LRP-gamma(1) on the folded margins."""
    code_w, code_b = code_w.detach(), code_b.detach()
    u = a @ code_w.T + code_b
    s = u.norm(dim=1, keepdim=True) if normalize else torch.ones_like(u[:, :1])
    z = u / s
    d = ((z[:, None, :] - centers[None]) ** 2).sum(-1)
    c = d.argmin(1)
    h = d - d.gather(1, c[:, None])  # h_ck = D_k - D_c
    h = h.scatter(1, c[:, None], float("inf"))
    f = h.amin(1)
    p = torch.exp(-beta * (h - f[:, None]))
    p = p / p.sum(1, keepdim=True)
    rel = torch.zeros_like(a)
    for k in range(centers.shape[0]):
        w = 2.0 * (centers[c] - centers[k])  # (n, m)
        v = (w @ code_w) / s  # (n, m_a)
        num = a * (v + v.clamp(min=0))
        share = (f * p[:, k])[:, None]
        keep = (c != k)[:, None]
        rel = rel + torch.where(keep, share * num / _stab(num.sum(1, keepdim=True), EPS_HEAD), 0)
    return f, rel


def _merge_bn(weight, bias, bn):
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shape = (-1,) + (1,) * (weight.ndim - 1)
    return weight * scale.reshape(shape), (bias - bn.running_mean) * scale + bn.bias


def _lin(a, w, b):
    return F.linear(a, w, b)


def _mlp(d: int, seed: int, normalize: bool = False) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = [nn.Linear(d, 12), nn.ReLU(), nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 3)]
    if normalize:
        layers.append(L2Normalize())
    return _widen(nn.Sequential(*layers).double().eval())


def _widen(enc: nn.Module) -> nn.Module:
    """Weights twice torch's default: activations of order 1 (stabilisers stay negligible)."""
    with torch.no_grad():
        for mod in enc.modules():
            if isinstance(mod, (nn.Linear, nn.Conv2d)):
                mod.weight *= 2.0
    return enc


def _centers(enc: nn.Module, X: np.ndarray, k: int) -> np.ndarray:
    with torch.no_grad():
        z = enc(torch.from_numpy(X)).reshape(len(X), -1).numpy()
    return z[np.linspace(0, len(X) - 1, k).astype(int)]


@pytest.mark.parametrize("normalize", [False, True])
def test_design_a_equals_plain_torch_on_an_mlp(normalize):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 6))
    enc = _mlp(6, 0, normalize)
    centers = _centers(enc, X, 4)
    e = wc.explain((enc, centers), X, beta=0.7)
    assert e.extras["rule"] == "fold-gamma" and e.extras["first_rule"] == "zbox"
    low, high = e.extras["bounds"]
    assert (low, high) == (X.min(), X.max())

    l1, l2, l3 = enc[0], enc[2], enc[4]
    x = torch.from_numpy(X)
    with torch.no_grad():
        z1 = l1(x)
        a1 = z1.relu()
        a2 = l2(a1).relu()
    f, r2 = _folded_head(a2, l3.weight, l3.bias, torch.from_numpy(centers), 0.7, normalize)
    with torch.no_grad():
        r1 = _gamma_rule(_lin, a1, l2.weight.detach(), l2.bias.detach(), r2, 0.25)
    r0 = _zbox_rule(_lin, x, l1.weight.detach(), l1.bias.detach(), r1, low, high)
    np.testing.assert_allclose(e.logit, f.numpy(), rtol=1e-10)
    scale = np.abs(e.relevance).max()
    np.testing.assert_allclose(e.relevance, r0.numpy(), rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(e.extras["head_conservation"], 1.0, atol=1e-9)


def _cnn(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    enc = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 10),
        nn.ReLU(),
        nn.Linear(10, 3),
    ).double()
    with torch.no_grad():  # non-trivial BatchNorm statistics to merge
        enc[3].running_mean.uniform_(-0.3, 0.3)
        enc[3].running_var.uniform_(0.5, 2.0)
        enc[3].weight.uniform_(0.5, 1.5)
        enc[3].bias.uniform_(-0.2, 0.2)
    return _widen(enc.eval())


def test_design_a_equals_plain_torch_on_a_cnn():
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(20, 1, 8, 8))
    enc = _cnn(1)
    centers = _centers(enc, X, 3)
    e = wc.explain((enc, centers), X, beta=1.5, bounds=(0.0, 1.0))
    before = copy.deepcopy(enc.state_dict())

    conv1, conv2, bn, fc, code = enc[0], enc[2], enc[3], enc[6], enc[8]
    w2, b2 = _merge_bn(conv2.weight.detach(), conv2.bias.detach(), bn)
    conv1_op = lambda a, w, b: F.conv2d(a, w, b, padding=1)  # noqa: E731
    conv2_op = lambda a, w, b: F.conv2d(a, w, b, stride=2, padding=1)  # noqa: E731
    x = torch.from_numpy(X)
    with torch.no_grad():
        a1 = conv1(x).relu()
        a2 = conv2_op(a1, w2, b2).relu()
        a3 = fc(a2.flatten(1)).relu()
    f, r3 = _folded_head(a3, code.weight, code.bias, torch.from_numpy(centers), 1.5, False)
    with torch.no_grad():
        r2 = _gamma_rule(_lin, a2.flatten(1), fc.weight, fc.bias, r3, 0.25).reshape(a2.shape)
        r1 = _gamma_rule(conv2_op, a1, w2, b2, r2, 0.25)
    r0 = _zbox_rule(conv1_op, x, conv1.weight.detach(), conv1.bias.detach(), r1, 0.0, 1.0)
    np.testing.assert_allclose(e.logit, f.numpy(), rtol=1e-10)
    scale = np.abs(e.relevance).max()
    np.testing.assert_allclose(e.relevance, r0.numpy(), rtol=1e-5, atol=1e-6 * scale)
    # explaining leaves the user's network as it was (BatchNorm merged on a copy)
    for key, value in enc.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("make", ["mlp", "cnn", "tell"])
def test_zero_bias_conserves_and_bias_free_networks_conserve_by_default(make):
    rng = np.random.default_rng(2)
    if make == "cnn":
        X, enc = rng.uniform(size=(16, 1, 8, 8)), _cnn(2)
    else:
        X, enc = rng.uniform(size=(30, 6)), _mlp(6, 2, normalize=make == "tell")
    net = wc.neuralize((enc, _centers(enc, X, 3)))
    # exact but for zennit's stabiliser (1e-6 added to each denominator)
    kept = np.abs(wc.explain(net, X, zero_bias=True).extras["conservation"] - 1.0)
    assert np.median(kept) < 1e-4 and kept.max() < 2e-2
    default = wc.explain(net, X)
    # the biases absorb a share: the default does not conserve on this network ...
    assert np.median(np.abs(default.extras["conservation"] - 1.0)) > 1e-2
    # ... and does once the biases below the code layer are zero (BatchNorm means too)
    free = copy.deepcopy(enc)
    for mod in list(free.modules())[:-1]:
        if mod is free[-1] or (make == "tell" and mod is free[-2]):
            continue
        if getattr(mod, "bias", None) is not None and not isinstance(mod, nn.BatchNorm2d):
            nn.init.zeros_(mod.bias)
        if isinstance(mod, nn.BatchNorm2d):
            nn.init.zeros_(mod.bias)
            mod.running_mean.zero_()
    e = wc.explain((free, _centers(free, X, 3)), X)
    free_dev = np.abs(e.extras["conservation"] - 1.0)
    assert np.median(free_dev) < 1e-4 and free_dev.max() < 2e-2


def _shifted(enc: nn.Module, centers: np.ndarray, shift: np.ndarray):
    enc2 = copy.deepcopy(enc)
    with torch.no_grad():
        enc2[-1].bias += torch.from_numpy(shift)
    return enc2, centers + shift


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 1000),
    shift=st.lists(st.floats(-20, 20), min_size=3, max_size=3),
    reference=st.sampled_from(["midpoint", "mean"]),
)
def test_invariant_to_shifting_the_code_space(seed, shift, reference):
    """Adding t to the code layer's bias and to every center leaves every f_c unchanged."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(25, 6))
    enc = _mlp(6, seed)
    centers = _centers(enc, X, 4)
    enc2, centers2 = _shifted(enc, centers, np.asarray(shift))
    e = wc.explain((enc, centers), X, reference=reference)
    e2 = wc.explain((enc2, centers2), X, reference=reference)
    np.testing.assert_allclose(e2.logit, e.logit, rtol=1e-7, atol=1e-9 * np.abs(e.logit).max())
    rel = np.abs(e2.relevance - e.relevance).max() / np.abs(e.relevance).max()
    assert rel < 1e-3


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), alpha=st.floats(0.05, 20.0))
def test_rescaling_code_layer_and_centers_scales_the_explanation(seed, alpha):
    """z -> alpha z and mu -> alpha mu multiply every f_c by alpha^2; so must the relevance."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(25, 6))
    enc = _mlp(6, seed)
    centers = _centers(enc, X, 4)
    enc2 = copy.deepcopy(enc)
    with torch.no_grad():
        enc2[-1].weight *= alpha
        enc2[-1].bias *= alpha
    for reference in ("midpoint", "mean"):
        e = wc.explain((enc, centers), X, reference=reference)
        e2 = wc.explain((enc2, alpha * centers), X, reference=reference)
        np.testing.assert_allclose(e2.logit, alpha**2 * e.logit, rtol=1e-8)
        err = np.abs(e2.relevance / alpha**2 - e.relevance).max() / np.abs(e.relevance).max()
        assert err < 1e-3


@pytest.mark.parametrize("make", ["mlp", "tell", "cnn"])
def test_design_b_sums_to_f_minus_the_reference_part(make):
    rng = np.random.default_rng(3)
    if make == "cnn":
        X, enc = rng.uniform(size=(16, 1, 8, 8)), _cnn(2)
    else:
        X, enc = rng.uniform(size=(30, 6)), _mlp(6, 3, normalize=make == "tell")
    net = wc.neuralize((enc, _centers(enc, X, 3)))
    e = wc.explain(net, X, reference="mean")
    assert (e.logit > 0).all()  # a network that separates the points
    assert e.extras["rule"] == "fold-delta" and e.extras["reference_name"] == "mean"
    np.testing.assert_allclose(e.extras["reference"], X.mean(0), rtol=1e-12)
    part = e.extras["reference_part"]
    scale = np.abs(e.logit).max()
    np.testing.assert_allclose(e.relevance_sum(), e.logit - part, atol=1e-8 * scale)
    # the reference part is the head's linear surrogate evaluated at the reference itself
    ref_point = X.mean(0)
    e_self = wc.explain(net, X[:5], reference=X[0])
    np.testing.assert_allclose(e_self.relevance[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(e_self.extras["reference_part"][0], e_self.logit[0], rtol=1e-8)
    # nothing is explained at the reference itself: its ratio is undefined, not 0
    assert np.isnan(e_self.extras["conservation"][0])
    np.testing.assert_allclose(e_self.extras["conservation"][1:], 1.0, rtol=1e-6)
    assert ref_point.shape == X.shape[1:]


def test_design_b_first_layer_equals_deeplift_by_hand():
    """One hidden ReLU layer: multipliers (relu(z) - relu(z0)) / (z - z0), written out."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(12, 5))
    torch.manual_seed(4)
    enc = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2)).double().eval()
    centers = _centers(enc, X, 3)
    ref = rng.normal(size=5)
    e = wc.explain((enc, centers), X, reference=ref, beta=2.0)
    w1, b1 = enc[0].weight.detach().numpy(), enc[0].bias.detach().numpy()
    w2, b2 = enc[2].weight.detach().numpy(), enc[2].bias.detach().numpy()
    z, z0 = X @ w1.T + b1, ref @ w1.T + b1
    a, a0 = np.maximum(z, 0), np.maximum(z0, 0)
    u = a @ w2.T + b2
    d = ((u[:, None] - centers[None]) ** 2).sum(-1)
    c = d.argmin(1)
    h = d - d[np.arange(12), c][:, None]
    h[np.arange(12), c] = np.inf
    f = h.min(1)
    p = np.exp(-2.0 * (h - f[:, None]))
    p /= p.sum(1, keepdims=True)
    coef = p * f[:, None] / h  # 0 at c
    grad_a = 2 * (coef.sum(1)[:, None] * (centers[c] @ w2) - coef @ (centers @ w2))
    mult_z = grad_a * np.where(np.abs(z - z0) > 1e-12, (a - a0) / (z - z0), z > 0)
    expected = (X - ref) * (mult_z @ w1)
    np.testing.assert_allclose(e.relevance, expected, rtol=1e-8, atol=1e-10)


def test_first_rule_choice_and_other_rules():
    rng = np.random.default_rng(5)
    enc = _mlp(6, 5)
    X = rng.normal(size=(20, 6))  # signed, unbounded: Epsilon by default
    net = wc.neuralize((enc, _centers(enc, X, 3)))
    assert wc.explain(net, X).extras["first_rule"] == "epsilon"
    assert wc.explain(net, X, first_rule="wsquare").extras["first_rule"] == "wsquare"
    assert wc.explain(net, X - X.min()).extras["first_rule"] == "zbox"
    flat = wc.explain(net, X, first_rule="flat", zero_bias=True)
    np.testing.assert_allclose(flat.extras["conservation"], 1.0, atol=1e-4)
    # the unfolded chain of the earlier releases stays available
    old = wc.explain(net, X, composite="epsilon_plus")
    assert old.extras["rule"] == "midpoint-composite" and old.extras["fold"] is None


def test_encoders_without_a_foldable_code_layer_use_the_unfolded_rules():
    rng = np.random.default_rng(6)
    X = rng.uniform(size=(15, 4))
    torch.manual_seed(6)
    enc = nn.Sequential(nn.Linear(4, 5), nn.Tanh()).double()  # ends in a non-linearity
    with pytest.warns(UserWarning, match="unfolded"):
        e = wc.explain((enc, _centers(enc, X, 3)), X)
    assert e.extras["rule"] == "midpoint-composite"
    with pytest.raises(ValueError, match="reference"):
        wc.explain((enc, _centers(enc, X, 3)), X, reference="mean")


def test_target_and_contrast_with_the_fold():
    rng = np.random.default_rng(7)
    X = rng.uniform(size=(20, 6))
    enc = _mlp(6, 7)
    centers = _centers(enc, X, 4)
    net = wc.neuralize((enc, centers))
    logits = net(torch.from_numpy(X)).detach().numpy()
    e = wc.explain(net, X, target=1, zero_bias=True)
    np.testing.assert_allclose(e.logit, logits[:, 1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(e.relevance_sum(), e.logit, rtol=1e-5, atol=1e-9)
    other = (logits.argmax(1) + 1) % 4
    c = wc.explain(net, X, contrast=other, zero_bias=True)
    with torch.no_grad():
        z = enc(torch.from_numpy(X)).numpy()
    d = ((z[:, None] - centers[None]) ** 2).sum(-1)
    h = d[np.arange(20), other] - d[np.arange(20), logits.argmax(1)]
    np.testing.assert_allclose(c.logit, h, rtol=1e-9)
    np.testing.assert_allclose(c.relevance_sum(), h, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"reference": "median"}, ValueError, "reference"),
        ({"reference": np.zeros(3)}, ValueError, "reference"),
        ({"reference": np.full(6, np.nan)}, ValueError, "NaN"),
        ({"first_rule": "zplus"}, ValueError, "first_rule"),
        ({"gamma": -1.0}, ValueError, "gamma"),
        ({"head_gamma": "big"}, TypeError, "head_gamma"),
    ],
)
def test_bad_options_are_named(kwargs, error, match):
    X = np.random.default_rng(8).uniform(size=(10, 6))
    enc = _mlp(6, 8)
    with pytest.raises(error, match=match):
        wc.explain((enc, _centers(enc, X, 3)), X, **kwargs)


def test_library_conv_autoencoder_and_tell_networks_fold():
    from whyclust.models.autoencoders import conv_autoencoder, mlp_autoencoder

    rng = np.random.default_rng(9)
    X = rng.uniform(size=(12, 1, 8, 8))
    torch.manual_seed(9)
    enc, _ = conv_autoencoder((1, 8, 8), n_latent=4, channels=(4, 4, 4, 4), n_hidden=16)
    enc = _widen(enc.double().eval())
    e = wc.explain((enc, _centers(enc, X, 3)), X, zero_bias=True)
    assert e.extras["fold"] == "16" and e.relevance.shape == X.shape
    assert (e.logit > 0).all()
    dev = np.abs(e.extras["conservation"] - 1.0)  # zennit's stabiliser only
    assert np.median(dev) < 1e-3 and dev.max() < 2e-2
    # TELL's network: encoder copy followed by L2Normalize
    Xt = rng.uniform(size=(60, 6)).astype(np.float32)
    pair = mlp_autoencoder(6, hidden=(8,), n_latent=3)
    tell = wc.TELL(3, encoder=pair, pretrain_epochs=1, max_iter=2, random_state=0).fit(Xt)
    et = wc.explain(tell, Xt, zero_bias=True)
    assert et.extras["rule"] == "fold-gamma" and et.extras["fold"] == "0.2"
    dev = np.abs(et.extras["conservation"] - 1.0)
    # (a point whose activations below the code layer are all 0 keeps no relevance at all:
    # its z is the code layer's bias; the 2-epoch encoder has such points)
    assert np.median(dev) < 1e-3 and np.quantile(dev, 0.9) < 2e-2


@pytest.mark.parametrize("signed", [False, True], ids=["below a ReLU", "signed input"])
@pytest.mark.parametrize("layer", ["linear", "conv"])
@pytest.mark.parametrize("zero_params", [None, "bias"])
def test_non_negative_gamma_equals_zennits_gamma(signed, layer, zero_params):
    """The two-forward Gamma gives zennit's generalised Gamma, and takes zennit's own path
    when the input has negative entries."""
    from zennit.composites import LayerMapComposite
    from zennit.rules import Gamma

    from whyclust.explainers.deep_rules import non_negative_gamma

    torch.manual_seed(3)
    if layer == "linear":
        mod, x = nn.Linear(7, 5).double(), torch.randn(11, 7, dtype=torch.float64)
    else:
        mod = nn.Conv2d(2, 3, 3, padding=1).double()
        x = torch.randn(4, 2, 6, 6, dtype=torch.float64)
    x = x if signed else x.relu()
    out = []
    for rule in (non_negative_gamma(0.25, zero_params), Gamma(gamma=0.25, zero_params=zero_params)):
        comp = LayerMapComposite([((nn.Linear, nn.Conv2d), rule)])
        with comp.context(mod) as hooked:
            xi = x.clone().requires_grad_(True)
            y = hooked(xi)
            (r,) = torch.autograd.grad(y, xi, grad_outputs=y.detach())
        out.append(r)
    torch.testing.assert_close(out[0], out[1], rtol=1e-12, atol=1e-12)
    assert torch.isfinite(out[0]).all() and out[0].abs().sum() > 0


def _margin_logits(enc: nn.Module, X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        z = enc(torch.from_numpy(X)).numpy()
    d = ((z[:, None] - centers[None]) ** 2).sum(-1)
    a = d.argmin(1)
    other = d.copy()
    other[np.arange(len(X)), a] = np.inf
    return other.min(1) - d[np.arange(len(X)), a]


@pytest.mark.parametrize("tail", [[], [nn.ReLU()]], ids=["composite", "unfoldable"])
def test_zennit_composites_keep_the_logits_through_batchnorm(tail):
    """The hooked copy merges BatchNorm exactly (zennit's merge keeps eps: logits were off)."""
    torch.manual_seed(0)
    X = np.random.default_rng(0).random((60, 12))
    enc = nn.Sequential(nn.Linear(12, 10), nn.BatchNorm1d(10, eps=1e-2), nn.ReLU(),
                        nn.Linear(10, 4), *tail).double().eval()  # fmt: skip
    enc[1].running_var.fill_(1e-2)
    with torch.no_grad():
        centers = enc(torch.from_numpy(X[[0, 20, 40]])).numpy()
    f = _margin_logits(enc, X, centers)
    options = {"composite": "epsilon_gamma_box", "bounds": (0.0, 1.0)} if not tail else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unfoldable encoder's origin warning
        e = wc.explain((enc, centers), X, **options)
    assert e.extras["rule"] == "midpoint-composite"
    np.testing.assert_allclose(e.logit, f, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("act", [nn.Softsign, nn.Tanhshrink, nn.LogSigmoid, nn.Mish])
def test_design_b_and_a_through_other_elementwise_activations(act):
    torch.manual_seed(0)
    X = np.random.default_rng(0).random((50, 8))
    enc = nn.Sequential(nn.Linear(8, 6), act(), nn.Linear(6, 3)).double().eval()
    with torch.no_grad():
        centers = enc(torch.from_numpy(X[[0, 20, 40]])).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exact: no warning about an inexact layer
        b = wc.explain((enc, centers), X, reference="mean")
        a = wc.explain((enc, centers), X, zero_bias=True)
    part = b.logit - b.extras["reference_part"]
    np.testing.assert_allclose(b.relevance.sum(1), part, rtol=1e-9, atol=1e-9)
    # (zennit stabilises its denominators by 1e-6)
    np.testing.assert_allclose(np.median(a.relevance.sum(1) / a.logit), 1.0, atol=1e-4)
