"""Inputs the Pipeline path must take like the bare models do: pandas' nullable dtypes,
mixed integer / float frames, complex values."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import whyclust as wc

_RNG = np.random.default_rng(0)
_FRAME = pd.DataFrame(_RNG.normal(size=(60, 3)) * 10, columns=["a", "b", "c"])


def _pipeline(frame: pd.DataFrame):
    return make_pipeline(StandardScaler(), KMeans(3, n_init=2, random_state=0)).fit(frame)


@pytest.mark.parametrize("dtype", ["Float64", "Int64"])
def test_nullable_dtypes_are_explained_like_numpy_ones(dtype):
    frame = _FRAME.round() if dtype == "Int64" else _FRAME
    model = _pipeline(frame)
    nullable = frame.astype(dtype)
    e = wc.explain(model, nullable)
    np.testing.assert_array_equal(e.cluster, model.predict(nullable))
    np.testing.assert_allclose(e.relevance.sum(1), e.logit, rtol=1e-4, atol=1e-6)


def test_a_missing_nullable_cell_is_named():
    model = _pipeline(_FRAME)
    frame = _FRAME.astype("Float64")
    frame.iloc[3, 1] = pd.NA
    with pytest.raises(ValueError, match=r"row 3 in column 'b'"):
        wc.explain(model, frame)


def test_float64_beside_integer_columns_stays_float64():
    frame = _FRAME.assign(c=_FRAME["c"].round().astype(np.int64))
    e = wc.explain(_pipeline(frame), frame)
    assert e.relevance.dtype == np.float64
    np.testing.assert_allclose(e.relevance.sum(1), e.logit, rtol=1e-9)


@pytest.mark.parametrize("as_frame", [False, True])
def test_complex_input_is_a_type_error_without_warnings(as_frame):
    model = _pipeline(_FRAME.to_numpy())
    X = _FRAME.to_numpy() + 1j
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="real-valued"):
            wc.explain(model, pd.DataFrame(X) if as_frame else X)
