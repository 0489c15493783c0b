"""Torch view of a Gaussian mixture: the logits of :mod:`whyclust.engine.mixture`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from whyclust.engine.fold import mixture_arrays
from whyclust.engine.mixture import MixtureGeometry
from whyclust.networks.base import ClusterNetwork

__all__ = ["MixtureNetwork"]


class MixtureNetwork(ClusterNetwork):
    """Neuralized ``GaussianMixture``: ``net(x)`` gives f_c = g_c - max_{k != c} g_k (n, K).

    The fitted arrays are buffers (float64, as scikit-learn fits them); the forward pass is
    the engine's, run on torch tensors, so ``argmax`` equals ``predict``.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.source = model  # the fitted model: NEON on it runs in the array-API engine
        arr = mixture_arrays(model)
        self.covariance_type = arr["covariance_type"]
        for name in ("means", "chol", "weights"):
            self.register_buffer(name, torch.from_numpy(np.array(arr[name], dtype=np.float64)))
        self.n_clusters, self.n_features = (int(s) for s in arr["means"].shape)

    def geometry(self) -> MixtureGeometry:
        return MixtureGeometry(self.means, self.chol, self.weights, self.covariance_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.geometry().logits(self._flat(x))

    def extra_repr(self) -> str:
        return (
            f"n_clusters={self.n_clusters}, n_features={self.n_features}, "
            f"covariance_type={self.covariance_type!r}"
        )
