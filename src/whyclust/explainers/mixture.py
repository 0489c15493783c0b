"""NEON for scikit-learn ``GaussianMixture`` models (all four covariance types), batched.

The explanation is of the hard assignment's margin f_c = min_{k != c} (g_c - g_k) (see
:mod:`whyclust.engine.mixture`); ``predict_proba`` stays the model's. numpy input runs on
numpy alone (torch is not imported).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from whyclust._validation import as_float_array, feature_names_of
from whyclust.engine.fold import mixture_arrays
from whyclust.engine.mixture import ROOT_NAMES, MixtureGeometry
from whyclust.explainers._engine import drive, explanation_from, on_device
from whyclust.explainers.dispatch import model_reference_mean
from whyclust.explainers.explanation import Explanation

__all__ = ["explain_mixture", "mixture_arrays", "mixture_geometry"]

#: values per batch in the (batch, K, d) working tensors
_BATCH_VALUES = 1 << 20


def mixture_geometry(
    model: Any, dtype: np.dtype, device: Any = None, eps: float | None = None,
    arrays: dict[str, Any] | None = None,
) -> MixtureGeometry:
    """The engine geometry of a fitted mixture, in ``dtype`` (numpy, or torch on ``device``);
    ``arrays`` reuses its :func:`mixture_arrays` when the caller has them."""
    arr = mixture_arrays(model) if arrays is None else arrays
    t = on_device({k: arr[k] for k in ("means", "chol", "weights")}, dtype, device)
    return MixtureGeometry(t["means"], t["chol"], t["weights"], arr["covariance_type"], eps)


def batch_rows(n_clusters: int, n_features: int, covariance_type: str) -> int:
    per_row = n_clusters * n_features * (n_features if covariance_type == "full" else 1)
    return max(16, _BATCH_VALUES // max(1, per_row))


def explain_mixture(
    model: Any,
    X: Any,
    *,
    target: Any = "assigned",
    beta: Any = "auto",
    contrast: Any = None,
    reference: Any = "midpoint",
    batch_size: int | None = None,
    eps: float | None = None,
    device: Any = None,
) -> Explanation:
    """NEON relevance of the hard assignment of a fitted ``GaussianMixture`` for each row.

    ``reference="midpoint"`` uses the default root rule of each quadratic margin (on the
    segment between the two means, else between x and the competitor's mean, else along
    the gradient); ``"mean"`` (the mixture's weighted mean) or an array tries the root on
    the segment from x to that reference first. ``extras["root"]`` (n, K) says which root
    each competitor used (codes into ``extras["root_names"]``, -1 for the target). The
    computation runs in float64 whatever X's dtype (the log-densities' terms cancel, and
    float32 rounding would break conservation); the results come back in X's dtype.
    """
    names = feature_names_of(X)
    arr = mixture_arrays(model)
    d = arr["means"].shape[1]
    X = as_float_array(X, n_features=d)
    out_dtype = X.dtype
    X = X.astype(np.float64, copy=False)
    geom = mixture_geometry(model, np.float64, device, eps, arrays=arr)
    bs = batch_size
    if bs is None:
        bs = batch_rows(geom.n_clusters, d, geom.covariance_type)
    res = drive(
        geom, X, like=geom.means, target=target, beta=beta, contrast=contrast,
        reference=reference, model_mean=model_reference_mean(model), batch_size=int(bs),
    )  # fmt: skip
    extras = {
        "root": res["info"].astype(np.int8),
        "root_names": ROOT_NAMES,
        "model": "gmm-" + arr["covariance_type"],
    }
    for key in ("relevance", "logit"):
        res[key] = np.asarray(res[key]).astype(out_dtype, copy=False)
    return explanation_from(res, names, extras)


