"""Property tests: random affine pipelines, heads, shapes and dtypes stay exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import BisectingKMeans, KMeans
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

from whyclust.explainers.pipeline import explain_pipeline

SCALERS = [None, StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler]


@settings(max_examples=30)
@given(
    scaler=st.sampled_from(SCALERS),
    pca=st.sampled_from([None, "plain", "whiten"]),
    head=st.sampled_from(["kmeans", "bisecting", "full", "tied", "diag", "spherical"]),
    k=st.integers(2, 4),
    d=st.integers(2, 6),
    float32=st.booleans(),
    frame=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_random_pipelines_are_exact_and_conservative(scaler, pca, head, k, d, float32, frame, seed):
    X, _ = make_blobs(30 * k, n_features=d, centers=k, random_state=seed)
    X = X * np.linspace(1.0, 5.0, d) + 10.0
    steps = [] if scaler is None else [scaler()]
    if pca is not None:
        steps.append(PCA(max(1, d - 1), whiten=pca == "whiten", random_state=seed))
    if head == "kmeans":
        est = KMeans(k, n_init=2, random_state=seed)
    elif head == "bisecting":
        est = BisectingKMeans(k, random_state=seed)
    else:
        est = GaussianMixture(k, covariance_type=head, reg_covar=1e-3, random_state=seed)
    names = [f"col{i}" for i in range(d)]
    data = pd.DataFrame(X, columns=names) if frame else X
    pipe = make_pipeline(*steps, est).fit(data)
    Xd = data.astype(np.float32) if float32 else data
    e = explain_pipeline(pipe, Xd, beta=1.0)
    assert e.relevance.shape == (len(X), d)
    assert e.relevance.dtype == (np.float32 if float32 else np.float64)
    assert e.feature_names == (names if frame else [f"x{i}" for i in range(d)])
    if not float32:
        np.testing.assert_array_equal(e.cluster, pipe.predict(data))
    tol = 1e-4 if float32 else 1e-9
    assert np.abs(e.relevance.sum(1) - e.logit).max() <= tol * np.abs(e.logit).max()


@settings(max_examples=20)
@given(
    n_cat=st.integers(1, 4),
    missing=st.floats(0.0, 0.3),
    pca=st.booleans(),
    head=st.sampled_from(["kmeans", "bisecting", "diag", "full"]),
    k=st.integers(2, 4),
    seed=st.integers(0, 10_000),
)
def test_random_column_transformers_sum_back_to_the_columns(n_cat, missing, pca, head, k, seed):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(seed)
    X, _ = make_blobs(40 * k, n_features=3, centers=k, random_state=seed)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["cat"] = rng.choice([f"v{i}" for i in range(n_cat + 1)], len(df))
    df.loc[rng.random(len(df)) < missing, "b"] = np.nan
    ct = ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b"]),
         ("cat", OneHotEncoder(), ["cat"])],
        remainder="passthrough",
    )  # fmt: skip
    steps = [ct, *([PCA(3, random_state=seed)] if pca else [])]
    if head == "kmeans":
        est = KMeans(k, n_init=2, random_state=seed)
    elif head == "bisecting":
        est = BisectingKMeans(k, random_state=seed)
    else:
        est = GaussianMixture(k, covariance_type=head, reg_covar=1e-2, random_state=seed)
    pipe = make_pipeline(*steps, est).fit(df)
    e = explain_pipeline(pipe, df, space="model", beta=1.0)
    assert e.feature_names == ["a", "b", "c", "cat"]
    np.testing.assert_array_equal(e.cluster, pipe.predict(df))
    scale = np.abs(e.logit).max()
    assert np.abs(e.relevance.sum(1) - e.logit).max() <= 1e-9 * scale
    model = e.extras["model_relevance"]
    assert np.abs(model.sum(1) - e.logit).max() <= 1e-9 * scale
    np.testing.assert_array_equal(e.extras["imputed"][:, 1], df["b"].isna().to_numpy())
