"""Third-party faithfulness and robustness metrics (Quantus) and the randomisation check.

Quantus sees the cluster network as a classifier with K logits f_k(x) (``softmax=False``)
and the assigned cluster as the label. Inputs are handed to it as (n, C, ...) arrays
(tabular points as (n, 1, d)), and every explanation is recomputed through
:func:`whyclust.explain` where a metric asks for one (MaxSensitivity).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from whyclust._validation import SAMPLE_NDIM, as_float_array

__all__ = ["DEFAULT_METRICS", "center_randomisation", "quantus_scores"]

#: metric name -> (Quantus class name, constructor options)
DEFAULT_METRICS: dict[str, tuple[str, dict[str, Any]]] = {
    "FaithfulnessCorrelation": (
        "FaithfulnessCorrelation", {"nr_runs": 30, "subset_size": 0.1,  # per point, not a mean
                                    "perturb_baseline": "black", "return_aggregate": False}
    ),
    "MonotonicityCorrelation": (
        "MonotonicityCorrelation", {"nr_samples": 5, "features_in_step": 0.05,
                                    "perturb_baseline": "black",
                                    "return_aggregate": False}
    ),
    "PixelFlipping": (
        "PixelFlipping", {"features_in_step": 0.05, "perturb_baseline": "black",
                          "return_aggregate": False}
    ),
    "MaxSensitivity": ("MaxSensitivity", {"nr_samples": 5, "lower_bound": 0.1}),
}  # fmt: skip


class _Classifier(nn.Module):
    """The cluster network on Quantus's (n, C, ...) inputs: reshape, then the K logits."""

    def __init__(self, net: nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.net = net
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0], *self.shape))


def _resolve(options: dict[str, Any], d: int) -> dict[str, Any]:
    """Fractions of the feature count (``subset_size``, ``features_in_step``) as integers;
    ``features_in_step`` is rounded to a divisor of d, as Quantus requires."""
    out = dict(options)
    if isinstance(out.get("subset_size"), float):
        out["subset_size"] = max(1, min(d - 1, round(out["subset_size"] * d)))
    if isinstance(out.get("features_in_step"), float):
        want = max(1, round(out["features_in_step"] * d))
        out["features_in_step"] = min((k for k in range(1, d + 1) if d % k == 0),
                                      key=lambda k: (abs(k - want), k))  # fmt: skip
    return out


def quantus_scores(
    model: Any,
    X: Any,
    methods: Iterable[str],
    *,
    metrics: dict[str, tuple[str, dict[str, Any]]] | None = None,
    method_options: dict[str, dict[str, Any]] | None = None,
):
    """Median Quantus score of each explanation method on the points ``X``.

    Parameters
    ----------
    model : fitted clusterer or ClusterNetwork
    X : array-like of shape (n, d) or (n, C, H, W)
    methods : iterable of str
        Explanation methods of :func:`whyclust.explain`.
    metrics : dict, optional
        Name -> (Quantus class name, constructor options); default :data:`DEFAULT_METRICS`.
        Float ``subset_size`` / ``features_in_step`` are fractions of the feature count.
    method_options : dict, optional
        Per-method options for :func:`whyclust.explain`.

    Returns
    -------
    pandas.DataFrame
        Rows = methods, columns = metrics (median over points; for PixelFlipping the mean
        of f_c / f_c(x) over the flipping steps, lower is better). Quantus's ``"black"``
        baseline is each point's minimum.
    """
    try:
        import quantus
    except ImportError as exc:  # pragma: no cover - quantus is in the "bench" extra
        raise ImportError("quantus_scores needs quantus: pip install 'whyclust[bench]'") from exc
    import pandas as pd

    from whyclust.api import explain
    from whyclust.networks import evaluating, neuralize

    net = evaluating(neuralize(model))
    X = as_float_array(X, ndim=SAMPLE_NDIM)
    shape = X.shape[1:]
    q_shape = (1, *shape) if X.ndim == 2 else shape
    d = int(np.prod(shape))
    clf = _Classifier(net, shape).eval()
    x_batch = X.reshape(X.shape[0], *q_shape)
    with torch.no_grad():
        out = net(torch.from_numpy(np.ascontiguousarray(X)).to(net.dtype))
    y_batch = out.argmax(1).numpy()
    logit = out.amax(1).double().numpy()
    metrics = DEFAULT_METRICS if metrics is None else metrics
    options = method_options or {}
    rows = []
    for m in methods:
        opts = options.get(m, {})

        def explain_func(model, inputs, targets, m=m, opts=opts, **_: Any) -> np.ndarray:
            inputs = np.asarray(inputs, dtype=X.dtype)
            pts = inputs.reshape(inputs.shape[0], *shape)
            rel = explain(net, pts, method=m, target=np.asarray(targets), **opts).relevance
            return np.asarray(rel).reshape(inputs.shape)

        a_batch = explain_func(clf, x_batch, y_batch)
        row: dict[str, Any] = {"method": m}
        for name, (cls_name, kwargs) in metrics.items():
            metric = getattr(quantus, cls_name)(
                **_resolve(kwargs, d), disable_warnings=True, display_progressbar=False
            )
            scores = metric(
                model=clf, x_batch=x_batch, y_batch=y_batch, a_batch=a_batch,
                explain_func=explain_func, softmax=False, channel_first=True, device="cpu",
            )  # fmt: skip
            values = np.asarray(scores, dtype=np.float64)
            if values.ndim == 2:  # PixelFlipping's curves: mean of f_c / f_c(x) over steps
                values = values.mean(1) / logit
            row[name] = float(np.nanmedian(values))
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def center_randomisation(
    model: Any,
    X: Any,
    method: str = "neon",
    *,
    random_state: Any = 0,
    **options: Any,
) -> np.ndarray:
    """Per-point Spearman correlation of the explanation before and after randomising the
    cluster centers (drawn from a normal with each feature's mean and spread over the
    centers); the same target cluster is explained. Near 0: the explanation depends on the
    model (the sanity check passes); near 1: it does not.
    """
    from scipy.stats import rankdata

    from whyclust.api import explain
    from whyclust.networks import EncodedClusterNetwork, KMeansNetwork, evaluating, neuralize

    net = evaluating(neuralize(model))
    head = net.head if isinstance(net, EncodedClusterNetwork) else net
    if not isinstance(head, KMeansNetwork):
        raise TypeError("center_randomisation needs a k-means head")
    X = as_float_array(X, ndim=SAMPLE_NDIM)
    centers = head.centers.detach().cpu().double().numpy()
    rng = np.random.default_rng(random_state)
    rand = rng.normal(centers.mean(0), centers.std(0) + 1e-12, size=centers.shape)
    new_head = KMeansNetwork(torch.from_numpy(rand).to(head.centers.dtype))
    if isinstance(net, EncodedClusterNetwork):
        rnet = EncodedClusterNetwork(net.encoder, new_head, net.n_features)
    else:
        rnet = new_head
    e = explain(net, X, method=method, **options)
    er = explain(rnet, X, method=method, target=e.target, **options)
    a = rankdata(e.relevance.reshape(len(X), -1), axis=1)
    b = rankdata(er.relevance.reshape(len(X), -1), axis=1)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
