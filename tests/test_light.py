"""Affine k-means Pipelines read from their files without scikit-learn (whyclust._light)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.impute import SimpleImputer
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    RobustScaler,
    StandardScaler,
)

import whyclust as wc
from whyclust._light import Fitted
from whyclust.cli import cli
from whyclust.io import load_for_explanation


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame.drop(columns="target")


def _pipelines():
    cols = ["alcohol", "malic_acid", "ash", "magnesium"]
    return {
        "scaler": make_pipeline(StandardScaler(), KMeans(3, n_init=2, random_state=0)),
        "scaler+pca": make_pipeline(StandardScaler(), PCA(4), KMeans(3, n_init=2, random_state=0)),
        "minmax+whitened pca": make_pipeline(
            MinMaxScaler(), PCA(3, whiten=True), MiniBatchKMeans(4, n_init=2, random_state=0)
        ),
        "robust+maxabs+svd": make_pipeline(
            RobustScaler(), MaxAbsScaler(), TruncatedSVD(5, random_state=0),
            KMeans(3, n_init=2, random_state=0),
        ),
        "column transformer": Pipeline([
            ("prepare", ColumnTransformer(
                [("num", make_pipeline(StandardScaler()), cols), ("rest", "passthrough", ["hue"])],
                remainder="drop",
            )),
            ("cluster", KMeans(3, n_init=2, random_state=0)),
        ]),
    }


@pytest.mark.parametrize("kind", list(_pipelines()))
def test_light_read_explains_exactly_like_the_full_model(tmp_path, wine, kind) -> None:
    pipe = _pipelines()[kind].fit(wine)
    path = wc.save(pipe, tmp_path / "m.whyclust")
    light = load_for_explanation(path)
    assert isinstance(light, Fitted) and isinstance(light.steps[-1][1], Fitted)
    full = wc.explain(wc.load(path), wine)
    mine = wc.explain(light, wine)
    np.testing.assert_array_equal(mine.cluster, pipe.predict(wine))
    np.testing.assert_allclose(mine.relevance, full.relevance, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mine.logit, full.logit, rtol=1e-12)
    assert mine.feature_names == full.feature_names == list(wine.columns)
    with pytest.raises(ValueError, match="columns"):
        wc.explain(light, wine[wine.columns[::-1]])


@pytest.mark.parametrize(
    "model",
    [
        lambda: KMeans(3, n_init=2, random_state=0),
        lambda: make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)),
        lambda: make_pipeline(SimpleImputer(), StandardScaler(), KMeans(3, n_init=2)),
        lambda: Pipeline([
            ("prepare", ColumnTransformer([("cat", OneHotEncoder(), ["kind"])],
                                          remainder=StandardScaler())),
            ("cluster", KMeans(2, n_init=2, random_state=0)),
        ]),
    ],
    ids=["bare kmeans", "gmm pipeline", "imputer", "one-hot"],
)
def test_other_models_load_in_full(tmp_path, wine, model) -> None:
    data = wine.assign(kind=np.where(wine["hue"] > 1, "a", "b"))
    est = model()
    est.fit(data if "cat" in str(est) else wine)
    path = wc.save(est, tmp_path / "m.whyclust")
    loaded = load_for_explanation(path)
    assert not isinstance(loaded, Fitted) and type(loaded) is type(est)


def test_a_light_model_is_read_only_and_checked(tmp_path, wine) -> None:
    path = wc.save(_pipelines()["scaler+pca"].fit(wine), tmp_path / "m.whyclust")
    light = load_for_explanation(path)
    with pytest.raises(TypeError, match="cannot save"):
        wc.save(light, tmp_path / "again.whyclust")
    assert not (tmp_path / "again.whyclust").exists()
    assert not hasattr(light, "predict") and not hasattr(light[:-1], "transform")
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF  # a tensor byte: the checksum refuses the file
    (tmp_path / "bad.whyclust").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum"):
        load_for_explanation(tmp_path / "bad.whyclust")


def test_cli_explain_of_a_table_model_never_imports_sklearn(tmp_path, wine) -> None:
    csv = tmp_path / "wine.csv"
    wine.to_csv(csv, index=False)
    model, out = tmp_path / "m.whyclust", tmp_path / "rel.csv"
    res = CliRunner().invoke(cli, ["fit", str(csv), "-k", "3", "-o", str(model), "-q"])
    assert res.exit_code == 0, res.output
    code = textwrap.dedent(f"""
        import sys
        from whyclust.cli import main
        try:
            main(["explain", {str(model)!r}, {str(csv)!r}, "-o", {str(out)!r}, "-q"])
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        print(sorted(m for m in ("sklearn", "scipy", "torch") if m in sys.modules))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip().splitlines()[-1] == "[]"
    got = pd.read_csv(out)
    want = wc.explain(wc.load(model), wine)
    np.testing.assert_array_equal(got["cluster"], want.cluster)
    np.testing.assert_allclose(got[list(wine.columns)].to_numpy(), want.relevance, atol=1e-9)


def test_a_parameter_the_fold_reads_is_checked(tmp_path, wine) -> None:
    """A file whose PCA says whiten="yes" (checksum recomputed) is refused by both reads."""
    import json

    from safetensors.numpy import save_file

    from whyclust.io import _MAGIC_KEY, _digest, read_model_file

    path = wc.save(_pipelines()["scaler+pca"].fit(wine), tmp_path / "m.whyclust")
    header, tensors = read_model_file(path)
    text = json.dumps(header["config"]).replace('"whiten": false', '"whiten": "yes"')
    assert '"whiten": "yes"' in text
    header["config"] = json.loads(text)
    header["sha256"] = _digest(header, tensors)
    bad = tmp_path / "bad.whyclust"
    save_file(tensors, str(bad), metadata={_MAGIC_KEY: json.dumps(header, sort_keys=True)})
    with pytest.raises(ValueError, match="whiten"):
        load_for_explanation(bad)
    with pytest.raises(ValueError):
        wc.load(bad)


def test_documented_submodules_are_attributes_of_the_package():
    code = (
        "import whyclust as wc\n"
        "print(wc.io.load_for_explanation.__name__, wc.networks.neuralize.__name__,"
        " wc.scale.explain_to.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["load_for_explanation", "neuralize", "explain_to"]
