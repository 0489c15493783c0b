"""``whyclust fit`` on real tables: preparation stored as a Pipeline, checked against oracles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.pipeline import Pipeline

import whyclust as wc
from whyclust.cli import main

SKLEARN_DATA = Path(sklearn.__file__).parent / "datasets" / "data"


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    """scikit-learn's wine table as a user exports it: df.to_csv() with its index."""
    from sklearn.datasets import load_wine

    root = tmp_path_factory.mktemp("wine")
    frame = load_wine(as_frame=True).frame
    frame.insert(0, "sample_id", [f"w{i:03d}" for i in range(len(frame))])
    frame.to_csv(root / "wine.csv")  # index written as an unnamed first column
    return root, frame


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_sklearn_files_with_a_metadata_line_are_refused(tmp_path, capsys):
    for name in ("wine_data.csv", "iris.csv"):
        code, _, err = run(
            ["fit", SKLEARN_DATA / name, "-k", "3", "-o", tmp_path / "m.whyclust"], capsys
        )
        assert code == 2
        assert name in err and "metadata" in err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_default_fit_standardises_and_drops_index_and_ids(wine, tmp_path, capsys):
    root, frame = wine
    model_path = tmp_path / "m.whyclust"
    code, out, err = run(
        ["fit", root / "wine.csv", "-k", "3", "--label-column", "target", "--drop",
         "sample_id", "-o", model_path], capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "row index written by pandas" in err  # the note, on stderr
    assert "178 points x 13 columns (standard scaling)" in out
    acc = float(out.split("ACC ")[1].split(",")[0])
    assert acc > 0.9  # scaled wine separates its three cultivars; unscaled it does not
    model = wc.load(model_path)
    assert isinstance(model, Pipeline)
    features = frame.drop(columns=["sample_id", "target"])
    assert list(model.feature_names_in_) == list(features.columns)
    # oracle: the stored preparation is (x - mean) / std of each column (population std)
    X = features.to_numpy(dtype=float)
    expected = (X - X.mean(0)) / X.std(0)
    np.testing.assert_allclose(model[:-1].transform(features), expected, rtol=1e-12, atol=1e-12)


def test_no_scaling_lets_proline_decide(wine, tmp_path, capsys):
    root, _ = wine
    code, out, err = run(
        ["fit", root / "wine.csv", "-k", "3", "--label-column", "target", "--drop",
         "sample_id", "--scale", "none", "-o", tmp_path / "m.whyclust"], capsys,
    )  # fmt: skip
    assert code == 0, err
    assert float(out.split("ACC ")[1].split(",")[0]) < 0.8
    model = wc.load(tmp_path / "m.whyclust")
    assert not isinstance(model, Pipeline)  # nothing to prepare: the bare clusterer
    assert "proline" in list(model.feature_names_in_)


@pytest.mark.parametrize("scale", ["robust", "minmax"])
def test_other_scalers(wine, tmp_path, capsys, scale):
    root, frame = wine
    code, _, err = run(
        ["fit", root / "wine.csv", "-k", "3", "--drop", "sample_id,target", "--scale", scale,
         "-q", "-o", tmp_path / "m.whyclust"], capsys,
    )  # fmt: skip
    assert code == 0, err
    X = frame.drop(columns=["sample_id", "target"]).to_numpy(dtype=float)
    Xt = wc.load(tmp_path / "m.whyclust")[:-1].transform(
        frame.drop(columns=["sample_id", "target"])
    )
    if scale == "minmax":
        expected = (X - X.min(0)) / (X.max(0) - X.min(0))
    else:
        q1, med, q3 = np.percentile(X, [25, 50, 75], axis=0)
        expected = (X - med) / (q3 - q1)
    np.testing.assert_allclose(Xt, expected, rtol=1e-10, atol=1e-10)


def _mixed(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    n = 60
    group = np.repeat([0, 1], n // 2)
    frame = pd.DataFrame(
        {
            "id": np.arange(1000, 1000 + n),
            "height": rng.normal(0, 1, n) + 5 * group,
            "weight": rng.normal(0, 1, n) - 3 * group,
            "colour": np.where(group == 1, "red", "blue"),
        }
    )
    frame.loc[[4, 40], "weight"] = np.nan
    frame.loc[7, "colour"] = None
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False, sep=";")
    return path


def test_categorical_and_imputation_are_stored(tmp_path, capsys):
    path = _mixed(tmp_path)
    code, out, err = run(
        ["fit", path, "-k", "2", "--drop", "id", "--categorical", "auto", "--impute", "median",
         "-o", tmp_path / "m.whyclust"], capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "3 columns (standard scaling, median imputation, 1 one-hot encoded)" in out
    model = wc.load(tmp_path / "m.whyclust")
    raw = pd.read_csv(path, sep=";").drop(columns="id")
    numeric = model[0].named_transformers_["numeric"]
    np.testing.assert_allclose(
        numeric.named_steps["impute"].statistics_, raw[["height", "weight"]].median().to_numpy()
    )
    encoder = model[0].named_transformers_["categorical"]
    cats = list(encoder.categories_[0])
    assert cats[:2] == ["blue", "red"] and len(cats) == 3 and pd.isna(cats[2])  # missing
    labels = model.predict(wc.datasets.read_frame(path, drop=["id"])[0])
    assert np.unique(labels).size == 2


def test_missing_cells_without_impute_name_their_line(tmp_path, capsys):
    path = _mixed(tmp_path)
    code, _, err = run(
        ["fit", path, "-k", "2", "--drop", "id", "--categorical", "auto", "-o",
         tmp_path / "m.whyclust"], capsys,
    )  # fmt: skip
    assert code == 2
    assert "line 6, column 'weight' (use --impute)" in err  # data row 5, after the header


def test_explain_refuses_a_reordered_table_for_a_pipeline(wine, tmp_path, capsys):
    root, frame = wine
    run(["fit", root / "wine.csv", "-k", "3", "--drop", "sample_id,target", "-q",
         "-o", tmp_path / "m.whyclust"], capsys)  # fmt: skip
    features = frame.drop(columns=["sample_id", "target"])
    features[features.columns[::-1]].to_csv(tmp_path / "rev.csv", index=False)
    code, _, err = run(
        ["explain", tmp_path / "m.whyclust", tmp_path / "rev.csv", "-o", tmp_path / "r.csv"],
        capsys,
    )
    assert code == 2
    assert "in another order" in err and "expected order: 'alcohol'" in err
    assert not (tmp_path / "r.csv").exists()


def test_explain_a_pipeline_in_the_raw_columns(wine, tmp_path, capsys):
    root, frame = wine
    run(["fit", root / "wine.csv", "-k", "3", "--label-column", "target", "-q",
         "--drop", "sample_id", "-o", tmp_path / "m.whyclust"], capsys)  # fmt: skip
    code, _, err = run(
        ["explain", tmp_path / "m.whyclust", root / "wine.csv", "--label-column", "target",
         "--drop", "sample_id", "-o", tmp_path / "r.csv"], capsys,
    )  # fmt: skip
    assert code == 0, err
    out = pd.read_csv(tmp_path / "r.csv")
    names = [c for c in frame.columns if c not in ("sample_id", "target")]
    assert list(out.columns) == ["cluster", "logit", *names]
    np.testing.assert_allclose(out[names].sum(axis=1), out["logit"], rtol=1e-5, atol=1e-6)
    share = out[names].abs().mean() / out[names].abs().mean().sum()
    assert share["proline"] < 0.5  # scaled: proline no longer takes everything


def test_report_of_a_pipeline_with_categorical_columns(tmp_path, capsys):
    path = _mixed(tmp_path)
    run(["fit", path, "-k", "2", "--drop", "id", "--categorical", "auto", "--impute", "mean",
         "-q", "-o", tmp_path / "m.whyclust"], capsys)  # fmt: skip
    code, _, err = run(
        ["report", tmp_path / "m.whyclust", path, "--drop", "id", "-q", "-o",
         tmp_path / "r.html"], capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "colour" in (tmp_path / "r.html").read_text()


def test_report_names_points_by_an_id_column(tmp_path, capsys):
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).data
    frame.insert(0, "name", [f"wine-{i}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "w.csv", index=False)
    run(["fit", tmp_path / "w.csv", "-k", "3", "--drop", "name", "-q", "-o",
         tmp_path / "m.whyclust"], capsys)  # fmt: skip
    code, _, err = run(["report", tmp_path / "m.whyclust", tmp_path / "w.csv", "--id-column",
                        "name", "-q", "-o", tmp_path / "r.html"], capsys)  # fmt: skip
    assert code == 0, err
    page = (tmp_path / "r.html").read_text()
    assert "wine-17" in page and "wine-177" in page
    code, _, err = run(["report", tmp_path / "m.whyclust", tmp_path / "w.csv", "--id-column",
                        "nope", "-q", "-o", tmp_path / "r2.html"], capsys)  # fmt: skip
    assert code == 2 and not (tmp_path / "r2.html").exists()
    assert "--id-column 'nope' is not a column of w.csv" in err

    shuffled = frame.sample(frac=1, random_state=0)
    shuffled.to_csv(tmp_path / "s.csv", index=False)
    for data in ("w.csv", "s.csv"):
        code, _, err = run(["explain", tmp_path / "m.whyclust", tmp_path / data, "--id-column",
                            "name", "--beta", "1", "-q", "-o", tmp_path / f"{data}.parquet"],
                           capsys)  # fmt: skip
        assert code == 0, err
    rows = pd.read_parquet(tmp_path / "s.csv.parquet").set_index("name")
    plain = pd.read_parquet(tmp_path / "w.csv.parquet").set_index("name")
    assert list(rows.columns) == ["cluster", "logit", *frame.columns[1:]]
    pd.testing.assert_frame_equal(rows.loc[plain.index], plain, rtol=1e-6)
    code, _, err = run(["explain", tmp_path / "m.whyclust", tmp_path / "w.csv", "--id-column",
                        "name", "-q", "-o", tmp_path / "e.npy"], capsys)  # fmt: skip
    assert code == 2 and "needs a .csv or .parquet output" in err
    assert not (tmp_path / "e.npy").exists()


def test_numeric_headers_are_announced_and_can_be_named(tmp_path, capsys):
    """A first line of numbers is never a silent guess: pandas' 0..d-1 labels are names, other
    numbers the first data row, each with a note; --header / --no-header decide."""
    from sklearn.datasets import load_iris

    data = tmp_path / "unnamed.csv"
    pd.DataFrame(load_iris().data).to_csv(data, index=False)
    code, out, err = run(["fit", data, "-k", "3", "-o", tmp_path / "u.m"], capsys)
    assert code == 0 and "150 points" in out and "read as column names" in err
    code, _, _ = run(["explain", tmp_path / "u.m", data, "-o", tmp_path / "u.csv", "-q"], capsys)
    assert code == 0
    assert list(pd.read_csv(tmp_path / "u.csv").columns[2:]) == ["0", "1", "2", "3"]
    years = tmp_path / "years.csv"
    years.write_text("2019,2020,2021\n1,2,3\n4,5,6\n7,8,9\n1,1,1\n")
    code, out, err = run(["fit", years, "-k", "2", "-o", tmp_path / "y.m"], capsys)
    assert code == 0 and "5 points" in out and "--header" in err
    code, out, _ = run(["fit", years, "-k", "2", "-o", tmp_path / "y2.m", "--header"], capsys)
    assert code == 0 and "4 points" in out
    code, _, err = run(["explain", tmp_path / "y2.m", years, "-o", tmp_path / "r.csv"], capsys)
    assert code == 2 and "'2019'" in err and not (tmp_path / "r.csv").exists()
    args = ["explain", tmp_path / "y2.m", years, "-o", tmp_path / "r.csv", "--header", "-q"]
    assert run(args, capsys)[0] == 0
    assert list(pd.read_csv(tmp_path / "r.csv").columns[2:]) == ["2019", "2020", "2021"]


def test_categorical_columns_of_numbers_are_read_as_text_again(tmp_path, capsys):
    data = tmp_path / "cat.csv"
    data.write_text("a,b,col\n1,2,x\n4,5,y\n7,8,x\n1,1,z\n2,2,y\n")
    model = tmp_path / "m.whyclust"
    args = ["fit", data, "-k", "2", "--categorical", "col,a", "-o", model, "-q"]
    assert run(args, capsys)[0] == 0
    code, _, err = run(["explain", model, data, "-o", tmp_path / "r.csv", "-q"], capsys)
    assert code == 0, err
    rel = pd.read_csv(tmp_path / "r.csv")
    frame, _, _ = wc.datasets.read_frame(data, categorical=("col", "a"))
    np.testing.assert_array_equal(rel["cluster"], wc.load(model).predict(frame))
    assert run(["report", model, data, "-o", tmp_path / "r.html", "-q"], capsys)[0] == 0


def test_missing_cell_at_explain_time_names_the_file_line(tmp_path, capsys):
    fit_data, data = tmp_path / "ok.csv", tmp_path / "gap.csv"
    fit_data.write_text("a,b,c\n1,2,3\n4,5,6\n7,8,9\n1,3,1\n")
    data.write_text("# exported\na,b,c\n1,2,3\n4,5,6\n7,8,9\n1,,1\n")
    assert run(["fit", fit_data, "-k", "2", "-o", tmp_path / "m", "-q"], capsys)[0] == 0
    code, _, err = run(["explain", tmp_path / "m", data, "-o", tmp_path / "r.csv"], capsys)
    assert code == 2 and "gap.csv line 6 in column 'b'" in err
    assert not (tmp_path / "r.csv").exists()


def test_fewer_distinct_rows_than_clusters_is_refused(tmp_path, capsys):
    data = tmp_path / "dup.csv"
    data.write_text("a,b\n1,1\n1,1\n1,1\n5,5\n5,5\n")
    code, _, err = run(["fit", data, "-k", "3", "-o", tmp_path / "m"], capsys)
    assert code == 2 and "only 2 of the 3 clusters" in err and "2 distinct rows" in err
    assert "Traceback" not in err and "warnings.warn" not in err
    assert not (tmp_path / "m").exists()


def test_a_small_file_keeps_the_columns_the_model_reads(tmp_path, capsys):
    """One row whose imputed or one-hot column is empty: still the model's columns, filled
    as the model fills them, and the same answer as the same row inside a larger file."""
    path = _mixed(tmp_path)
    model_path = tmp_path / "m.whyclust"
    run(["fit", path, "-k", "2", "--drop", "id", "--categorical", "auto", "--impute", "mean",
         "-q", "-o", model_path], capsys)  # fmt: skip
    raw = pd.read_csv(path, sep=";")
    row = raw.iloc[[3]].copy()
    row["weight"], row["colour"] = np.nan, None
    row.to_csv(tmp_path / "one.csv", index=False, sep=";")
    big = pd.concat([raw, row], ignore_index=True)
    big.to_csv(tmp_path / "big.csv", index=False, sep=";")
    outs = []
    for name in ("one", "big"):
        code, _, err = run(["explain", model_path, tmp_path / f"{name}.csv", "--drop", "id",
                            "--beta", "0.5", "-q", "-o", tmp_path / f"{name}_rel.csv"],
                           capsys)  # fmt: skip
        assert code == 0, err
        outs.append(pd.read_csv(tmp_path / f"{name}_rel.csv"))
    assert list(outs[0].columns) == ["cluster", "logit", "height", "weight", "colour"]
    pd.testing.assert_frame_equal(outs[0], outs[1].iloc[[-1]].reset_index(drop=True))


def test_text_in_a_number_column_names_its_line_at_explain_time(tmp_path, capsys):
    path = _mixed(tmp_path)
    model_path = tmp_path / "m.whyclust"
    run(["fit", path, "-k", "2", "--drop", "id", "--categorical", "auto", "--impute", "mean",
         "-q", "-o", model_path], capsys)  # fmt: skip
    (tmp_path / "t.csv").write_text("id;height;weight;colour\n1;tall;2;red\n")
    code, _, err = run(["explain", model_path, tmp_path / "t.csv", "--drop", "id", "-o",
                        tmp_path / "o.csv"], capsys)  # fmt: skip
    assert code == 2 and not (tmp_path / "o.csv").exists()
    assert "t.csv line 2, column 'height': 'tall' is not a number" in err


def test_the_label_column_cannot_also_be_dropped(tmp_path, capsys):
    (tmp_path / "a.csv").write_text("a,b,c\n1,2,3\n2,3,4\n3,1,0\n4,2,2\n")
    code, _, err = run(["fit", tmp_path / "a.csv", "-k", "2", "--label-column", "a", "--drop",
                        "a", "-o", tmp_path / "m.whyclust"], capsys)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "'a' is both the label column and a column to drop" in err


def test_columns_a_saved_pipeline_drops_may_hold_text(tmp_path, capsys):
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"id": [f"p{i}" for i in range(40)], "x": rng.normal(size=40),
                       "z": rng.normal(size=40), "w": rng.normal(size=40)})  # fmt: skip
    ct = ColumnTransformer([("n", StandardScaler(), ["x", "z"]), ("d", "drop", ["id"])])
    pipe = make_pipeline(ct, KMeans(2, n_init=2, random_state=0)).fit(df)
    wc.save(pipe, tmp_path / "p.whyclust")
    df.assign(w="text").to_csv(tmp_path / "d.csv", index=False)  # 'w': the remainder
    code, _, err = run(["explain", tmp_path / "p.whyclust", tmp_path / "d.csv", "-q", "-o",
                        tmp_path / "r.csv"], capsys)  # fmt: skip
    assert code == 0, err
    out = pd.read_csv(tmp_path / "r.csv")
    np.testing.assert_array_equal(out["cluster"], pipe.predict(df))
    assert (out[["id", "w"]] == 0).all().all()


def test_columns_left_out_at_fit_are_left_out_again(tmp_path, capsys):
    """fit --label-column/--drop is remembered: explain and report on the same table work
    without repeating them, and give what the explicit options give."""
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.insert(0, "name", [f"f{i}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "iris.csv", index=False)
    model_path = tmp_path / "m.whyclust"
    code, _, err = run(["fit", tmp_path / "iris.csv", "-k", "3", "--label-column", "target",
                        "--drop", "name", "-q", "-o", model_path], capsys)  # fmt: skip
    assert code == 0, err
    assert wc.io.not_features(model_path) == ["target", "name"]
    code, _, err = run(["explain", model_path, tmp_path / "iris.csv", "-o",
                        tmp_path / "a.csv"], capsys)  # fmt: skip
    assert code == 0, err
    assert "leaving out 'target', 'name'" in err
    code, _, err = run(["explain", model_path, tmp_path / "iris.csv", "--label-column",
                        "target", "--drop", "name", "-q", "-o", tmp_path / "b.csv"],
                       capsys)  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    code, _, err = run(["report", model_path, tmp_path / "iris.csv", "--labels", "target",
                        "-q", "-o", tmp_path / "r.html"], capsys)  # fmt: skip
    assert code == 0, err
    # a table without those columns is read as it is; models saved without the list too
    frame.drop(columns=["target", "name"]).to_csv(tmp_path / "bare.csv", index=False)
    code, _, err = run(["explain", model_path, tmp_path / "bare.csv", "-o",
                        tmp_path / "c.csv"], capsys)  # fmt: skip
    assert code == 0 and "leaving out" not in err
    wc.save(wc.load(model_path), tmp_path / "plain.whyclust")
    assert wc.io.not_features(tmp_path / "plain.whyclust") == []


def test_a_point_gets_the_same_explanation_in_any_file(tmp_path, capsys):
    """fit stores NEON's beta="auto" of the fitting table; explain and report use it, so a
    row explained alone equals the same row inside the whole table (K > 2: beta matters).
    --beta data asks for the file's own beta, and files saved without one fall back to it."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).data
    frame.to_csv(tmp_path / "w.csv", index=False)
    frame.iloc[[5]].to_csv(tmp_path / "one.csv", index=False)
    model = tmp_path / "m.whyclust"
    assert run(["fit", tmp_path / "w.csv", "-k", "4", "-q", "-o", model], capsys)[0] == 0
    whole = wc.explain(wc.load(model), frame)
    assert wc.io.open_model(model)[1].fit_beta == pytest.approx(whole.beta, rel=1e-12)

    def explained(data, *args, model=model):
        code, _, err = run(["explain", model, tmp_path / data, *args, "-q", "-o",
                            tmp_path / "out.csv"], capsys)  # fmt: skip
        assert code == 0, err
        return pd.read_csv(tmp_path / "out.csv")

    alone, inside = explained("one.csv"), explained("w.csv").iloc[[5]].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, inside, rtol=1e-9)
    own = explained("one.csv", "--beta", "data")
    assert not np.allclose(own.iloc[0, 2:].to_numpy(float), alone.iloc[0, 2:].to_numpy(float))
    wc.save(wc.load(model), tmp_path / "old.whyclust")  # as files written before fit_beta
    old = explained("one.csv", model=tmp_path / "old.whyclust")
    pd.testing.assert_frame_equal(old, own)
    for bad in (-1.0, np.inf):
        with pytest.raises(ValueError, match="fit_beta must be a finite number >= 0"):
            wc.save(wc.load(model), tmp_path / "bad.whyclust", fit_beta=bad)
    wc.save(wc.load(model), tmp_path / "int.whyclust", fit_beta=np.int64(3))
    assert wc.io.open_model(tmp_path / "int.whyclust")[1].fit_beta == 3.0


def test_parquet_ids_and_odd_columns_are_read_as_stored(tmp_path, capsys):
    """Parquet: --id-column keeps integer ids exact (not '100.0', not rounded above 2**53),
    and a column of durations is text that --drop can leave out."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": 2**53 + np.arange(40), "a": rng.normal(size=40),
                          "b": rng.normal(size=40),
                          "took": pd.to_timedelta(np.arange(40), unit="s")})  # fmt: skip
    frame.to_parquet(tmp_path / "d.parquet")
    model = tmp_path / "m.whyclust"
    code, _, err = run(["fit", tmp_path / "d.parquet", "-k", "2", "--drop", "id,took", "-q",
                        "-o", model], capsys)  # fmt: skip
    assert code == 0, err
    code, _, err = run(["explain", model, tmp_path / "d.parquet", "--id-column", "id",
                        "--drop", "took", "-q", "-o", tmp_path / "e.csv"], capsys)  # fmt: skip
    assert code == 0, err
    ids = pd.read_csv(tmp_path / "e.csv", dtype={"id": str})["id"]
    assert ids.tolist() == [str(v) for v in frame["id"]]


def test_columns_a_stored_pipeline_drops_by_position_slice_or_mask():
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    from whyclust._cli_tables import dropped_columns

    df = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 4)), columns=list("abcd"))
    for drop, expected in (([-1], ["d"]), (slice(2, 4), ["c", "d"]), (slice("b", "c"), ["b", "c"]),
                           ([True, False, False, False], ["a"]), (["b"], ["b"])):  # fmt: skip
        ct = ColumnTransformer([("x", "drop", drop)], remainder="passthrough")
        assert dropped_columns(make_pipeline(ct, KMeans(2, n_init=1)).fit(df)) == expected


def test_an_empty_text_label_is_missing_not_the_class_nan(tmp_path, capsys):
    """An empty cell of a text label column was read as the string 'nan' and scored as a
    class of its own; fit and report now name the row, as for numeric labels."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=20), "b": rng.normal(size=20),
                          "lab": np.where(np.arange(20) % 2 == 0, "x", "y").astype(object)})
    frame.to_csv(tmp_path / "full.csv", index=False)
    frame.loc[4, "lab"] = None
    frame.to_csv(tmp_path / "holes.csv", index=False)
    code, _, err = run(["fit", tmp_path / "holes.csv", "-k", "2", "--label-column", "lab",
                        "-q", "-o", tmp_path / "m.whyclust"], capsys)  # fmt: skip
    assert code == 2 and "has no label in data row 5" in err
    assert run(["fit", tmp_path / "full.csv", "-k", "2", "--label-column", "lab", "-q", "-o",
                tmp_path / "m.whyclust"], capsys)[0] == 0  # fmt: skip
    code, _, err = run(["report", tmp_path / "m.whyclust", tmp_path / "holes.csv", "--labels",
                        "lab", "-q", "-o", tmp_path / "r.html"], capsys)  # fmt: skip
    assert code == 2 and "column 'lab' has no label in data row 5" in err
    assert not (tmp_path / "r.html").exists()
    _, y, _ = wc.datasets.read_data(tmp_path / "holes.csv", label_column="lab")
    assert y[4] is None and y[0] == "x"


def _fit_abc(tmp_path, capsys, *args):
    data = tmp_path / "fit.csv"
    data.write_text("a,b,c\n1,2,3\n4,5,6\n7,8,9\n1,3,1\n2,2,2\n")
    model = tmp_path / "m.whyclust"
    assert run(["fit", data, "-k", "2", "-o", model, "-q", *args], capsys)[0] == 0
    return model


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("b,a,c\n2,1,3\n", r"in another order"),
        ("a,b,c,d\n1,2,3,4\n", r"unexpected 'd'; leave 'd' out with --label-column or --drop"),
        ("a,b\n1,2\n", r"missing 'c'"),
        ("id,a,b,c\n0,1,2,3\n1,4,5,6\n2,7,8,9\n", r"unexpected 'id'"),
        ("a,b,c\n1,2,3\na,b,c\n4,5,6\n", r"e.csv line 3 repeats the header"),
        ("a,b,c\nNA,,3\n,5,6\n", r"e.csv line 2 in column 'a': a missing value .* --impute"),
        ("a,b,c\n1,2,3\n4,-inf,6\n", r"e.csv line 3 in column 'b': an infinite value"),
    ],
)
def test_explain_refuses_a_table_that_does_not_fit(tmp_path, capsys, content, message):
    import re

    model = _fit_abc(tmp_path, capsys)
    data = tmp_path / "e.csv"
    data.write_text(content)
    code, _, err = run(["explain", model, data, "-o", tmp_path / "r.csv"], capsys)
    errors = [line for line in err.splitlines() if not line.startswith("note: ")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert re.search(message, errors[0]), err
    assert not (tmp_path / "r.csv").exists()


def test_infinite_cell_is_named_even_where_the_model_imputes(tmp_path, capsys):
    model = _fit_abc(tmp_path, capsys, "--impute", "mean")
    data = tmp_path / "e.csv"
    data.write_text("a,b,c\nNA,NA,NA\n1,inf,3\n")
    code, _, err = run(["explain", model, data, "-o", tmp_path / "r.csv"], capsys)
    assert code == 2 and "e.csv line 3 in column 'b': an infinite value" in err, err
    assert not (tmp_path / "r.csv").exists()
    data.write_text("a,b,c\nNA,NA,NA\n1,,3\n")  # missing cells are imputed
    assert run(["explain", model, data, "-o", tmp_path / "r.csv", "-q"], capsys)[0] == 0


def test_explain_reads_decomposed_names_as_the_fitted_ones(tmp_path, capsys):
    import unicodedata

    fit_data, data = tmp_path / "fit.csv", tmp_path / "mac.csv"
    text = "gr\u00f6sse,b\n1,2\n4,5\n7,8\n1,3\n"
    fit_data.write_text(text, encoding="utf-8")
    data.write_text(unicodedata.normalize("NFD", text), encoding="utf-8")
    model = tmp_path / "m.whyclust"
    assert run(["fit", fit_data, "-k", "2", "-o", model, "-q"], capsys)[0] == 0
    code, _, err = run(["explain", model, data, "-o", tmp_path / "r.csv", "-q"], capsys)
    assert code == 0, err
    assert list(pd.read_csv(tmp_path / "r.csv").columns)[-2:] == ["gr\u00f6sse", "b"]


def test_quoted_line_breaks_survive_fit_and_explain(tmp_path, capsys):
    data = tmp_path / "q.csv"
    data.write_text('a,"b\nunits",colour\n1,2,"dark\nred"\n1,2,"dark\nred"\n8,9,blue\n9,8,blue\n')
    model = tmp_path / "m.whyclust"
    args = ["fit", data, "-k", "2", "--categorical", "auto", "-o", model, "-q"]
    assert run(args, capsys)[0] == 0
    frame, _, _ = wc.datasets.read_frame(data)
    assert list(frame.columns) == ["a", "b\nunits", "colour"]
    assert frame["colour"].tolist() == ["dark\nred", "dark\nred", "blue", "blue"]
    assert frame.attrs["lines"] == (3, 5, 7, 8)
    code, _, err = run(["explain", model, data, "-o", tmp_path / "r.csv", "-q"], capsys)
    assert code == 0, err
    clusters = pd.read_csv(tmp_path / "r.csv")["cluster"].tolist()
    assert clusters[0] == clusters[1] != clusters[2] == clusters[3]


def test_drop_names_a_column_that_holds_no_value(tmp_path, capsys):
    data = tmp_path / "e.csv"
    data.write_text("a,notes,b\n1,,2\n3,,4\n5,,1\n")
    model = tmp_path / "m.whyclust"
    code, _, err = run(["fit", data, "-k", "2", "--drop", "notes", "-o", model, "-q"], capsys)
    assert code == 0, err
    assert list(wc.load(model).feature_names_in_) == ["a", "b"]
    frame, _, notes = wc.datasets.read_frame(data, drop=["notes"])
    assert list(frame.columns) == ["a", "b"] and notes == []
    args = ["explain", model, data, "--drop", "notes", "-o", tmp_path / "r.csv", "-q"]
    assert run(args, capsys)[0] == 0


def test_categories_unseen_at_fit_get_a_note(tmp_path, capsys):
    fit_csv, new_csv = tmp_path / "f.csv", tmp_path / "e.csv"
    fit_csv.write_text("a,c\n1,x\n2,y\n3,x\n4,y\n5,x\n6,y\n")
    new_csv.write_text("a,c\n1,x\n2,z\n3,w\n")
    model = tmp_path / "m.whyclust"
    code, _, _ = run(["fit", str(fit_csv), "--n-clusters", "2", "--categorical", "auto",
                      "-o", str(model)], capsys)  # fmt: skip
    assert code == 0
    code, _, err = run(["explain", str(model), str(new_csv), "-o", str(tmp_path / "o.csv")],
                       capsys)  # fmt: skip
    assert code == 0
    assert "column 'c': 2 row(s) (first at line 3) hold categories not seen at fit" in err
    assert "'z', 'w'" in err
