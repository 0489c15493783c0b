"""The common face of every neuralized clusterer."""

from __future__ import annotations

import copy
import itertools
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

__all__ = ["ClusterNetwork", "EncodedClusterNetwork", "L2Normalize", "evaluating"]

_M = TypeVar("_M", bound=nn.Module)


def evaluating(module: _M, device: Any = None) -> _M:
    """``module`` in eval mode (BatchNorm statistics frozen, dropout off) on ``device``,
    never changed in place: the module itself when it is so already, else a copy.

    A user's encoder may be in training mode or on another device; explaining it must
    neither compute with dropout on nor switch or move the user's module.
    """
    training = any(m.training for m in module.modules())
    want = torch.device(device) if device is not None else None

    def elsewhere(t: torch.Tensor) -> bool:  # "cuda" means the current CUDA device
        assert want is not None
        if t.device.type != want.type:
            return True
        if want.index is None and want.type != "cuda":
            return False
        index = want.index if want.index is not None else torch.cuda.current_device()
        return t.device.index != index

    moves = want is not None and any(
        elsewhere(t) for t in itertools.chain(module.parameters(), module.buffers())
    )
    if not (training or moves):
        return module
    out = copy.deepcopy(module).eval()
    return out.to(device) if device is not None else out


class ClusterNetwork(nn.Module):
    """A network whose output is the (n, K) matrix of cluster logits f_k(x).

    ``argmax`` over the last axis is the cluster assignment; ``f_k(x) > 0`` exactly when x
    is assigned to k. Subclasses set ``n_clusters`` and ``n_features`` (the flattened input
    size) and implement :meth:`forward`.
    """

    n_clusters: int
    n_features: int

    @property
    def device(self) -> torch.device:
        for t in self.buffers():
            return t.device
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for t in self.buffers():
            if t.is_floating_point():
                return t.dtype
        for p in self.parameters():
            return p.dtype
        return torch.get_default_dtype()

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        """Rows flattened to (n, n_features), with a clear error for a wrong feature count."""
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.n_features:
            raise ValueError(
                f"input has {x.shape[1]} features, the network expects {self.n_features}"
            )
        return x

    @torch.no_grad()
    def predict(self, X, batch_size: int = 8192) -> np.ndarray:
        """Cluster index for each row of ``X`` (numpy in, numpy out), in row batches."""
        return self._rows(X, batch_size, lambda out: out.argmax(1), np.int64)

    @torch.no_grad()
    def logits(self, X, batch_size: int = 8192) -> np.ndarray:
        """The (n, K) cluster logits of the rows of ``X`` (numpy in, numpy out)."""
        return self._rows(X, batch_size, lambda out: out, None)

    def _rows(self, X, batch_size: int, pick, dtype) -> np.ndarray:
        from whyclust._validation import SAMPLE_NDIM, as_float_array

        X = as_float_array(X, ndim=SAMPLE_NDIM)
        net = evaluating(self)
        parts = []
        for start in range(0, X.shape[0], batch_size):
            xb = torch.from_numpy(X[start : start + batch_size])
            xb = xb.to(device=net.device, dtype=net.dtype)
            parts.append(pick(net(xb)).cpu().numpy())
        out = np.concatenate(parts) if parts else np.empty((0,))
        return out if dtype is None else out.astype(dtype, copy=False)


class L2Normalize(nn.Module):
    """Row-wise L2 normalisation, z = x / ||x||, on the flattened input.

    For explanations it is a fixed per-sample scale: relevance on z
    passes to x unchanged, so conservation stays exact.
    """

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        return x / x.norm(dim=1, keepdim=True).clamp_min(self.eps)


class EncodedClusterNetwork(ClusterNetwork):
    """``head(encoder(x))``: a feature map followed by a neuralized cluster head."""

    def __init__(self, encoder: nn.Module, head: ClusterNetwork, n_features: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.n_clusters = head.n_clusters
        self.n_features = int(n_features)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype inputs are cast to: the encoder's (its head may keep float64 centers)."""
        for p in self.encoder.parameters():
            return p.dtype
        return self.head.dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            z = self.encoder(x)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as exc:  # torch's shape / dtype errors, said in the user's terms
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"the encoder cannot take a batch of shape {tuple(x.shape)} ({x.dtype}): "
                f"{first}; give X the shape of one encoder input per row (e.g. (n, C, H, W) "
                "for a convolutional encoder)"
            ) from exc
        z = z.reshape(z.shape[0], -1)
        if z.shape[1] != self.head.n_features:
            raise ValueError(
                f"the encoder maps a point to {z.shape[1]} features, but the cluster centers "
                f"have {self.head.n_features}"
            )
        return self.head(z.to(self.head.dtype))
