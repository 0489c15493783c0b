"""Deep explanations of the inputs and encoders users bring: low-precision encoders,
volumes, unsized conv networks in files, user (encoder, decoder) pairs, design B's
conservation as the Explanation reports it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import whyclust as wc


def _codes(enc: nn.Module, X: np.ndarray, k: int) -> np.ndarray:
    with torch.no_grad():
        z = enc(torch.from_numpy(X).to(next(enc.parameters()).dtype))
    return z[:k].float().numpy()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_encoders_give_finite_conserving_relevance(dtype):
    """1e-12 is 0 in float16: the stabiliser must stay a normal number of the dtype
    (the relevance was all NaN), and bfloat16 relevance must come back to numpy."""
    torch.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    enc = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3)).to(dtype)
    C = _codes(enc, X, 3)
    e = wc.explain((enc, C), X)
    assert np.isfinite(e.relevance).all()
    np.testing.assert_array_equal(e.cluster, wc.neuralize((enc, C)).predict(X))
    # the same rules in float32 on the same (rounded) weights: equal to the dtype's precision
    e32 = wc.explain((enc.float(), C), X)
    same = e.cluster == e32.cluster
    assert same.mean() > 0.9
    scale = np.abs(e32.relevance[same]).max()
    assert np.median(np.abs(e.relevance[same] - e32.relevance[same])) < 0.02 * scale


def test_volumes_of_a_conv3d_encoder_are_explained():
    """Conv3d is a supported layer: (n, C, D, H, W) input must be taken, and give what
    the same encoder gives on flat rows behind an Unflatten."""
    torch.manual_seed(0)
    X = np.random.default_rng(0).random((10, 1, 6, 6, 6))
    enc = nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(128, 4))
    enc = enc.double().eval()
    C = _codes(enc, X, 3).astype(np.float64)
    e = wc.explain((enc, C), X)
    assert e.relevance.shape == X.shape
    flat = nn.Sequential(nn.Unflatten(1, (1, 6, 6, 6)), *enc)
    e_flat = wc.explain((flat, C), X.reshape(10, -1))
    np.testing.assert_allclose(e.relevance.reshape(10, -1), e_flat.relevance, atol=1e-12)
    np.testing.assert_array_equal(wc.neuralize((enc, C)).predict(X), e.cluster)


def test_saving_a_network_of_unknown_input_size_names_the_fix(tmp_path):
    enc = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(108, 4))
    X = np.random.default_rng(0).random((5, 1, 8, 8)).astype(np.float32)
    net = wc.neuralize((enc, _codes(enc, X, 3)))
    path = tmp_path / "net.whyclust"
    with pytest.raises(ValueError, match="input_shape="):
        wc.save(net, path)
    assert not path.exists() and list(tmp_path.iterdir()) == []
    net = wc.neuralize((enc, _codes(enc, X, 3)), input_shape=(1, 8, 8))
    again = wc.load(wc.save(net, path))
    np.testing.assert_array_equal(again.predict(X), net.predict(X))


@pytest.mark.parametrize(
    ("pair", "match"),
    [
        ((nn.Linear(64, 5), nn.Linear(4, 64)), "decoder cannot take the encoder's output"),
        ((nn.Linear(60, 5), nn.Linear(5, 64)), "encoder cannot take X's rows"),
    ],
)
def test_tell_names_the_network_of_a_mismatched_pair(pair, match):
    X, _ = wc.datasets.load_digits()
    tell = wc.TELL(3, encoder=pair, pretrain_epochs=1, max_iter=1, n_init=1, random_state=0)
    with pytest.raises(ValueError, match=match):
        tell.fit(X[:100])


def test_conservation_of_design_b_counts_the_reference_part():
    """Against a reference, deep relevance sums to f_c - reference_part; the
    Explanation's conservation must say 1 there, as extras['conservation'] does."""
    torch.manual_seed(0)
    X = np.random.default_rng(1).normal(size=(30, 5))
    enc = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    e = wc.explain((enc, _codes(enc, X, 3).astype(np.float64)), X, reference="mean")
    np.testing.assert_allclose(e.conservation, e.extras["conservation"], rtol=1e-9)
    np.testing.assert_allclose(e.relevance.sum(1), e.explained_logit(), rtol=1e-8, atol=1e-10)


def test_zero_bias_warns_when_bias_only_units_take_the_relevance():
    """Units that their bias alone switches on pass relevance to no input, zero_bias or
    not: when most of f_c goes there the user is told, not left with a silent 0.1."""
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.ReLU(),
                        nn.Flatten(), nn.Linear(128, 4)).double().eval()  # fmt: skip
    with torch.no_grad():  # the first layer mostly off, the second on by its bias
        enc[0].bias.fill_(-3.0)
        enc[2].bias.fill_(2.0)
    X = np.random.default_rng(0).random((20, 1, 12, 12))
    C = _codes(enc, X, 3).astype(np.float64) + np.random.default_rng(2).normal(size=(3, 4))
    with pytest.warns(UserWarning, match="zero_bias=True: units that their bias alone"):
        e = wc.explain((enc, C), X, zero_bias=True)
    assert not 0.5 <= np.median(e.extras["conservation"]) <= 1.5
