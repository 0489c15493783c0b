"""Showcase: explain a deep image clustering down to the pixels with NEON.

A small convolutional autoencoder is trained on MNIST-5k and on Fashion-MNIST (a
subsample); k-means clusters its codes; ``wc.neuralize((encoder, centers))`` rewrites the
encoder + k-means head as one network, and ``wc.explain`` returns, for every image, the
relevance of each pixel for the cluster it was assigned to (the NEON head is exact, zennit's
EpsilonGammaBox rules carry relevance through the encoder).

Run ``python examples/showcase.py --out showcase_out`` (5,000 images per data set, 15
epochs) or add ``--quick`` (2,000 images, 8 epochs: about 4 minutes per data set on 2 busy
CPU cores). Writes, per data set:

- ``<data>_heatmaps.png``: one row per cluster: its prototype (the member closest to the
  centroid in code space), then several members, each with its NEON heatmap
  (red = evidence for the cluster, blue = against).
- ``<data>_cluster_relevance.png``: the mean heatmap of each cluster's members.
- ``<data>_contrast.png``: each prototype, "why its cluster and not the runner-up cluster".
- ``<data>_metrics.json``: ACC / NMI / ARI against the true classes and the conservation
  sum(R) / f_c of the explanations.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import nn

import whyclust as wc
from whyclust.summary import cluster_relevance, contrastive


def conv_autoencoder(code: int = 10) -> tuple[nn.Sequential, nn.Sequential]:
    """A small conv autoencoder for 1 x 28 x 28 images (BatchNorm + ReLU, sigmoid output)."""
    encoder = nn.Sequential(
        nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 7 * 7, code),
    )  # fmt: skip
    decoder = nn.Sequential(
        nn.Linear(code, 32 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
        nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1), nn.Sigmoid(),
    )  # fmt: skip
    return encoder, decoder


def train_autoencoder(X: np.ndarray, epochs: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    encoder, decoder = conv_autoencoder()
    params = [*encoder.parameters(), *decoder.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    data = torch.from_numpy(X)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        perm = torch.randperm(len(data), generator=gen)
        total = 0.0
        for start in range(0, len(data), 64):
            xb = data[perm[start : start + 64]]
            loss = nn.functional.binary_cross_entropy(decoder(encoder(xb)), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        print(f"  epoch {epoch + 1}/{epochs}: reconstruction BCE {total / len(data):.4f}")
    return encoder.eval()


def load(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if name == "mnist5k":
        X, y = wc.datasets.load_mnist5k(as_images=True)
    else:
        X, y = wc.datasets.load_fashion_mnist(as_images=True)
    X = np.asarray(X, dtype=np.float32).reshape(-1, 1, 28, 28)
    if n < len(X):
        idx = np.sort(np.random.default_rng(seed).choice(len(X), n, replace=False))
        X, y = X[idx], y[idx]
    return X, np.asarray(y)


def heatmap_limits(r: np.ndarray) -> float:
    return float(np.abs(r).max()) or 1.0


def _save_without_ticks(fig, axes, path) -> None:
    """Hide the ticks of every panel, save the figure compactly and close it."""
    import matplotlib.pyplot as plt

    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_heatmaps(path, X, rel, labels, proto, members, k, per_cluster):
    import matplotlib.pyplot as plt

    cols = 1 + 2 * per_cluster
    fig, axes = plt.subplots(k, cols, figsize=(cols * 1.1, k * 1.15))
    for c in range(k):
        ax = axes[c, 0]
        ax.imshow(X[proto[c], 0], cmap="gray_r", vmin=0, vmax=1)
        ax.set_ylabel(f"cluster {c}", fontsize=7)
        if c == 0:
            ax.set_title("prototype", fontsize=7)
        for j in range(per_cluster):
            a_img, a_rel = axes[c, 1 + 2 * j], axes[c, 2 + 2 * j]
            if j < len(members[c]):
                i = members[c][j]
                a_img.imshow(X[i, 0], cmap="gray_r", vmin=0, vmax=1)
                lim = heatmap_limits(rel[i])
                a_rel.imshow(rel[i, 0], cmap="bwr", vmin=-lim, vmax=lim)
                if c == 0:
                    a_img.set_title("image", fontsize=7)
                    a_rel.set_title("NEON", fontsize=7)
    _save_without_ticks(fig, axes, path)


def plot_cluster_relevance(path, mean_rel, sizes):
    import matplotlib.pyplot as plt

    k = len(mean_rel)
    fig, axes = plt.subplots(1, k, figsize=(k * 1.2, 1.5))
    for c, ax in enumerate(np.atleast_1d(axes)):
        img = mean_rel[c].reshape(28, 28)
        lim = heatmap_limits(img)
        ax.imshow(img, cmap="bwr", vmin=-lim, vmax=lim)
        ax.set_title(f"{c} (n={sizes[c]})", fontsize=7)
    _save_without_ticks(fig, axes, path)


def plot_contrast(path, X, expl, idx):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(idx), figsize=(len(idx) * 1.2, 2.6))
    for j, i in enumerate(idx):
        axes[0, j].imshow(X[i, 0], cmap="gray_r", vmin=0, vmax=1)
        axes[0, j].set_title(f"{expl.target[i]} not {expl.contrast[i]}", fontsize=7)
        lim = heatmap_limits(expl.relevance[i])
        axes[1, j].imshow(expl.relevance[i, 0], cmap="bwr", vmin=-lim, vmax=lim)
    _save_without_ticks(fig, axes, path)


def run(name: str, out: Path, quick: bool, seed: int) -> dict:
    n = 2000 if quick else 5000
    epochs = 8 if quick else 15
    per_cluster = 3 if quick else 5
    k = 10
    t0 = time.time()
    X, y = load(name, n, seed)
    print(f"{name}: {X.shape[0]} images, training the autoencoder ({epochs} epochs)")
    encoder = train_autoencoder(X, epochs, seed)
    with torch.no_grad():
        Z = torch.cat([encoder(torch.from_numpy(X[s : s + 512])) for s in range(0, len(X), 512)])
    Z = Z.numpy()
    km = KMeans(k, n_init=10, random_state=seed).fit(Z)
    net = wc.neuralize((encoder, km.cluster_centers_.astype(np.float32)), input_shape=(1, 28, 28))
    labels = net.predict(X)
    assert np.array_equal(labels, km.labels_) or np.mean(labels == km.labels_) > 0.99
    # explain the prototypes and the most confident members of each cluster
    dist = ((Z[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1)
    proto = [int(np.flatnonzero(labels == c)[dist[labels == c, c].argmin()]) for c in range(k)]
    expl = wc.explain(net, X, bounds=(0.0, 1.0), batch_size=256)
    members = []
    for c in range(k):
        idx = np.flatnonzero(labels == c)
        members.append(idx[np.argsort(-expl.logit[idx])][:per_cluster].tolist())
    plot_heatmaps(out / f"{name}_heatmaps.png", X, expl.relevance, labels, proto, members, k,
                  per_cluster)  # fmt: skip
    mean_rel = cluster_relevance(expl).reindex(range(k)).fillna(0.0).to_numpy()
    sizes = np.bincount(labels, minlength=k)
    plot_cluster_relevance(out / f"{name}_cluster_relevance.png", mean_rel, sizes)
    # the prototype of each cluster against its runner-up cluster
    show = np.asarray(proto)
    second = np.argsort(dist[show], axis=1)[:, 1]
    cexpl = contrastive(net, X[show], k=second, bounds=(0.0, 1.0))
    plot_contrast(out / f"{name}_contrast.png", X[show], cexpl, np.arange(len(show)))
    cons = expl.extras["conservation"]
    metrics = {
        "data": name,
        "n": len(X),
        "epochs": epochs,
        "acc": float(wc.metrics.cluster_accuracy(y, labels)),
        "nmi": float(wc.metrics.nmi(y, labels)),
        "ari": float(wc.metrics.ari(y, labels)),
        "conservation_median": float(np.median(cons)),
        "conservation_p05_p95": [float(np.percentile(cons, 5)), float(np.percentile(cons, 95))],
        "head_conservation_max_error": float(np.abs(expl.extras["head_conservation"] - 1).max()),
        "mean_logit": float(np.mean(expl.logit)),
        "seconds": round(time.time() - t0, 1),
    }
    (out / f"{name}_metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="showcase_out", help="folder for the PNG files")
    parser.add_argument("--quick", action="store_true", help="small, fast run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data", nargs="+", default=["mnist5k", "fashion"], choices=["mnist5k", "fashion"]
    )
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.data:
        if name == "fashion" and not Path("/usr/share/datasets/fashion-mnist").exists():
            print("fashion: skipped (apt-get install dataset-fashion-mnist)")
            continue
        run(name, out, args.quick, args.seed)


if __name__ == "__main__":
    main()
