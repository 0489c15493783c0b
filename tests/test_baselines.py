"""Baseline explainers (captum, shap) through wc.explain, on every kind of cluster network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from torch import nn

import whyclust as wc

CAPTUM = ["gradient", "gradient_x_input", "integrated_gradients", "occlusion"]


@pytest.fixture(scope="module")
def data():
    X, _ = make_blobs(120, centers=3, n_features=4, random_state=0)
    return X


@pytest.fixture(scope="module")
def kmeans(data):
    return KMeans(3, n_init=3, random_state=0).fit(data)


def _grad_of_logit(net, X, target):
    x = torch.from_numpy(X).requires_grad_(True)
    f = net(x)[torch.arange(len(X)), torch.as_tensor(target)]
    (g,) = torch.autograd.grad(f.sum(), x)
    return g.numpy(), f.detach().numpy()


@pytest.mark.parametrize("method", CAPTUM)
def test_same_explanation_type_and_target_logit(method, data, kmeans):
    e = wc.explain(kmeans, data[:30], method=method)
    assert isinstance(e, wc.Explanation) and e.method == method
    assert e.relevance.shape == (30, 4)
    net = wc.neuralize(kmeans)
    logits = net(torch.from_numpy(data[:30])).detach().numpy()
    assert np.array_equal(e.cluster, kmeans.predict(data[:30]))
    np.testing.assert_allclose(e.logit, logits.max(1), rtol=1e-12)
    et = wc.explain(kmeans, data[:30], method=method, target=1)
    np.testing.assert_allclose(et.logit, logits[:, 1], rtol=1e-12)
    assert np.all(et.target == 1)


def test_gradient_methods_match_autograd(data, kmeans):
    net = wc.neuralize(kmeans)
    X = data[:40]
    tgt = (kmeans.predict(X) + 1) % 3
    g, _ = _grad_of_logit(net, X, tgt)
    np.testing.assert_allclose(wc.explain(net, X, "gradient", target=tgt).relevance, g)
    np.testing.assert_allclose(
        wc.explain(net, X, "gradient_x_input", target=tgt).relevance, g * X, rtol=1e-10
    )


def test_integrated_gradients_completeness_and_occlusion_deltas(data, kmeans):
    X = data[:25]
    net = wc.neuralize(kmeans)
    base = data.mean(0)
    e = wc.explain(kmeans, X, "integrated_gradients", baseline=base, n_steps=64)
    f_base = net(torch.from_numpy(np.broadcast_to(base, X.shape).copy())).detach().numpy()
    f_base = f_base[np.arange(len(X)), e.target]
    # completeness: sum of IG = f(x) - f(baseline), up to the quadrature error
    np.testing.assert_allclose(e.relevance_sum(), e.logit - f_base, rtol=0.05, atol=0.5)
    o = wc.explain(kmeans, X, "occlusion", baseline=0.0)
    for i in range(4):  # occlusion of feature i: f(x) - f(x with x_i = 0)
        Xo = X.copy()
        Xo[:, i] = 0.0
        fo = net(torch.from_numpy(Xo)).detach().numpy()[np.arange(len(X)), o.target]
        np.testing.assert_allclose(o.relevance[:, i], o.logit - fo, rtol=1e-6, atol=1e-5)


def test_baselines_on_kernel_and_deep_models(data):
    kk = wc.KernelKMeans(3, n_init=1, random_state=0, max_support=60).fit(data)
    for method in CAPTUM:
        e = wc.explain(kk, data[:10], method=method)
        assert e.relevance.shape == (10, 4) and np.all(np.isfinite(e.relevance))
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    imgs = np.random.default_rng(0).uniform(size=(12, 1, 6, 6)).astype(np.float32)
    with torch.no_grad():
        centers = enc(torch.from_numpy(imgs[:3])).numpy()
    net = wc.neuralize((enc, centers), input_shape=(1, 6, 6))
    for method in CAPTUM:
        e = wc.explain(net, imgs, method=method, batch_size=5)
        assert e.relevance.shape == imgs.shape and e.relevance.dtype == np.float32
    patch = wc.explain(net, imgs, method="occlusion", window=2, stride=2)
    # 2x2 patches with stride 2 tile the 6x6 image: relevance is constant on each patch
    r = patch.relevance[:, 0]
    np.testing.assert_allclose(r[:, ::2, ::2], r[:, 1::2, 1::2], rtol=1e-5, atol=1e-6)


# the permutation explainer is left out: shap JIT-compiles it with numba (~30 s per process)
@pytest.mark.parametrize("algorithm", ["kernel"])
def test_shap_efficiency_on_the_target_logit(algorithm, data, kmeans):
    pytest.importorskip("shap")
    X = data[:6]
    bg = data[60:70]
    e = wc.explain(kmeans, X, method="shap", algorithm=algorithm, background=bg, nsamples=60)
    net = wc.neuralize(kmeans)
    f_bg = net(torch.from_numpy(bg)).detach().numpy()
    expected = e.logit - f_bg[:, e.target].mean(0)
    # SHAP values add up to f_c(x) - E_background f_c
    np.testing.assert_allclose(e.relevance_sum(), expected, rtol=1e-4, atol=1e-4)
    assert e.method == "shap"



def test_kernel_shap_follows_random_state_not_numpys_global_seed():
    pytest.importorskip("shap")
    X, _ = make_blobs(60, centers=3, n_features=12, random_state=0)
    km = KMeans(3, n_init=2, random_state=0).fit(X)
    # 12 features, 40 coalitions: shap samples them (it enumerates all below 2^d)
    options = {"method": "shap", "background": X[40:50], "nsamples": 40}
    runs = []
    for global_seed in (0, 123):
        np.random.seed(global_seed)  # noqa: NPY002 (the state shap would otherwise read)
        runs.append(wc.explain(km, X[:3], random_state=0, **options).relevance)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(wc.explain(km, X[:3], random_state=1, **options).relevance, runs[0])


@pytest.mark.parametrize("window", [2, (2,), np.int64(2), np.array([2])])
def test_occlusion_takes_a_window_of_numpy_or_python_integers(data, kmeans, window):
    e = wc.explain(kmeans, data[:5], method="occlusion", window=window)
    net = wc.neuralize(kmeans)
    x = torch.from_numpy(data[:5])
    # a window of 2 features: each feature gets the mean drop of the windows covering it
    f = net(x).detach().numpy()[np.arange(5), e.target]
    total, count = np.zeros((5, 4)), np.zeros(4)
    for j in range(3):
        z = x.clone()
        z[:, j : j + 2] = 0.0
        total[:, j : j + 2] += (f - net(z).detach().numpy()[np.arange(5), e.target])[:, None]
        count[j : j + 2] += 1
    np.testing.assert_allclose(e.relevance, total / count, rtol=1e-4, atol=1e-4)
    assert e.relevance.shape == (5, 4) and np.all(np.isfinite(e.relevance))

def test_bad_options_are_named(data, kmeans):
    with pytest.raises(ValueError, match="unknown method"):
        wc.explain(kmeans, data, method="saliency_maps")
    with pytest.raises(TypeError, match="unknown option"):
        wc.explain(kmeans, data, method="gradient", n_steps=3)
    with pytest.raises(ValueError, match="n_steps"):
        wc.explain(kmeans, data, method="integrated_gradients", n_steps=1)
    with pytest.raises(ValueError, match="window"):
        wc.explain(kmeans, data, method="occlusion", window=(9,))
    with pytest.raises(ValueError, match="baseline"):
        wc.explain(kmeans, data, method="integrated_gradients", baseline=np.zeros(3))
    with pytest.raises(ValueError, match="contrast"):
        wc.explain(kmeans, data, method="gradient", contrast=1)
    with pytest.raises(ValueError, match="algorithm"):
        wc.explain(kmeans, data[:3], method="shap", algorithm="exact-ish")
    with pytest.raises(ValueError, match="background"):
        wc.explain(kmeans, data[:3], method="shap", background=np.zeros((4, 2)))


def test_mean_references_and_their_names(data, kmeans):
    net = wc.neuralize(kmeans)
    X = data[:25]
    g, _ = _grad_of_logit(net, X, kmeans.predict(X))
    mean = X.mean(0)
    e = wc.explain(net, X, "gradient_x_input", baseline="mean")
    np.testing.assert_allclose(e.relevance, g * (X - mean), rtol=1e-10, atol=1e-12)
    assert e.extras["reference"] == "mean"
    assert wc.explain(net, X, "gradient_x_input").extras["reference"] == "zero"
    assert wc.explain(net, X, "gradient").extras["reference"] == "none"
    ig = wc.explain(net, X, "integrated_gradients", baseline="mean", n_steps=64)
    assert ig.extras["reference"] == "mean"
    # completeness from the mean: sum of IG = f_c(x) - f_c(mean)
    f_mean = net(torch.from_numpy(np.broadcast_to(mean, X.shape).copy())).detach().numpy()
    expected = e.logit - f_mean[np.arange(25), e.target]
    np.testing.assert_allclose(ig.relevance.sum(1), expected, rtol=1e-2, atol=1e-2)
    occ = wc.explain(net, X, "occlusion", baseline=mean)
    assert occ.extras["reference"] == "array"
    with pytest.raises(ValueError, match="baseline"):
        wc.explain(net, X, "occlusion", baseline="median")


def test_random_method_is_seeded_and_uninformed(data, kmeans):
    a = wc.explain(kmeans, data[:10], "random", random_state=3)
    b = wc.explain(kmeans, data[:10], "random", random_state=3)
    np.testing.assert_array_equal(a.relevance, b.relevance)
    assert a.relevance.shape == (10, 4) and (a.relevance >= 0).all() and (a.relevance < 1).all()
    assert not np.array_equal(a.relevance, wc.explain(kmeans, data[:10], "random").relevance)
