"""GPU paths: explanations and TELL on CUDA agree with the CPU. Skipped without a CUDA GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

import whyclust as wc

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, KMeans]:
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3.0, size=(6, 20))
    X = (centers[rng.integers(0, 6, 3000)] + rng.normal(size=(3000, 20))).astype(np.float32)
    return X, KMeans(6, n_init=2, random_state=0).fit(X)


def _close(a, b, tol: float) -> None:
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=0, atol=tol * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_neon_kmeans_cuda_equals_cpu(blobs, dtype) -> None:
    X, km = blobs
    X = X.astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-11
    tgt = np.random.default_rng(1).integers(0, 6, X.shape[0])
    for kwargs in ({}, {"target": tgt}, {"beta": 2.0}, {"contrast": (km.predict(X) + 1) % 6}):
        cpu = wc.explain(km, X, **kwargs)
        gpu = wc.explain(km, X, device="cuda", batch_size=777, **kwargs)
        assert isinstance(gpu.relevance, np.ndarray) and gpu.relevance.dtype == dtype
        _close(gpu.relevance, cpu.relevance, tol)
        _close(gpu.logit, cpu.logit, tol)
        np.testing.assert_array_equal(gpu.cluster, cpu.cluster)
        assert (gpu.beta is None and cpu.beta is None) or gpu.beta == pytest.approx(
            cpu.beta, rel=1e-5
        )
        _close(gpu.relevance_sum(), gpu.logit, tol)  # conservation on the GPU too


def test_neuralize_on_cuda(blobs) -> None:
    X, km = blobs
    net = wc.neuralize(km, device="cuda")
    assert net.device.type == "cuda"
    np.testing.assert_array_equal(net.predict(X), km.predict(X))
    with torch.no_grad():
        logits = net(torch.from_numpy(X).cuda())
    assert logits.is_cuda
    # a network already on the GPU explains there without a device argument
    _close(wc.explain(net, X).relevance, wc.explain(km, X).relevance, 1e-5)


def test_streaming_and_dask_on_cuda(blobs) -> None:
    da = pytest.importorskip("dask.array")
    import dask

    from whyclust.scale import explain_to

    X, km = blobs
    cpu = wc.explain(km, X)
    out = np.empty_like(X)
    explain_to(km, X, out, device="cuda", batch_size=1000)
    _close(out, cpu.relevance, 1e-5)
    with dask.config.set(scheduler="synchronous"):
        e = wc.explain(km, da.from_array(X, chunks=700), device="cuda")
        _close(e.relevance.compute(), cpu.relevance, 1e-5)


def test_deep_encoder_cuda_equals_cpu(blobs) -> None:
    X, _ = blobs
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    with torch.no_grad():
        Z = encoder(torch.from_numpy(X)).numpy()
    km = KMeans(5, n_init=1, random_state=0).fit(Z)
    cpu = wc.explain((encoder, km.cluster_centers_), X)
    gpu = wc.explain((encoder, km.cluster_centers_), X, device="cuda")
    np.testing.assert_array_equal(gpu.cluster, cpu.cluster)
    _close(gpu.relevance, cpu.relevance, 1e-4)


def test_tell_on_cuda_predicts_like_cpu() -> None:
    if not hasattr(wc, "TELL"):
        pytest.skip("TELL is not part of this build")
    X, y = wc.datasets.load_digits()
    kwargs = {"n_clusters": 10, "n_init": 2, "max_iter": 15, "random_state": 0}
    cpu = wc.TELL(**kwargs).fit(X)
    gpu = wc.TELL(device="cuda", **kwargs).fit(X)
    # different kernels round differently, so the runs can drift apart: compare quality and
    # agreement, not bits
    acc_cpu = wc.metrics.cluster_accuracy(y, cpu.predict(X))
    acc_gpu = wc.metrics.cluster_accuracy(y, gpu.predict(X))
    assert acc_gpu > acc_cpu - 0.1
    assert wc.metrics.ari(cpu.predict(X), gpu.predict(X)) > 0.7
    net = wc.neuralize(gpu)
    assert net.device.type == "cuda"
    np.testing.assert_array_equal(net.predict(X), gpu.predict(X))
    e = wc.explain(gpu, X)
    _close(e.relevance_sum(), e.logit, 1e-4)
