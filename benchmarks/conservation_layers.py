"""Conservation of deep NEON through each kind of layer: sum(R) / f_c per point.

Random float64 encoders (input 64 -> ... -> code 3), uniform inputs, centres near the first
codes; design A (midpoint, default rules and ``zero_bias=True``) and design B
(``reference="mean"``, whose sum is compared with f_c - reference_part). Prints one
markdown row per encoder with the median and 10-90% range of the ratio and the warnings
whyclust raised.

    python benchmarks/conservation_layers.py
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

import whyclust as wc
from whyclust.networks import L2Normalize


class _Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.inner = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.inner(x))


def _encoders() -> dict[str, nn.Module]:
    def conv(*middle: nn.Module, width: int = 144) -> nn.Module:
        return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 4, 3), nn.ReLU(), *middle,
                             nn.Flatten(), nn.Linear(width, 3))  # fmt: skip

    def mlp(*middle: nn.Module) -> nn.Module:
        return nn.Sequential(nn.Linear(64, 16), *middle, nn.Linear(16, 3))

    return {
        "Linear-ReLU": mlp(nn.ReLU()),
        "Linear-Tanh": mlp(nn.Tanh()),
        "Linear-BatchNorm-ReLU": mlp(nn.BatchNorm1d(16), nn.ReLU()),
        "Linear-LayerNorm-ReLU": mlp(nn.LayerNorm(16), nn.ReLU()),
        "Linear-L2Normalize-ReLU": mlp(L2Normalize(), nn.ReLU()),
        "Linear-ReLU-Softmax": mlp(nn.ReLU(), nn.Softmax(-1)),
        "Linear-ReLU-residual": mlp(nn.ReLU(), _Residual(16)),
        "Conv-ReLU": conv(),
        "Conv-ReLU-MaxPool": conv(nn.MaxPool2d(2), width=36),
        "Conv-ReLU-AvgPool": conv(nn.AvgPool2d(2), width=36),
        "Conv-GroupNorm-ReLU": conv(nn.GroupNorm(2, 4), width=144),
    }


def _ratio(e: object, reference: bool) -> np.ndarray:
    total = e.relevance.reshape(e.relevance.shape[0], -1).sum(1)
    explained = e.logit - e.extras["reference_part"] if reference else e.logit
    return total / explained


def main() -> None:
    torch.manual_seed(0)
    X = np.random.default_rng(0).uniform(size=(200, 64))
    print("| encoder | design A (default) | design A, zero_bias | design B (mean) | warnings |")
    print("|---|---|---|---|---|")
    for name, enc in _encoders().items():
        enc = enc.double().eval()
        for m in enc.modules():
            if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d)):
                with torch.no_grad():
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0.0, 0.3)
        with torch.no_grad():
            Z = enc(torch.from_numpy(X)).numpy()
        model = (enc, Z[:3] + 0.01)
        cells, seen = [], set()
        for options in ({}, {"zero_bias": True}, {"reference": "mean"}):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                r = _ratio(wc.explain(model, X, **options), "reference" in options)
            for w in caught:
                text = str(w.message)
                if "reference_part" in text:
                    seen.add("design B: sum misses")
                elif "not conserved" in text:
                    seen.add("design A: relevance leaks")
            lo, med, hi = np.percentile(r, [10, 50, 90])
            cells.append(f"{med:.4f} ({lo:.4f} to {hi:.4f})")
        print(f"| {name} | " + " | ".join(cells) + f" | {'; '.join(sorted(seen)) or '-'} |")


if __name__ == "__main__":
    main()
