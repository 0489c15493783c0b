"""Figures of the report, drawn with matplotlib's object API (no pyplot, no global backend).

Every function returns a ``matplotlib.figure.Figure``; :func:`to_data_uri` turns it into an
embeddable PNG. Inputs are already subsampled by the caller, so the work here is bounded.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "cluster_colors",
    "confusion_figure",
    "deletion_figure",
    "image_examples_figure",
    "image_grid_figure",
    "map_figure",
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


def sizes_figure(sizes: np.ndarray, names: Sequence[str] | None = None):
    k = len(sizes)
    fig = _figure(min(2.0 + 0.45 * k, 11.0), 2.8)
    ax = fig.add_subplot()
    ax.bar(np.arange(k), sizes, color=cluster_colors(k))
    ax.set_xticks(np.arange(k), names if names is not None else [str(i) for i in range(k)])
    ax.set_xlabel("cluster")
    ax.set_ylabel("points")
    for i, s in enumerate(sizes):
        ax.annotate(
            f"{int(s)}",
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
    """Counts of true classes (rows) in each cluster (columns)."""
    n_cls, n_clu = table.shape
    fig = _figure(min(2.2 + 0.42 * n_clu, 11.0), min(1.6 + 0.34 * n_cls, 10.0))
    ax = fig.add_subplot()
    share = table / np.maximum(table.sum(1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(np.arange(n_clu), cluster_names)
    ax.set_yticks(np.arange(n_cls), class_names)
    ax.set_xlabel("cluster")
    ax.set_ylabel("true class")
    if table.size <= 400:
        for (r, c), v in np.ndenumerate(table):
            if v:
                ax.text(
                    c,
                    r,
                    str(v),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share[r, c] > 0.6 else "black",
                )
    return fig


def _as_display(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) -> what imshow wants: (H, W) with a grey map, or (H, W, 3) colours."""
    if img.shape[0] == 1:
        return img[0], "gray"
    if img.shape[0] == 3:
        return np.clip(np.moveaxis(img, 0, -1), 0, 1), None
    return img.mean(0), "gray"


def image_grid_figure(images: np.ndarray, titles: Sequence[str], *, ncols: int = 10):
    """Prototypes as images: ``images`` (k, C, H, W), one tile each, drawn as one mosaic."""
    k, _, h, w = images.shape
    ncols = min(ncols, k)
    nrows = int(np.ceil(k / ncols))
    scale = max(1.0 / h, 0.02)  # inches per image pixel: small images are enlarged
    pad, head = max(1, h // 8), int(np.ceil(0.2 / scale))  # head: room for a title line
    width = ncols * (w + pad) + pad
    height = nrows * (h + pad + head) + pad
    mosaic = np.ones((height, width, 3))
    lo, hi = float(images.min()), float(images.max())
    spots = []
    for i in range(k):
        r, c = divmod(i, ncols)
        top, left = r * (h + pad + head) + head + pad, c * (w + pad) + pad
        mosaic[top : top + h, left : left + w] = _to_rgb(images[i], lo, hi)
        spots.append((left + w / 2, top - pad / 2, titles[i]))
    fig = _figure(width * scale, height * scale, layout=None)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    for x, y, text in spots:
        ax.text(x, y, text, ha="center", va="bottom", fontsize=8)
    return fig


def _symmetric(r: np.ndarray) -> float:
    m = float(np.abs(r).max())
    return m if m > 0 else 1.0


def _to_rgb(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(C, H, W) input -> (H, W, 3) colours in [0, 1] (greyscale scaled to [lo, hi])."""
    if img.shape[0] == 3:
        return np.clip(np.moveaxis(img, 0, -1), 0, 1)
    grey = np.clip((img.mean(0) - lo) / ((hi - lo) or 1.0), 0, 1)
    return np.repeat(grey[..., None], 3, axis=-1)


def _heat_rgb(r: np.ndarray) -> np.ndarray:
    from matplotlib import colormaps

    m = _symmetric(r)
    return colormaps["bwr"]((r / m + 1) / 2)[..., :3]


def image_examples_figure(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    *,
    mean_relevance: Sequence[np.ndarray] | None = None,
):
    """Per cluster: the mean relevance map, then (image, relevance heatmap) pairs.

    ``rows`` holds ``(label, images (m, C, H, W), relevance (m, H, W), logits (m,))``.
    Red marks evidence for the cluster, blue evidence against it (each heatmap scaled to
    its own largest |R|). All tiles go into one mosaic drawn by a single ``imshow``, which
    keeps even 30 clusters cheap to render.
    """
    h, w = rows[0][1].shape[2:]
    n_ex = max(len(r[1]) for r in rows)
    extra = 1 if mean_relevance is not None else 0
    ncols = extra + 2 * n_ex
    pad, gap = max(1, h // 8), max(2, h // 3)  # gap: between the (image, heatmap) pairs
    # column x positions: (image, heatmap) pairs touch, a gap separates the pairs
    group = [c if c < extra else extra + (c - extra) // 2 for c in range(ncols)]
    col_x = [pad + c * (w + pad) + group[c] * gap for c in range(ncols)]
    row_h = h + 2 * pad + max(2, h // 4)  # room for the logit above each tile
    width = col_x[-1] + w + pad
    height = len(rows) * row_h + pad
    mosaic = np.ones((height, width, 3))
    lo = min(float(r[1].min()) for r in rows)
    hi = max(float(r[1].max()) for r in rows)
    labels, frames = [], []
    for i, (label, imgs, rels, logits) in enumerate(rows):
        top = i * row_h + row_h - h - pad
        tiles = [_heat_rgb(mean_relevance[i])] if mean_relevance is not None else []
        for j in range(len(imgs)):
            tiles += [_to_rgb(imgs[j], lo, hi), _heat_rgb(rels[j])]
            labels.append((col_x[extra + 2 * j] + w, top, f"f={logits[j]:.3g}"))
        for c, tile in enumerate(tiles):
            mosaic[top : top + h, col_x[c] : col_x[c] + w] = tile
            if c < extra or (c - extra) % 2 == 1:  # heatmaps: frame them on white paper
                frames.append((col_x[c], top))
        labels.append((-pad, top + h / 2, label))
    scale = max(0.8 / h, 0.018)  # inches per pixel: small images are enlarged
    fig = _figure(width * scale + 1.1, height * scale + 0.3, layout=None)
    ax = fig.add_axes((1.0 / (width * scale + 1.1), 0, 1 - 1.0 / (width * scale + 1.1), 1))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    from matplotlib.patches import Rectangle

    for x, y in frames:
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, ec="#9aa1ad", lw=0.6))
    fontsize = 7 if h < 20 else 8
    for x, y, text in labels:
        if text.startswith("f="):
            ax.text(x, y - pad / 2, text, ha="center", va="bottom", fontsize=fontsize)
        else:
            ax.text(x, y, text, ha="right", va="center", fontsize=9)
    if mean_relevance is not None:
        ax.text(col_x[0] + w / 2, pad, "mean R", ha="center", va="top", fontsize=fontsize)
    return fig


def _short(name: str, width: int = 18) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def tabular_prototypes_figure(
    z: np.ndarray, feature_names: Sequence[str], titles: Sequence[str], *, ncols: int = 4
):
    """Prototypes as bar charts of standardised values (z-scores against the data)."""
    k, d = z.shape
    ncols = min(ncols, k)
    nrows = int(np.ceil(k / ncols))
    fig = _figure(3.0 * ncols, 0.22 * d * nrows + 0.9 * nrows + 0.3)
    lim = float(np.abs(z).max()) * 1.1 or 1.0
    y = np.arange(d)
    for i in range(k):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.barh(y, z[i], color=np.where(z[i] >= 0, _POS, _NEG), height=0.7)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_xlim(-lim, lim)
        ax.set_yticks(y, [_short(n) for n in feature_names] if i % ncols == 0 else [])
        ax.invert_yaxis()
        ax.tick_params(labelsize=7)
        ax.set_title(titles[i], fontsize=9)
        if i >= k - ncols:
            ax.set_xlabel("z-score", fontsize=8)
    return fig


def tabular_examples_figure(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, Sequence[str]]], *, n_top: int = 8
):
    """Per cluster and example point, the features with the largest |relevance|, signed.

    ``rows`` holds ``(label, relevance (m, d), logits (m,), feature_names)``.
    """
    n_ex = max(len(r[1]) for r in rows)
    fig = _figure(3.2 * n_ex + 0.5, (0.2 * n_top + 0.75) * len(rows) + 0.3)
    grid = fig.add_gridspec(len(rows), n_ex)
    for r, (label, rel, logits, names) in enumerate(rows):
        for j in range(len(rel)):
            ax = fig.add_subplot(grid[r, j])
            top = np.argsort(-np.abs(rel[j]))[:n_top]
            vals = rel[j][top]
            ax.barh(np.arange(len(top)), vals, color=np.where(vals >= 0, _POS, _NEG))
            ax.set_yticks(np.arange(len(top)), [_short(names[t]) for t in top])
            ax.invert_yaxis()
            ax.axvline(0, color="black", lw=0.6)
            ax.tick_params(labelsize=7)
            ax.set_title(f"{label}, point {j + 1}: f={logits[j]:.3g}", fontsize=8)
    return fig


def map_figure(
    xy: np.ndarray,
    clusters: np.ndarray,
    n_clusters: int,
    *,
    prototypes: np.ndarray | None = None,
    explained: tuple[float, float] | None = None,
):
    """2-D PCA map of the data coloured by cluster, prototypes marked with their number."""
    colors = cluster_colors(n_clusters)
    fig = _figure(5.4, 4.4)
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
    lab = ["PC 1", "PC 2"]
    if explained is not None:
        lab = [f"PC {i + 1} ({100 * v:.0f}% of variance)" for i, v in enumerate(explained)]
    ax.set_xlabel(lab[0])
    ax.set_ylabel(lab[1])
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def deletion_figure(fractions: np.ndarray, curves: dict[str, tuple[np.ndarray, float]]):
    """Mean normalised logit f_c after deleting the most relevant features first."""
    fig = _figure(5.4, 4.4)
    ax = fig.add_subplot()
    styles = {"random": dict(color="grey", ls="--"), "gradient x input": dict(color="#e08a1e")}
    for name, (curve, auc) in curves.items():
        ax.plot(
            100 * fractions, curve, label=f"{name} (AUC {auc:.3f})", lw=2, **styles.get(name, {})
        )
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("features deleted, most relevant first (%)")
    ax.set_ylabel("logit f_c / f_c(x)")
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig
