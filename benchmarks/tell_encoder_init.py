"""TELL in encoder mode: the initial k-means on the pretrained features and the final
clustering, one seed after another.

For each seed it prints one JSON line: the ACC of the restart that TELL keeps (lowest
inertia) and the median, min and max ACC over all restarts of the initial k-means, the CPU
seconds of pretraining and of the whole fit, and the final ACC / NMI / ARI. The fit is the
library's ``TELL(10, encoder=ENCODER, random_state=seed)`` (conv on MNIST-5k images by
default); ``--pretrain``, ``--epochs`` and ``--metric`` override its defaults (the ``"auto"``
schedule on 5,000 images is 150 + 40).

    python benchmarks/tell_encoder_init.py --seeds 0 2 4     # one torch thread
    python benchmarks/tell_encoder_init.py --dataset fashion --encoder mlp --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import bench_clustering as bc
import numpy as np


def record_initial_kmeans(y: np.ndarray, seen: dict) -> None:
    """Make TELL's encoder mode record its initial k-means in ``seen`` on every fit.

    ``seen["init"]`` gets the scores of the restart TELL keeps (lowest inertia) and the
    median, min and max ACC over all restarts; ``seen["init_cpu"]`` the CPU clock then.
    """
    import whyclust.models.tell._encoder as encoder_mode

    lloyd = encoder_mode.lloyd

    def recording(Z, seeds, metric, **kw):
        centers, inertia = lloyd(Z, seeds, metric, **kw)
        labels = encoder_mode.assign(Z, centers)[0]
        accs = [bc._scores(y, lab.numpy())["acc"] for lab in labels]
        kept = int(inertia.argmin())
        seen["init"] = {"kept": accs[kept], "median": float(np.median(accs)),
                        "min": min(accs), "max": max(accs),
                        "kept_scores": bc._scores(y, labels[kept].numpy())}  # fmt: skip
        seen["init_cpu"] = time.process_time()
        return centers, inertia

    encoder_mode.lloyd = recording


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--pretrain", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--dataset", default="mnist5k", choices=["digits", "mnist5k", "fashion"])
    parser.add_argument("--encoder", default="conv", choices=["conv", "mlp"])
    parser.add_argument("--metric", default="auto", choices=["auto", "euclidean", "cosine"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    bc.limit_threads(args.threads)

    from whyclust.models.tell import TELL

    X, y = bc.load(args.dataset, as_images=args.encoder == "conv")
    seen: dict = {}
    record_initial_kmeans(y, seen)
    schedule = {k: v for k, v in (("pretrain_epochs", args.pretrain), ("max_iter", args.epochs))
                if v is not None}  # fmt: skip
    for seed in args.seeds:
        model = TELL(10, encoder=args.encoder, metric=args.metric, random_state=seed,
                     **schedule)
        seen["t0"] = time.process_time()
        model.fit(X)
        cpu = time.process_time() - seen["t0"]
        init = {k: v for k, v in seen["init"].items() if k != "kept_scores"}
        print(json.dumps({"dataset": args.dataset, "encoder": args.encoder,
                          "metric": model.metric_, "seed": seed, "init_acc": init,
                          "cpu_pretrain_s": round(seen["init_cpu"] - seen["t0"], 1),
                          "cpu_s": round(cpu, 1), **bc._scores(y, model.labels_)}), flush=True)


if __name__ == "__main__":
    main()
