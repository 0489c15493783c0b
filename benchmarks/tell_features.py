"""How good are the pretrained features TELL clusters? k-means on them after N epochs.

Pretrains the library's MLP autoencoder (d-500-500-2000-``--n-latent``; Adam 1e-3, batch
128, MSE, as TELL's pretraining does) in a stand-alone loop, and at each epoch listed in
``--snapshots`` runs scikit-learn's KMeans (10 single restarts) on the features, raw (euclidean) and
unit-normalised (cosine). For each it prints the ACC / NMI of the lowest-inertia restart
and the median, min and max ACC over the restarts. ``--augment`` trains a denoising
autoencoder on random shifts and rotations (images only). ``--cluster-epochs M`` then runs
TELL's clustering epochs (its ``max_iter``) from the last snapshot's networks through
``TELL(encoder=(encoder, decoder), pretrain_epochs=0)``, and prints the initial and final
scores.

    python benchmarks/tell_features.py --dataset fashion --epochs 30 --snapshots 10 20 30
    python benchmarks/tell_features.py --dataset fashion --epochs 10 --cluster-epochs 16
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence

import bench_clustering as bc
import numpy as np


def kmeans_scores(Z: np.ndarray, y: np.ndarray, restarts: int) -> dict[str, dict]:
    """Scores of k-means on the features Z, for the euclidean and the cosine geometry."""
    from sklearn.cluster import KMeans

    out = {}
    unit = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
    for name, F in (("euclidean", Z), ("cosine", unit)):
        runs = []
        for r in range(restarts):
            km = KMeans(int(y.max()) + 1, n_init=1, random_state=r).fit(F)
            runs.append((km.inertia_, bc._scores(y, km.labels_)))
        runs.sort(key=lambda t: t[0])
        accs = [s["acc"] for _, s in runs]
        out[name] = {"kept_acc": runs[0][1]["acc"], "kept_nmi": runs[0][1]["nmi"],
                     "median_acc": float(np.median(accs)), "min_acc": min(accs),
                     "max_acc": max(accs)}  # fmt: skip
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion", choices=["digits", "mnist5k", "fashion"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--snapshots", type=int, nargs="*", default=None)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--n-latent", type=int, default=10)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--cluster-epochs", type=int, default=0)
    parser.add_argument("--metric", default="cosine", choices=["euclidean", "cosine"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save-features", default=None, metavar="NPZ",
                        help="write the last snapshot's features and labels to this .npz")
    args = parser.parse_args(argv)
    bc.limit_threads(args.threads)

    import torch
    from torch.nn import functional as F

    from whyclust.models.autoencoders import mlp_autoencoder, random_affine

    X, y = bc.load(args.dataset)
    X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
    side = math.isqrt(X.shape[1])
    Xt = torch.from_numpy(X)
    torch.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    encoder, decoder = mlp_autoencoder(X.shape[1], n_latent=args.n_latent)
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
    snapshots = set(args.snapshots or [args.epochs])
    start = time.process_time()
    for epoch in range(1, args.epochs + 1):
        encoder.train()
        decoder.train()
        perm = torch.from_numpy(rng.permutation(len(Xt)))
        for s in range(0, len(Xt), 128):
            xb = Xt[perm[s : s + 128]]
            xin = xb
            if args.augment:
                xin = random_affine(xb.reshape(-1, 1, side, side)).reshape(len(xb), -1)
            loss = F.mse_loss(decoder(encoder(xin)), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch in snapshots:
            encoder.eval()
            with torch.no_grad():
                Z = torch.cat([encoder(Xt[i : i + 4096]) for i in range(0, len(Xt), 4096)])
            print(json.dumps({"dataset": args.dataset, "seed": args.seed, "epoch": epoch,
                              "augment": args.augment, "n_latent": args.n_latent,
                              "loss": float(loss.detach()),
                              "cpu_s": round(time.process_time() - start, 1),
                              **kmeans_scores(Z.numpy().astype(np.float64), y,
                                              args.restarts)}), flush=True)  # fmt: skip
    if args.save_features:
        np.savez(args.save_features, Z=Z.numpy(), y=y)
    if args.cluster_epochs:
        from tell_encoder_init import record_initial_kmeans

        from whyclust.models.tell import TELL

        seen: dict = {}
        record_initial_kmeans(y, seen)
        start = time.process_time()
        model = TELL(int(y.max()) + 1, encoder=(encoder, decoder), pretrain_epochs=0,
                     n_latent=args.n_latent,
                     max_iter=args.cluster_epochs, metric=args.metric,
                     random_state=args.seed).fit(X)
        print(json.dumps({"cluster_epochs": args.cluster_epochs, "metric": args.metric,
                          "init": seen["init"]["kept_scores"],
                          "final": bc._scores(y, model.labels_),
                          "cpu_s": round(time.process_time() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
