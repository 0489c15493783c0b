"""Pipelines ending in whyclust's own clusterers (TELL, KernelKMeans), as `whyclust fit`
writes them for tables: relevance in the input columns, exact against the model's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import whyclust as wc


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(1)
    X, _ = make_blobs(300, 3, centers=3, cluster_std=1.5, random_state=1)
    df = pd.DataFrame({"height": X[:, 0], "colour": rng.choice(["red", "green", "blue"], 300),
                       "weight": X[:, 1], "age": X[:, 2]})  # fmt: skip
    df.loc[rng.random(300) < 0.1, "weight"] = np.nan
    ct = ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()),
          ["height", "weight", "age"]),
         ("cat", OneHotEncoder(sparse_output=False), ["colour"])],
        sparse_threshold=0.0,
    )  # fmt: skip
    return df, ct


def _heads():
    return {
        "tell-euclidean": wc.TELL(3, metric="euclidean", random_state=0),
        "tell-cosine": wc.TELL(3, metric="cosine", random_state=0),
        "kernel": wc.KernelKMeans(3, random_state=0),
    }


@pytest.mark.parametrize("name", ["tell-euclidean", "tell-cosine", "kernel"])
def test_own_head_relevance_is_the_heads_own_summed_per_column(frame, name):
    df, ct = frame
    pipe = make_pipeline(ct, _heads()[name]).fit(df)
    e = wc.explain(pipe, df)
    assert e.feature_names == list(df.columns)
    np.testing.assert_array_equal(e.cluster, pipe.predict(df))
    np.testing.assert_allclose(e.relevance.sum(1), e.logit, rtol=1e-6, atol=1e-6)
    # independent: the head explained on scikit-learn's own transform, indicator columns
    # summed back by their output names
    Z = pipe[:-1].transform(df)
    ref = wc.explain(pipe[-1], Z)
    np.testing.assert_allclose(e.logit, ref.logit, rtol=1e-6)
    out = list(pipe[:-1].get_feature_names_out())
    for j, col in enumerate(df.columns):
        idx = [i for i, n in enumerate(out) if n == f"num__{col}" or n.startswith(f"cat__{col}_")]
        np.testing.assert_allclose(e.relevance[:, j], ref.relevance[:, idx].sum(1), rtol=1e-5,
                                   atol=1e-6)  # fmt: skip
    assert e.extras["imputed"][:, 2].tolist() == df["weight"].isna().tolist()
    net = wc.neuralize(pipe)
    logits = net(torch.from_numpy(net.encode(df))).detach().numpy()
    np.testing.assert_array_equal(logits.argmax(1), pipe.predict(df))


def test_own_head_after_a_mixing_step_is_refused(frame):
    df, _ = frame
    X = df[["height", "age"]].to_numpy()
    pipe = make_pipeline(StandardScaler(), PCA(2), wc.TELL(3, random_state=0)).fit(X)
    with pytest.raises(TypeError, match="mixes columns"):
        wc.explain(pipe, X)


def test_own_head_reference_and_columns_checked(frame):
    df, _ = frame
    pipe = make_pipeline(StandardScaler(), wc.TELL(3, metric="euclidean", random_state=0))
    num = df[["height", "age"]]
    pipe.fit(num)
    e = wc.explain(pipe, num, reference="mean")
    np.testing.assert_allclose(e.relevance.sum(1), e.logit, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="another order"):
        wc.explain(pipe, num[["age", "height"]])


def test_pipeline_network_and_scale_paths_explain_like_the_pipeline() -> None:
    import dask.array as da

    from whyclust.scale import explain_to

    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 6)) * [1, 5, 0.5, 2, 3, 1] + [0, 10, -3, 1, 0, 2]
    pipe = make_pipeline(StandardScaler(), PCA(3, random_state=0),
                         KMeans(4, n_init=2, random_state=0)).fit(X)
    ref = wc.explain(pipe, X)
    net = wc.neuralize(pipe)
    np.testing.assert_allclose(wc.explain(net, X).relevance, ref.relevance, atol=1e-12)
    out = np.empty_like(X)
    explain_to(pipe, X, out, batch_size=16)
    np.testing.assert_allclose(out, ref.relevance, atol=1e-12)
    e = wc.explain(pipe, da.from_array(X, chunks=40))
    np.testing.assert_allclose(e.relevance.compute(), ref.relevance, atol=1e-12)
    curve = wc.evaluation.deletion_curve(pipe, X[:30])
    np.testing.assert_allclose(curve.logit, ref.logit[:30], rtol=1e-9)


def test_network_of_a_one_hot_pipeline_is_refused_with_the_way_out() -> None:
    from sklearn.compose import make_column_transformer

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "b": [0, 1, 0, 1, 2, 2]})
    pipe = make_pipeline(
        make_column_transformer((StandardScaler(), ["a"]), (OneHotEncoder(), ["b"])),
        KMeans(2, n_init=1, random_state=0),
    ).fit(frame)
    net = wc.neuralize(pipe)
    with pytest.raises(TypeError, match="explain the Pipeline"):
        wc.explain(net, net.encode(frame))
    assert wc.explain(pipe, frame).relevance.shape == (6, 2)
