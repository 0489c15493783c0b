"""Pipelines explained in the user's own columns: exact folding, one-hot sums, imputation."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import BisectingKMeans, KMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.impute import SimpleImputer
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    RobustScaler,
    StandardScaler,
)

import whyclust as wc
from whyclust.explainers.kmeans import explain_kmeans
from whyclust.explainers.mixture import explain_mixture
from whyclust.explainers.pipeline import explain_pipeline


def _data(n=300, d=6, k=4, seed=0):
    X, _ = make_blobs(n, n_features=d, centers=k, random_state=seed)
    return X * np.arange(1, d + 1) + 20.0  # unequal scales, far from the origin


def _conserves(e, tol=1e-9):
    return np.abs(e.relevance.sum(1) - e.logit).max() <= tol * np.abs(e.logit).max()


def _loop_pca_kmeans(pipe, X, beta):
    """Oracle: k-means NEON pulled back one point and one competitor at a time through
    B = D^-1 (A D^-1)^+, D the first step's (a scaler's) column scales: the roots nearest
    in the scaled space, whatever X's units."""
    pre, km = pipe[:-1], pipe[-1]
    d = X.shape[1]
    a0 = pre.transform(np.zeros((1, d)))[0]
    A = (pre.transform(np.eye(d)) - a0).T  # (m, d): images of the unit vectors
    D = np.diag(pre[0].transform(np.eye(d)) - pre[0].transform(np.zeros((1, d))))
    B = np.linalg.pinv(A / D) / D[:, None]
    mu = km.cluster_centers_
    out = np.zeros_like(X)
    for i, x in enumerate(X):
        z = pre.transform(x[None])[0]
        d2 = ((z - mu) ** 2).sum(1)
        c = d2.argmin()
        others = [k for k in range(len(mu)) if k != c]
        h = d2[others] - d2[c]
        f = h.min()
        w = np.exp(-beta * (h - f))
        w /= w.sum()
        for k, hk, wk in zip(others, h, w, strict=True):
            wz = 2 * (mu[c] - mu[k])
            out[i] += wk * f / hk * (B @ (z - (mu[c] + mu[k]) / 2)) * (A.T @ wz)
    return out


@pytest.mark.parametrize(
    "steps",
    [
        [StandardScaler()],
        [StandardScaler(), PCA(5)],
        [MinMaxScaler(), PCA(4, whiten=True)],
        [RobustScaler(), MaxAbsScaler()],
        [StandardScaler(), TruncatedSVD(3, random_state=0)],
    ],
    ids=lambda s: "+".join(type(x).__name__ for x in s),
)
@pytest.mark.parametrize("head", ["kmeans", "gmm", "bisecting"])
def test_affine_pipelines_are_exact(steps, head):
    X = _data()
    est = {"kmeans": KMeans(4, n_init=3, random_state=0),
           "gmm": GaussianMixture(4, random_state=0),
           "bisecting": BisectingKMeans(4, random_state=0)}[head]  # fmt: skip
    pipe = make_pipeline(*steps, est).fit(X)
    assert len(np.unique(pipe.predict(X))) == 4
    for Xd, tol in ((X, 1e-9), (X.astype(np.float32), 1e-4)):
        e = explain_pipeline(pipe, Xd)
        assert e.relevance.shape == X.shape and e.relevance.dtype == Xd.dtype
        if Xd.dtype == np.float64:
            np.testing.assert_array_equal(e.cluster, pipe.predict(X))
        else:  # float32 rounding may only flip points on a boundary
            assert (e.cluster == pipe.predict(X)).mean() >= 0.99
        assert _conserves(e, tol)
    for kw in ({"target": 0}, {"reference": "mean"}, {"contrast": (pipe.predict(X) + 1) % 4}):
        assert _conserves(explain_pipeline(pipe, X, **kw))


def test_pca_kmeans_matches_a_per_point_pullback_loop():
    X = _data(120)
    pipe = make_pipeline(StandardScaler(), PCA(3), KMeans(4, n_init=3, random_state=0)).fit(X)
    e = explain_pipeline(pipe, X, beta=0.05)
    np.testing.assert_allclose(e.relevance, _loop_pca_kmeans(pipe, X, 0.05), rtol=1e-7,
                               atol=1e-9 * np.abs(e.logit).max())  # fmt: skip


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    head=st.sampled_from(["kmeans", "gmm", "bisecting"]),
    scaler=st.sampled_from(["standard", "minmax", "robust"]),
    mixer=st.sampled_from(["pca", "whiten", "svd"]),
)
def test_scaled_then_mixed_pipelines_do_not_depend_on_the_units(seed, head, scaler, mixer):
    """Changing a column's unit (scaling it) changes neither the clusters nor, after a
    scaler, the explanation: the pull-back's roots are measured in the scaled space."""
    rng = np.random.default_rng(seed)
    X = _data(90, 5) + rng.normal(size=5)
    units = 10.0 ** rng.uniform(-3, 3, size=5)
    pre = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}[scaler]
    mix = {"pca": lambda: PCA(3, random_state=0), "whiten": lambda: PCA(3, whiten=True),
           "svd": lambda: TruncatedSVD(3, random_state=0)}[mixer]  # fmt: skip
    clu = {"kmeans": lambda: KMeans(3, n_init=2, random_state=0),
           "gmm": lambda: GaussianMixture(3, covariance_type="full", random_state=0),
           "bisecting": lambda: BisectingKMeans(3, random_state=0)}[head]  # fmt: skip
    a = make_pipeline(pre(), mix(), clu()).fit(X)
    b = make_pipeline(pre(), mix(), clu()).fit(X * units)
    ea, eb = explain_pipeline(a, X, beta=0.5), explain_pipeline(b, X * units, beta=0.5)
    if not np.array_equal(ea.cluster, eb.cluster):  # a fit that rounding tipped elsewhere
        return
    scale = np.abs(ea.relevance).max()
    np.testing.assert_allclose(eb.relevance, ea.relevance, atol=1e-6 * scale, rtol=1e-5)


def test_diagonal_pipeline_equals_the_model_space_explanation():
    """Scalers: the relevance of each column is that of its scaled copy (section 9)."""
    X = _data()
    km = make_pipeline(StandardScaler(), KMeans(4, n_init=3, random_state=0)).fit(X)
    ref = explain_kmeans(km[-1].cluster_centers_, km[:-1].transform(X), beta=0.1)
    np.testing.assert_allclose(explain_pipeline(km, X, beta=0.1).relevance, ref.relevance,
                               rtol=1e-9, atol=1e-12)  # fmt: skip
    gm = make_pipeline(RobustScaler(), GaussianMixture(4, covariance_type="diag", random_state=0))
    gm.fit(X)
    ref = explain_mixture(gm[-1], gm[:-1].transform(X), beta=0.1)
    np.testing.assert_allclose(explain_pipeline(gm, X, beta=0.1).relevance, ref.relevance,
                               rtol=1e-9, atol=1e-12)  # fmt: skip


def test_model_space_relevance_of_a_dense_gmm_pipeline():
    X = _data()
    pipe = make_pipeline(StandardScaler(), PCA(4), GaussianMixture(4, random_state=0)).fit(X)
    e = explain_pipeline(pipe, X, beta=0.2, space="model")
    ref = explain_mixture(pipe[-1], pipe[:-1].transform(X), beta=0.2)
    np.testing.assert_allclose(e.extras["model_relevance"], ref.relevance, rtol=1e-8,
                               atol=1e-10 * np.abs(e.logit).max())  # fmt: skip
    assert e.extras["model_feature_names"] == ["pca0", "pca1", "pca2", "pca3"]
    assert _conserves(e)


@pytest.fixture(scope="module")
def mixed_frame():
    rng = np.random.default_rng(0)
    X = _data(400, 3)
    df = pd.DataFrame({"height": X[:, 0], "weight": X[:, 1],
                       "colour": rng.choice(["red", "green", "blue"], 400),
                       "age": X[:, 2], "id": np.arange(400.0)})  # fmt: skip
    df.loc[rng.random(400) < 0.1, "weight"] = np.nan
    ct = ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
          ["height", "weight"]),
         ("cat", OneHotEncoder(), ["colour"]),
         ("drop_id", "drop", ["id"])],
        remainder="passthrough",
    )  # fmt: skip
    return df, ct


def test_an_unseen_category_names_the_users_column(mixed_frame):
    df, ct = mixed_frame
    pipe = make_pipeline(ct, KMeans(3, n_init=2, random_state=0)).fit(df)
    new = df.iloc[:2].copy()
    new["colour"] = ["red", "purple"]
    with pytest.raises(ValueError, match="column 'colour': Found unknown categories"):
        wc.explain(pipe, new)


@pytest.mark.parametrize("with_pca", [False, True])
@pytest.mark.parametrize("head", ["kmeans", "gmm", "bisecting"])
def test_column_transformer_with_one_hot_and_imputer(mixed_frame, with_pca, head):
    df, ct = mixed_frame
    est = {"kmeans": KMeans(3, n_init=3, random_state=0),
           "gmm": GaussianMixture(3, random_state=0),
           "bisecting": BisectingKMeans(3, random_state=0)}[head]  # fmt: skip
    pipe = make_pipeline(ct, *([PCA(4)] if with_pca else []), est).fit(df)
    e = explain_pipeline(pipe, df, space="model")
    assert e.feature_names == list(df.columns)
    assert list(e.to_frame().columns) == list(df.columns)
    np.testing.assert_array_equal(e.cluster, pipe.predict(df))
    assert _conserves(e)
    assert (e.relevance[:, 4] == 0).all()  # the dropped column
    np.testing.assert_array_equal(e.extras["imputed"][:, 1], df["weight"].isna().to_numpy())
    assert not e.extras["imputed"][:, [0, 2, 3, 4]].any()
    if not with_pca:  # diagonal: the colour relevance is the sum over its indicators
        names = pipe[:-1].get_feature_names_out()
        ind = [i for i, n in enumerate(names) if n.startswith("cat__colour_")]
        summed = e.extras["model_relevance"][:, ind].sum(1)
        np.testing.assert_allclose(e.relevance[:, 2], summed, rtol=1e-12)


def test_column_checks_name_missing_extra_and_reordered(mixed_frame):
    df, ct = mixed_frame
    pipe = make_pipeline(ct, KMeans(3, n_init=2, random_state=0)).fit(df)
    with pytest.raises(ValueError, match=r"missing \['age'\]"):
        explain_pipeline(pipe, df.drop(columns="age"))
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        explain_pipeline(pipe, df.assign(extra=1.0))
    with pytest.raises(ValueError, match="in the order"):
        explain_pipeline(pipe, df[df.columns[::-1]])


def test_non_affine_steps_are_refused_by_name():
    X = _data()
    pipe = make_pipeline(StandardScaler(), Normalizer(), KMeans(3, n_init=2)).fit(X)
    with pytest.raises(TypeError, match=r"'normalizer' \(Normalizer\)"):
        explain_pipeline(pipe, X)
    pipe = make_pipeline(MinMaxScaler(clip=True), KMeans(3, n_init=2)).fit(X)
    with pytest.raises(TypeError, match="clip"):
        explain_pipeline(pipe, X)
    from sklearn.cluster import AgglomerativeClustering

    with pytest.raises(TypeError, match="no rule that assigns a new point"):
        wc.explain(AgglomerativeClustering(3).fit(X), X)
    with pytest.raises(TypeError, match="AgglomerativeClustering"):
        wc.neuralize(AgglomerativeClustering(3).fit(X))


def test_unimputed_nan_is_named():
    X = _data()
    pipe = make_pipeline(StandardScaler(), KMeans(3, n_init=2, random_state=0)).fit(X)
    X = X.copy()
    X[5, 2] = np.nan
    with pytest.raises(ValueError, match="row 5 in column 'x2'"):
        explain_pipeline(pipe, X)


def test_torch_views_of_pipelines(mixed_frame):
    X = _data()
    for pipe in (make_pipeline(StandardScaler(), PCA(3), KMeans(4, n_init=2, random_state=0)),
                 make_pipeline(MinMaxScaler(), GaussianMixture(4, random_state=0))):  # fmt: skip
        pipe.fit(X)
        net = wc.neuralize(pipe)
        np.testing.assert_array_equal(net(torch.from_numpy(X)).argmax(1).numpy(), pipe.predict(X))
        e = wc.explain(pipe, X)
        np.testing.assert_array_equal(e.cluster, pipe.predict(X))
    df, ct = mixed_frame
    pipe = make_pipeline(ct, KMeans(3, n_init=2, random_state=0)).fit(df)
    net = wc.neuralize(pipe)
    u = torch.from_numpy(net.encode(df))
    np.testing.assert_array_equal(net(u).argmax(1).numpy(), pipe.predict(df))


def test_numpy_path_never_imports_torch():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from sklearn.cluster import BisectingKMeans, KMeans, MeanShift
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from whyclust import explain
        X = np.random.default_rng(0).normal(size=(200, 4))
        X[:100] += 4
        for m in (make_pipeline(StandardScaler(), PCA(3), KMeans(3, n_init=2)),
                  GaussianMixture(3, covariance_type="full"), BisectingKMeans(3),
                  MeanShift(bandwidth=2.0)):
            e = explain(m.fit(X), X)
            assert (e.cluster == m.predict(X)).all()
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("shift", [0.0, 1e4])
def test_folded_diagonal_kmeans_both_shift_modes(shift):
    """The diagonal folded into the centroids, with and without the input shift."""
    from whyclust.engine.affine import DiagonalKMeans

    X = _data(300, 4) + shift
    pipe = make_pipeline(MaxAbsScaler(), KMeans(4, n_init=3, random_state=0)).fit(X)
    scale = 1.0 / pipe[0].scale_
    geom = DiagonalKMeans(pipe[-1].cluster_centers_, scale, np.zeros(4))
    assert geom.shift_inputs == (shift > 0)
    ref = explain_kmeans(pipe[-1].cluster_centers_, pipe[:-1].transform(X), beta=0.1)
    for Xd, tol in ((X, 1e-9), (X.astype(np.float32), 1e-4)):
        e = explain_pipeline(pipe, Xd, beta=0.1)
        assert _conserves(e, tol)
        np.testing.assert_allclose(e.relevance, ref.relevance, rtol=tol * 100,
                                   atol=tol * np.abs(ref.logit).max())  # fmt: skip
        if Xd.dtype == np.float64:
            np.testing.assert_array_equal(e.cluster, pipe.predict(X))


@pytest.mark.parametrize("head", ["kmeans", "gmm", "bisecting"])
@pytest.mark.parametrize("pca", [False, True])
def test_torch_tensor_path_equals_numpy(monkeypatch, head, pca):
    """The device path (arrays as torch tensors), run on the CPU: the numpy result."""
    import whyclust.explainers.bisecting as bis_mod
    import whyclust.explainers.mixture as mix_mod
    import whyclust.explainers.pipeline as pipe_mod
    from whyclust.explainers._engine import on_device

    def as_torch(arrays, dtype, device):
        return {k: torch.from_numpy(v) for k, v in on_device(arrays, dtype, None).items()}

    X = _data(200, 5)
    est = {"kmeans": KMeans(3, n_init=2, random_state=0),
           "gmm": GaussianMixture(3, random_state=0),
           "bisecting": BisectingKMeans(3, random_state=0)}[head]  # fmt: skip
    pipe = make_pipeline(StandardScaler(), *([PCA(3)] if pca else []), est).fit(X)
    want = explain_pipeline(pipe, X, reference="mean", space="model")
    for mod in (pipe_mod, mix_mod, bis_mod):
        monkeypatch.setattr(mod, "on_device", as_torch)
    got = explain_pipeline(pipe, X, reference="mean", space="model")
    np.testing.assert_allclose(got.relevance, want.relevance, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got.extras["model_relevance"], want.extras["model_relevance"],
                               rtol=1e-10, atol=1e-10)  # fmt: skip
    np.testing.assert_array_equal(got.cluster, want.cluster)


@pytest.mark.parametrize("head", ["kmeans", "gmm", "bisecting"])
def test_threads_and_blocks_change_nothing(monkeypatch, head):
    """Pass 2 in threads, the pull-back in small row blocks written into the output, and
    the batch sizes: the same relevance as one serial batch, and as the loop oracle."""
    import whyclust.engine.affine as affine
    import whyclust.explainers._threads as threads

    X = _data(2000, d=7)
    model = {
        "kmeans": KMeans(4, n_init=3, random_state=0),
        "gmm": GaussianMixture(4, covariance_type="full", random_state=0),
        "bisecting": BisectingKMeans(4, random_state=0),
    }[head]
    pipe = make_pipeline(StandardScaler(), PCA(4), model).fit(X)
    whole = explain_pipeline(pipe, X, beta=0.05, batch_size=len(X))
    monkeypatch.setattr(affine, "_BLOCK_VALUES", 7 * 13)  # 13-row blocks
    calls = []
    monkeypatch.setattr(threads, "_n_workers", lambda n: calls.append(n) or 2)
    split = explain_pipeline(pipe, X, beta=0.05, batch_size=97)
    assert calls, "pass 2 did not go through the threads"
    tol = 1e-10 * np.abs(whole.relevance).max()
    np.testing.assert_allclose(split.relevance, whole.relevance, rtol=0, atol=tol)
    np.testing.assert_array_equal(split.cluster, pipe.predict(X))
    assert _conserves(split)
    if head == "kmeans":
        np.testing.assert_allclose(split.relevance[:60], _loop_pca_kmeans(pipe, X[:60], 0.05),
                                   rtol=1e-7, atol=tol)  # fmt: skip
    model_space = explain_pipeline(pipe, X, beta=0.05, batch_size=97, space="model")
    np.testing.assert_allclose(model_space.relevance, whole.relevance, rtol=0, atol=tol)


@pytest.mark.parametrize("lead", ["passthrough", None])
@pytest.mark.parametrize("rest", [(), (StandardScaler(),), (StandardScaler(), PCA(3))])
def test_a_leading_passthrough_step_changes_nothing(lead, rest, tmp_path):
    """scikit-learn asks a Pipeline's first step for its inputs, a string here: the
    columns, the explanation, counterfactuals and saved files read the first real step."""
    from sklearn.base import clone

    import whyclust as wc

    X, _ = make_blobs(120, 5, centers=3, random_state=0)
    df = pd.DataFrame(X, columns=list("abcde"))
    plain = make_pipeline(*map(clone, rest), KMeans(3, n_init=3, random_state=0)).fit(df)
    led = make_pipeline(lead, *map(clone, rest), KMeans(3, n_init=3, random_state=0)).fit(df)
    expected = wc.explain(plain, df).relevance
    for data in (df, X):
        np.testing.assert_allclose(wc.explain(led, data).relevance, expected, atol=1e-12)
    with pytest.raises(ValueError, match="order"):
        wc.explain(led, df[list("edcba")])
    cf = wc.counterfactual(led, X[:6], 1)
    np.testing.assert_array_equal(plain.predict(pd.DataFrame(cf.X_cf, columns=df.columns)), 1)
    wc.save(led, tmp_path / "m.whyclust")
    light = wc.io.load_for_explanation(tmp_path / "m.whyclust")
    np.testing.assert_allclose(wc.explain(light, df).relevance, expected, atol=1e-12)


def test_counterfactuals_of_read_only_arrays_copy_them():
    import warnings

    import whyclust as wc

    X, _ = make_blobs(40, 3, centers=3, random_state=0)
    X.flags.writeable = False  # as df.to_numpy() under copy-on-write
    km = KMeans(3, n_init=2, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wc.counterfactual(km, X, 0)


@pytest.mark.parametrize(
    ("steps", "proportional"),
    [
        ((StandardScaler(), PCA(3)), True),
        ((RobustScaler(), TruncatedSVD(3)), True),
        ((PCA(3),), True),
        ((MinMaxScaler(), PCA(3, whiten=True)), False),
    ],
)
@pytest.mark.parametrize("reference", ["midpoint", "mean"])
def test_the_short_pull_back_equals_the_general_one(monkeypatch, steps, proportional, reference):
    """Where A^+ = D A^T the k-means pull-back drops its cross terms; it must give the same
    relevance as the general formula, and whitening (no such D) must keep the general one."""
    from whyclust.engine.fold import fold_preprocessing
    from whyclust.explainers import pipeline as module

    X = _data(d=6)
    pipe = make_pipeline(*steps, KMeans(4, n_init=3, random_state=0)).fit(X)
    a, pinv = module._dense_map(fold_preprocessing(pipe.steps[:-1], X.shape[1]))
    assert module._pinv_is_scaled_transpose(a, pinv) is proportional
    short = explain_pipeline(pipe, X, reference=reference)
    monkeypatch.setattr(module, "_pinv_is_scaled_transpose", lambda a, b: False)
    general = explain_pipeline(pipe, X, reference=reference)
    np.testing.assert_allclose(short.relevance, general.relevance, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(short.relevance.sum(1), short.logit, rtol=1e-9, atol=1e-9)


def _wine_frame():
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True).data


@pytest.mark.parametrize("row", [5, 100])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_bad_cell_is_named_wherever_it_is(row, value):
    """The fold check ran the pipeline's own transform on the first 64 rows, so a NaN there
    gave scikit-learn's message and one further down gave whyclust's: now both name it."""
    wine = _wine_frame()
    pipe = make_pipeline(StandardScaler(), PCA(5), KMeans(3, n_init=3, random_state=0)).fit(wine)
    bad = wine.copy()
    bad.loc[row, "ash"] = value
    with pytest.raises(ValueError, match=f"at row {row} in column 'ash'"):
        wc.explain(pipe, bad)


def test_an_unfitted_pipeline_is_not_fitted_error():
    from sklearn.exceptions import NotFittedError

    wine = _wine_frame()
    unfitted = make_pipeline(StandardScaler(), KMeans(3))
    for call in (lambda: wc.explain(unfitted, wine), lambda: wc.explain(unfitted, wine.to_numpy()),
                 lambda: wc.neuralize(unfitted)):  # fmt: skip
        with pytest.raises(NotFittedError):
            call()


def test_a_text_cell_in_a_numeric_pipeline_names_its_column():
    wine = _wine_frame()
    pipe = make_pipeline(StandardScaler(), KMeans(3, n_init=3, random_state=0)).fit(wine)
    bad = wine.astype({"alcohol": object})
    bad.loc[7, "alcohol"] = "n/a"
    with pytest.raises(TypeError, match=r"non-numeric columns .*: alcohol"):
        wc.explain(pipe, bad)
