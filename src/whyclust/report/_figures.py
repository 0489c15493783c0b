"""Figures of the report, drawn with matplotlib's object API (no pyplot, no global backend).

Every function returns a ``matplotlib.figure.Figure``; :func:`to_data_uri` turns it into an
embeddable PNG. Inputs are already subsampled by the caller, so the work here is bounded.
Every heatmap has a colour bar, and numeric axes use :func:`compact_number` so that
unscaled data (values in the 100,000s) give short, non-overlapping tick labels.
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "cluster_colors",
    "compact_number",
    "confusion_figure",
    "deletion_figure",
    "image_examples_figure",
    "image_grid_figure",
    "map_figure",
    "mean_relevance_figure",
    "mean_relevance_images_figure",
    "sizes_figure",
    "tabular_examples_figure",
    "tabular_prototypes_figure",
    "to_data_uri",
]

_POS, _NEG = "#c0392b", "#2e6db4"  # relevance for / against the cluster


def _figure(width: float, height: float, layout: str | None = "constrained"):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def to_data_uri(fig, dpi: int = 100) -> str:
    """PNG of ``fig`` as a ``data:`` URI (self-contained HTML needs no external files)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def cluster_colors(n_clusters: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n_clusters <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(n_clusters)]


def compact_number(value: float) -> str:
    """Short label of a number: 3 significant digits, k / M / G suffixes, e.g. ``250k``."""
    v = float(value)
    if v == 0 or not np.isfinite(v):
        return "0" if v == 0 else str(v)
    a = abs(v)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if a >= limit:
            return f"{v / (limit if suffix != 'k' else 1e3):.3g}{suffix}"
    if a >= 1e3:
        return f"{v:,.0f}"
    if a < 1e-3:
        return f"{v:.1e}"
    return f"{v:.3g}"


def _compact_axis(ax, which: str = "x", nbins: int = 5) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(MaxNLocator(nbins=nbins))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: compact_number(v)))


def _wrap(name: str, width: int = 26, lines: int = 2) -> str:
    """Full feature name, wrapped on word boundaries (and only cut beyond ``lines`` lines)."""
    parts = textwrap.wrap(str(name), width=width, break_long_words=True) or [""]
    if len(parts) > lines:
        parts = [*parts[: lines - 1], parts[lines - 1][: width - 1] + "…"]
    return "\n".join(parts)


def sizes_figure(sizes: np.ndarray, names: Sequence[str] | None = None):
    k = len(sizes)
    fig = _figure(min(2.0 + 0.45 * k, 11.0), 2.8)
    ax = fig.add_subplot()
    ax.bar(np.arange(k), sizes, color=cluster_colors(k))
    ax.set_xticks(np.arange(k), names if names is not None else [str(i) for i in range(k)])
    ax.set_xlabel("cluster")
    ax.set_ylabel("points")
    _compact_axis(ax, "y")
    for i, s in enumerate(sizes):
        ax.annotate(
            f"{int(s):,}" if k <= 12 else compact_number(s),
            (i, s),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.margins(y=0.12)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def confusion_figure(table: np.ndarray, class_names: Sequence[str], cluster_names: Sequence[str]):
    """Counts of true classes (rows) in each cluster (columns), coloured by row share."""
    n_cls, n_clu = table.shape
    fig = _figure(min(3.4 + 0.42 * n_clu, 12.0), min(1.6 + 0.34 * n_cls, 10.0))
    ax = fig.add_subplot()
    share = table / np.maximum(table.sum(1, keepdims=True), 1)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(np.arange(n_clu), cluster_names)
    ax.set_yticks(np.arange(n_cls), class_names)
    ax.set_xlabel("cluster")
    ax.set_ylabel("true class")
    fig.colorbar(im, ax=ax, shrink=0.9, label="share of the class")
    if table.size <= 400:
        for (r, c), v in np.ndenumerate(table):
            if v:
                ax.text(
                    c,
                    r,
                    compact_number(v) if v >= 10_000 else str(v),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share[r, c] > 0.6 else "black",
                )
    return fig


def _add_colorbar(fig, cmap: str, lo: float, hi: float, label: str, ticks=None, ticklabels=None):
    """A vertical colour bar in the right 0.9 inch of a figure drawn without layout engine."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    width_in, height_in = fig.get_size_inches()
    frac = min(0.76, 2.4 / height_in)  # at most 2.4 inches tall, at the top of the figure
    cax = fig.add_axes((1 - 0.75 / width_in, 0.88 - frac, 0.12 / width_in, frac))
    bar = fig.colorbar(ScalarMappable(Normalize(lo, hi), cmap=cmap), cax=cax)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=7)
    if ticks is not None:
        bar.set_ticks(ticks, labels=ticklabels)
    else:
        _compact_axis(bar.ax, "y", nbins=4)
    return bar


def _to_rgb(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(C, H, W) input -> (H, W, 3) colours in [0, 1] (greyscale scaled to [lo, hi])."""
    if img.shape[0] == 3:
        return np.clip(np.moveaxis(img, 0, -1), 0, 1)
    grey = np.clip((img.mean(0) - lo) / ((hi - lo) or 1.0), 0, 1)
    return np.repeat(grey[..., None], 3, axis=-1)


def _symmetric(r: np.ndarray) -> float:
    m = float(np.abs(r).max())
    return m if m > 0 else 1.0


def _heat_rgb(r: np.ndarray, scale: float | None = None) -> np.ndarray:
    from matplotlib import colormaps

    m = scale if scale is not None else _symmetric(r)
    return colormaps["bwr"](np.clip((r / m + 1) / 2, 0, 1))[..., :3]


def _mosaic_grid(tiles: Sequence[np.ndarray], titles: Sequence[str], h: int, w: int, ncols: int):
    """Place (H, W, 3) tiles on a white mosaic; returns it and the title positions."""
    k = len(tiles)
    ncols = min(ncols, k)
    nrows = int(np.ceil(k / ncols))
    pad, head = max(1, h // 8), max(3, int(np.ceil(0.2 * h)))
    mosaic = np.ones((nrows * (h + pad + head) + pad, ncols * (w + pad) + pad, 3))
    spots = []
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        top, left = r * (h + pad + head) + head + pad, c * (w + pad) + pad
        mosaic[top : top + h, left : left + w] = tile
        spots.append((left + w / 2, top - pad / 2, titles[i]))
    return mosaic, spots


def _mosaic_figure(mosaic: np.ndarray, spots, h: int, fontsize: int = 8):
    height, width = mosaic.shape[:2]
    scale = max(1.0 / h, 0.02)  # inches per image pixel: small images are enlarged
    fig_w = width * scale + 0.9  # room for the colour bar
    fig = _figure(fig_w, height * scale, layout=None)
    ax = fig.add_axes((0, 0, 1 - 0.9 / fig_w, 1))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    for x, y, text in spots:
        ax.text(x, y, text, ha="center", va="bottom", fontsize=fontsize)
    return fig


def image_grid_figure(images: np.ndarray, titles: Sequence[str], *, ncols: int = 10):
    """Prototypes as images: ``images`` (k, C, H, W), one tile each, drawn as one mosaic."""
    _, ch, h, w = images.shape
    lo, hi = float(images.min()), float(images.max())
    mosaic, spots = _mosaic_grid([_to_rgb(im, lo, hi) for im in images], titles, h, w, ncols)
    fig = _mosaic_figure(mosaic, spots, h)
    if ch == 1:
        _add_colorbar(fig, "gray", lo, hi, "pixel value")
    return fig


def mean_relevance_images_figure(maps: np.ndarray, titles: Sequence[str], *, ncols: int = 10):
    """Mean relevance heatmap of each cluster, ``maps`` (k, H, W), on one shared colour scale."""
    _, h, w = maps.shape
    m = _symmetric(maps)
    mosaic, spots = _mosaic_grid([_heat_rgb(r, m) for r in maps], titles, h, w, ncols)
    fig = _mosaic_figure(mosaic, spots, h)
    _add_colorbar(fig, "bwr", -m, m, "mean relevance")
    return fig


def image_examples_figure(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, Sequence[str]]],
    *,
    mean_relevance: Sequence[np.ndarray] | None = None,
):
    """Per cluster: the mean relevance map, then (image, relevance heatmap) pairs.

    ``rows`` holds ``(label, images (m, C, H, W), relevance (m, H, W), logits (m,),
    row_ids (m,))``. Red marks evidence for the cluster, blue evidence against it; each
    heatmap is scaled to its own largest |R| (the colour bar reads in that unit). All tiles
    go into one mosaic drawn by a single ``imshow``, which keeps 30 clusters cheap.
    """
    h, w = rows[0][1].shape[2:]
    n_ex = max(len(r[1]) for r in rows)
    extra = 1 if mean_relevance is not None else 0
    ncols = extra + 2 * n_ex
    pad, gap = max(1, h // 8), max(2, h // 3)  # gap: between the (image, heatmap) pairs
    # column x positions: (image, heatmap) pairs touch, a gap separates the pairs
    group = [c if c < extra else extra + (c - extra) // 2 for c in range(ncols)]
    col_x = [pad + c * (w + pad) + group[c] * gap for c in range(ncols)]
    row_h = h + 2 * pad + max(4, h // 2)  # room for two text lines above each pair
    width = col_x[-1] + w + pad
    height = len(rows) * row_h + pad
    mosaic = np.ones((height, width, 3))
    lo = min(float(r[1].min()) for r in rows)
    hi = max(float(r[1].max()) for r in rows)
    labels, frames = [], []
    for i, (label, imgs, rels, logits, ids) in enumerate(rows):
        top = i * row_h + row_h - h - pad
        tiles = [_heat_rgb(mean_relevance[i])] if mean_relevance is not None else []
        for j in range(len(imgs)):
            tiles += [_to_rgb(imgs[j], lo, hi), _heat_rgb(rels[j])]
            labels.append((col_x[extra + 2 * j] + w, top, f"row {ids[j]}\nf={logits[j]:.3g}"))
        for c, tile in enumerate(tiles):
            mosaic[top : top + h, col_x[c] : col_x[c] + w] = tile
            if c < extra or (c - extra) % 2 == 1:  # heatmaps: frame them on white paper
                frames.append((col_x[c], top))
        labels.append((-pad, top + h / 2, label))
    scale = max(0.8 / h, 0.018)  # inches per pixel: small images are enlarged
    fig_w = width * scale + 1.1 + 0.9
    fig = _figure(fig_w, height * scale + 0.3, layout=None)
    ax = fig.add_axes((1.1 / fig_w, 0, 1 - 2.0 / fig_w, 1))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    from matplotlib.patches import Rectangle

    for x, y in frames:
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, ec="#9aa1ad", lw=0.6))
    fontsize = 6 if h < 20 else 7
    for x, y, text in labels:
        if text.startswith("row "):
            ax.text(x, y - pad / 2, text, ha="center", va="bottom", fontsize=fontsize)
        else:
            ax.text(x, y, text, ha="right", va="center", fontsize=9)
    if mean_relevance is not None:
        ax.text(col_x[0] + w / 2, pad, "mean R", ha="center", va="top", fontsize=fontsize)
    _add_colorbar(
        fig, "bwr", -1, 1, "R / max |R| of each map",
        ticks=[-1, 0, 1], ticklabels=["−max", "0", "+max"],
    )  # fmt: skip
    return fig


def mean_relevance_figure(
    mean_rel: np.ndarray,
    feature_names: Sequence[str],
    titles: Sequence[str],
    *,
    n_top: int = 10,
    ncols: int = 3,
):
    """Per cluster, the features with the largest |mean relevance|, full names wrapped."""
    k, d = mean_rel.shape
    n_top = min(n_top, d)
    ncols = min(ncols, k)
    nrows = int(np.ceil(k / ncols))
    fig = _figure(4.6 * ncols, (0.36 * n_top + 0.9) * nrows + 0.2)
    y = np.arange(n_top)
    for i in range(k):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        row = np.nan_to_num(mean_rel[i])
        top = np.argsort(-np.abs(row), kind="stable")[:n_top]
        vals = row[top]
        ax.barh(y[: len(top)], vals, color=np.where(vals >= 0, _POS, _NEG), height=0.7)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_yticks(y[: len(top)], [_wrap(feature_names[t]) for t in top])
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        ax.tick_params(axis="x", labelsize=7)
        _compact_axis(ax, "x", nbins=4)
        ax.set_title(titles[i], fontsize=9)
        ax.set_xlabel("mean relevance", fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    return fig


def tabular_prototypes_figure(
    z: np.ndarray, feature_names: Sequence[str], titles: Sequence[str], *, ncols: int = 4
):
    """Prototypes as bar charts of standardised values (z-scores against the data)."""
    k, d = z.shape
    ncols = min(ncols, k)
    nrows = int(np.ceil(k / ncols))
    fig = _figure(3.2 * ncols + 1.0, 0.3 * d * nrows + 0.9 * nrows + 0.3)
    lim = float(np.abs(z).max()) * 1.1 or 1.0
    y = np.arange(d)
    for i in range(k):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.barh(y, z[i], color=np.where(z[i] >= 0, _POS, _NEG), height=0.7)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_xlim(-lim, lim)
        ax.set_yticks(y, [_wrap(n, 22) for n in feature_names] if i % ncols == 0 else [])
        ax.invert_yaxis()
        ax.tick_params(labelsize=7)
        _compact_axis(ax, "x", nbins=4)
        ax.set_title(titles[i], fontsize=9)
        if i >= k - ncols:
            ax.set_xlabel("z-score", fontsize=8)
    return fig


def tabular_examples_figure(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, Sequence[str], Sequence[str]]],
    *,
    n_top: int = 8,
):
    """Per cluster and example point, the features with the largest |relevance|, signed.

    ``rows`` holds ``(label, relevance (m, d), logits (m,), feature_names, row_ids (m,))``.
    """
    n_ex = max(len(r[1]) for r in rows)
    fig = _figure(3.6 * n_ex + 0.6, (0.28 * n_top + 0.85) * len(rows) + 0.3)
    grid = fig.add_gridspec(len(rows), n_ex)
    for r, (label, rel, logits, names, ids) in enumerate(rows):
        for j in range(len(rel)):
            ax = fig.add_subplot(grid[r, j])
            top = np.argsort(-np.abs(rel[j]))[:n_top]
            vals = rel[j][top]
            ax.barh(np.arange(len(top)), vals, color=np.where(vals >= 0, _POS, _NEG))
            ax.set_yticks(np.arange(len(top)), [_wrap(names[t], 20) for t in top])
            ax.invert_yaxis()
            ax.axvline(0, color="black", lw=0.6)
            ax.tick_params(labelsize=6.5)
            _compact_axis(ax, "x", nbins=3)
            ax.set_title(f"{label}, row {ids[j]}: f={compact_number(logits[j])}", fontsize=8)
            ax.spines[["top", "right"]].set_visible(False)
    return fig


def map_figure(
    xy: np.ndarray,
    clusters: np.ndarray,
    n_clusters: int,
    *,
    prototypes: np.ndarray | None = None,
    explained: tuple[float, float] | None = None,
    sizes: np.ndarray | None = None,
):
    """2-D PCA map of the data coloured by cluster, prototypes marked, with a legend."""
    from matplotlib.lines import Line2D

    colors = cluster_colors(n_clusters)
    fig = _figure(6.6, 4.6)
    ax = fig.add_subplot()
    ax.scatter(
        xy[:, 0],
        xy[:, 1],
        c=[colors[c] for c in clusters],
        s=6,
        alpha=0.6,
        linewidths=0,
        rasterized=True,
    )
    if prototypes is not None:
        for k, (px, py) in enumerate(prototypes):
            ax.scatter([px], [py], marker="o", s=170, color=colors[k], edgecolors="black")
            ax.annotate(str(k), (px, py), ha="center", va="center", fontsize=7, fontweight="bold")
    handles = [
        Line2D([], [], ls="", marker="o", ms=6, color=colors[k],
               label=f"cluster {k}" + (f" ({int(sizes[k]):,})" if sizes is not None else ""))
        for k in range(n_clusters)
    ]  # fmt: skip
    if prototypes is not None:
        handles.append(
            Line2D([], [], ls="", marker="o", ms=10, mfc="white", mec="black", label="prototype")
        )
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
        frameon=False, ncols=1 if len(handles) <= 16 else 2, borderaxespad=0,
    )  # fmt: skip
    lab = ["PC 1", "PC 2"]
    if explained is not None:
        lab = [f"PC {i + 1} ({100 * v:.0f}% of variance)" for i, v in enumerate(explained)]
    ax.set_xlabel(lab[0])
    ax.set_ylabel(lab[1])
    _compact_axis(ax, "x")
    _compact_axis(ax, "y")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


_STYLES = {
    "random": dict(color="grey", ls="--"),
    "gradient x input": dict(color="#e08a1e"),
}


def deletion_figure(
    fractions: np.ndarray, protocols: dict[str, dict[str, tuple[np.ndarray, float]]]
):
    """Mean normalised logit after deleting the most relevant features first, per protocol.

    ``protocols`` maps a protocol name (what removed features are replaced by) to
    ``{method: (mean curve, mean AUC)}``.
    """
    n = len(protocols)
    fig = _figure(min(4.2 * n, 12.6), 3.8)
    axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
    for ax, (protocol, curves) in zip(axes, protocols.items(), strict=True):
        for name, (curve, auc) in curves.items():
            ax.plot(
                100 * fractions, curve, label=f"{name} (AUC {auc:.3f})", lw=2,
                **_STYLES.get(name, {}),
            )  # fmt: skip
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(f"replaced by: {protocol}", fontsize=9)
        ax.set_xlabel("features deleted, most relevant first (%)", fontsize=8)
        ax.legend(fontsize=7, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("logit f_c / f_c(x), median")
    return fig
