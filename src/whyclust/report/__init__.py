"""One self-contained HTML report of a clustering and its explanations.

:func:`write_report` fits nothing: it takes a fitted model and data, explains every point
(or takes an :class:`~whyclust.Explanation`), and writes a single HTML file: figures are
embedded PNGs, the relevance tables are embedded CSV downloads (``data:`` URIs), and one
small inline script (allowed by hash in the page's Content-Security-Policy) filters the
table of points. Nothing is loaded from outside. The page is rendered from jinja2 templates
(``whyclust/report/templates``) with autoescaping on. Figures use subsamples, so the cost
beyond the explanation itself is bounded.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import os
import time
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from whyclust._validation import row_index_of

__all__ = ["build_report", "write_report"]


def write_report(model: Any, X: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Write the report of :func:`build_report` to ``path`` atomically; returns the path."""
    from whyclust.io import atomic_path

    page = build_report(model, X, **kwargs)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def build_report(
    model: Any,
    X: Any,
    *,
    y: Any = None,
    explanation: Any = None,
    method: str = "neon",
    beta: float | str = "auto",
    feature_names: Sequence[str] | None = None,
    row_ids: Sequence[Any] | None = None,
    image_shape: Sequence[int] | None = None,
    title: str | None = None,
    data_name: str | None = None,
    n_examples: int = 4,
    max_points: int = 2000,
    deletion_points: int = 200,
    max_table_points: int = 100_000,
    random_state: int | None = 0,
    progress: bool = False,
) -> str:
    """HTML text of the report.

    Parameters
    ----------
    model : fitted clusterer or ClusterNetwork
        Anything :func:`whyclust.neuralize` accepts.
    X : array-like of shape (n, d), (n, H, W) or (n, C, H, W)
        The data (all of it is assigned and explained; figures use subsamples).
    y : array-like of shape (n,), optional
        True classes: adds ACC / NMI / ARI and a confusion matrix.
    explanation : Explanation, optional
        Precomputed explanation of ``X``; computed with ``method`` and ``beta`` if absent.
    feature_names : list of str, optional
        Names of the d features (default: the DataFrame's columns, else ``x0, x1, ...``).
    row_ids : sequence of length n, optional
        Name of each point in the report (default: the DataFrame's index, else the row
        number, starting at 0).
    image_shape : (H, W) or (C, H, W), optional
        Show flat rows of ``X`` as images (e.g. (8, 8) for scikit-learn's digits).
    n_examples : int, default=4
        Example points per cluster.
    max_points : int, default=2000
        Points drawn on the 2-D map.
    deletion_points : int, default=200
        Points used for the deletion curves.
    max_table_points : int, default=100000
        Points listed in the searchable table (a random subset beyond).
    random_state : int, optional
        Seed of the subsamples.
    progress : bool, default=False
        Show a progress bar over the report's sections.
    """
    from tqdm.auto import tqdm

    import whyclust as wc
    from whyclust._features import check_feature_names
    from whyclust._validation import as_float_array
    from whyclust.api import neuralize
    from whyclust.explainers.explanation import check_explains_assignments
    from whyclust.report import _sections as S
    from whyclust.summary import group_means

    start = time.perf_counter()
    names = feature_names if feature_names is not None else _column_names(X)
    ids = _row_ids(X, row_ids)
    raw = X
    pipeline = type(model).__name__ == "Pipeline"
    check_feature_names(model, raw)
    if pipeline:  # explained in its raw columns; the figures use a numeric view of them
        X, coded = _numeric_view(raw)
    else:
        X, coded = as_float_array(X, ndim=(2, 3, 4)), []
    n = X.shape[0]
    flat = X.reshape(n, -1)
    d = flat.shape[1]
    img_shape = _image_shape(X, image_shape)
    if names is not None and len(names) != d:
        raise ValueError(f"feature_names has {len(names)} names for {d} features")
    if names is None:
        names = _default_names(d, img_shape)
    names = [str(v) for v in names]
    if len(ids) != n:
        raise ValueError(f"row_ids has {len(ids)} entries, X has {n} rows")
    _check_label_rows(raw, y)
    for value, label in ((n_examples, "n_examples"), (max_points, "max_points"),
                         (deletion_points, "deletion_points"),
                         (max_table_points, "max_table_points")):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} must be an integer >= 1, got {value!r}")
    rng = np.random.default_rng(random_state)

    steps = tqdm(total=9, desc="report", disable=not progress)
    net = neuralize(model)
    if explanation is not None:
        expl = explanation
        inputs = net.encode(raw) if pipeline else X
        check_explains_assignments(expl, net.logits(inputs), use="the report explains",
                                   index=row_index_of(raw))  # fmt: skip
    else:
        expl = wc.explain(model if pipeline else net, raw if pipeline else X, method, beta=beta)
    steps.update()
    k = int(net.n_clusters)
    cluster = np.asarray(expl.cluster)
    logit = np.asarray(expl.logit, dtype=np.float64)
    rel = np.asarray(expl.relevance).reshape(n, -1)  # a view: no copy of the n x d array
    sizes = np.bincount(cluster, minlength=k)
    mean_rel = group_means(rel, cluster, k)  # NaN rows for empty clusters

    ctx: dict[str, Any] = {}
    kind = "DataFrame" if row_index_of(raw) is not None else "array"
    ctx["summary"] = S.summary(model, net, expl, data_name or kind, img_shape, flat, rel, sizes, n)
    ctx["sizes"] = S.figure(S.F.sizes_figure(sizes), f"bar chart of the sizes of the {k} clusters")
    steps.update()
    ctx["labels"] = S.labels(np.asarray(y), cluster, k) if y is not None else None
    steps.update()
    protos, proto_kind = _prototypes(model, net, flat, cluster, k, sizes)
    text = [i for i, name in enumerate(names) if str(name) in coded]
    ctx["prototypes"] = S.prototypes(protos, proto_kind, flat, img_shape, names, sizes, text)
    steps.update()
    ctx["relevance"] = S.mean_relevance(mean_rel, names, sizes, img_shape)
    member, rest = S.cluster_feature_means(flat, cluster, k, sizes, _empty_cells(raw, pipeline))
    modes = S.text_modes(raw, coded, cluster, k) if coded else None
    ctx["top"] = S.top_features(np.nan_to_num(mean_rel), names, sizes, member, rest,
                                modes=modes)  # fmt: skip
    steps.update()
    ctx["examples"] = S.examples(
        X, flat, rel, logit, cluster, mean_rel, sizes, img_shape, names, ids, n_examples, rng
    )
    steps.update()
    if pipeline:  # the geometry the clusterer sees, not the raw table (codes, units)
        space = _pipeline_space(model, raw)
        space_protos = _prototypes(model[-1], None, space, cluster, k, sizes)[0]
        ctx["map"] = S.data_map(space, cluster, k, space_protos, sizes, max_points, rng,
                                "the space the pipeline's clusterer sees (after its steps)")
    else:
        ctx["map"] = S.data_map(flat, cluster, k, protos, sizes, max_points, rng)
    steps.update()
    if pipeline and (coded or int(net.n_features) != d):
        ctx["faith"] = {"skipped": (
            "Not measured: the pipeline encodes, drops or reorders some of its columns "
            "(imputation, one-hot, a ColumnTransformer), so removing a feature of the raw "
            "table has no single replacement value."
        )}  # fmt: skip
    else:
        ctx["faith"] = S.faithfulness(net, X, expl, img_shape, deletion_points, rng)
        ctx["faith"]["skipped"] = None
    steps.update()
    ctx["points"] = S.points(ids, cluster, logit, rel, names, max_table_points, rng)
    ctx["downloads"] = S.downloads(np.nan_to_num(mean_rel), sizes, names, rel, ids, cluster, logit)
    steps.update()
    steps.close()

    heading = title or f"whyclust report: {k} clusters" + (f" of {data_name}" if data_name else "")
    return _render(heading, ctx, time.perf_counter() - start)


def _render(title: str, ctx: dict[str, Any], elapsed: float) -> str:
    from whyclust import __version__

    script = _asset("search.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            title=title,
            version=__version__,
            when=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            elapsed=f"{elapsed:.1f}",
            css=_asset("report.css"),
            script=script,
            script_hash=f"sha256-{digest}",
            **ctx,
        )
    )


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("whyclust.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=4)
def _asset(name: str) -> str:
    return resources.files("whyclust.report").joinpath("templates", name).read_text("utf-8")


# --- data shapes and names ---------------------------------------------------------------


def _numeric_view(frame: Any) -> tuple[np.ndarray, list[str]]:
    """A float array of a table for the figures: text columns as category codes, missing
    cells as their column's mean; also the names of the coded columns."""
    import pandas as pd

    if not hasattr(frame, "columns"):
        arr = np.asarray(frame, dtype=np.float64)
        return np.where(np.isnan(arr), np.nanmean(arr, axis=0), arr), []
    cols, coded = [], []
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            codes = pd.factorize(col, use_na_sentinel=True)[0].astype(np.float64)
            values = np.where(codes < 0, np.nan, codes)
            coded.append(str(name))
        if np.isnan(values).all():
            values = np.zeros_like(values)
        cols.append(np.where(np.isnan(values), np.nanmean(values), values))
    return np.ascontiguousarray(np.stack(cols, axis=1)), coded


def _empty_cells(raw: Any, pipeline: bool) -> np.ndarray | None:
    """The cells a Pipeline's imputer fills (its figures show them filled), or None."""
    if not pipeline:
        return None  # other models refuse missing values
    if hasattr(raw, "isna"):
        return np.asarray(raw.isna())
    arr = np.asarray(raw)
    return np.isnan(arr) if arr.dtype.kind == "f" else None


def _column_names(X: Any) -> list[str] | None:
    from whyclust._validation import feature_names_of

    return feature_names_of(X)


def _image_shape(X: np.ndarray, image_shape: Sequence[int] | None) -> tuple[int, int, int] | None:
    if X.ndim == 4:
        shape = tuple(X.shape[1:])
    elif X.ndim == 3:
        shape = (1, *X.shape[1:])
    elif image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or int(np.prod(shape)) != X.shape[1]:
            raise ValueError(
                f"image_shape {tuple(image_shape)} does not match {X.shape[1]} features"
            )
    else:
        return None
    if shape[0] not in (1, 3):
        return None  # not displayable as an image (e.g. feature maps); show as a table
    return shape  # type: ignore[return-value]


def _default_names(d: int, img_shape: tuple[int, int, int] | None) -> list[str]:
    if img_shape is None:
        return [f"x{i}" for i in range(d)]
    c = img_shape[0]
    ch, r, col = np.unravel_index(np.arange(d), img_shape)
    if c == 1:
        return [f"pixel ({a},{b})" for a, b in zip(r, col, strict=True)]
    rgb = "RGB"
    return [f"{rgb[a]} ({b},{e})" for a, b, e in zip(ch, r, col, strict=True)]


def _row_ids(X: Any, row_ids: Sequence[Any] | None) -> np.ndarray:
    if row_ids is not None:
        return np.asarray([str(v) for v in row_ids], dtype=object)
    index = row_index_of(X)
    if index is not None:
        return np.asarray([str(v) for v in index], dtype=object)
    return np.asarray([str(i) for i in range(len(X))], dtype=object)


def _check_label_rows(X: Any, y: Any) -> None:
    """A labelled ``y`` (pandas Series) must be labelled as X's rows: matched by position
    otherwise, labels left behind by a shuffle or a filter would be scored silently."""
    x_index, y_index = row_index_of(X), getattr(y, "index", None)
    if x_index is None or y_index is None or callable(y_index) or y_index.equals(x_index):
        return
    if len(y_index) == len(x_index) and set(y_index) == set(x_index):
        how = "holds X's row labels in another order"
    else:
        how = "has other row labels than X"
    raise ValueError(
        f"y {how}: pass y.loc[X.index] to match them by label, or y.to_numpy() to match "
        "them by position"
    )


def _pipeline_space(model, raw) -> np.ndarray:
    """The rows as the pipeline's last step receives them, dense float64."""
    Z = model[:-1].transform(raw)
    Z = Z.toarray() if hasattr(Z, "toarray") else Z
    return np.asarray(Z, dtype=np.float64).reshape(len(Z), -1)


def _prototypes(model, net, flat, cluster, k, sizes) -> tuple[np.ndarray, str]:
    """Centroids in input space when the model has them, else the cluster means."""
    from whyclust.summary import group_means

    d = flat.shape[1]
    for attr in ("prototypes_", "cluster_centers_", "means_"):
        value = getattr(model, attr, None)
        if value is not None:
            arr = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
            if arr.ndim >= 2 and arr.shape[0] == k and int(np.prod(arr.shape[1:])) == d:
                return arr.reshape(k, d).astype(np.float64), f"model.{attr}"
    centers = getattr(net, "centers", None) if net is not None else None
    if centers is not None and tuple(centers.shape) == (k, d):
        return centers.detach().cpu().double().numpy(), "network centroids"
    return np.nan_to_num(group_means(flat, cluster, k)), "mean of the points in each cluster"
