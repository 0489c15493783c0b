"""Pieces shared by the dask and streaming paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from whyclust.networks import ClusterNetwork

def _network(model: Any) -> ClusterNetwork:
    from whyclust.networks import neuralize

    return neuralize(model)


def _needs_global_bounds(net: ClusterNetwork, method: str, options: dict[str, Any]) -> bool:
    """NEON through an encoder defaults its ZBox bounds to the data's range: that must be
    the range of all of X, not of one chunk or batch, for the results to match."""
    from whyclust.networks import EncodedClusterNetwork, KMeansNetwork, L2Normalize

    return (
        method == "neon"
        and isinstance(net, EncodedClusterNetwork)
        and not (isinstance(net.encoder, L2Normalize) and isinstance(net.head, KMeansNetwork))
        and options.get("bounds") is None
        and options.get("composite") is None
    )


def _resolve_means(model: Any, method: str, options: dict[str, Any]) -> list[str]:
    """Fix the options (``"reference"``, ``"baseline"``) set to ``"mean"`` to one point for
    all of X, as in memory: a batch or chunk would otherwise use its own mean, and the
    results would depend on how X is cut. NEON's reference becomes the model's own mean
    when it has one (k-means, mixtures; the network alone does not know it); the keys
    returned must be set to the mean of all of X by the caller."""
    from whyclust.explainers.dispatch import model_reference_mean

    keys = []
    for key in ("reference", "baseline") if method == "neon" else ("baseline",):
        if isinstance(options.get(key), str) and options[key] == "mean":
            own = model_reference_mean(model) if key == "reference" else None
            if own is not None:
                options[key] = np.asarray(own, dtype=np.float64)
            else:
                keys.append(key)
    return keys


def _row_options(options: dict[str, Any], n: int, feature_shape: tuple[int, ...]) -> dict:
    """Pop the options given as one row per point of X (a NEON ``reference`` of shape
    (n, d) or (n, *feature_shape)): the caller slices them with X's rows. One point ((d,)
    or feature_shape) and names stay in ``options`` for every batch."""
    d = int(np.prod(feature_shape))
    rows = {}
    for key in ("reference",):  # baselines are one point (explainers.baselines)
        value = options.get(key)
        if value is None or isinstance(value, str):
            continue
        if not hasattr(value, "shape"):
            value = np.asarray(value)
        shape = tuple(int(s) for s in value.shape)
        if shape in ((d,), tuple(feature_shape)) or len(shape) < 2:
            continue
        if int(np.prod(shape[1:])) != d:
            continue  # left to the in-memory checks, which name the expected shapes
        if shape[0] != n:
            raise ValueError(f"{key} has {shape[0]} rows, X has {n}: give one point or one "
                             "row per point of X")  # fmt: skip
        rows[key] = options.pop(key)
    return rows


def _bounds(low: float, high: float) -> tuple[float, float]:
    return (low, high if high > low else low + 1.0)  # as whyclust.explainers.deep does


def _assigned_logits(net: ClusterNetwork, block: np.ndarray, device: Any) -> torch.Tensor:
    """f of the assigned cluster (the largest logit) for every row of ``block``, in float64.

    k-means networks use the engine's score arithmetic (the one of the in-memory NEON pass,
    so that ``beta="auto"`` agrees to the last bits); other networks run where they live.
    """
    import torch

    from whyclust.engine.kmeans import KMeansGeometry, assigned_logits
    from whyclust.networks import KMeansNetwork

    x = torch.from_numpy(np.ascontiguousarray(block))
    with torch.no_grad():
        if isinstance(net, KMeansNetwork):
            dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
            dev = torch.device(device) if device is not None else net.device
            geom = KMeansGeometry(net.centers.to(device=dev, dtype=dtype))
            scores = geom.scores(geom.prepare(x.to(dev)))
            return assigned_logits(scores).to(torch.float64)
        return net(x.to(device=net.device, dtype=net.dtype)).amax(1).to(torch.float64)


def _is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask.")
