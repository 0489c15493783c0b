"""Streaming and dask: errors numbered in the whole data, per-point extras joined by name,
outputs that alias their input refused, shared networks explained from several threads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_digits, load_wine
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import whyclust as wc
from whyclust.scale import explain_to

da = pytest.importorskip("dask.array")
_X = load_wine().data


def test_a_nan_row_is_numbered_in_the_whole_data():
    gm = GaussianMixture(3, random_state=0).fit(_X)
    bad = _X.copy()
    bad[157, 2] = np.nan
    with pytest.raises(ValueError, match=r"first at row 157\b"):
        explain_to(gm, bad, np.empty_like(bad), beta=1.0, batch_size=50)
    with pytest.raises(ValueError, match=r"first at row 157\b"):
        wc.explain(gm, da.from_array(bad, chunks=(50, -1)), beta=1.0).relevance.compute()


def test_output_sharing_memory_with_the_input_is_refused():
    km = KMeans(3, n_init=2, random_state=0).fit(_X)
    X = _X.copy()
    with pytest.raises(ValueError, match="out shares memory with X"):
        explain_to(km, X, X)


def test_a_misspelt_option_is_named_as_explains():
    gm = GaussianMixture(3, random_state=0).fit(_X)
    with pytest.raises(TypeError, match="does not take refrence="):
        explain_to(gm, _X, np.empty_like(_X), refrence="mean")


def test_per_point_extras_are_joined_whatever_the_batch_size():
    X = load_digits().data  # 64 columns: batches of 64 rows look like a (d,) extra
    pipe = make_pipeline(make_column_transformer((StandardScaler(), slice(0, 64))),
                         KMeans(4, n_init=2, random_state=0)).fit(X)  # fmt: skip
    whole = wc.explain(pipe, X)
    for n in (1792, 1797):
        e = explain_to(pipe, X[:n], np.empty((n, 64)), batch_size=64)
        np.testing.assert_array_equal(e.extras["encoded_groups"], whole.extras["encoded_groups"])


def test_neuralize_gives_each_caller_its_own_kernel_network():
    kk = wc.KernelKMeans(n_clusters=3, random_state=0).fit(_X)
    net = wc.neuralize(kk)
    assert net is not wc.neuralize(kk)
    net.float()
    fresh = wc.neuralize(kk).state_dict()
    assert fresh and all(v.dtype == torch.float64 for v in fresh.values() if v.is_floating_point())


def test_one_deep_network_explained_from_several_threads():
    # dask's threaded scheduler explains chunks of one shared network at the same time
    X = load_wine().data.astype(np.float32)
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Linear(13, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    with torch.no_grad():
        Z = enc(torch.from_numpy(X)).numpy()
    centers = KMeans(3, n_init=3, random_state=0).fit(Z).cluster_centers_.astype(np.float32)
    model = (enc, torch.from_numpy(centers))
    for options in ({"beta": 0.5}, {"reference": "mean"}):
        alone = wc.explain(model, X, **options).relevance
        scale = np.abs(alone).max()
        for _ in range(8):
            together = wc.explain(model, da.from_array(X, chunks=(7, -1)), **options)
            np.testing.assert_allclose(together.relevance.compute(), alone, atol=1e-5 * scale)
