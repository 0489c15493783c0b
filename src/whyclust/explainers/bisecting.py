"""NEON for scikit-learn ``BisectingKMeans``: the bisection tree as a min-pool network.

See :mod:`whyclust.engine.bisecting`. The network's argmax is ``predict`` (the tree walk),
also where the flat nearest-centroid rule disagrees with it. numpy input runs on numpy
alone (torch is not imported).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from whyclust._validation import as_float_array, feature_names_of
from whyclust.engine.bisecting import BisectingGeometry
from whyclust.engine.fold import bisecting_arrays
from whyclust.explainers._engine import drive, explanation_from, on_device
from whyclust.explainers.dispatch import model_reference_mean
from whyclust.explainers.explanation import Explanation

__all__ = ["bisecting_arrays", "bisecting_geometry", "explain_bisecting"]

_BATCH_VALUES = 1 << 20


def bisecting_geometry(
    model: Any, dtype: np.dtype, device: Any = None, eps: float | None = None
) -> BisectingGeometry:
    arr = bisecting_arrays(model)
    t = on_device({k: arr[k] for k in ("left", "right", "signs")}, dtype, device)
    div = arr["divergence"]
    if not isinstance(t["left"], np.ndarray):
        import torch

        div = torch.from_numpy(div).to(t["left"].device)
    return BisectingGeometry(t["left"], t["right"], t["signs"], div, eps)


def explain_bisecting(
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
    """NEON relevance of a fitted ``BisectingKMeans``'s assignment for each row of ``X``.

    The logit of leaf c is the smallest margin on its tree path; each margin is explained
    from the midpoint of its node's two children (``reference="mean"`` or an array: the
    root on the segment from x to the reference where the margin changes sign there).
    ``contrast=k`` explains the margin at the node where the paths of c and k part.
    """
    names = feature_names_of(X)
    arr = bisecting_arrays(model)
    d = arr["left"].shape[1]
    X = as_float_array(X, n_features=d)
    geom = bisecting_geometry(model, X.dtype, device, eps)
    bs = batch_size if batch_size is not None else max(64, _BATCH_VALUES // max(1, d))
    res = drive(
        geom, X, like=geom.direction, target=target, beta=beta, contrast=contrast,
        reference=reference, model_mean=model_reference_mean(model), batch_size=int(bs),
    )  # fmt: skip
    extras: dict[str, Any] = {"model": "bisecting-kmeans"}
    if res["info"] is not None:
        extras["baseline_root_share"] = res["info"]
    return explanation_from(res, names, extras)
