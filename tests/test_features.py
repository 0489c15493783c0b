"""Column names against a model's fitted names; DataFrames without warnings."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import whyclust as wc
from whyclust._features import check_feature_names, data_feature_names, model_feature_names
from whyclust._validation import as_float_array

RNG = np.random.default_rng(0)
COLUMNS = ["alcohol", "ash", "hue", "proline"]
FRAME = pd.DataFrame(RNG.normal(size=(40, 4)) + np.repeat([[0], [5]], 20, axis=0), columns=COLUMNS)


def _tell():
    return wc.TELL(n_clusters=2, n_init=1, max_iter=3, random_state=0)


MODELS = {
    "kmeans": lambda: KMeans(2, n_init=2, random_state=0),
    "minibatch": lambda: MiniBatchKMeans(2, n_init=2, random_state=0),
    "bisecting": lambda: BisectingKMeans(2, random_state=0),
    "gmm": lambda: GaussianMixture(2, random_state=0),
    "pipeline": lambda: make_pipeline(StandardScaler(), KMeans(2, n_init=2, random_state=0)),
    "column-pipeline": lambda: make_pipeline(
        ColumnTransformer([("s", StandardScaler(), COLUMNS)]), KMeans(2, n_init=2)
    ),
    "tell": _tell,
    "tell-pipeline": lambda: make_pipeline(StandardScaler(), _tell()),
    "kernel-pipeline": lambda: make_pipeline(
        StandardScaler(), wc.KernelKMeans(n_clusters=2, random_state=0)
    ),
}

BAD = {
    "reordered": (FRAME[COLUMNS[::-1]], r"in another order .*'proline'.*expected order"),
    "missing": (FRAME[COLUMNS[:3]], r"missing 'proline'"),
    "extra": (FRAME.assign(colour=1.0), r"unexpected 'colour'"),
    "renamed": (FRAME.rename(columns={"ash": "Ash"}), r"missing 'ash'; unexpected 'Ash'"),
    "repeated": (FRAME[[*COLUMNS, "hue"]], r"repeated 'hue'"),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request):
    model = MODELS[request.param]().fit(FRAME)
    return request.param, model


@pytest.mark.parametrize("case", sorted(BAD))
def test_mismatched_columns_are_refused(fitted, case):
    _, model = fitted
    frame, match = BAD[case]
    with pytest.raises(ValueError, match=match):
        check_feature_names(model, frame)


def test_matching_frame_and_plain_array_pass(fitted):
    _, model = fitted
    check_feature_names(model, FRAME)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_feature_names(model, FRAME.to_numpy())  # no names: accepted, silently


def test_to_frame_keeps_the_rows_labels(fitted):
    """A shuffled frame with string row labels: row i of to_frame() is the row labelled
    like X's row i, for every model kind and for a baseline too."""
    name, model = fitted
    order = RNG.permutation(len(FRAME))
    shuffled = FRAME.iloc[order]
    shuffled.index = pd.Index([f"id{i}" for i in order], name="sample")
    methods = ("neon",) if name.endswith("pipeline") else ("neon", "gradient_x_input")
    for method in methods:
        frame = wc.explain(model, shuffled, method=method).to_frame()
        assert frame.index.equals(shuffled.index) and list(frame.columns) == COLUMNS
        whole = wc.explain(model, FRAME, method=method).to_frame()
        np.testing.assert_allclose(frame.to_numpy(), whole.to_numpy()[order], rtol=1e-4, atol=1e-6)
    plain = wc.explain(model, shuffled.to_numpy()).to_frame()
    assert plain.index.equals(pd.RangeIndex(len(FRAME)))


_POLYTOPES = ("kmeans", "minibatch", "bisecting", "pipeline", "column-pipeline")


def test_every_entry_point_taking_data_checks_the_columns(fitted, tmp_path):
    """explain, counterfactual, the flipping curves and the report refuse a reordered frame
    (positions would silently pair values with the wrong features)."""
    from whyclust.evaluation import compare_methods, deletion_curve
    from whyclust.report import write_report

    name, model = fitted
    bad = FRAME[COLUMNS[::-1]]
    calls = [
        lambda: wc.explain(model, bad),
        lambda: deletion_curve(model, bad),
        lambda: compare_methods(model, bad, methods=["neon"], insertion=False),
        lambda: write_report(model, bad, tmp_path / "r.html"),
    ]
    if name in _POLYTOPES:
        calls.append(lambda: wc.counterfactual(model, bad, target=0))
        wc.counterfactual(model, FRAME.iloc[:3], target=0)  # the right columns pass
    for call in calls:
        with pytest.raises(ValueError, match="another order"):
            call()
    assert not (tmp_path / "r.html").exists()


def test_names_survive_save_and_load_and_are_still_checked(fitted, tmp_path):
    name, model = fitted
    back = wc.load(wc.save(model, tmp_path / f"{name}.whyclust"))
    assert model_feature_names(back) == COLUMNS
    with pytest.raises(ValueError, match="in another order"):
        check_feature_names(back, FRAME[COLUMNS[::-1]])


def test_model_fitted_without_names_accepts_any_frame():
    model = KMeans(2, n_init=2, random_state=0).fit(FRAME.to_numpy())
    assert model_feature_names(model) is None
    check_feature_names(model, FRAME[COLUMNS[::-1]])


def test_non_string_columns_are_not_names():
    frame = pd.DataFrame(FRAME.to_numpy())
    assert data_feature_names(frame) is None
    assert data_feature_names(FRAME.to_numpy()) is None
    model = KMeans(2, n_init=2, random_state=0).fit(FRAME)
    check_feature_names(model, frame)  # as scikit-learn: integer columns carry no names


def test_mixed_string_and_other_names_are_refused(fitted):
    _, model = fitted
    frame = FRAME[COLUMNS[::-1]].rename(columns={COLUMNS[-1]: 0})  # reordered, one int name
    with pytest.raises(TypeError, match=r"mix strings and other types \(not strings: 0\)"):
        wc.explain(model, frame)


def test_many_names_are_abbreviated():
    cols = [f"c{i}" for i in range(30)]
    model = KMeans(2, n_init=1, random_state=0).fit(
        pd.DataFrame(RNG.normal(size=(10, 30)), columns=cols)
    )
    with pytest.raises(ValueError, match=r"and 22 more moved"):
        check_feature_names(model, pd.DataFrame(RNG.normal(size=(10, 30)), columns=cols[::-1]))


# --- DataFrames without torch's "not writable" warning --------------------------------------


@pytest.mark.parametrize("n_columns", [1, 3])
def test_frame_values_are_writeable(n_columns):
    frame = pd.DataFrame(
        RNG.normal(size=(20, n_columns)), columns=[f"f{i}" for i in range(n_columns)]
    )
    arr = as_float_array(frame)
    assert arr.flags.writeable
    arr[0, 0] = 1e6
    assert frame.iloc[0, 0] != 1e6  # the caller's frame is untouched


def test_explain_a_dataframe_raises_no_warning():
    """In a fresh interpreter: torch warns once per process, so an earlier test could hide it."""
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "import numpy as np, pandas as pd, whyclust as wc\n"
        "from sklearn.cluster import KMeans\n"
        "rng = np.random.default_rng(0)\n"
        "for d in (1, 3):\n"
        "    df = pd.DataFrame(rng.normal(size=(30, d)), columns=[f'c{i}' for i in range(d)])\n"
        "    km = KMeans(2, n_init=2, random_state=0).fit(df)\n"
        "    for method in ('neon', 'gradient'):\n"
        "        wc.explain(km, df, method)\n"
        "print('clean')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "clean" in out.stdout
    assert "not writable" not in out.stderr


def test_to_frame_keeps_column_labels_that_are_not_text():
    """Integer and MultiIndex column labels come back as given (feature_names holds text),
    so e.to_frame()[0] or a join on the user's columns works."""
    X = FRAME.to_numpy()
    km = KMeans(2, n_init=2, random_state=0).fit(X)
    numbered = pd.DataFrame(X, columns=[0, 1, 2, 3])
    e = wc.explain(km, numbered)
    assert list(e.to_frame().columns) == [0, 1, 2, 3] and e.feature_names == ["0", "1", "2", "3"]
    np.testing.assert_array_equal(e.to_frame()[0].to_numpy(), e.relevance[:, 0])
    multi = pd.DataFrame(X, columns=pd.MultiIndex.from_product([["sepal", "petal"], ["l", "w"]]))
    assert wc.explain(km, multi).to_frame().columns.equals(multi.columns)
    assert wc.counterfactual(km, numbered, 0).to_frame().columns.equals(numbered.columns)
