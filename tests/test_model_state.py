"""State that must survive, or must not change: TELL's centers after a failed partial_fit,
its optimizer across save/load, seeds in files, and predict's precision far from 0."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris

import whyclust as wc

_X = load_iris().data


def test_centers_are_not_a_view_of_the_trainer():
    model = wc.TELL(3, random_state=0, max_iter=2).fit(_X)
    before = model.cluster_centers_
    kept = before.copy()
    model.partial_fit(_X[:40])
    np.testing.assert_array_equal(before, kept)
    assert not np.shares_memory(before, model.cluster_centers_)


def test_partial_fit_that_raises_leaves_the_model_unchanged():
    model = wc.TELL(3, random_state=0, max_iter=2, batch_size=5).fit(_X)
    centers, steps = model.cluster_centers_.copy(), model.n_steps_
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(iter([_X[:5], _X[5:10], _X[10:15, :3]]))
    np.testing.assert_array_equal(model.cluster_centers_, centers)
    assert model.n_steps_ == steps
    fresh = wc.TELL(3, random_state=0)
    with pytest.raises(ValueError):
        fresh.partial_fit(iter([_X[:20], _X[20:25, :3]]))
    assert not hasattr(fresh, "cluster_centers_")


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adadelta"])
def test_loaded_model_continues_partial_fit_as_the_original(tmp_path, optimizer):
    model = wc.TELL(3, optimizer=optimizer, random_state=0, max_iter=3).fit(_X)
    model.partial_fit(_X[:50])
    loaded = wc.load(wc.save(model, tmp_path / "t.whyclust"))
    model.partial_fit(_X[50:])
    loaded.partial_fit(_X[50:])
    np.testing.assert_array_equal(loaded.cluster_centers_, model.cluster_centers_)


def test_edited_optimizer_state_is_refused(tmp_path):
    import json

    from safetensors.numpy import save_file

    from whyclust import io

    path = wc.save(wc.TELL(3, optimizer="adam", random_state=0, max_iter=2).fit(_X),
                   tmp_path / "t.whyclust")  # fmt: skip
    header, tensors = io.read_model_file(path)
    key = next(k for k in tensors if k.endswith("optimizer.exp_avg"))
    tensors[key] = np.ascontiguousarray(tensors[key][..., :2])
    header["sha256"] = io._digest(header, tensors)
    save_file(tensors, str(path), metadata={"whyclust": json.dumps(header)})
    with pytest.raises(ValueError, match="optimizer state 'exp_avg' has shape"):
        wc.load(path)


def test_numpy_integer_seed_survives_save_and_load(tmp_path):
    model = wc.KernelKMeans(n_clusters=3, random_state=np.int64(7)).fit(_X)
    loaded = wc.load(wc.save(model, tmp_path / "k.whyclust"))
    assert loaded.random_state == 7
    np.testing.assert_array_equal(clone(loaded).fit(_X).labels_, clone(model).fit(_X).labels_)


def test_kernel_explain_refuses_inf_before_computing():
    model = wc.KernelKMeans(n_clusters=3, random_state=0).fit(_X)
    bad = _X.copy()
    bad[4, 1] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"infinite values \(first at row 4\)"):
            wc.explain(model, bad)


def test_init_size_below_n_clusters_is_named():
    with pytest.raises(ValueError, match="init_size=2 should be >= n_clusters=3"):
        wc.TELL(3, init_size=2, random_state=0, max_iter=1).fit(_X)


def test_predict_equals_the_explained_cluster_far_from_the_origin():
    X = (load_digits().data + 1000.0).astype(np.float32)  # uncentred float32
    model = wc.TELL(10, metric="euclidean", random_state=0, max_iter=2).fit(X)
    exact = ((X.astype(np.float64)[:, None] - model.cluster_centers_[None].astype(np.float64))
             ** 2).sum(-1).argmin(1)  # fmt: skip
    np.testing.assert_array_equal(model.predict(X), exact)
    np.testing.assert_array_equal(wc.explain(model, X).cluster, model.predict(X))


def test_a_bad_row_in_a_stream_is_numbered_from_the_stream_start():
    model = wc.TELL(3, random_state=0, max_iter=2).fit(_X)
    bad = np.full((3, 4), np.nan)
    with pytest.raises(ValueError, match=r"first at row 10\)"):
        model.partial_fit(iter([_X[:5], _X[5:10], bad]))
    with pytest.raises(ValueError, match=r"first at row 5\)"):
        model.predict(iter([_X[:5], bad]))
