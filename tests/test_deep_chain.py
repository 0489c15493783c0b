"""Designs A and B computed layer by layer (deep_chain) equal the hooked paths: design A
through zennit's hooks, design B through autograd with rescale hooks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import whyclust as wc
import whyclust.explainers.deep as deep
from whyclust.explainers.deep_chain import _PASS, DesignA, EncoderChain
from whyclust.networks import L2Normalize


def _zennit_only(monkeypatch) -> None:
    monkeypatch.setattr(deep, "_layer_rules", lambda *args: None)
    monkeypatch.setattr(deep, "_design_b_layers", lambda *args: False)


def _spy(monkeypatch) -> list[int]:
    calls: list[int] = []
    rules, delta = DesignA.relevance, EncoderChain.delta_multiplier

    def counted(self, trace, r):
        calls.append(int(r.shape[0]))
        return rules(self, trace, r)

    def counted_delta(self, trace, g, n):
        calls.append(n)
        return delta(self, trace, g, n)

    monkeypatch.setattr(DesignA, "relevance", counted)
    monkeypatch.setattr(EncoderChain, "delta_multiplier", counted_delta)
    return calls


def _random_bn(bn: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        n = bn.num_features
        bn.running_mean.copy_(torch.rand(n, generator=gen, dtype=torch.float64) * 0.6 - 0.3)
        bn.running_var.copy_(torch.rand(n, generator=gen, dtype=torch.float64) * 1.5 + 0.5)
        bn.weight.copy_(torch.rand(n, generator=gen, dtype=torch.float64) + 0.5)
        bn.bias.copy_(torch.rand(n, generator=gen, dtype=torch.float64) * 0.4 - 0.2)


def _encoder(conv: bool, seed: int, pool: bool, loose_bn: bool, code_bn: bool,
             normalize: bool, nested: bool, bias: bool) -> tuple[nn.Sequential, tuple]:  # fmt: skip
    """A random chain of the layers the fast path covers, and its input shape."""
    torch.manual_seed(seed)
    if conv:
        shape = (2, 8, 8)
        body = [nn.Conv2d(2, 3, 3, padding=1, bias=bias), nn.BatchNorm2d(3), nn.ReLU()]
        if pool:
            body += [nn.MaxPool2d(2)]
        side = 4 if pool else 8
        body += [nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
        if loose_bn:  # BatchNorm after an activation: not merged, zennit passes relevance
            body += [nn.BatchNorm2d(4)]
        side = (side + 1) // 2
        body += [nn.Flatten(), nn.Linear(4 * side * side, 10), nn.ReLU()]
    else:
        shape = (7,)
        body = [nn.Linear(7, 12, bias=bias), nn.ReLU(), nn.Linear(12, 9), nn.BatchNorm1d(9),
                nn.ReLU(), nn.Dropout(0.3), nn.Linear(9, 10), nn.ReLU()]  # fmt: skip
        if loose_bn:
            body += [nn.BatchNorm1d(10)]
    if nested:
        body = [nn.Sequential(*body[:3]), nn.Sequential(*body[3:])]
    tail: list[nn.Module] = [nn.Linear(10, 3)]
    if code_bn:
        tail.append(nn.BatchNorm1d(3))
    if normalize:
        tail.append(L2Normalize())
    enc = nn.Sequential(*body, *tail).double()
    gen = torch.Generator().manual_seed(seed)
    for mod in enc.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            _random_bn(mod, gen)
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            with torch.no_grad():
                mod.weight *= 2.0  # activations of order 1: stabilisers stay negligible
    return enc.eval(), shape


def _centers(enc: nn.Module, X: np.ndarray, k: int) -> np.ndarray:
    with torch.no_grad():
        z = enc(torch.from_numpy(X)).reshape(len(X), -1).numpy()
    return z[np.linspace(0, len(X) - 1, k).astype(int)]


def _both(monkeypatch, model, X, **options):
    calls = _spy(monkeypatch)
    fast = wc.explain(model, X, **options)
    assert calls, "the layer-by-layer path was not taken"
    with monkeypatch.context() as m:
        _zennit_only(m)
        slow = wc.explain(model, X, **options)
    return fast, slow


def _assert_same(fast, slow, rtol: float = 1e-7) -> None:
    np.testing.assert_array_equal(fast.cluster, slow.cluster)
    np.testing.assert_allclose(fast.logit, slow.logit, rtol=1e-10, atol=1e-12)
    scale = np.abs(slow.relevance).reshape(len(slow.logit), -1).max(1)
    diff = np.abs(fast.relevance - slow.relevance).reshape(len(slow.logit), -1).max(1)
    assert np.all(diff <= rtol * scale + 1e-12), (diff / scale).max()
    np.testing.assert_allclose(fast.extras["head_conservation"], slow.extras["head_conservation"],
                               rtol=1e-9)  # fmt: skip


#: the random encoder architectures of _encoder, shared by the property tests
_ENCODERS = {
    "conv": st.booleans(),
    "seed": st.integers(0, 10_000),
    "pool": st.booleans(),
    "loose_bn": st.booleans(),
    "code_bn": st.booleans(),
    "normalize": st.booleans(),
}


@settings(max_examples=25, deadline=None)
@given(
    **_ENCODERS,
    nested=st.booleans(),
    bias=st.booleans(),
    first=st.sampled_from(["auto", "zbox", "epsilon", "gamma"]),
    zero_bias=st.booleans(),
    beta=st.sampled_from([0.0, 0.5, 2.0, np.inf]),
    k=st.integers(2, 4),
)
def test_layer_by_layer_equals_zennit(conv, seed, pool, loose_bn, code_bn, normalize, nested,
                                      bias, first, zero_bias, beta, k):  # fmt: skip
    enc, shape = _encoder(conv, seed, pool, loose_bn, code_bn, normalize, nested, bias)
    X = np.random.default_rng(seed).uniform(size=(12, *shape))
    centers = _centers(enc, X, k)
    with pytest.MonkeyPatch.context() as mp:
        fast, slow = _both(mp, (enc, centers), X, beta=beta, first_rule=first,
                           zero_bias=zero_bias, bounds=(0.0, 1.0))  # fmt: skip
    _assert_same(fast, slow)


def test_targets_contrast_and_batches_equal_zennit(monkeypatch):
    enc, shape = _encoder(True, 3, True, False, False, True, False, True)
    X = np.random.default_rng(3).uniform(size=(30, *shape))
    centers = _centers(enc, X, 4)
    for options in ({"target": 2}, {"contrast": 1, "target": 0}, {"batch_size": 7}):
        fast, slow = _both(monkeypatch, (enc, centers), X, bounds=(0.0, 1.0), **options)
        _assert_same(fast, slow)


def test_float32_library_networks_take_the_layer_by_layer_path(monkeypatch):
    """The library's conv autoencoder and TELL networks go layer by layer and agree with
    zennit to float32 rounding through six layers (relative to each point's largest
    relevance; the float64 test above checks equality)."""
    from whyclust.models.autoencoders import conv_autoencoder

    torch.manual_seed(0)
    enc, _ = conv_autoencoder((1, 12, 12), n_latent=4)
    gen = torch.Generator().manual_seed(1)
    for mod in enc.modules():
        if isinstance(mod, nn.BatchNorm2d | nn.BatchNorm1d):
            mod.double()
            _random_bn(mod, gen)
        if isinstance(mod, nn.Linear | nn.Conv2d):
            with torch.no_grad():
                mod.weight *= 2.0
    enc = enc.float().eval()
    X = np.random.default_rng(0).uniform(size=(20, 1, 12, 12)).astype(np.float32)
    centers = _centers(enc, X, 3)
    for model in ((enc, centers), (nn.Sequential(enc, L2Normalize()), centers)):
        fast, slow = _both(monkeypatch, model, X)
        np.testing.assert_array_equal(fast.cluster, slow.cluster)
        scale = np.abs(slow.relevance).reshape(20, -1).max(1)
        # a point with a near-zero logit has tiny relevance but the rounding of activations
        # of ordinary size: its scale is floored at 1% of the batch's largest
        scale = np.maximum(scale, 1e-2 * scale.max())
        diff = np.abs(fast.relevance - slow.relevance).reshape(20, -1).max(1)
        assert np.all(diff <= 1e-3 * scale), (diff / scale).max()


def test_negative_inputs_to_gamma_fall_back_to_zennit(monkeypatch):
    """Below a LeakyReLU the hidden layers see negative inputs: zennit's general Gamma."""
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(5, 8), nn.LeakyReLU(0.3), nn.Linear(8, 6), nn.LeakyReLU(0.3),
                        nn.Linear(6, 3)).double().eval()  # fmt: skip
    X = np.random.default_rng(0).uniform(size=(15, 5))
    centers = _centers(enc, X, 3)
    calls = _spy(monkeypatch)
    fast = wc.explain((enc, centers), X, bounds=(0.0, 1.0))
    assert calls  # tried, then gave way
    _zennit_only(monkeypatch)
    slow = wc.explain((enc, centers), X, bounds=(0.0, 1.0))
    np.testing.assert_allclose(fast.relevance, slow.relevance, rtol=0, atol=0)


@pytest.mark.parametrize(
    "encoder",
    [
        nn.Sequential(nn.Linear(5, 6), nn.LayerNorm(6), nn.ReLU(), nn.Linear(6, 3)),
        nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.AvgPool1d(1), nn.Linear(6, 3)),
        nn.Sequential(
            nn.Conv1d(1, 2, 3, padding_mode="circular", padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(10, 3),
        ),
    ],
)
def test_other_layers_are_left_to_the_hooks(encoder):
    from whyclust.explainers.deep_chain import Unsupported
    from whyclust.explainers.deep_rules import find_code_layer

    code = find_code_layer(encoder)
    with pytest.raises(Unsupported):
        EncoderChain(encoder, code)


def test_pass_layers_are_zennit_activations():
    from zennit.types import Activation

    assert all(issubclass(t, Activation) for t in _PASS)


@pytest.mark.parametrize("case", ["linear-3d", "same-padding"])
def test_layers_refused_at_run_time_give_zennits_numbers(monkeypatch, case):
    """A Linear on (n, C, L) inputs and 'same' padding: zennit's path, same numbers."""
    torch.manual_seed(0)
    if case == "linear-3d":
        enc = nn.Sequential(nn.Unflatten(1, (2, 5)), nn.Linear(5, 4), nn.ReLU(), nn.Flatten(),
                            nn.Linear(8, 3))  # fmt: skip
        X = np.random.default_rng(0).uniform(size=(15, 10))
    else:
        enc = nn.Sequential(nn.Conv2d(1, 2, 3, padding="same"), nn.ReLU(), nn.Flatten(),
                            nn.Linear(2 * 5 * 5, 3))  # fmt: skip
        X = np.random.default_rng(0).uniform(size=(15, 1, 5, 5))
    enc = enc.double().eval()
    centers = _centers(enc, X, 3)
    fast = wc.explain((enc, centers), X, bounds=(0.0, 1.0))
    _zennit_only(monkeypatch)
    slow = wc.explain((enc, centers), X, bounds=(0.0, 1.0))
    np.testing.assert_allclose(fast.relevance, slow.relevance, rtol=0, atol=0)


@settings(max_examples=20, deadline=None)
@given(
    **_ENCODERS,
    bias=st.booleans(),
    reference=st.sampled_from(["mean", "point", "zero"]),
    beta=st.sampled_from([0.0, 0.5, np.inf]),
    contrast=st.booleans(),
)
def test_design_b_layer_by_layer_equals_the_hooks(conv, seed, pool, loose_bn, code_bn, normalize,
                                                  bias, reference, beta, contrast):  # fmt: skip
    enc, shape = _encoder(conv, seed, pool, loose_bn, code_bn, normalize, False, bias)
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(12, *shape))
    centers = _centers(enc, X, 3)
    ref = {"mean": "mean", "point": X[3], "zero": np.zeros(shape)}[reference]
    options = {"reference": ref, "beta": beta}
    if contrast:
        options.update(target=0, contrast=1)
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        if pool:  # max pools route by the point's maxima: the sum misses, with a warning
            warnings.filterwarnings("ignore", message="reference=: .* MaxPool")
        fast, slow = _both(mp, (enc, centers), X, **options)
    np.testing.assert_array_equal(fast.cluster, slow.cluster)
    np.testing.assert_allclose(fast.logit, slow.logit, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.extras["reference_part"], slow.extras["reference_part"],
                               rtol=1e-9, atol=1e-12)  # fmt: skip
    scale = np.abs(slow.relevance).reshape(12, -1).max(1)
    diff = np.abs(fast.relevance - slow.relevance).reshape(12, -1).max(1)
    assert np.all(diff <= 1e-9 * scale + 1e-13), (diff / scale).max()
    if pool:  # max pools route by the point's maxima: the sum is exact only without them
        return
    total = fast.relevance.reshape(12, -1).sum(1)
    np.testing.assert_allclose(total, fast.logit - fast.extras["reference_part"], rtol=1e-8,
                               atol=1e-10)  # fmt: skip


def test_design_b_through_hooks_conserves_with_in_place_activations(monkeypatch):
    """An in-place ReLU once took DeepLIFT's multiplier and its own mask on top of it."""
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(5, 8), nn.ReLU(inplace=True), nn.Linear(8, 6),
                        nn.ReLU(inplace=True), nn.Linear(6, 3)).double().eval()  # fmt: skip
    X = np.random.default_rng(0).uniform(size=(20, 5))
    centers = _centers(enc, X, 3)
    _zennit_only(monkeypatch)
    e = wc.explain((enc, centers), X, reference="mean")
    np.testing.assert_allclose(e.relevance.sum(1), e.logit - e.extras["reference_part"],
                               rtol=1e-9, atol=1e-12)  # fmt: skip
    plain = nn.Sequential(*(nn.ReLU() if isinstance(m, nn.ReLU) else m for m in enc)).eval()
    np.testing.assert_allclose(wc.explain((plain, centers), X, reference="mean").relevance,
                               e.relevance, rtol=1e-12, atol=1e-14)  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(size=st.integers(1, 4), seed=st.integers(0, 10_000), ties=st.booleans())
def test_window_max_multipliers_split_each_windows_change_exactly(size, seed, ties):
    from whyclust.explainers.deep_rules import window_max_multiplier

    rng = np.random.default_rng(seed)
    shape = (3, 2, 4 * size + 1)  # a last entry no window covers
    x = rng.normal(size=shape)
    ref = rng.normal(size=shape)
    if ties:
        ref[..., ::2] = x[..., ::2]
    pool = nn.MaxPool1d(size)
    xt, rt = torch.from_numpy(x), torch.from_numpy(ref)
    windows = shape[-1] // size
    m = window_max_multiplier(pool, xt, rt, torch.ones(3, 2, windows).double()).numpy()
    assert np.all((m >= -1e-12) & (m <= 1 + 1e-12))  # monotone, 1-Lipschitz max
    change = (pool(xt) - pool(rt)).numpy()
    split = (m * (x - ref))[..., : windows * size].reshape(3, 2, windows, size).sum(-1)
    np.testing.assert_allclose(split, change, atol=1e-12)
    # Shapley's symmetry: with two entries, each gets half of what moving both together
    # adds beyond moving it alone
    if size == 2:
        a, b = x[..., 0], x[..., 1]
        ra, rb = ref[..., 0], ref[..., 1]
        v = lambda p, q: np.maximum(p, q)  # noqa: E731
        phi_a = 0.5 * ((v(a, rb) - v(ra, rb)) + (v(a, b) - v(ra, b)))
        np.testing.assert_allclose(m[..., 0] * (a - ra), phi_a, atol=1e-12)


def test_reference_through_2x2_max_pools_is_exact_on_both_paths(monkeypatch):
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(48, 6), nn.ReLU(), nn.Linear(6, 3)).double().eval()
    X = np.random.default_rng(1).uniform(size=(15, 1, 8, 8))
    centers = _centers(enc, X, 3)
    fast, slow = _both(monkeypatch, (enc, centers), X, reference="mean")
    for e in (fast, slow):
        np.testing.assert_allclose(e.relevance.reshape(15, -1).sum(1),
                                   e.logit - e.extras["reference_part"], atol=1e-10)
    np.testing.assert_allclose(fast.relevance, slow.relevance, atol=1e-10)
