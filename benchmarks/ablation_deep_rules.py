"""Deletion AUC of design A's rule variants on the conv rows of section b, beside the baselines.

Trains section b's conv models on MNIST-5k (conv autoencoder + k-means, TELL conv; same
sizes, epochs and held-out points) for each seed and prints, per model and rule variant,
the median over seeds of the per-seed median deletion AUC under mean (training mean), blur
and zero replacement, [min, max] over seeds. Lower is better. An ablation, not a choice of
defaults: it runs on the evaluation points themselves. Usage::

    python benchmarks/ablation_deep_rules.py [--seeds 0 1 2] [--points 30] [--first-point 0]
        [--conv-epochs 1] [--only NAME ...]

``--conv-epochs`` trains the conv autoencoder (and TELL conv's pretraining) for that many
epochs instead of section b's; ``--first-point`` takes the evaluation points from there
on in the held-out set (other points than section b's first ones, to check a choice made
on those); ``--only`` runs the named variants (as in the table's first column) only.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Config, load
from section_faithfulness import Sizes, _models

VARIANTS = [
    ("NEON (default)", "neon", {}),
    *((f"gamma={g}", "neon", {"gamma": g}) for g in (0.0, 0.1, 0.5, 1.0, 2.0)),
    *((f"head_gamma={h}", "neon", {"head_gamma": h}) for h in (0.0, 0.25, 4.0)),
    ("first_rule=gamma", "neon", {"first_rule": "gamma"}),
    ("first_rule=flat", "neon", {"first_rule": "flat"}),
    ("first_rule=epsilon", "neon", {"first_rule": "epsilon"}),
    ("zero_bias", "neon", {"zero_bias": True}),
    ("gradient", "gradient", {}),
    ("GxI (zero)", "gradient_x_input", {}),
    ("IG(0)", "integrated_gradients", {"n_steps": 32}),
    ("occl(0)", "occlusion", {}),
]
PROTOCOLS = ("mean", "blur", "zero")
_SKIP = {"k-means (raw)", "TELL + encoder (MLP)"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--points", type=int, default=30)
    p.add_argument("--first-point", type=int, default=0)
    p.add_argument("--conv-epochs", type=int, default=None)
    p.add_argument("--only", nargs="+", default=None)
    a = p.parse_args(argv)
    import whyclust as wc
    from whyclust.evaluation import deletion_curve

    sz = Sizes.of(Config.make(False))
    if a.conv_epochs is not None:
        sz = dataclasses.replace(sz, conv_epochs=a.conv_epochs)
    X, _ = load("mnist5k")
    X = X.astype(np.float32)
    perm = np.random.default_rng(1).permutation(X.shape[0])  # section b's split
    test, train = perm[: sz.eval_points], perm[sz.eval_points :]
    Xtr = X[train]
    mean = Xtr.mean(0).reshape(1, 28, 28)
    Xe = X[test].reshape(-1, 1, 28, 28)[a.first_point : a.first_point + a.points]
    if Xe.shape[0] < a.points:
        p.error(f"the held-out set has {len(test)} points")
    variants = [v for v in VARIANTS if a.only is None or v[0] in a.only]
    if a.only is not None and len(variants) != len(a.only):
        p.error(f"--only names variants of {[v[0] for v in VARIANTS]}")
    auc: dict[tuple[str, str, str], list[float]] = {}
    for seed in a.seeds:
        for label, model, images in _models("mnist5k", Xtr, sz, seed, skip=_SKIP):
            if not images:
                continue
            net = wc.neuralize(model)
            for name, method, opts in variants:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    e = wc.explain(net, Xe, method=method, **opts)
                for prot in PROTOCOLS:
                    base = mean if prot == "mean" else prot
                    c = deletion_curve(net, Xe, e.relevance, baseline=base, n_steps=sz.n_steps,
                                       image_shape=(28, 28))  # fmt: skip
                    auc.setdefault((label, name, prot), []).append(float(np.nanmedian(c.auc)))
            print(f"seed {seed}: {label} done", flush=True)
    print("\n| model | rule / method | " + " | ".join(f"{p} deletion" for p in PROTOCOLS) + " |")
    print("|---|---|" + "---|" * len(PROTOCOLS))
    models = dict.fromkeys(k[0] for k in auc)
    for label in models:
        for name, _, _ in variants:
            cells = []
            for prot in PROTOCOLS:
                v = auc[label, name, prot]
                cells.append(f"{statistics.median(v):.3f} [{min(v):.3f}, {max(v):.3f}]")
            print(f"| {label} | {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
