"""Figures for clustering models. matplotlib is imported only when a figure is drawn.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state), so they
work with any backend and in scripts, notebooks or servers alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_prototypes"]


def plot_prototypes(
    prototypes: Any,
    image_shape: Sequence[int] | None = None,
    feature_names: Sequence[str] | None = None,
    *,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    cmap: str = "gray",
    max_features: int = 30,
    fig: Figure | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Draw one panel per cluster prototype: an image or a bar chart of feature values.

    Parameters
    ----------
    prototypes : array-like of shape (K, d), (K, H, W) or (K, C, H, W), or DataFrame
        One prototype per cluster, e.g. ``TELL.prototypes_``. A DataFrame, such as
        :func:`whyclust.summary.cluster_relevance`'s table, gives the default feature names
        (its columns) and titles (its index: the clusters it holds).
    image_shape : (H, W) or (C, H, W), optional
        Shape of one image, to draw flat (K, d) prototypes as images. Arrays with more than
        two dimensions are drawn as images without it.
    feature_names : sequence of str, optional
        Tabular data: bar labels (default ``x0, x1, ...``); names longer than 28
        characters are cut, with an ellipsis.
    titles : sequence of str, optional
        Panel titles (default ``cluster k``).
    ncols : int, optional
        Panels per row (default: up to 5 for images, 4 for bar charts).
    cmap : str, default="gray"
        Colour map of single-channel images.
    max_features : int, default=30
        Bar charts show the features with the largest absolute values, at most this many.
    fig : matplotlib Figure, optional
        Draw into this figure (cleared first) instead of a new one.
    figsize : (width, height), optional
        Size of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if hasattr(prototypes, "columns") and hasattr(prototypes, "index"):  # a DataFrame
        if feature_names is None:
            feature_names = [str(c) for c in prototypes.columns]
        if titles is None:
            label = prototypes.index.name or "cluster"
            titles = [f"{label} {i}" for i in prototypes.index]
    P = np.asarray(prototypes)
    if P.dtype == object or not np.issubdtype(P.dtype, np.number):
        raise TypeError(f"prototypes must be numeric, got dtype {P.dtype}")
    if P.ndim < 2 or P.shape[0] < 1:
        raise ValueError(f"prototypes must have shape (K, ...) with K >= 1, got {P.shape}")
    k = P.shape[0]
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) not in (2, 3) or math.prod(shape) != math.prod(P.shape[1:]):
            raise ValueError(
                f"image_shape {shape} does not match prototypes of shape {P.shape}: "
                f"need (H, W) or (C, H, W) with {math.prod(P.shape[1:])} values"
            )
        P = P.reshape(k, *shape)
    as_images = P.ndim > 2
    if titles is not None and len(titles) != k:
        raise ValueError(f"got {len(titles)} titles for {k} prototypes")
    if feature_names is not None and not as_images and len(feature_names) != P.shape[1]:
        raise ValueError(
            f"got {len(feature_names)} feature names for {P.shape[1]} features"
        )
    if ncols is None:
        ncols = min(k, 5 if as_images else 4)
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    nrows = math.ceil(k / ncols)

    from matplotlib.figure import Figure

    if fig is None:
        if figsize is None:
            figsize = (2.0 * ncols, 2.2 * nrows) if as_images else (3.5 * ncols, 3.0 * nrows)
        fig = Figure(figsize=figsize, layout="constrained")
    else:
        fig.clear()
    axes = fig.subplots(nrows, ncols, squeeze=False)
    names = (
        [str(n) for n in feature_names]
        if feature_names is not None
        else [f"x{i}" for i in range(P.shape[1])]
    )
    for j, ax in enumerate(axes.flat):
        if j >= k:
            ax.set_axis_off()
            continue
        ax.set_title(titles[j] if titles is not None else f"cluster {j}", fontsize=9)
        if as_images:
            _draw_image(ax, P[j], cmap)
        else:
            _draw_bars(ax, P[j], names, max_features)
    return fig


def _draw_image(ax: Any, img: np.ndarray, cmap: str) -> None:
    if img.ndim == 3:  # (C, H, W)
        img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)
    if img.ndim == 3:  # colour: scale jointly into [0, 1] for imshow
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        ax.imshow(img[..., :3] if img.shape[-1] >= 3 else img[..., 0], cmap=cmap)
    else:
        ax.imshow(img, cmap=cmap)
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_bars(ax: Any, values: np.ndarray, names: list[str], max_features: int) -> None:
    order = np.argsort(-np.abs(values), kind="stable")[:max_features]
    order = np.sort(order)
    pos = np.arange(order.size)
    colors = np.where(values[order] >= 0, "tab:red", "tab:blue")
    ax.barh(pos, values[order], color=colors)
    ax.set_yticks(pos, [_short(names[i]) for i in order], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.0, color="black", linewidth=0.5)


def _short(name: str, width: int = 28) -> str:
    """A bar label of at most ``width`` characters (long column names would push the
    panels apart)."""
    return name if len(name) <= width else name[: width - 1] + "\u2026"
