"""One self-contained HTML report of a clustering and its explanations.

:func:`write_report` fits nothing: it takes a fitted model and data, explains every point
(or takes an :class:`~whyclust.Explanation`), and writes a single HTML file whose figures
are embedded PNGs, with no script and no external resource. Figures use subsamples, so the
cost beyond the explanation itself is bounded.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["build_report", "write_report"]

_MAX_CLUSTERS_SHOWN = 30  # example rows; beyond this the report lists the largest clusters


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
    image_shape: Sequence[int] | None = None,
    title: str | None = None,
    data_name: str | None = None,
    n_examples: int = 4,
    max_points: int = 2000,
    deletion_points: int = 200,
    random_state: int | None = 0,
    progress: bool = False,
) -> str:
    """HTML text of the report.

    Parameters
    ----------
    model : fitted clusterer or ClusterNetwork
        Anything :func:`whyclust.networks` accepts.
    X : array-like of shape (n, d), (n, H, W) or (n, C, H, W)
        The data (all of it is assigned and explained; figures use subsamples).
    y : array-like of shape (n,), optional
        True classes: adds ACC / NMI / ARI and a confusion matrix.
    explanation : Explanation, optional
        Precomputed explanation of ``X``; computed with ``method`` and ``beta`` if absent.
    feature_names : list of str, optional
        Names of the d features (tabular data).
    image_shape : (H, W) or (C, H, W), optional
        Show flat rows of ``X`` as images (e.g. (8, 8) for scikit-learn's digits).
    n_examples : int, default=4
        Example points per cluster.
    max_points : int, default=2000
        Points drawn on the 2-D map.
    deletion_points : int, default=200
        Points used for the deletion curves.
    random_state : int, optional
        Seed of the subsamples.
    progress : bool, default=False
        Show a progress bar over the report's sections.
    """
    from tqdm.auto import tqdm

    import whyclust as wc
    from whyclust._validation import as_float_array
    from whyclust.networks import neuralize

    start = time.perf_counter()
    names = feature_names if feature_names is not None else _column_names(X)
    X = as_float_array(X, ndim=(2, 3, 4))
    n = X.shape[0]
    flat = X.reshape(n, -1)
    d = flat.shape[1]
    img_shape = _image_shape(X, image_shape)
    if names is not None and len(names) != d:
        raise ValueError(f"feature_names has {len(names)} names for {d} features")
    if names is None:
        names = _default_names(d, img_shape)
    if n_examples < 1 or max_points < 1 or deletion_points < 1:
        raise ValueError("n_examples, max_points and deletion_points must be >= 1")
    rng = np.random.default_rng(random_state)

    steps = tqdm(total=8, desc="report", disable=not progress)
    net = neuralize(model)
    expl = explanation if explanation is not None else wc.explain(net, X, method, beta=beta)
    if expl.n_samples != n:
        raise ValueError(f"explanation covers {expl.n_samples} points, X has {n}")
    steps.update()
    k = int(net.n_clusters)
    cluster = np.asarray(expl.cluster)
    rel = np.asarray(expl.relevance).reshape(n, -1)  # a view: no copy of the n x d array
    sizes = np.bincount(cluster, minlength=k)
    onehot = np.zeros((k, n), dtype=rel.dtype)
    onehot[cluster, np.arange(n)] = 1.0
    # per-cluster means as one (K x n) @ (n x d) product
    mean_rel = (onehot @ rel).astype(np.float64) / np.maximum(sizes, 1)[:, None]

    sec: list[str] = []
    sec.append(_summary(model, net, expl, X, data_name, img_shape, rel, sizes))
    from whyclust.report import _figures as F

    sec.append(_section("Cluster sizes", _img(F.sizes_figure(sizes), "bar chart of cluster sizes")))
    steps.update()
    if y is not None:
        sec.append(_labels_section(np.asarray(y), cluster, k))
    steps.update()
    protos, proto_kind = _prototypes(model, net, flat, onehot, sizes)
    sec.append(_prototype_section(protos, proto_kind, flat, img_shape, names, sizes))
    steps.update()
    sec.append(_top_features_section(mean_rel, names, sizes))
    steps.update()
    sec.append(
        _examples_section(
            X, flat, rel, expl, cluster, mean_rel, sizes, img_shape, names, n_examples, rng
        )
    )
    steps.update()
    pair = [_map_section(flat, cluster, k, protos, max_points, rng)]
    steps.update()
    pair.append(_deletion_section(net, X, expl, cluster, img_shape, deletion_points, rng))
    sec.append("<div class='pair'>" + "".join(pair) + "</div>")
    steps.update()
    steps.close()

    elapsed = time.perf_counter() - start
    heading = title or f"whyclust report: {k} clusters" + (f" of {data_name}" if data_name else "")
    return _page(heading, sec, elapsed)


# --- data shapes and names ---------------------------------------------------------------


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


def _prototypes(model, net, flat, onehot, sizes) -> tuple[np.ndarray, str]:
    """Centroids in input space when the model has them, else the cluster means."""
    k, d = onehot.shape[0], flat.shape[1]
    for attr in ("prototypes_", "cluster_centers_"):
        value = getattr(model, attr, None)
        if value is not None:
            arr = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
            if arr.ndim >= 2 and arr.shape[0] == k and int(np.prod(arr.shape[1:])) == d:
                return arr.reshape(k, d).astype(np.float64), f"model.{attr}"
    centers = getattr(net, "centers", None)
    if centers is not None and tuple(centers.shape) == (k, d):
        return centers.detach().cpu().double().numpy(), "network centroids"
    means = (onehot.astype(flat.dtype) @ flat).astype(np.float64)
    return means / np.maximum(sizes, 1)[:, None], "mean of the points in each cluster"


# --- sections ---------------------------------------------------------------------------


def _section(title: str, body: str, intro: str = "") -> str:
    intro_html = f"<p class='intro'>{intro}</p>" if intro else ""
    return f"<section><h2>{html.escape(title)}</h2>{intro_html}{body}</section>"


def _img(fig, alt: str) -> str:
    from whyclust.report._figures import to_data_uri

    uri = to_data_uri(fig)
    width = int(fig.get_figwidth() * 100)
    return f"<img src='{uri}' alt='{html.escape(alt)}' style='max-width:min(100%,{width}px)'>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary(model, net, expl, X, data_name, img_shape, rel, sizes) -> str:
    n = X.shape[0]
    logit = np.asarray(expl.logit, dtype=np.float64)
    rows = [
        ("data", html.escape(data_name or "array")),
        ("points", f"{n:,}"),
        (
            "features",
            f"{rel.shape[1]:,}"
            + (f" (image {' x '.join(map(str, img_shape))})" if img_shape else ""),
        ),
        ("model", html.escape(type(model).__name__)),
        ("clusters", f"{net.n_clusters} ({int((sizes == 0).sum())} empty)"),
        (
            "explanation",
            html.escape(str(expl.method))
            + (f", beta = {expl.beta:.3g}" if expl.beta is not None else ""),
        ),
        ("mean logit f_c", f"{logit.mean():.4g}"),
    ]
    scale = float(np.abs(logit).max()) or 1.0
    gap = float(np.abs(rel.sum(1, dtype=np.float64) - logit).max()) / scale
    rows.append(
        (
            "conservation",
            f"max |sum R - f_c| / max |f_c| = {gap:.1e}"
            + (" (exact)" if gap < 1e-3 else " (relevance is not conserved by this method)"),
        )
    )
    body = _table(["", ""], [(f"<b>{a}</b>", b) for a, b in rows], cls="summary")
    from whyclust.networks import KMeansNetwork

    if isinstance(net, KMeansNetwork):
        logit_text = (
            "f<sub>c</sub>(x) = min<sub>k&ne;c</sub>(&Vert;x&minus;&mu;<sub>k</sub>&Vert;&sup2; "
            "&minus; &Vert;x&minus;&mu;<sub>c</sub>&Vert;&sup2;)"
        )
    else:
        logit_text = "f<sub>c</sub>(x), its margin over the closest competing cluster"
    intro = (
        f"Every point is assigned to the cluster with the largest logit {logit_text}; the "
        "explanation splits f<sub>c</sub>(x) into one relevance per feature. Red means "
        "evidence for the cluster, blue evidence against it."
    )
    return _section("Summary", body, intro)


def _labels_section(y: np.ndarray, cluster: np.ndarray, k: int) -> str:
    import whyclust as wc
    from whyclust.report import _figures as F

    if y.shape[0] != cluster.shape[0]:
        raise ValueError(f"labels have {y.shape[0]} entries, the data {cluster.shape[0]} rows")
    scores = wc.metrics.evaluate(y, cluster)
    classes, ti = np.unique(y, return_inverse=True)
    table = np.zeros((classes.size, k), dtype=np.int64)
    np.add.at(table, (ti, cluster), 1)
    match = wc.metrics.matching(y, cluster)
    metrics = _table(
        ["ACC", "NMI", "ARI"],
        [[f"{scores[m]:.3f}" for m in ("acc", "nmi", "ari")]],
        cls="metrics",
    )
    # clusters in the order of their matched classes, so that agreement is the diagonal
    rank = {cls: i for i, cls in enumerate(classes)}
    cols = sorted(range(k), key=lambda c: (rank.get(match.get(c), classes.size), c))
    fig = F.confusion_figure(table[:, cols], [str(c) for c in classes], [str(c) for c in cols])
    mapping = ", ".join(f"{c}&rarr;{html.escape(str(match[c]))}" for c in sorted(match))
    intro = (
        "Accuracy under the best one-to-one matching of clusters to classes (Hungarian), "
        f"normalised mutual information and adjusted Rand index. Matching: {mapping}."
    )
    return _section("Agreement with the labels", metrics + _img(fig, "confusion matrix"), intro)


def _prototype_section(protos, kind, flat, img_shape, names, sizes) -> str:
    from whyclust.report import _figures as F

    k = protos.shape[0]
    titles = [f"{c} (n={sizes[c]})" for c in range(k)]
    if img_shape is not None:
        fig = F.image_grid_figure(protos.reshape(k, *img_shape), titles)
        return _section("Prototypes", _img(fig, "prototype images"), f"Source: {kind}.")
    mean, std = flat.mean(0), flat.std(0)
    z = (protos - mean) / np.where(std > 0, std, 1.0)
    keep = np.argsort(-np.abs(z).max(0))[: min(15, z.shape[1])]
    keep.sort()
    fig = F.tabular_prototypes_figure(z[:, keep], [names[i] for i in keep], titles)
    extra = "" if len(keep) == z.shape[1] else f" The {len(keep)} most distinctive features."
    intro = f"Source: {kind}, as z-scores against the data mean and spread.{extra}"
    return _section("Prototypes", _img(fig, "prototype bar charts"), intro)


def _top_features_section(mean_rel: np.ndarray, names, sizes, n_top: int = 5) -> str:
    rows = []
    for c in range(mean_rel.shape[0]):
        if sizes[c] == 0:
            rows.append([str(c), "0", "(empty)"])
            continue
        top = np.argsort(-mean_rel[c])[:n_top]
        total = float(np.abs(mean_rel[c]).sum()) or 1.0
        cells = ", ".join(
            f"{html.escape(names[i])} <span class='share'>"
            f"({100 * mean_rel[c, i] / total:.0f}%)</span>"
            for i in top
        )
        rows.append([str(c), f"{sizes[c]:,}", cells])
    intro = (
        f"The {n_top} features with the largest mean relevance over the members of each "
        "cluster, with their share of the total absolute relevance."
    )
    return _section(
        "Top features per cluster", _table(["cluster", "size", "top features"], rows), intro
    )


def _examples_section(
    X, flat, rel, expl, cluster, mean_rel, sizes, img_shape, names, n_examples, rng
) -> str:
    from whyclust.report import _figures as F

    logit = np.asarray(expl.logit)
    order = np.argsort(-sizes, kind="stable")[:_MAX_CLUSTERS_SHOWN]
    order = np.sort(order[sizes[order] > 0])
    picks = {}
    for c in order:  # one pick per cluster (at most 30): negligible next to the figures
        members = np.flatnonzero(cluster == c)
        chosen = rng.choice(members, size=min(n_examples, members.size), replace=False)
        picks[c] = chosen[np.argsort(-logit[chosen])]
    figs = []
    per_fig = 10
    for start in range(0, len(order), per_fig):
        block = order[start : start + per_fig]
        if img_shape is not None:
            ch, h, w = img_shape
            rows = [
                (
                    f"cluster {c}",
                    flat[picks[c]].reshape(-1, ch, h, w),
                    rel[picks[c]].reshape(-1, ch, h, w).sum(1),
                    logit[picks[c]],
                )
                for c in block
            ]
            means = [mean_rel[c].reshape(ch, h, w).sum(0) for c in block]
            fig = F.image_examples_figure(rows, mean_relevance=means)
        else:
            rows = [(f"cluster {c}", rel[picks[c]], logit[picks[c]], names) for c in block]
            fig = F.tabular_examples_figure(rows, n_top=min(8, flat.shape[1]))
        figs.append(_img(fig, f"example explanations, clusters {block[0]} to {block[-1]}"))
    shown = (
        ""
        if len(order) == int((sizes > 0).sum())
        else (f" Only the {len(order)} largest clusters are shown.")
    )
    if img_shape is not None:
        intro = (
            "Random members of each cluster, most confident first: the input and its "
            "relevance heatmap (summed over colour channels); the first column is the mean "
            "relevance over the cluster." + shown
        )
    else:
        intro = (
            "Random members of each cluster, most confident first: the features with the "
            "largest |relevance|." + shown
        )
    return _section("Why these points are in their cluster", "".join(figs), intro)


def _map_section(flat, cluster, k, protos, max_points, rng) -> str:
    from sklearn.decomposition import PCA

    from whyclust.report import _figures as F

    n = flat.shape[0]
    idx = rng.choice(n, size=min(n, max_points), replace=False)
    if flat.shape[1] < 2:
        return _section("Map of the data", "<p>One feature: no 2-D map.</p>")
    pca = PCA(n_components=2, random_state=0).fit(flat[idx])
    fig = F.map_figure(
        pca.transform(flat[idx]),
        cluster[idx],
        k,
        prototypes=pca.transform(protos),
        explained=tuple(pca.explained_variance_ratio_),
    )
    intro = (
        f"The first two principal components of {idx.size:,} points"
        + (f" (a random {idx.size:,} of {n:,})" if idx.size < n else "")
        + ", coloured by cluster; numbered discs are the prototypes."
    )
    return _section("Map of the data", _img(fig, "PCA map coloured by cluster"), intro)


def _deletion_section(net, X, expl, cluster, img_shape, n_points, rng) -> str:
    from whyclust.report import _figures as F

    n = X.shape[0]
    idx = np.sort(rng.choice(n, size=min(n, n_points), replace=False))
    Xs = X[idx]
    rel = np.asarray(expl.relevance)[idx]
    baseline = "zero" if img_shape is not None else "mean"
    seed = int(rng.integers(2**31))
    curves = _deletion_curves(net, Xs, rel, str(expl.method), baseline, seed)
    fractions = curves.pop("__fractions__")[0]
    fig = F.deletion_figure(fractions, curves)
    what = "0 (black)" if img_shape is not None else "the mean of the sampled points"
    intro = (
        f"For {idx.size:,} points, features are replaced by {what} in decreasing order of "
        "relevance and the logit of the cluster each point was assigned to is recomputed. "
        "A faithful explanation makes the logit fall fast: lower area under the curve is "
        "better. Random order is the reference."
    )
    return _section("Faithfulness: deletion curve", _img(fig, "deletion curve"), intro)


def _deletion_curves(net, Xs, rel, name, baseline, seed) -> dict[str, Any]:
    """Mean normalised deletion curves of the explanation, a gradient baseline and random."""
    from whyclust.evaluation import deletion_curve
    from whyclust.explainers import available_methods

    def summary(result) -> tuple[np.ndarray, float]:
        norm = result.normalized
        keep = np.isfinite(norm).all(1) & (result.logit > 0)
        return norm[keep].mean(0), float(np.nanmean(result.auc[keep]))

    out: dict[str, Any] = {}
    first = deletion_curve(net, Xs, rel, baseline=baseline)
    out["__fractions__"] = (first.fractions, 0.0)
    out[name] = summary(first)
    if name != "gradient_x_input" and "gradient_x_input" in available_methods():
        try:
            other = deletion_curve(net, Xs, method="gradient_x_input", baseline=baseline)
        except (ValueError, TypeError, NotImplementedError, RuntimeError, ImportError):
            pass  # captum missing, or a network it cannot handle: leave the reference out
        else:
            out["gradient x input"] = summary(other)
    out["random"] = summary(
        deletion_curve(net, Xs, method="random", baseline=baseline, random_state=seed)
    )
    return out


# --- page ---------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:0;background:#f4f5f7;color:#1d2330;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
header h1{font-size:1.7rem;margin:0 0 4px}
header p{margin:0;color:#5b6475}
section{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08);
 padding:18px 22px;margin:18px 0}
h2{font-size:1.2rem;margin:0 0 8px;color:#17375e}
p.intro{margin:0 0 12px;color:#3b4352;font-size:.93rem}
img{display:block;height:auto;margin:8px 0}
table{border-collapse:collapse;font-size:.9rem;margin:6px 0 10px}
th,td{padding:5px 12px;border-bottom:1px solid #e3e6eb;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}
table.summary th{display:none}
table.metrics td{font-size:1.15rem;font-variant-numeric:tabular-nums}
span.share{color:#7a8291;font-size:.85em}
div.pair{display:flex;flex-wrap:wrap;gap:18px}
div.pair>section{flex:1 1 440px;margin:0 0 18px}
footer{color:#7a8291;font-size:.8rem;text-align:center;margin-top:24px}
"""


def _page(title: str, sections: list[str], elapsed: float) -> str:
    from whyclust import __version__

    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        # no scripts, no external resources: the page is safe to open anywhere
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<header><h1>{html.escape(title)}</h1><p>Generated by whyclust {__version__} on "
        f"{when} in {elapsed:.1f} s.</p></header>"
        + "".join(sections)
        + "<footer>whyclust: cluster assignments explained with NEON (neuralization-"
        "propagation).</footer></main></body></html>\n"
    )
