"""Bad input gets a ValueError / TypeError naming the problem."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError

import whyclust as wc

RNG = np.random.default_rng(0)
CENTERS = RNG.normal(size=(3, 4))
X_OK = RNG.normal(size=(10, 4))


def with_value(row, col, value):
    X = X_OK.copy()
    X[row, col] = value
    return X


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (with_value(3, 1, np.nan), ValueError, "NaN.*row 3"),
        (with_value(5, 0, np.inf), ValueError, "infinite.*row 5"),
        (with_value(0, 2, -np.inf), ValueError, "infinite"),
        (RNG.normal(size=(10, 5)), ValueError, "5 features.*fitted with 4"),
        (RNG.normal(size=4), ValueError, "2-D.*reshape"),
        (np.empty((0, 4)), ValueError, "0 sample"),
        (np.array([["a", "b", "c", "d"]]), TypeError, "numeric"),
        (np.ones((2, 4), dtype=complex), TypeError, "real"),
        ([[1.0, 2.0], [3.0]], ValueError, "numeric array"),
    ],
)
def test_explain_rejects_bad_arrays(X, error, match):
    with pytest.raises(error, match=match):
        wc.explain(CENTERS, X)


def test_non_numeric_dataframe_columns_are_named():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_OK, columns=list("abcd"))
    frame["colour"] = ["red"] * 10
    centers5 = RNG.normal(size=(3, 5))
    with pytest.raises(TypeError, match="non-numeric columns: colour"):
        wc.explain(centers5, frame)


def test_unfitted_model():
    with pytest.raises(NotFittedError):
        wc.neuralize(KMeans(n_clusters=3))
    with pytest.raises(NotFittedError):
        wc.explain(KMeans(n_clusters=3), X_OK)


def test_single_cluster_is_refused():
    with pytest.raises(ValueError, match="at least 2 clusters"):
        wc.neuralize(np.ones((1, 4)))
    km = KMeans(n_clusters=1, n_init=1).fit(X_OK)
    with pytest.raises(ValueError, match="at least 2 clusters"):
        wc.explain(km, X_OK)


@pytest.mark.parametrize(
    ("centers", "error", "match"),
    [
        (np.ones(4), ValueError, r"shape \(K, d\)|2-D"),
        (np.array([[0.0, np.nan], [1.0, 1.0]]), ValueError, "NaN"),
        ("not centers", TypeError, "cannot neuralize"),
        (object(), TypeError, "cannot neuralize"),
    ],
)
def test_bad_centers(centers, error, match):
    with pytest.raises(error, match=match):
        wc.neuralize(centers)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target": 3}, ValueError, r"\[0, 2\]"),
        ({"target": -1}, ValueError, r"\[0, 2\]"),
        ({"target": np.zeros(9, dtype=int)}, ValueError, r"shape \(10,\)"),
        ({"target": "nearest"}, ValueError, "target must be"),
        ({"target": 0.5}, TypeError, "integers"),
        ({"beta": -1.0}, ValueError, "beta must be >= 0"),
        ({"beta": float("nan")}, ValueError, "beta must be >= 0"),
        ({"beta": "big"}, ValueError, "beta must be 'auto'"),
        ({"beta": None}, TypeError, "beta must be"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"contrast": 5}, ValueError, r"\[0, 2\]"),
    ],
)
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        wc.explain(CENTERS, X_OK, **kwargs)


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method 'magic'"):
        wc.explain(CENTERS, X_OK, method="magic")


def test_check_n_clusters():
    from whyclust._validation import check_n_clusters

    assert check_n_clusters(3, 10) == 3
    with pytest.raises(ValueError, match="at least 2"):
        check_n_clusters(1)
    with pytest.raises(ValueError, match="larger than the number of samples"):
        check_n_clusters(11, 10)
    with pytest.raises(TypeError, match="integer"):
        check_n_clusters(2.5)
    with pytest.raises(TypeError, match="integer"):
        check_n_clusters(True)


def test_bisecting_kmeans_is_neuralized_as_its_tree():
    from sklearn.cluster import BisectingKMeans

    X = np.random.default_rng(0).normal(size=(200, 4))
    model = BisectingKMeans(4, random_state=0).fit(X)
    # its predict walks the bisection tree; the network follows it (tests/test_bisecting.py)
    np.testing.assert_array_equal(wc.neuralize(model).predict(X), model.predict(X))
    # the centroids themselves are accepted: they explain nearest-centroid assignment
    assert wc.neuralize(model.cluster_centers_).n_clusters == 4


def test_encoder_shape_errors_are_said_in_the_users_terms() -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    enc = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3))
    X = np.random.default_rng(0).normal(size=(10, 1, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=r"encoder cannot take a batch of shape \(1, 64\)"):
        wc.explain((enc, np.zeros((3, 3), np.float32)), X.reshape(10, 64))
    with pytest.raises(ValueError, match=r"maps a point to 3 features.*centers have 5"):
        wc.explain((enc, np.zeros((3, 5), np.float32)), X)


def test_tell_refuses_a_decoder_of_the_wrong_shape_and_changed_params_in_partial_fit() -> None:
    nn = pytest.importorskip("torch").nn
    X = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    model = wc.TELL(n_clusters=3, encoder=(nn.Linear(8, 4), nn.Linear(4, 7)), max_iter=1,
                    pretrain_epochs=1)
    with pytest.raises(ValueError, match="decoder maps a batch of shape"):
        model.fit(X)
    tell = wc.TELL(n_clusters=3, max_iter=2, random_state=0).fit(X)
    tell.set_params(n_clusters=4)
    with pytest.raises(ValueError, match="call fit to start over"):
        tell.partial_fit(X)
    assert tell.cluster_centers_.shape == (3, 8)  # nothing changed


def test_contrast_errors_name_contrast_and_deletion_refuses_a_boolean_batch_size() -> None:
    X = np.random.default_rng(0).normal(size=(40, 3))
    km = KMeans(3, n_init=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"contrast clusters must lie in \[0, 2\]"):
        wc.explain(km, X, contrast=7)
    with pytest.raises(ValueError, match=r"equal for \d+ point\(s\)"):
        wc.explain(km, X, contrast=1)
    with pytest.raises(ValueError, match="batch_size"):
        wc.evaluation.deletion_curve(km, X, batch_size=True)


def test_nullable_pandas_columns_are_numbers_and_sparse_input_is_named():
    import pandas as pd
    import scipy.sparse as sp
    from sklearn.cluster import KMeans

    X = np.random.default_rng(0).normal(size=(30, 3))
    df = pd.DataFrame(np.round(X), columns=list("abc"))
    km = KMeans(3, n_init=2, random_state=0).fit(df)
    plain = wc.explain(km, df).relevance
    for dtype in ("Int64", "Float64"):
        np.testing.assert_array_equal(wc.explain(km, df.astype(dtype)).relevance, plain)
    coded = df.assign(b=pd.Categorical(df["b"]))  # categories that are numbers, as sklearn reads
    np.testing.assert_array_equal(wc.explain(km, coded).relevance, plain)
    with pytest.raises(TypeError, match="non-numeric columns: b"):
        wc.explain(km, df.assign(b=pd.Categorical(df["b"].astype(str))))
    holes = df.astype("Float64")
    holes.iloc[3, 1] = pd.NA
    with pytest.raises(ValueError, match="NaN"):
        wc.explain(km, holes)
    with pytest.raises(TypeError, match="sparse matrix"):
        wc.explain(km, sp.csr_matrix(df.to_numpy()))


def test_a_pipeline_fitted_on_sparse_input_names_it():
    """TruncatedSVD fits CSR tf-idf tables; explaining one asks for the dense rows instead of
    failing on numpy's 0-d object view of the matrix."""
    import scipy.sparse as sp
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.pipeline import make_pipeline

    X = sp.random(80, 12, density=0.3, format="csr", random_state=0)
    pipe = make_pipeline(TruncatedSVD(4, random_state=0), KMeans(3, n_init=2, random_state=0))
    pipe.fit(X)
    for call in (wc.explain, lambda m, x: wc.counterfactual(m, x, 0)):
        with pytest.raises(TypeError, match=r"sparse matrix; pass a dense array \(X.toarray"):
            call(pipe, X)
    e = wc.explain(pipe, X.toarray())
    np.testing.assert_array_equal(e.cluster, pipe.predict(X))


def test_an_option_the_model_does_not_take_is_named():
    """space= belongs to Pipelines and typos belong to nobody: the error names the
    caller's keyword and the model, not an internal function."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    X = np.random.default_rng(0).normal(size=(30, 3))
    for model in (KMeans(2, n_init=2, random_state=0).fit(X), GaussianMixture(2).fit(X)):
        name = type(model).__name__
        with pytest.raises(TypeError, match=rf"does not take space= for a {name} with method"):
            wc.explain(model, X, space="model")
        with pytest.raises(TypeError, match="does not take spaec="):
            wc.explain(model, X, spaec="model")
