"""NEON through deep encoders: (encoder, centers) networks, zennit composites, TELL-style heads."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import whyclust as wc
from whyclust.explainers.deep import NeonHead, head_relevance
from whyclust.networks import EncodedClusterNetwork, KMeansNetwork, L2Normalize


def _mlp(d_in: int, m: int, bias: bool, dtype=torch.float64, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(d_in, 16, bias=bias), nn.ReLU(), nn.Linear(16, m, bias=bias)
    ).to(dtype)


def _centers_from(enc: nn.Module, X: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    with torch.no_grad():
        z = enc(torch.from_numpy(X)).numpy()
    rng = np.random.default_rng(seed)
    return z[rng.choice(len(z), k, replace=False)]


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(2, 6),
    m=st.integers(1, 5),
    beta=st.sampled_from([0.0, 0.5, 3.0, float("inf")]),
)
def test_head_function_is_exactly_conservative(seed, k, m, beta):
    rng = np.random.default_rng(seed)
    head = KMeansNetwork(rng.normal(size=(k, m)))
    z = torch.from_numpy(rng.normal(size=(30, m))).requires_grad_(True)
    target = head(z).argmax(1)
    f = NeonHead.apply(z, head, target, beta, None, None, None)
    np.testing.assert_allclose(f.detach().numpy(), head(z).amax(1).detach().numpy(), atol=1e-10)
    (r,) = torch.autograd.grad(f, z, grad_outputs=f.detach())
    scale = float(f.detach().abs().max())
    np.testing.assert_allclose(r.sum(1).numpy(), f.detach().numpy(), atol=1e-9 * scale)
    # the head rule equals the k-means NEON of the foundation
    ref = wc.explain(head, z.detach().numpy(), beta=beta)
    np.testing.assert_allclose(r.numpy(), ref.relevance, atol=1e-9 * scale)


def test_mlp_conservation_close_to_one_with_small_epsilon():
    from zennit.composites import EpsilonPlus

    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 7))
    enc = _mlp(7, 3, bias=False)
    net = wc.neuralize((enc, _centers_from(enc, X, 4)))
    assert isinstance(net, EncodedClusterNetwork) and net.n_features == 7
    e = wc.explain(net, X, composite=EpsilonPlus(epsilon=1e-9))
    assert e.relevance.shape == X.shape
    assert np.allclose(e.extras["head_conservation"], 1.0, atol=1e-9)
    np.testing.assert_allclose(e.extras["conservation"], 1.0, atol=1e-5)
    np.testing.assert_allclose(e.relevance_sum(), e.logit, rtol=1e-5)
    assert np.array_equal(e.cluster, net.predict(X))
    assert np.all(e.logit > 0)


def test_unfolded_composite_uses_data_bounds_and_biases_absorb_relevance():
    rng = np.random.default_rng(2)
    X = rng.uniform(size=(60, 5))
    enc = _mlp(5, 3, bias=True)
    net = wc.neuralize((enc, _centers_from(enc, X, 3)))
    e = wc.explain(net, X, composite="epsilon_gamma_box")
    assert e.extras["composite"] == "EpsilonGammaBox" and e.extras["rule"] == "midpoint-composite"
    by_class_name = wc.explain(net, X, composite="EpsilonGammaBox")  # zennit's class name
    np.testing.assert_array_equal(by_class_name.relevance, e.relevance)
    with pytest.raises(ValueError, match="unknown composite 'Gamma'; available: "):
        wc.explain(net, X, composite="Gamma")
    assert e.extras["bounds"] == pytest.approx((X.min(), X.max()))
    assert np.allclose(e.extras["head_conservation"], 1.0, atol=1e-9)
    # Epsilon on every Linear: the biases take a share of the relevance ...
    assert np.median(np.abs(e.extras["conservation"] - 1.0)) > 1e-2
    # ... which is all of the deficit: the same weights without biases conserve
    free = copy.deepcopy(enc)
    for mod in free.modules():
        if isinstance(mod, nn.Linear):
            nn.init.zeros_(mod.bias)
    ef = wc.explain((free, _centers_from(free, X, 3)), X, composite="epsilon_gamma_box")
    dev = np.abs(ef.extras["conservation"] - 1.0)  # epsilon = 1e-6 in every denominator
    assert np.median(dev) < 1e-4 and dev.max() < 1e-2
    e2 = wc.explain(net, X, composite="epsilon_plus_flat")
    assert e2.extras["composite"] == "EpsilonPlusFlat"
    assert not np.allclose(e.relevance, e2.relevance)


def test_conv_encoder_with_batchnorm_gives_pixel_relevance():
    torch.manual_seed(3)
    enc = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 3, bias=False),
        L2Normalize(),
    )
    with torch.no_grad():  # non-trivial BatchNorm statistics to merge
        enc[1].running_mean.uniform_(-0.2, 0.2)
        enc[1].running_var.uniform_(0.5, 2.0)
    X = np.random.default_rng(3).uniform(size=(24, 1, 8, 8)).astype(np.float32)
    centers = _centers_from(enc.float(), X, 3)
    net = wc.neuralize((enc, centers), input_shape=(1, 8, 8))
    assert net.n_features == 64
    e = wc.explain(net, X, bounds=(0.0, 1.0), batch_size=7)
    assert e.relevance.shape == X.shape and e.relevance.dtype == np.float32
    np.testing.assert_allclose(e.extras["head_conservation"], 1.0, atol=1e-3)
    assert np.all(np.isfinite(e.relevance))
    # batch size does not change the result, and BatchNorm statistics are untouched
    e_all = wc.explain(net, X, bounds=(0.0, 1.0), batch_size=100)
    np.testing.assert_allclose(e.relevance, e_all.relevance, rtol=1e-4, atol=1e-6)
    assert float(enc[1].running_var.min()) >= 0.5


def test_l2normalize_passes_relevance_unchanged():
    """TELL-like encoder: relevance at z equals relevance just before the normalisation."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 6))
    lin = nn.Linear(6, 4, bias=False).double()
    enc = nn.Sequential(lin, L2Normalize())
    centers = _centers_from(enc, X, 3)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    from zennit.composites import EpsilonPlus

    e = wc.explain((enc, centers), X, composite=EpsilonPlus(epsilon=1e-12))
    np.testing.assert_allclose(e.extras["conservation"], 1.0, atol=1e-8)
    # the same through the encoder without the normalisation and the head on unit features
    with torch.no_grad():
        z = enc(torch.from_numpy(X)).numpy()
    r_z = wc.explain(centers, z).relevance
    u = X @ lin.weight.detach().numpy().T  # pre-normalisation features
    expected = np.einsum("nj,jd,nd->nd", r_z / u, lin.weight.detach().numpy(), X)
    np.testing.assert_allclose(e.relevance, expected, rtol=1e-6, atol=1e-9)


def test_target_and_contrast_through_the_encoder():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 5))
    enc = _mlp(5, 3, bias=False)
    net = wc.neuralize((enc, _centers_from(enc, X, 4)))
    logits = net(torch.from_numpy(X)).detach().numpy()
    e = wc.explain(net, X, target=2)
    np.testing.assert_allclose(e.logit, logits[:, 2], rtol=1e-9, atol=1e-12)
    assert np.all(np.isfinite(e.relevance))
    tgt = logits.argmax(1)
    other = (tgt + 1) % 4
    c = wc.explain(net, X, contrast=other)
    assert c.method == "neon-contrast"
    with torch.no_grad():
        z = enc(torch.from_numpy(X)).numpy()
    d = ((z[:, None, :] - net.head.centers.numpy()[None]) ** 2).sum(-1)
    h = d[np.arange(30), other] - d[np.arange(30), tgt]
    np.testing.assert_allclose(c.logit, h, rtol=1e-9)
    np.testing.assert_allclose(c.extras["head_conservation"], 1.0, atol=1e-9)


def test_bad_options_are_named():
    enc = _mlp(4, 2, bias=False)
    X = np.random.default_rng(6).normal(size=(10, 4))
    net = wc.neuralize((enc, _centers_from(enc, X, 2)))
    with pytest.raises(ValueError, match="composite"):
        wc.explain(net, X, composite="no_such_rule")
    with pytest.raises(TypeError, match="composite"):
        wc.explain(net, X, composite=3)
    with pytest.raises(ValueError, match="bounds"):
        wc.explain(net, X, bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match="features"):
        wc.explain(net, X[:, :3])
    with pytest.raises(ValueError, match="input_shape"):
        wc.neuralize((enc, np.zeros((2, 2))), input_shape=(0, 3))


def test_head_relevance_rejects_unknown_heads():
    class Odd(KMeansNetwork.__mro__[1]):  # a ClusterNetwork without a NEON rule
        n_clusters = 2

    z = torch.zeros(2, 2)
    t = torch.zeros(2, dtype=torch.long)
    with pytest.raises(TypeError, match="NEON"):
        head_relevance(Odd(), z, t, 1.0, torch.ones(2))


def test_kernel_head_behind_an_encoder():
    from whyclust.networks.kernel import KernelKMeansNetwork

    rng = np.random.default_rng(8)
    X = rng.normal(size=(20, 5))
    enc = _mlp(5, 3, bias=False)
    with torch.no_grad():
        z = enc(torch.from_numpy(X)).numpy()
    head = KernelKMeansNetwork(z[:9], np.arange(9) % 3, gamma=0.5)
    net = EncodedClusterNetwork(enc, head, 5)
    e = wc.explain(net, X)
    np.testing.assert_allclose(e.extras["head_conservation"], 1.0, atol=1e-8)
    np.testing.assert_allclose(e.logit, head(torch.from_numpy(z)).numpy().max(1), rtol=1e-9)


def test_float64_head_behind_float32_encoder():
    """TELL stores float64 centers next to a float32 encoder."""
    rng = np.random.default_rng(9)
    X = rng.normal(size=(16, 5)).astype(np.float32)
    enc = nn.Sequential(_mlp(5, 3, bias=False, dtype=torch.float32), L2Normalize())
    with torch.no_grad():
        z = enc(torch.from_numpy(X)).double().numpy()
    net = EncodedClusterNetwork(enc, KMeansNetwork(z[:3]), 5)
    e = wc.explain(net, X)
    assert e.relevance.dtype == np.float32
    np.testing.assert_allclose(e.extras["head_conservation"], 1.0, atol=1e-3)
    d = ((z[:, None, :] - z[None, :3]) ** 2).sum(-1)
    assert np.array_equal(e.cluster, d.argmin(1))


def test_deep_network_round_trips_through_a_file(tmp_path):
    rng = np.random.default_rng(10)
    X = rng.normal(size=(12, 6))
    enc = _mlp(6, 3, bias=True)
    net = wc.neuralize((enc, _centers_from(enc, X, 3)))
    back = wc.load(wc.save(net, tmp_path / "deep.whyclust"))
    a, b = wc.explain(net, X, bounds=(-3, 3)), wc.explain(back, X, bounds=(-3, 3))
    np.testing.assert_allclose(a.relevance, b.relevance, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["neon", "gradient_x_input"])
def test_a_training_mode_encoder_is_explained_in_eval_mode_and_left_as_it_was(method) -> None:
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5),
                        nn.Linear(8, 3))
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    with torch.no_grad():
        enc.train()(torch.from_numpy(X))  # non-trivial running statistics
    C = np.random.default_rng(1).normal(size=(3, 3)).astype(np.float32)
    stats = enc[1].running_mean.clone()
    e_train = wc.explain((enc, C), X, method=method)
    assert all(m.training for m in enc.modules())  # the user's mode is kept
    torch.testing.assert_close(enc[1].running_mean, stats)  # statistics untouched
    assert wc.neuralize((enc, C)).predict(X).tolist() == e_train.cluster.tolist()
    wc.evaluation.deletion_curve((enc, C), X[:5], n_steps=2)
    assert all(m.training for m in enc.modules())
    e_eval = wc.explain((enc.eval(), C), X, method=method)
    np.testing.assert_array_equal(e_train.relevance, e_eval.relevance)  # no dropout noise


@pytest.mark.parametrize(
    ("layers", "exact"),
    [
        (lambda: [nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Tanh(), nn.AvgPool2d(2),
                  nn.Flatten(), nn.Linear(27, 3)], True),
        (lambda: [nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                  nn.Linear(27, 3)], True),  # disjoint 2 x 2 windows: the Shapley split
        (lambda: [nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(3, stride=2), nn.Flatten(),
                  nn.Linear(12, 3)], False),  # overlapping windows: routed
        (lambda: [nn.Flatten(), nn.Linear(64, 12), nn.LayerNorm(12), nn.ReLU(),
                  nn.Linear(12, 3)], False),
    ],
)
def test_reference_sums_exactly_or_warns_naming_the_layer(layers, exact) -> None:
    import warnings

    torch.manual_seed(1)
    enc = nn.Sequential(*layers()).double().eval()
    X = np.random.default_rng(2).normal(size=(25, 1, 8, 8))
    with torch.no_grad():
        Z = enc(torch.from_numpy(X)).numpy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = wc.explain((enc, Z[:3] + 0.1), X, reference="mean")
    gap = e.relevance.reshape(25, -1).sum(1) - (e.logit - e.extras["reference_part"])
    messages = [str(w.message) for w in caught if "reference_part" in str(w.message)]
    if exact:
        np.testing.assert_allclose(gap, 0.0, atol=1e-10)
        assert not messages
    else:
        assert np.abs(gap).max() > 1e-6  # the case is one that misses
        assert len(messages) == 1
        assert any(type(m).__name__ in messages[0] for m in enc if type(m).__name__ in
                   ("MaxPool2d", "LayerNorm"))
        assert caught[0].filename == __file__


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    norm=st.sampled_from(["layer", "group", "l2"]),
    width=st.integers(4, 12),
    zero_bias=st.booleans(),
)
def test_normalisation_layers_pass_relevance_and_conserve_it(seed, norm, width, zero_bias):
    # autograd through a scale-invariant norm sums to zero: the relevance would be lost
    torch.manual_seed(seed)
    width -= width % 2
    layer = {"layer": nn.LayerNorm(width), "group": nn.GroupNorm(2, width),
             "l2": L2Normalize()}[norm]
    enc = nn.Sequential(nn.Linear(7, width), layer, nn.ReLU(), nn.Linear(width, 3)).double()
    if norm != "l2":
        with torch.no_grad():
            layer.weight.uniform_(0.5, 1.5)
            layer.bias.normal_(0.0, 0.3)
    X = np.random.default_rng(seed).uniform(size=(20, 7))
    with torch.no_grad():
        Z = enc.eval()(torch.from_numpy(X)).numpy()
    e = wc.explain((enc, Z[:3] + 0.05), X, zero_bias=True)
    np.testing.assert_array_equal(e.cluster, np.argmax(-((Z[:, None] - Z[None, :3] - 0.05) ** 2)
                                                       .sum(-1), 1))
    with torch.no_grad():  # a point whose hidden units are all off gets no relevance
        alive = enc[:3](torch.from_numpy(X)).abs().sum(1).numpy() > 0
    ok = (np.abs(e.logit) > 1e-6) & alive
    # up to the Gamma rules' stabiliser (it was 0 before)
    np.testing.assert_allclose(e.relevance.sum(1)[ok], e.logit[ok], rtol=1e-2)
    if not zero_bias:  # the default absorbs the Linear biases' share, but no longer all of it
        d = wc.explain((enc, Z[:3] + 0.05), X)
        assert np.abs(d.relevance).sum() > 0.1 * np.abs(e.relevance).sum()


class _Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.inner = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.inner(x))  # autograd copies x's relevance to both terms


class _ResidualSequential(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)  # a Sequential subclass with forward code of its own


@pytest.mark.parametrize("zero_bias", [False, True])
@pytest.mark.parametrize(
    ("middle", "leaks"),
    [(lambda: _Residual(12), True), (lambda: nn.Softmax(-1), True),
     (lambda: _ResidualSequential(nn.Linear(12, 12), nn.ReLU()), True),
     (lambda: nn.GELU(), False), (lambda: nn.LayerNorm(12), False)],
)
def test_design_a_warns_when_its_rules_leak_relevance(middle, leaks, zero_bias) -> None:
    import warnings

    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(9, 12), nn.ReLU(), middle(), nn.Linear(12, 3)).double().eval()
    X = np.random.default_rng(0).uniform(size=(40, 9))
    with torch.no_grad():
        Z = enc(torch.from_numpy(X)).numpy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wc.explain((enc, Z[:3] + 0.01), X, zero_bias=zero_bias)
    messages = [str(w.message) for w in caught if "not conserved" in str(w.message)]
    assert len(messages) == (1 if leaks else 0), messages


@pytest.mark.parametrize("reference", ["midpoint", "mean"])
@pytest.mark.parametrize("conv", [False, True])
def test_a_module_used_twice_is_explained_as_two_layers(reference, conv) -> None:
    """``act = nn.ReLU()`` placed twice and a Linear (or Conv) applied twice: the same
    function as separate modules with the same weights, so the same explanation, and the
    user's encoder keeps its sharing."""
    torch.manual_seed(0)
    act = nn.ReLU()
    if conv:
        twice = nn.Conv2d(2, 2, 3, padding=1)
        enc = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), act, twice, act, twice, act,
                            nn.Flatten(), nn.Linear(2 * 36, 3))  # fmt: skip
        X = np.random.default_rng(0).uniform(size=(30, 1, 6, 6))
    else:
        twice = nn.Linear(8, 8)
        enc = nn.Sequential(nn.Linear(5, 8), act, twice, act, twice, act, nn.Linear(8, 3))
        X = np.random.default_rng(0).normal(size=(30, 5))
    enc = enc.double().eval()
    apart = copy.deepcopy(enc)
    apart[3], apart[4], apart[5] = nn.ReLU(), copy.deepcopy(twice).double(), nn.ReLU()
    with torch.no_grad():
        Z = enc(torch.from_numpy(X)).numpy()
        np.testing.assert_array_equal(apart(torch.from_numpy(X)).numpy(), Z)
    centers = Z[[0, 10, 20]]
    e = wc.explain((enc, centers), X, reference=reference)
    expected = wc.explain((apart, centers), X, reference=reference)
    np.testing.assert_allclose(e.relevance, expected.relevance, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(e.cluster, wc.neuralize((enc, centers)).predict(X))
    assert enc[1] is enc[3] and enc[2] is enc[4]


def test_torchvision_resnet_residual_sums_are_split_not_counted_twice() -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    enc = torchvision.models.resnet18(num_classes=6).eval()
    X = np.random.default_rng(0).uniform(size=(5, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        Z = enc(torch.from_numpy(X)).numpy()
    e = wc.explain((enc, Z[:3] + 0.01), X, zero_bias=True)  # warns (an error here) if not
    np.testing.assert_allclose(e.relevance.reshape(5, -1).sum(1), e.logit, rtol=1e-3)
    with torch.no_grad():  # the canonizers are removed again: the model is unchanged
        np.testing.assert_array_equal(enc(torch.from_numpy(X)).numpy(), Z)


def test_biases_that_take_most_of_f_c_are_announced() -> None:
    """Design A lets biases absorb relevance; when they take more than half of most points'
    f_c the caller is told, and zero_bias=True (which gives them none) is quiet."""
    import warnings

    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(),
                        nn.Linear(10, 3)).double().eval()  # fmt: skip
    with torch.no_grad():
        enc[2].bias.fill_(1.0)  # a hidden layer whose biases carry most of its output
    X = np.random.default_rng(0).uniform(size=(40, 6))
    with torch.no_grad():
        Z = enc(torch.from_numpy(X)).numpy()
    centers = Z[[0, 20]]
    with pytest.warns(UserWarning, match=r"sums to -?[\d.e-]+ times f_c .*zero_bias=True"):
        e = wc.explain((enc, centers), X)
    assert abs(np.median(e.extras["conservation"])) < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = wc.explain((enc, centers), X, zero_bias=True)
    assert np.median(z.extras["conservation"]) == pytest.approx(1.0, abs=0.02)


def test_the_pair_may_be_a_list() -> None:
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).double().eval()
    X = np.random.default_rng(0).normal(size=(12, 4))
    with torch.no_grad():
        centers = enc(torch.from_numpy(X[:3])).numpy()
    as_list, as_tuple = wc.explain([enc, centers], X), wc.explain((enc, centers), X)
    np.testing.assert_array_equal(as_list.relevance, as_tuple.relevance)


class _CodeFirst(nn.Module):  # the code layer registered before the layer that feeds it
    def __init__(self) -> None:
        super().__init__()
        self.code, self.hidden = nn.Linear(8, 3), nn.Linear(5, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(torch.relu(self.hidden(x)))


class _UnusedHead(nn.Module):  # a projection head kept from training, not used to encode
    def __init__(self) -> None:
        super().__init__()
        self.hidden, self.code, self.proj = nn.Linear(5, 8), nn.Linear(8, 3), nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(torch.relu(self.hidden(x)))


class _EndsInTanh(nn.Module):  # a functional non-linearity after the code layer
    def __init__(self) -> None:
        super().__init__()
        self.hidden, self.code = nn.Linear(5, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.code(torch.relu(self.hidden(x))))


@pytest.mark.parametrize("make", [_CodeFirst, _UnusedHead, _EndsInTanh])
def test_custom_encoders_the_fold_does_not_fit_take_the_unfolded_rules(make) -> None:
    torch.manual_seed(0)
    enc = make().double().eval()
    X = np.random.default_rng(0).uniform(size=(30, 5))
    with torch.no_grad():
        centers = enc(torch.from_numpy(X)).numpy()[[0, 10, 20]]
    net = wc.neuralize((enc, centers))  # input size learned from X: registration order lies
    with pytest.warns(UserWarning, match="cannot be folded .*unfolded rules"):
        e = wc.explain(net, X)
    assert e.extras["rule"] == "midpoint-composite"
    np.testing.assert_array_equal(e.cluster, net.predict(X))
    np.testing.assert_allclose(e.extras["head_conservation"], 1.0, atol=1e-9)
    with pytest.raises(ValueError, match="reference= needs"):
        wc.explain(net, X, reference="mean")
