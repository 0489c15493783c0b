"""Model files for scikit-learn estimators and Pipelines: exact round trips, refused edits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.impute import SimpleImputer
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    RobustScaler,
    StandardScaler,
)

import whyclust as wc
from whyclust import io

RNG = np.random.default_rng(0)
_X = RNG.normal(size=(90, 4))
_X[:30, :2] += 4.0
_X[30:60, 2:] -= 4.0
FRAME = pd.DataFrame(_X, columns=["alpha", "beta", "gamma", "delta"])
MIXED = FRAME.assign(
    colour=RNG.choice(["red", "green", "blue", "grey"], size=90, p=[0.4, 0.3, 0.25, 0.05])
)
MIXED.loc[[3, 17], "beta"] = np.nan


def _km(k=3):
    return KMeans(n_clusters=k, n_init=2, random_state=0)


CASES = {
    "kmeans": lambda: (_km(), FRAME),
    "minibatch": lambda: (MiniBatchKMeans(3, n_init=2, random_state=0), FRAME),
    "bisecting": lambda: (BisectingKMeans(5, random_state=0), FRAME),
    "bisecting-largest": lambda: (
        BisectingKMeans(4, bisecting_strategy="largest_cluster", random_state=1),
        FRAME.to_numpy(),
    ),
    **{
        f"gmm-{cov}": (
            lambda cov=cov: (GaussianMixture(3, covariance_type=cov, random_state=0), FRAME)
        )
        for cov in ("full", "tied", "diag", "spherical")
    },
    **{
        f"pipe-{type(step()).__name__}": (lambda step=step: (make_pipeline(step(), _km()), FRAME))
        for step in (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler)
    },
    "pipe-pca-whiten": lambda: (make_pipeline(StandardScaler(), PCA(2, whiten=True), _km()), FRAME),
    "pipe-svd": lambda: (make_pipeline(TruncatedSVD(2, random_state=0), _km()), FRAME),
    "pipe-columns": lambda: (
        Pipeline(
            [
                (
                    "prep",
                    ColumnTransformer(
                        [
                            (
                                "num",
                                make_pipeline(
                                    SimpleImputer(strategy="median", add_indicator=True),
                                    StandardScaler(),
                                ),
                                ["alpha", "beta", "gamma", "delta"],
                            ),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                        ]
                    ),
                ),
                ("cluster", _km(4)),
            ]
        ),
        MIXED,
    ),
    "pipe-passthrough-drop": lambda: (
        make_pipeline(
            ColumnTransformer(
                [("s", StandardScaler(), ["alpha"]), ("gone", "drop", ["beta"])],
                remainder="passthrough",
            ),
            GaussianMixture(2, random_state=0),
        ),
        FRAME,
    ),
    "pipe-remainder-estimator": lambda: (
        make_pipeline(
            ColumnTransformer(
                [("c", OneHotEncoder(drop="first", min_frequency=10), ["colour"])],
                remainder=MinMaxScaler(),
            ),
            BisectingKMeans(3, random_state=0),
        ),
        MIXED.fillna(0.0),
    ),
    "pipe-imputer-most-frequent": lambda: (
        make_pipeline(
            ColumnTransformer(
                [
                    ("n", SimpleImputer(strategy="mean"), ["alpha", "beta"]),
                    ("c", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()),
                     ["colour"]),
                ]
            ),
            _km(),
        ),
        MIXED,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip_predicts_the_same(tmp_path, name):
    model, data = CASES[name]()
    model.fit(data)
    labels = model.predict(data)
    assert np.unique(labels).size >= 2  # the fit did not collapse
    back = wc.load(wc.save(model, tmp_path / "m.whyclust"))
    assert type(back) is type(model)
    np.testing.assert_array_equal(back.predict(data), labels)
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(back.predict_proba(data), model.predict_proba(data))
    if isinstance(model, Pipeline):
        Xt = model[:-1].transform(data)
        np.testing.assert_array_equal(back[:-1].transform(data), Xt)
    assert back.n_features_in_ == model.n_features_in_
    if hasattr(model, "feature_names_in_"):
        assert list(back.feature_names_in_) == list(model.feature_names_in_)
    else:
        assert not hasattr(back, "feature_names_in_")
    # a second round trip writes the same description: nothing drifts
    again = wc.save(back, tmp_path / "m2.whyclust")
    h1, t1 = io.read_model_file(tmp_path / "m.whyclust")
    h2, t2 = io.read_model_file(again)
    assert h1 == h2 and sorted(t1) == sorted(t2)


def test_bisecting_tree_is_rebuilt_not_replaced_by_nearest_center(tmp_path):
    """Bisecting k-means predicts down its tree, which can differ from the nearest center."""
    X = RNG.normal(size=(400, 2)) * [3.0, 1.0]
    model = BisectingKMeans(6, random_state=0).fit(X)
    grid = RNG.uniform(-10, 10, size=(4000, 2))
    nearest = ((grid[:, None] - model.cluster_centers_[None]) ** 2).sum(-1).argmin(1)
    tree = model.predict(grid)
    assert (nearest != tree).any()  # otherwise this test could not tell them apart
    back = wc.load(wc.save(model, tmp_path / "b.whyclust"))
    np.testing.assert_array_equal(back.predict(grid), tree)


@pytest.mark.parametrize("name", ["TELL", "KernelKMeans"])
def test_whyclust_models_inside_a_pipeline(tmp_path, name):
    model = getattr(wc, name)(n_clusters=3, random_state=0)
    if name == "TELL":
        model.set_params(n_init=1, max_iter=3)
    pipe = make_pipeline(StandardScaler(), model).fit(FRAME)
    back = wc.load(wc.save(pipe, tmp_path / "p.whyclust"))
    assert type(back[-1]) is type(model)
    np.testing.assert_array_equal(back.predict(FRAME), pipe.predict(FRAME))
    assert list(back.feature_names_in_) == list(FRAME.columns)


@pytest.mark.parametrize("name", ["TELL", "KernelKMeans"])
def test_feature_names_survive_for_whyclust_models(tmp_path, name):
    model = getattr(wc, name)(n_clusters=3, random_state=0)
    if name == "TELL":
        model.set_params(n_init=1, max_iter=3)
    model.fit(FRAME)
    model.feature_names_in_ = np.asarray(FRAME.columns, dtype=object)  # as sklearn records
    back = wc.load(wc.save(model, tmp_path / "m.whyclust"))
    assert list(back.feature_names_in_) == list(FRAME.columns)


def test_function_transformer_with_code_is_refused(tmp_path):
    pipe = make_pipeline(FunctionTransformer(np.log1p), _km()).fit(np.abs(_X))
    with pytest.raises(TypeError, match="FunctionTransformer with a function"):
        wc.save(pipe, tmp_path / "f.whyclust")
    assert list(tmp_path.iterdir()) == []


def test_unlisted_estimator_is_refused(tmp_path):
    from sklearn.preprocessing import PolynomialFeatures

    pipe = make_pipeline(PolynomialFeatures(), _km()).fit(_X)
    with pytest.raises(TypeError, match="PolynomialFeatures"):
        wc.save(pipe, tmp_path / "p.whyclust")


def test_subclass_is_not_mistaken_for_its_parent(tmp_path):
    class MyKMeans(KMeans):
        pass

    with pytest.raises(TypeError, match="no whyclust file format"):
        wc.save(MyKMeans(2, n_init=1).fit(_X), tmp_path / "s.whyclust")


def test_unfitted_pipeline_is_refused(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        wc.save(make_pipeline(StandardScaler(), _km()), tmp_path / "u.whyclust")


def _resign(path: Path, edit) -> None:
    from safetensors.numpy import save_file

    header, tensors = io.read_model_file(path)
    edit(header, tensors)
    header["sha256"] = io._digest(header, tensors)
    save_file(tensors, str(path), metadata={"whyclust": json.dumps(header)})


def _tree_edit(which: str):
    def edit(header, tensors):
        key = "m.a.tree." + which
        arr = tensors[key].copy()
        if which == "children":
            arr[0] = [0, 0]
        elif which == "labels":
            arr[arr >= 0] = 0
        else:
            arr[0, 0] = np.inf
        tensors[key] = arr

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_tree_edit("children"), "binary tree"),
        (_tree_edit("labels"), "leaf labels"),
        (_tree_edit("centers"), "inconsistent shapes"),
        (lambda h, t: t.pop("m.a.tree.scores"), "missing BisectingKMeans tree tensor"),
    ],
)
def test_edited_bisecting_tree_is_refused(tmp_path, edit, match):
    path = wc.save(BisectingKMeans(4, random_state=0).fit(_X), tmp_path / "b.whyclust")
    _resign(path, edit)
    with pytest.raises(ValueError, match=match):
        wc.load(path)


def test_pipeline_step_class_cannot_be_swapped_for_code(tmp_path):
    path = wc.save(make_pipeline(StandardScaler(), _km()).fit(_X), tmp_path / "p.whyclust")

    def edit(header, tensors):
        steps = header["config"]["estimator"]["params"]["steps"]
        steps[0]["$tuple"][1]["$estimator"]["class"] = "FunctionTransformer"
        steps[0]["$tuple"][1]["$estimator"]["params"] = {"func": "os.system"}

    _resign(path, edit)
    with pytest.raises(ValueError, match="inconsistent"):
        wc.load(path)


def test_string_width_is_not_taken_from_the_file(tmp_path):
    frame = pd.DataFrame({"c": np.array(["ab", "cd", "ab", "cd"])})
    model = make_pipeline(OneHotEncoder(), _km(2)).fit(frame)
    path = wc.save(model, tmp_path / "s.whyclust")

    def edit(header, tensors):
        step = header["config"]["estimator"]["params"]["steps"][0]["$tuple"][1]["$estimator"]
        names = step["attrs"]["feature_names_in_"]
        names["dtype"] = "<U999999999"  # would allocate gigabytes if trusted
        names["$objects"] = ["c"]

    _resign(path, edit)
    back = wc.load(path)
    assert list(back.feature_names_in_) == ["c"]
    np.testing.assert_array_equal(back.predict(frame), model.predict(frame))


def test_pipeline_cache_is_refused(tmp_path):
    model = Pipeline([("s", StandardScaler()), ("k", _km(2))], memory=str(tmp_path)).fit(_X)
    with pytest.raises(TypeError, match="memory"):
        wc.save(model, tmp_path / "c.whyclust")


def _rewrite(path, edit) -> None:
    """Edit a model file's description and sign it again (a crafted, well-formed file)."""
    import copy

    from safetensors.numpy import save_file

    import whyclust.io as wio

    header, tensors = wio.read_model_file(path)
    header = copy.deepcopy(header)
    edit(header["config"]["estimator"])
    header.pop("sha256", None)
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    header["sha256"] = wio._digest(header, arrays)
    save_file(arrays, str(path), metadata={"whyclust": json.dumps(header, sort_keys=True)})


@pytest.mark.parametrize(
    ("model", "edit", "message"),
    [
        ("kmeans", lambda e: e["params"].update(n_clusters=7), "n_clusters=7"),
        ("kmeans", lambda e: e["attrs"].update(labels_=0), "labels_"),
        ("bisecting", lambda e: e["attrs"].update(_X_mean=0.5), "_X_mean"),
        ("gmm", lambda e: e["attrs"].update(precisions_cholesky_=-1.0), "precisions_cholesky_"),
    ],
)
def test_signed_but_inconsistent_files_are_refused(tmp_path, model, edit, message):
    X = np.random.default_rng(0).normal(size=(60, 4))
    est = {"kmeans": KMeans(3, n_init=1, random_state=0),
           "bisecting": BisectingKMeans(3, random_state=0),
           "gmm": GaussianMixture(3, covariance_type="diag", random_state=0)}[model]  # fmt: skip
    est.fit(X)
    path = tmp_path / "m.whyclust"
    wc.save(est, path)
    _rewrite(path, edit)
    with pytest.raises(ValueError, match=message):
        wc.load(path)


def _set(key, change):
    def edit(header, tensors):
        tensors[key] = np.ascontiguousarray(change(tensors[key]))

    return edit


@pytest.mark.parametrize(
    ("model", "edit", "match"),
    [
        (KMeans(3, n_init=2, random_state=0), _set("m.a.labels_", lambda a: a + 5),
         r"labels_ must lie in \[0, 3\)"),
        (KMeans(3, n_init=2, random_state=0),
         _set("m.a.cluster_centers_", lambda a: np.round(a).astype(np.int64)), "floating-point"),
        (BisectingKMeans(3, random_state=0), _set("m.a.tree.centers", lambda a: a[:, :-1]),
         "tree's centres do not match"),
        (GaussianMixture(3, random_state=0), _set("m.a.weights_", lambda a: a * [-1, 1, 1]),
         "weights_ must be positive and sum to 1"),
        (GaussianMixture(3, random_state=0), _set("m.a.weights_", lambda a: a * 2),
         "weights_ must be positive and sum to 1"),
    ],
)  # fmt: skip
def test_signed_file_with_impossible_fitted_values_is_refused(tmp_path, model, edit, match):
    path = wc.save(model.fit(_X), tmp_path / "m.whyclust")
    _resign(path, edit)
    with pytest.raises(ValueError, match=match):
        wc.load(path)


def test_round_trip_is_bit_identical_whatever_the_components_layout(tmp_path):
    from sklearn.datasets import load_wine

    X = load_wine(as_frame=True).data  # PCA's components_ come out in Fortran order
    model = make_pipeline(StandardScaler(), PCA(5), KMeans(3, n_init=3, random_state=0)).fit(X)
    back = wc.load(wc.save(model, tmp_path / "p.whyclust"))
    a, b = wc.explain(model, X), wc.explain(back, X)
    np.testing.assert_array_equal(a.relevance, b.relevance)
    np.testing.assert_array_equal(a.logit, b.logit)
