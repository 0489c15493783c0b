"""TELL's cluster layer: features, assignments and the center updates, for R restarts at once.

Two geometries (``metric``):

* ``"cosine"``: features and centers are unit vectors (the paper's layer). Each center's
  loss gradient is rescaled to a fixed fraction (``center_step``) of the center's norm and
  the centers are re-normalised after each step.
* ``"euclidean"``: plain k-means. The gradient of the batch loss for center j,
  (2 b_j / B) (Omega_j - m_j) with m_j the mean of its b_j points in the batch, is divided
  by its curvature 2 b_j / B, so a step of rate 1 moves the center onto m_j (Lloyd's
  update on the batch); smaller rates average over batches.

Either way the layer scores are 2 Omega_j . z - ||Omega_j||^2 and the assignment is their
argmax, the nearest center.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from whyclust.models._kmeanspp import kmeans_plusplus, sq_euclidean

__all__ = ["METRICS", "CenterTrainer", "assign", "center_sums", "features", "lloyd",
           "seed_centers", "sq_distances"]

METRICS = ("euclidean", "cosine")


def unit_rows(c: torch.Tensor) -> torch.Tensor:
    """Rows scaled to norm 1 (all-zero rows are left as they are)."""
    norm = c.norm(dim=-1, keepdim=True)
    return torch.where(norm > 0, c / norm.clamp_min(1e-30), c)


def features(h: torch.Tensor, metric: str) -> torch.Tensor:
    """Rows flattened to (n, d); unit-normalised for the cosine metric."""
    h = h.reshape(h.shape[0], -1)
    if metric == "cosine":
        return h / h.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return h


def sq_distances(z: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """||z_i - Omega_j||^2 for features (B, d) and centers (K, d): (B, K)."""
    sq = (z * z).sum(1, keepdim=True) - 2.0 * z @ centers.T + (centers * centers).sum(1)
    return sq.clamp_min(0.0)


@torch.no_grad()
def assign(z: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and squared distances to the nearest center of ``z`` (B, d) for centers
    (R, K, d): two (R, B) tensors. The labels are the argmax of the layer's scores
    2 Omega_j . z - ||Omega_j||^2, computed as the k-means engine does: against the centers
    shifted by their mean o (o folded into the biases), so that data far from the origin
    keeps its digits in float32."""
    offset = centers.mean(dim=-2, keepdim=True)  # (R, 1, d)
    shifted = centers - offset
    bias = -((shifted * shifted).sum(-1) + 2.0 * (shifted * offset).sum(-1))  # (R, K)
    scores = 2.0 * torch.matmul(z, shifted.transpose(1, 2)) + bias[:, None, :]
    best, labels = scores.max(-1)  # 2 (z - o) . Omega'_j - ||Omega'_j||^2, plus 2 o . z - ...
    if centers.shape[0] == 1:
        moved = z - offset[0]
        near = (moved * moved).sum(1)[None, :]  # ||z - o||^2
    else:  # (R, B) without an (R, B, d) temporary
        near = ((z * z).sum(1)[None, :] - 2.0 * torch.matmul(offset, z.T)[:, 0, :]
                + (offset * offset).sum(-1))  # fmt: skip
    return labels, (near - best).clamp_min(0.0)


@torch.no_grad()
def seed_centers(
    Z: torch.Tensor, k: int, n_init: int, rng: np.random.RandomState, metric: str
) -> torch.Tensor:
    """(n_init, K, d) greedy k-means++ seeds among the rows of the features ``Z``."""
    if Z.shape[0] < k:
        raise ValueError(f"n_samples={Z.shape[0]} should be >= n_clusters={k}.")
    idx = kmeans_plusplus(sq_euclidean(Z), Z.shape[0], k, n_init=n_init, rng=rng,
                          device=Z.device)
    centers = Z[idx]
    if metric == "cosine":
        norm = centers.norm(dim=-1, keepdim=True)
        if bool((norm == 0).any()):  # an all-zero input row: a random direction instead
            gen = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
            noise = torch.randn(centers.shape, generator=gen, dtype=centers.dtype)
            centers = torch.where(norm == 0, noise.to(Z.device), centers)
        centers = unit_rows(centers)
    return centers


def center_sums(
    z: torch.Tensor, labels: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-center sums (R, K, d) and counts (R, K, 1) of the features ``z`` (B, d) under
    the labels (R, B) of R restarts, one ``index_add`` each for all restarts."""
    r, d = labels.shape[0], z.shape[1]
    offsets = (labels + torch.arange(r, device=z.device)[:, None] * k).reshape(-1)
    sums = torch.zeros(r * k, d, dtype=z.dtype, device=z.device)
    sums.index_add_(0, offsets, z.repeat(r, 1))
    counts = torch.zeros(r * k, dtype=z.dtype, device=z.device)
    counts.index_add_(0, offsets, torch.ones_like(offsets, dtype=z.dtype))
    return sums.reshape(r, k, d), counts.reshape(r, k, 1)


@torch.no_grad()
def lloyd(
    Z: torch.Tensor, centers: torch.Tensor, metric: str, *, max_iter: int = 300,
    tol: float = 1e-4, block: int = 65536,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from the seeds ``centers`` (R, K, d) on the rows of ``Z`` (n, d),
    all R restarts at once; returns the centers and their inertias (R,).

    For the cosine metric each new center is the unit mean direction of its points
    (spherical k-means). A center that loses all its points stays where it was. It stops
    when no center moves by more than ``tol`` times the mean per-feature variance of
    ``Z`` (scikit-learn's rule). Rows are read in blocks, so memory is bounded by
    ``block * R * K``.
    """
    r, k = centers.shape[:2]
    c = unit_rows(centers) if metric == "cosine" else centers.clone()
    limit = tol * float(Z.var(0).mean()) if Z.shape[0] > 1 else 0.0
    for _ in range(max_iter):
        sums, counts = 0.0, 0.0
        for s in range(0, Z.shape[0], block):
            z = Z[s : s + block]
            part_sums, part_counts = center_sums(z, assign(z, c)[0], k)
            sums, counts = sums + part_sums, counts + part_counts
        new = torch.where(counts > 0, sums / counts.clamp_min(1.0), c)
        if metric == "cosine":
            new = unit_rows(new)
        shift = float(((new - c) ** 2).sum(-1).max())
        c = new
        if shift <= limit:
            break
    inertia = torch.zeros(r, dtype=torch.float64, device=Z.device)
    for s in range(0, Z.shape[0], block):
        inertia += assign(Z[s : s + block], c)[1].sum(1, dtype=torch.float64)
    return c, inertia


class CenterTrainer:
    """Centers of shape (R, K, d) for R restarts, updated from batches of features.

    Plain SGD is done in place (no optimizer object); ``"adadelta"`` and ``"adam"`` use
    ``torch.optim`` on the same rescaled gradient.
    """

    def __init__(
        self, centers: torch.Tensor, metric: str, optimizer: str, lr: float, step: float
    ) -> None:
        self.metric = metric
        self.centers = nn.Parameter(unit_rows(centers) if metric == "cosine" else centers)
        self.lr = float(lr)
        self.step_fraction = float(step)
        self.opt: torch.optim.Optimizer | None = None
        if optimizer == "adadelta":
            self.opt = torch.optim.Adadelta([self.centers], lr=self.lr)
        elif optimizer == "adam":
            self.opt = torch.optim.Adam([self.centers], lr=self.lr)

    @torch.no_grad()
    def step(self, z: torch.Tensor, lr_scale: float = 1.0) -> torch.Tensor:
        """One update on the features ``z`` (B, d); returns the (R,) batch losses."""
        c = self.centers
        k = c.shape[1]
        labels, dist = assign(z, c)  # (R, B) each
        sums, counts = center_sums(z, labels, k)
        if self.metric == "cosine":
            # dL/dOmega_j = -2/B sum_{i in j} z_i (unit vectors), rescaled to a fraction
            grad = sums.mul_(-2.0 / z.shape[0])
            scale = self.step_fraction * c.norm(dim=-1, keepdim=True)
            grad.mul_(scale / grad.norm(dim=-1, keepdim=True).clamp_min(1e-30))
        else:
            means = sums / counts.clamp_min(1.0)
            grad = torch.where(counts > 0, c - means, torch.zeros_like(c))
        if self.opt is None:
            c.add_(grad, alpha=-self.lr * lr_scale)
        else:
            for group in self.opt.param_groups:
                group["lr"] = self.lr * lr_scale
            c.grad = grad
            self.opt.step()
            c.grad = None
        if self.metric == "cosine":
            c.copy_(unit_rows(c))
        return dist.mean(1)

    def select(self, r: int) -> None:
        """Keep restart ``r`` only, with its optimizer state."""
        old = self.centers
        self.centers = nn.Parameter(old.detach()[r : r + 1].clone())
        if self.opt is not None:
            state = self.opt.state.get(old, {})
            new_state = {
                key: (v[r : r + 1].clone() if torch.is_tensor(v) and v.shape == old.shape else v)
                for key, v in state.items()
            }
            cls = type(self.opt)
            self.opt = cls([self.centers], **{
                k: v for k, v in self.opt.defaults.items() if k in ("lr", "rho", "eps", "betas")
            })
            if new_state:
                self.opt.state[self.centers] = new_state

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """The optimizer's running state (Adam's moments, Adadelta's averages, the step
        count) as arrays, so that a saved model continues ``partial_fit`` as it would have."""
        if self.opt is None:
            return {}
        state = self.opt.state.get(self.centers, {})
        return {k: np.atleast_1d(v.detach().cpu().numpy()) for k, v in state.items()
                if torch.is_tensor(v)}  # fmt: skip

    def load_optimizer_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore :meth:`optimizer_state`'s arrays; ``ValueError`` if they do not fit."""
        if not arrays:
            return
        if self.opt is None:
            raise ValueError("the file holds optimizer state, but the optimizer is plain SGD")
        state = {}
        for key, value in arrays.items():
            arr = np.asarray(value)
            if arr.dtype.kind != "f" or not np.isfinite(arr).all():
                raise ValueError(f"optimizer state {key!r} must be finite floats")
            if key == "step":
                if arr.shape != (1,) or arr[0] < 0:
                    raise ValueError("optimizer state 'step' must be one count >= 0")
                state[key] = torch.tensor(float(arr[0]), dtype=torch.float32)
            elif arr.shape == tuple(self.centers.shape):
                state[key] = torch.from_numpy(arr.copy()).to(self.centers.dtype)
            else:
                raise ValueError(
                    f"optimizer state {key!r} has shape {arr.shape}, the centers "
                    f"{tuple(self.centers.shape)}"
                )
        self.opt.state[self.centers] = state
