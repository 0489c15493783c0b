"""What each section of the report shows: numbers, tables and figures, never HTML.

Each function returns a plain dict that the jinja2 template (``templates/report.html.j2``,
autoescaped) renders; figures are ``{"src": data URI, "alt": text, "width": px}``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from whyclust.report import _figures as F
from whyclust.summary import group_means, relevance_share

_MAX_CLUSTERS_SHOWN = 30  # example rows; beyond this the report lists the largest clusters
_MAX_CSV_VALUES = 300_000  # per-point relevance is embedded as CSV up to n x d values
_PROTOCOLS = {
    "mean": "the mean of each feature over the evaluated points",
    "zero": "0 (black, for images)",
    "blur": "a Gaussian blur (sigma = 2 pixels) of the image itself",
}


def figure(fig, alt: str) -> dict[str, Any]:
    return {"src": F.to_data_uri(fig), "alt": alt, "width": int(fig.get_figwidth() * 100)}


def _num(v: float) -> str:
    return F.compact_number(v)


def summary(model, net, expl, data_name, img_shape, flat, rel, sizes, n) -> dict[str, Any]:
    from whyclust.networks import KMeansNetwork

    logit = np.asarray(expl.logit, dtype=np.float64)
    features = f"{rel.shape[1]:,}" + (
        f" (image {' x '.join(map(str, img_shape))})" if img_shape else ""
    )
    method = str(expl.method) + (f", beta = {expl.beta:.3g}" if expl.beta is not None else "")
    scale = float(np.abs(logit).max()) or 1.0
    explained = np.asarray(expl.explained_logit(), dtype=np.float64)
    gap = float(np.abs(rel.sum(1, dtype=np.float64) - explained).max()) / scale
    sums_to = "(f_c - reference part)" if "reference_part" in expl.extras else "f_c"
    conservation = f"max |sum R - {sums_to}| / max |f_c| = {gap:.1e}" + (
        " (exact)" if gap < 1e-3 else " (relevance is not conserved by this method)"
    )
    rows = [
        ("data", data_name or "array"),
        ("points", f"{n:,}"),
        ("features", features),
        ("model", type(model).__name__),
        ("clusters", f"{net.n_clusters} ({int((sizes == 0).sum())} empty)"),
        ("explanation", method),
        ("reference", reference_of(str(expl.method), net, expl)),
        ("mean logit f_c", f"{logit.mean():.4g}"),
        ("conservation", conservation),
    ]
    note = None
    if img_shape is None and flat.shape[1] > 1 and not _scales_columns(model):
        std = flat[:20_000].std(0, dtype=np.float64)  # the spread of the first rows is enough
        spread = float(std.max() / std[std > 0].min()) if (std > 0).sum() > 1 else 1.0
        if spread > 100:
            note = (
                f"The features' standard deviations differ by a factor of {_num(spread)}: "
                "squared distances, and so the clusters and their explanations, are dominated "
                "by the features with the largest spread. Standardise the data (e.g. a "
                "StandardScaler before the clusterer) if all features should count."
            )
    return {"rows": rows, "kmeans_head": isinstance(net, KMeansNetwork), "note": note}


def _scales_columns(model) -> bool:
    """Whether a Pipeline scales its columns before the clusterer (any ``*Scaler`` step,
    also inside a ColumnTransformer or a nested Pipeline)."""

    def scales(est) -> bool:
        if type(est).__name__.endswith("Scaler"):
            return True
        parts = [s for _, s, *_ in getattr(est, "steps", [])]
        parts += [t for _, t, *_ in getattr(est, "transformers_", [])]
        return any(scales(p) for p in parts if not isinstance(p, str))

    steps = getattr(model, "steps", None)
    return bool(steps) and any(scales(s) for _, s in steps[:-1])


def reference_of(method: str, net, expl=None) -> str:
    """The reference point an explainer's relevance is measured against, in words."""
    from whyclust.networks import KMeansNetwork

    given = (getattr(expl, "extras", None) or {}).get("reference")
    if isinstance(given, str) and given != "midpoint":
        return {
            "mean": "the data mean (root on the segment to it where a margin changes sign "
            "there, else the centroid midpoint)",
            "array": "the given reference point (root on the segment to it where a margin "
            "changes sign there, else the centroid midpoint)",
        }.get(given, given)
    if method == "neon":
        steps = ""
        if type(net).__name__ == "PipelineNetwork":  # affine steps: the same root, pulled back
            net, steps = net.head, " (in the model's inputs, pulled back to the columns)"
        name = type(net).__name__
        if isinstance(net, KMeansNetwork):
            return "midpoint (mu_c + mu_k) / 2 of the two centroids of each margin" + steps
        if name == "KernelKMeansNetwork":
            return "midpoints (u_i + u_j) / 2 of support points of the two clusters" + steps
        if name == "BisectingNetwork":
            return "midpoint of the two children's centroids at each node of the path" + steps
        if name == "MixtureNetwork":
            return (
                "a root r of each margin g_c - g_k (h(r) = 0), sought first between the two "
                "components' means" + steps
            )
        return "head: centroid midpoints in code space; encoder: LRP rules (no single point)"
    return {
        "gradient_x_input": "the origin 0 (R = x * df_c/dx)",
        "gradient x input": "the origin 0 (R = x * df_c/dx)",
        "gradient": "none (a local sensitivity, not a decomposition of f_c)",
        "integrated_gradients": "the path baseline (0 unless set)",
        "occlusion": "the occlusion value (0 unless set)",
        "shap": "a background sample of the data",
        "random": "none: a random order, the chance level",
    }.get(method, "see the method's documentation")


def labels(y: np.ndarray, cluster: np.ndarray, k: int) -> dict[str, Any]:
    import whyclust as wc

    if y.shape[0] != cluster.shape[0]:
        raise ValueError(f"labels have {y.shape[0]} entries, the data {cluster.shape[0]} rows")
    scores = wc.metrics.evaluate(y, cluster)
    classes, ti = np.unique(y, return_inverse=True)
    table = np.zeros((classes.size, k), dtype=np.int64)
    np.add.at(table, (ti, cluster), 1)
    match = wc.metrics.matching(y, cluster)
    # clusters in the order of their matched classes, so that agreement is the diagonal
    rank = {cls: i for i, cls in enumerate(classes)}
    cols = sorted(range(k), key=lambda c: (rank.get(match.get(c), classes.size), c))
    fig = F.confusion_figure(table[:, cols], [_label(c) for c in classes], [str(c) for c in cols])
    return {
        "scores": [(m.upper(), f"{scores[m]:.3f}") for m in ("acc", "nmi", "ari")],
        "mapping": [(int(c), _label(match[c])) for c in sorted(match)],
        "figure": figure(
            fig, "confusion matrix: counts of each true class (rows) in each cluster (columns)"
        ),
    }


def _label(value: Any) -> str:
    """A class label as text: whole numbers read from a table as floats lose their ".0"."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def prototypes(protos, kind, flat, img_shape, names, sizes, text=()) -> dict[str, Any]:
    """The clusters' prototypes: images, or z-scores of the numeric columns (the indices
    in ``text`` are text columns, whose category codes have no z-score)."""
    k = protos.shape[0]
    titles = [f"{c} (n={sizes[c]:,})" for c in range(k)]
    if img_shape is not None:
        fig = F.image_grid_figure(protos.reshape(k, *img_shape), titles)
        alt = f"prototype image of each of the {k} clusters, with a grey-scale colour bar"
        return {"figure": figure(fig, alt), "kind": kind, "note": ""}
    mean, std = flat.mean(0), flat.std(0)
    z = (protos - mean) / np.where(std > 0, std, 1.0)
    numeric = np.setdiff1d(np.arange(z.shape[1]), np.asarray(text, dtype=np.int64))
    if numeric.size == 0:
        return {"figure": None, "kind": kind, "note": "Every column is text: no z-scores."}
    order = numeric[np.argsort(-np.abs(z[:, numeric]).max(0), kind="stable")]
    keep = np.sort(order[:15])
    fig = F.tabular_prototypes_figure(z[:, keep], [names[i] for i in keep], titles)
    note = "" if len(keep) == z.shape[1] else f"The {len(keep)} most distinctive numeric features."
    alt = f"bar charts of the {k} prototypes as z-scores of {len(keep)} features"
    return {
        "figure": figure(fig, alt),
        "kind": kind + ", as z-scores against the data",
        "note": note,
    }


def mean_relevance(mean_rel, names, sizes, img_shape) -> dict[str, Any]:
    k = mean_rel.shape[0]
    if img_shape is not None:
        titles = [f"{c} (n={sizes[c]:,})" for c in range(k)]  # short: the tiles are small
        maps = mean_rel.reshape(k, *img_shape).sum(1)
        fig = F.mean_relevance_images_figure(np.nan_to_num(maps), titles)
        alt = f"mean relevance heatmap of each of the {k} clusters, one shared colour scale"
        return {"figure": figure(fig, alt), "images": True}
    titles = [f"cluster {c} (n={sizes[c]:,})" for c in range(k)]
    fig = F.mean_relevance_figure(mean_rel, names, titles)
    alt = f"bar charts of the features with the largest mean relevance in each of {k} clusters"
    return {"figure": figure(fig, alt), "images": False}


def top_features(mean_rel, names, sizes, member_mean, rest_mean, n_top: int = 5,
                 modes=None):  # fmt: skip
    """The ``n_top`` most relevant features of each cluster; ``modes`` maps a text column's
    index to its (cluster's most common value, the rest's) per cluster, shown instead of
    means of category codes."""
    share = relevance_share(mean_rel)
    modes = modes or {}
    n_top = min(n_top, mean_rel.shape[1])
    rows = []
    for c in range(mean_rel.shape[0]):
        if sizes[c] == 0:
            rows.append({"cluster": c, "size": "0", "features": []})
            continue
        top = np.argsort(-mean_rel[c], kind="stable")[:n_top]
        top = top[mean_rel[c, top] > 0]  # not padded with features that count for nothing
        feats = []
        for i in top:
            if i in modes:  # a text column: its most common values, no direction
                member, rest = modes[i][c]
                feats.append({"name": str(names[i]), "arrow": "", "direction": "most often",
                              "member": member, "rest": rest,
                              "share": f"{100 * share[c, i]:.0f}%"})  # fmt: skip
                continue
            compared = bool(np.isfinite(rest_mean[c, i]))  # no other points: no direction
            higher = compared and bool(member_mean[c, i] >= rest_mean[c, i])
            feats.append(
                {
                    "name": str(names[i]),
                    "arrow": ("↑" if higher else "↓") if compared else "",
                    "direction": ("higher" if higher else "lower") if compared else "",
                    "member": _num(member_mean[c, i]),
                    "rest": _num(rest_mean[c, i]) if np.isfinite(rest_mean[c, i]) else "n/a",
                    "share": f"{100 * share[c, i]:.0f}%",
                }
            )
        rows.append({"cluster": c, "size": f"{sizes[c]:,}", "features": feats})
    return {"rows": rows, "n_top": n_top, "two": mean_rel.shape[0] == 2}


def examples(X, flat, rel, logit, cluster, mean_rel, sizes, img_shape, names, ids, n_ex, rng):
    order = np.argsort(-sizes, kind="stable")[:_MAX_CLUSTERS_SHOWN]
    order = np.sort(order[sizes[order] > 0])
    picks = {}
    for c in order:  # one pick per cluster (at most 30): negligible next to the figures
        members = np.flatnonzero(cluster == c)
        chosen = rng.choice(members, size=min(n_ex, members.size), replace=False)
        picks[c] = chosen[np.argsort(-logit[chosen])]
    figs = []
    for start in range(0, len(order), 10):
        block = order[start : start + 10]
        if img_shape is not None:
            ch, h, w = img_shape
            rows = [
                (f"cluster {c}", flat[picks[c]].reshape(-1, ch, h, w),
                 rel[picks[c]].reshape(-1, ch, h, w).sum(1), logit[picks[c]], ids[picks[c]])
                for c in block
            ]  # fmt: skip
            means = [np.nan_to_num(mean_rel[c]).reshape(ch, h, w).sum(0) for c in block]
            fig = F.image_examples_figure(rows, mean_relevance=means)
            what = "images and their relevance heatmaps"
        else:
            rows = [(f"cluster {c}", rel[picks[c]], logit[picks[c]], names, ids[picks[c]])
                    for c in block]  # fmt: skip
            fig = F.tabular_examples_figure(rows, n_top=min(8, flat.shape[1]))
            what = "bar charts of the most relevant features"
        shown = ", ".join(str(r) for c in block for r in ids[picks[c]])
        alt = f"example points of clusters {block[0]} to {block[-1]} (rows {shown}): {what}"
        figs.append(figure(fig, alt))
    partial = len(order) < int((sizes > 0).sum())
    return {"figures": figs, "images": img_shape is not None, "n_shown": len(order),
            "partial": partial}  # fmt: skip


def data_map(flat, cluster, k, protos, sizes, max_points, rng, space=None) -> dict[str, Any]:
    """PCA map of ``flat``; ``space`` names it when it is not the input space."""
    from sklearn.decomposition import PCA

    n = flat.shape[0]
    if flat.shape[1] < 2 or n < 2:  # no plane to project on
        return {"figure": None, "n_shown": 0, "n": n, "space": space}
    idx = rng.choice(n, size=min(n, max_points), replace=False)
    pca = PCA(n_components=2, random_state=0).fit(flat[idx])
    fig = F.map_figure(
        pca.transform(flat[idx]), cluster[idx], k, prototypes=pca.transform(protos),
        explained=tuple(pca.explained_variance_ratio_), sizes=sizes,
    )  # fmt: skip
    alt = f"scatter plot of {idx.size:,} points on the first two principal components, by cluster"
    return {"figure": figure(fig, alt), "n_shown": int(idx.size), "n": n, "space": space}


def faithfulness(net, X, expl, img_shape, n_points, rng) -> dict[str, Any]:
    n = X.shape[0]
    idx = np.sort(rng.choice(n, size=min(n, n_points), replace=False))
    Xs = X[idx]
    rel = np.asarray(expl.relevance)[idx]
    protocols = ["zero", "mean", "blur"] if img_shape is not None else ["mean", "zero"]
    shape = img_shape if X.ndim == 2 else None
    curves = deletion_curves(
        net, Xs, rel, str(expl.method), protocols, int(rng.integers(2**31)), image_shape=shape
    )
    fractions = curves.pop("__fractions__")
    fig = F.deletion_figure(fractions, curves)
    methods = list(next(iter(curves.values())))
    table = [
        {"method": m, "reference": reference_of(m, net, expl if m == expl.method else None),
         "auc": [f"{curves[p][m][1]:.3f}" if m in curves[p] else "" for p in curves]}
        for m in methods
    ]  # fmt: skip
    alt = (
        f"deletion curves under {len(curves)} replacement protocols ("
        + ", ".join(curves) + "): median normalised logit against the fraction of features "
        "removed"
    )  # fmt: skip
    return {
        "figure": figure(fig, alt),
        "protocols": [(p, _PROTOCOLS[p]) for p in curves],
        "table": table,
        "n": int(idx.size),
    }


def deletion_curves(
    net, Xs, rel, name, protocols: Sequence[str], seed, *, image_shape=None
) -> dict[str, Any]:
    """Median normalised deletion curves and AUCs per protocol, over the points: the
    explanation, gradient x input and random order.

    Each ranking is computed once and evaluated under every protocol (mean / zero / blur
    replacement of the deleted features). The median, not the mean: f_c / f_c(x) of a
    point whose logit is near 0 reaches any size and would decide a mean alone.
    """
    from whyclust.evaluation import deletion_curve
    from whyclust.explainers import available_methods

    def median_curve(result) -> tuple[np.ndarray, float]:
        norm = result.normalized
        keep = np.isfinite(norm).all(1) & (result.logit > 0)
        return np.median(norm[keep], axis=0), float(np.median(result.auc[keep]))

    rankings: dict[str, np.ndarray] = {name: rel}
    if name != "gradient_x_input" and "gradient_x_input" in available_methods():
        from whyclust.api import explain

        try:
            rankings["gradient x input"] = explain(net, Xs, "gradient_x_input").relevance
        except (ValueError, TypeError, NotImplementedError, RuntimeError, ImportError):
            pass  # captum missing, or a network it cannot handle: leave the reference out
    rankings["random"] = np.random.default_rng(seed).random(Xs.reshape(len(Xs), -1).shape)
    out: dict[str, Any] = {}
    for protocol in protocols:
        out[protocol] = {}
        for method, ranking in rankings.items():
            result = deletion_curve(net, Xs, ranking, baseline=protocol, image_shape=image_shape)
            out["__fractions__"] = result.fractions
            out[protocol][method] = median_curve(result)
    return out


def top_per_point(rel: np.ndarray, n_top: int = 3, block: int = 8192) -> np.ndarray:
    """Indices of the ``n_top`` largest relevances of each point, largest first."""
    n, d = rel.shape
    k = min(n_top, d)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block):
        r = rel[start : start + block]
        part = (
            np.argpartition(-r, k - 1, axis=1)[:, :k]
            if k < d
            else np.tile(np.arange(d), (len(r), 1))
        )
        vals = np.take_along_axis(r, part, axis=1)
        out[start : start + block] = np.take_along_axis(part, np.argsort(-vals, axis=1), axis=1)
    return out


def points(ids, cluster, logit, rel, names, max_points, rng) -> dict[str, Any]:
    """Rows of the searchable table: [row id, cluster, logit (4 digits), top-3 features]."""
    n = len(ids)
    idx = np.arange(n) if n <= max_points else np.sort(rng.choice(n, max_points, replace=False))
    top = top_per_point(rel[idx])
    positive = np.take_along_axis(rel[idx], top, axis=1) > 0  # features that speak for c
    used, local = np.unique(top, return_inverse=True)  # only the names that occur
    local = local.reshape(top.shape)
    rows = list(
        zip(
            ids[idx].tolist(),
            cluster[idx].tolist(),
            _significant(logit[idx], 4).tolist(),
            [row[keep].tolist() for row, keep in zip(local, positive, strict=True)],
            strict=True,
        )
    )
    return {"data": {"names": [str(names[j]) for j in used], "rows": rows},
            "n": n, "shown": int(idx.size)}  # fmt: skip


def _significant(values: np.ndarray, digits: int) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (vectorised)."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.where(v != 0, np.floor(np.log10(np.abs(v))), 0)
    scale = 10.0 ** (digits - 1 - exponent)
    return np.round(v * scale) / scale


def _csv_uri(frame) -> str:
    text = frame.to_csv(index=False, lineterminator="\n")
    return "data:text/csv;charset=utf-8;base64," + base64.b64encode(text.encode()).decode()


def downloads(mean_rel, sizes, names, rel, ids, cluster, logit) -> dict[str, Any]:
    import pandas as pd

    k = mean_rel.shape[0]
    mean = pd.DataFrame(mean_rel, columns=list(names))
    mean.insert(0, "size", sizes)
    mean.insert(0, "cluster", np.arange(k))
    files = [{"label": "mean relevance per cluster", "filename": "mean_relevance.csv",
              "href": _csv_uri(mean), "shape": f"{k} x {len(names)}"}]  # fmt: skip
    n, d = rel.shape
    per_point = n * d <= _MAX_CSV_VALUES
    if per_point:
        frame = pd.DataFrame(rel, columns=list(names))
        frame.insert(0, "logit", logit)
        frame.insert(0, "cluster", cluster)
        frame.insert(0, "row_id", [str(i) for i in ids])
        files.append({"label": "relevance of every point", "filename": "relevance.csv",
                      "href": _csv_uri(frame), "shape": f"{n:,} x {d:,}"})  # fmt: skip
    return {"files": files, "per_point": per_point}


def text_modes(frame, coded: list[str], cluster, k: int) -> dict[int, list[tuple[str, str]]]:
    """For each text column (by index): per cluster, its most common value among the
    members and among all other points ("n/a" where there are none); empty cells count as
    a value of their own, "(missing)", as the one-hot encoding does."""

    def mode(values) -> str:
        counts = values.fillna("(missing)").value_counts()
        return str(counts.index[0]) if len(counts) else "n/a"

    out: dict[int, list[tuple[str, str]]] = {}
    columns = [str(c) for c in frame.columns]
    for name in coded:
        col = frame[frame.columns[columns.index(name)]].astype("object")
        out[columns.index(name)] = [
            (mode(col[cluster == c]), mode(col[cluster != c])) for c in range(k)
        ]
    return out


def cluster_feature_means(flat, cluster, k, sizes, missing=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each feature over a cluster's members and over all other points, over the
    cells that hold a value (``missing``: a mask of the cells that were empty)."""
    present = np.ones_like(flat) if missing is None else (~missing).astype(np.float64)
    values = flat if missing is None else np.where(missing, 0.0, flat)
    sums = np.nan_to_num(group_means(values, cluster, k)) * sizes[:, None]
    counts = np.nan_to_num(group_means(present, cluster, k)) * sizes[:, None]
    total, total_count = values.sum(0, dtype=np.float64), present.sum(0, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        member = np.where(counts > 0, sums / counts, 0.0)
        rest = (total[None] - sums) / (total_count[None] - counts)
    return member, rest
