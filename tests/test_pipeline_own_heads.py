"""Pipelines ending in whyclust's own clusterers (TELL, KernelKMeans), as `whyclust fit`
writes them for tables: relevance in the input columns, exact against the model's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
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
