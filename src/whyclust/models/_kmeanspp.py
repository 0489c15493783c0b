"""Greedy k-means++ seeding from a squared-distance callback, several seedings side by side.

One implementation serves TELL (distances between feature vectors) and kernel k-means
(feature-space distances 2 - 2 K_ab from the kernel matrix): the caller says how far every
point is from a given set of points, and gets back the indices of the chosen seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["kmeans_plusplus", "sq_euclidean"]

#: ``sq_dist(idx)`` with ``idx`` a long tensor of any shape S: squared distances of every
#: point to the points ``idx``, shape (*S, n)
SqDist = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def kmeans_plusplus(
    sq_dist: SqDist,
    n: int,
    k: int,
    *,
    n_init: int = 1,
    rng: np.random.RandomState,
    device: torch.device | str = "cpu",
    n_trials: int | None = None,
) -> torch.Tensor:
    """Indices (n_init, k) of greedy k-means++ seeds among ``n`` points.

    The first seed is uniform; each next one is the best of ``n_trials`` candidates
    (default 2 + log k, as scikit-learn) drawn with probability proportional to the squared
    distance to the closest seed so far, "best" meaning the lowest total squared distance
    after adding it. Candidates are drawn on the CPU from ``rng``, so a seed gives the same
    indices on every device. When every point already coincides with a seed, candidates are
    drawn uniformly.
    """
    if not 1 <= k <= n:
        raise ValueError(f"k-means++ needs 1 <= k <= n, got k={k}, n={n}")
    trials = 2 + int(math.log(k)) if n_trials is None else int(n_trials)
    gen = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
    rows = torch.arange(n_init, device=device)
    chosen = [torch.randint(n, (n_init,), generator=gen).to(device)]
    closest = sq_dist(chosen[0]).clamp_min(0.0)  # (R, n)
    for _ in range(1, k):
        weights = closest.double().cpu()
        weights[weights.sum(1) <= 0] = 1.0
        cand = torch.multinomial(weights, trials, replacement=True, generator=gen).to(device)
        new = torch.minimum(closest[:, None, :], sq_dist(cand).clamp_min(0.0))  # (R, T, n)
        best = new.sum(-1).argmin(1)
        chosen.append(cand[rows, best])
        closest = new[rows, best]
    return torch.stack(chosen, 1)


def sq_euclidean(Z: torch.Tensor) -> SqDist:
    """The callback for points given as rows of ``Z`` (n, d): ||z - Z[idx]||^2."""
    sq = (Z * Z).sum(1)

    def dist(idx: torch.Tensor) -> torch.Tensor:
        return (sq[idx][..., None] + sq - 2.0 * Z[idx] @ Z.T).clamp_min(0.0)

    return dist
