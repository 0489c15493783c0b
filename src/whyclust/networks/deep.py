"""Deep clusterings: any torch encoder followed by a k-means head in feature space.

``wc.neuralize((encoder, centers))`` returns ``EncodedClusterNetwork(encoder,
KMeansNetwork(centers), n_features)``: the logits are those of k-means
on the encoded points z = encoder(x), flattened. ``n_features`` (the flattened input size)
is read from the encoder's first layer when it is a ``Linear``; for convolutional encoders
pass ``input_shape=(C, H, W)`` (or ``n_features=``), otherwise it is fixed by the first
forward pass.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from whyclust.networks.base import ClusterNetwork, EncodedClusterNetwork, L2Normalize
from whyclust.networks.kmeans import KMeansNetwork

__all__ = ["DeepClusterNetwork", "is_encoder_centers_pair", "neuralize_encoder_centers"]


class DeepClusterNetwork(EncodedClusterNetwork):
    """:class:`EncodedClusterNetwork` whose input size may be learned from the first batch.

    ``n_features`` is ``None`` until known; explanations then skip the feature-count check
    and the first forward pass records it.
    """

    def __init__(
        self, encoder: nn.Module, head: ClusterNetwork, n_features: int | None = None
    ) -> None:
        super().__init__(encoder, head, n_features or 0)

    @property
    def n_features(self) -> int | None:  # type: ignore[override]
        return self._n_features

    @n_features.setter
    def n_features(self, value: int | None) -> None:
        self._n_features = int(value) if value else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = math.prod(x.shape[1:])
        if self._n_features is None:
            self._n_features = int(size)
        elif size != self._n_features:
            raise ValueError(
                f"input has {size} features, the network expects {self._n_features}"
            )
        return super().forward(x)


def is_encoder_centers_pair(model: Any) -> bool:
    return (
        isinstance(model, (tuple, list))
        and len(model) == 2
        and isinstance(model[0], nn.Module)
        and isinstance(model[1], (np.ndarray, torch.Tensor, list))
    )


def _first_leaf(module: nn.Module) -> nn.Module | None:
    for m in module.modules():
        if not list(m.children()):
            return m
    return None


def _infer_n_features(encoder: nn.Module, n_centers_dim: int) -> int | None:
    """The input size read off the first layer, where the first registered layer is the
    first to run (a tree of plain ``nn.Sequential``); else None (learned from the first
    batch)."""
    containers = [m for m in encoder.modules() if list(m.children())]
    if any(type(m).forward is not nn.Sequential.forward for m in containers):
        return None
    leaf = _first_leaf(encoder)
    if isinstance(leaf, nn.Linear):
        return int(leaf.in_features)
    if isinstance(leaf, (L2Normalize, nn.Identity)) and all(
        isinstance(m, (L2Normalize, nn.Identity, nn.Sequential, nn.Flatten))
        for m in encoder.modules()
    ):
        return n_centers_dim  # the encoder only rescales: features = inputs
    return None


def neuralize_encoder_centers(
    model: tuple[nn.Module, Any],
    *,
    input_shape: tuple[int, ...] | None = None,
    n_features: int | None = None,
) -> EncodedClusterNetwork:
    """Neuralize an ``(encoder, centers)`` pair: k-means on the encoder's outputs.

    Parameters
    ----------
    model : (torch.nn.Module, array-like of shape (K, m))
        The encoder maps a batch (n, ...) to features (n, m) (or any shape that flattens to
        m); ``centers`` are the K cluster centers in that feature space.
    input_shape : tuple of int, optional
        Shape of one input point, e.g. ``(1, 28, 28)``; fixes ``n_features``.
    n_features : int, optional
        Flattened input size, if ``input_shape`` is not given.

    Returns
    -------
    EncodedClusterNetwork
        Sharing ``encoder`` (not a copy, its mode unchanged); whyclust's explainers,
        ``predict`` and evaluations run it in eval mode (BatchNorm statistics frozen,
        dropout off) without switching the module itself.
    """
    encoder, centers = model
    head = KMeansNetwork(centers)
    if input_shape is not None:
        shape = tuple(int(s) for s in np.atleast_1d(input_shape))
        if not shape or min(shape) < 1:
            raise ValueError(f"input_shape must hold positive sizes, got {input_shape!r}")
        n_features = math.prod(shape)
    if n_features is None:
        n_features = _infer_n_features(encoder, head.n_features)
    elif isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer)):
        raise TypeError(f"n_features must be an integer, got {type(n_features).__name__}")
    elif n_features < 1:
        raise ValueError(f"n_features must be >= 1, got {n_features}")
    net = DeepClusterNetwork(encoder, head, n_features)
    param = next(iter(encoder.parameters()), None)
    if param is not None:
        head.to(device=param.device)
        if param.dtype != head.dtype:
            head.to(dtype=param.dtype)
    return net
