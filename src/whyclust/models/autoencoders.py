"""The autoencoders of the TELL paper (Peng et al., JMLR 2022), as plain ``nn.Sequential``.

* :func:`mlp_autoencoder`: the fully connected AE d-500-500-2000-10 (ReLU, linear output).
* :func:`conv_autoencoder`: conv 16-3/1, 32-3/2, 32-3/1, 16-3/2, fc 256, fc 10, each hidden
  layer followed by BatchNorm + ReLU; the decoder mirrors it with transposed convolutions
  and a sigmoid output, so it expects inputs in [0, 1] of shape (n, C, H, W).

Both return ``(encoder, decoder)``. The encoders use only standard layers, so a neuralized
TELL model built on them can be written by :func:`whyclust.save`.

:func:`random_affine` is the image augmentation TELL's ``augment="affine"`` trains with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["conv_autoencoder", "mlp_autoencoder", "random_affine"]


def mlp_autoencoder(
    n_features: int,
    hidden: Sequence[int] = (500, 500, 2000),
    n_latent: int = 10,
) -> tuple[nn.Sequential, nn.Sequential]:
    """Fully connected autoencoder (``n_features``, then ``hidden``, then ``n_latent`` units) and
    its mirror image."""
    if n_features < 1 or n_latent < 1 or any(h < 1 for h in hidden):
        raise ValueError("layer sizes must be positive integers")
    sizes = [int(n_features), *map(int, hidden), int(n_latent)]
    return _mlp(sizes), _mlp(sizes[::-1])


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _down(size: int) -> int:
    """Output size of a 3x3 convolution with stride 2 and padding 1."""
    return (size - 1) // 2 + 1


def conv_autoencoder(
    input_shape: Sequence[int],
    n_latent: int = 10,
    channels: Sequence[int] = (16, 32, 32, 16),
    n_hidden: int = 256,
) -> tuple[nn.Sequential, nn.Sequential]:
    """The paper's convolutional autoencoder for images of shape ``(C, H, W)``."""
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    c, h, w = (int(s) for s in input_shape)
    if min(c, h, w) < 1:
        raise ValueError(f"input_shape must be positive, got {tuple(input_shape)}")
    c1, c2, c3, c4 = (int(ch) for ch in channels)
    h1, w1 = _down(h), _down(w)
    h2, w2 = _down(h1), _down(w1)
    flat = c4 * h2 * w2

    def block(conv: nn.Module, n: int) -> list[nn.Module]:
        return [conv, nn.BatchNorm2d(n), nn.ReLU()]

    encoder = nn.Sequential(
        *block(nn.Conv2d(c, c1, 3, stride=1, padding=1), c1),
        *block(nn.Conv2d(c1, c2, 3, stride=2, padding=1), c2),
        *block(nn.Conv2d(c2, c3, 3, stride=1, padding=1), c3),
        *block(nn.Conv2d(c3, c4, 3, stride=2, padding=1), c4),
        nn.Flatten(),
        nn.Linear(flat, n_hidden),
        nn.BatchNorm1d(n_hidden),
        nn.ReLU(),
        nn.Linear(n_hidden, n_latent),
    )
    # output_padding restores odd sizes exactly: (in - 1) * 2 - 2 + 3 + op = out
    decoder = nn.Sequential(
        nn.Linear(n_latent, n_hidden),
        nn.BatchNorm1d(n_hidden),
        nn.ReLU(),
        nn.Linear(n_hidden, flat),
        nn.BatchNorm1d(flat),
        nn.ReLU(),
        nn.Unflatten(1, (c4, h2, w2)),
        *block(
            nn.ConvTranspose2d(
                c4, c3, 3, stride=2, padding=1, output_padding=(h1 - 2 * h2 + 1, w1 - 2 * w2 + 1)
            ),
            c3,
        ),
        *block(nn.ConvTranspose2d(c3, c2, 3, stride=1, padding=1), c2),
        *block(
            nn.ConvTranspose2d(
                c2, c1, 3, stride=2, padding=1, output_padding=(h - 2 * h1 + 1, w - 2 * w1 + 1)
            ),
            c1,
        ),
        nn.ConvTranspose2d(c1, c, 3, stride=1, padding=1),
        nn.Sigmoid(),
    )
    return encoder, decoder


def random_affine(
    x: torch.Tensor, *, max_shift: float = 0.1, max_rotation: float = 10.0
) -> torch.Tensor:
    """Each image of a batch (n, C, H, W) shifted and rotated by its own random amount.

    Shifts are uniform in +-``max_shift`` of the width / height, rotations uniform in
    +-``max_rotation`` degrees about the centre; uncovered pixels become 0 (bilinear
    resampling, one batched ``grid_sample``). Random numbers come from torch's global
    generator, so a seeded fit stays deterministic.
    """
    if x.ndim != 4:
        raise ValueError(f"random_affine expects images (n, C, H, W), got shape {tuple(x.shape)}")
    n = x.shape[0]
    u = torch.rand(n, 3, device=x.device, dtype=x.dtype) * 2.0 - 1.0
    angle = u[:, 0] * math.radians(max_rotation)
    cos, sin = torch.cos(angle), torch.sin(angle)
    shift = u[:, 1:] * (2.0 * max_shift)  # grid coordinates span [-1, 1]: 2 units per width
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
