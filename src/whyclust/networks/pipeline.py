"""Torch views of scikit-learn Pipelines (and the dispatch of the other sklearn models).

A Pipeline's preprocessing is folded (:mod:`whyclust.engine.fold`) into encoders and one
affine map z = A u + a; the network takes the *encoded* rows u (``net.encode(X)`` runs the
pipeline's own imputers / one-hot encoders; for numeric pipelines without them u = X) and
returns the clusterer's logits of A u + a.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from whyclust._features import pipeline_n_features
from whyclust.engine.affine import AffineMap
from whyclust.engine.fold import Folded, fold_preprocessing
from whyclust.networks.base import ClusterNetwork

__all__ = ["PipelineNetwork", "network_of"]


class PipelineNetwork(ClusterNetwork):
    """``head(A u + a)``: a folded affine preprocessing and a neuralized clusterer."""

    def __init__(self, folded: Folded, head: ClusterNetwork, source: Any = None) -> None:
        super().__init__()
        self.folded = folded
        self.source = source  # the fitted Pipeline: NEON on it runs in the array-API engine
        self.head = head
        self.register_buffer("offset", torch.from_numpy(np.array(folded.offset, dtype=np.float64)))
        lin = folded.diag if folded.diag is not None else folded.linear
        self.register_buffer("map", torch.from_numpy(np.array(lin, dtype=np.float64)))
        self.diagonal = folded.diag is not None
        self.n_clusters = head.n_clusters
        self.n_features = folded.width

    def encode(self, X: Any) -> np.ndarray:
        """The encoded rows u (n, n_features) of the pipeline's input ``X`` (float64)."""
        return self.folded.encode(X)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        u = self._flat(u).to(self.offset.dtype)
        if self.diagonal:
            amap = AffineMap(self.offset, diag=self.map)
        else:
            amap = AffineMap(self.offset, linear=self.map)
        return self.head(amap(u))


def network_of(model: Any, kind: str) -> ClusterNetwork:
    """The torch view of a scikit-learn model of ``kind`` (see
    :func:`whyclust.engine.kinds.model_kind`)."""
    if kind == "mixture":
        from whyclust.networks.mixture import MixtureNetwork

        return MixtureNetwork(model)
    if kind == "bisecting":
        from whyclust.networks.bisecting import BisectingNetwork

        return BisectingNetwork(model)
    if kind == "centers":
        from whyclust.networks.kmeans import KMeansNetwork

        return KMeansNetwork(np.asarray(model.cluster_centers_))
    if kind != "pipeline":
        raise ValueError(f"unknown model kind {kind!r}")
    from whyclust.engine.kinds import from_whyclust, model_kind

    steps = list(model.steps)
    head = steps[-1][1]
    name = type(head).__name__
    head_kind = "centers" if name in ("KMeans", "MiniBatchKMeans") else model_kind(head)
    own = from_whyclust(head)  # TELL, KernelKMeans
    if head_kind not in ("mixture", "bisecting", "centers") and not own:
        raise TypeError(
            f"cannot neuralize a Pipeline ending in {name}: supported clusterers are KMeans, "
            "MiniBatchKMeans, MeanShift, BisectingKMeans, GaussianMixture, whyclust's TELL "
            "and KernelKMeans"
        )
    n_in = pipeline_n_features(model) or 0
    folded = fold_preprocessing(steps[:-1], n_in)
    if own:
        from whyclust.networks import neuralize

        return PipelineNetwork(folded, neuralize(head), model)
    return PipelineNetwork(folded, network_of(head, head_kind), model)
