"""Section b: are the explanations right? Faithfulness of NEON and the baselines.

Models are trained on all but a held-out set of points and evaluated on held-out points,
over several model seeds. For every model: deletion under mean (the training mean), zero
and blur replacement, insertion under mean replacement, the fraction of features removed
until the assignment flips, conservation of deep NEON, and explanation times; Quantus's
metrics and the center-randomisation check on one model per dataset; the ground-truth
share on synthetic blobs.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import LABELS, Config, available, load, mark, say, table

#: (column label, method, options, reference named in the tables); "MEAN" is replaced by
#: the training mean of the model's data
METHODS: list[tuple[str, str, dict[str, Any], str]] = [
    ("NEON", "neon", {}, "midpoint (design A)"),
    ("NEON zero-bias", "neon", {"zero_bias": True}, "midpoint, biases absorb none"),
    ("NEON-B(mean)", "neon", {"reference": "MEAN"}, "training mean (design B)"),
    ("gradient", "gradient", {}, "none"),
    ("GxI", "gradient_x_input", {}, "zero"),
    ("Gx(x-mean)", "gradient_x_input", {"baseline": "MEAN"}, "training mean"),
    ("IG(0)", "integrated_gradients", {"n_steps": 32}, "zero, 32 steps"),
    ("IG(mean)", "integrated_gradients", {"n_steps": 32, "baseline": "MEAN"}, "training mean"),
    ("occl(0)", "occlusion", {}, "zero, 1 feature"),
    ("occl(mean)", "occlusion", {"baseline": "MEAN"}, "training mean, 1 feature"),
    ("random", "random", {}, "none"),
]
#: reference-free baselines default NEON must beat; mean-referenced ones design B is held to
MUST_BEAT = ("gradient", "GxI", "IG(0)", "occl(0)")
MEAN_REFERENCED = ("Gx(x-mean)", "IG(mean)", "occl(mean)")
PROTOCOLS = ("mean", "zero", "blur")
#: options of the deep path only (n/a on the k-means row)
DEEP_ONLY = ("NEON zero-bias", "NEON-B(mean)")


@dataclass
class Sizes:
    seeds: int
    eval_points: int
    n_steps: int
    mlp_epochs: int
    conv_epochs: int
    fashion_points: int
    shap_points: int
    quantus_points: int
    conv: bool
    conv_points: int = 30
    #: 784-feature data sets (MNIST-5k, Fashion-MNIST): fewer points and epochs, no raw row
    big_points: int = 40
    big_epochs: int = 6

    @classmethod
    def of(cls, cfg: Config) -> Sizes:
        if cfg.quick:
            return cls(1, 30, 10, 2, 1, 2000, 2, 10, False)
        return cls(3, 120, 20, 10, 1, 6000, 5, 40, True)


def _train_ae(enc, dec, X: np.ndarray, epochs: int, seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    data = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    enc.train()
    dec.train()
    for _ in range(epochs):
        for idx in torch.randperm(data.shape[0]).split(128):
            loss = torch.nn.functional.mse_loss(dec(enc(data[idx])), data[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    enc.eval()
    dec.eval()


def _models(
    name: str, Xtr: np.ndarray, sz: Sizes, seed: int, skip: set[str] = frozenset()
) -> Iterator[tuple[str, Any, bool]]:
    """(row label, fitted model or (encoder, centers), images?) for one seed; rows in
    ``skip`` are not trained (except the one the Quantus table needs)."""
    import torch
    from sklearn.cluster import KMeans

    import whyclust as wc
    from whyclust.models.autoencoders import conv_autoencoder, mlp_autoencoder

    d = Xtr.shape[1]
    if d > 100:
        sz = dataclasses.replace(sz, mlp_epochs=sz.big_epochs)
        skip = {*skip, "k-means (raw)"}
    if seed == 0 and "k-means (raw)" not in skip:
        yield "k-means (raw)", KMeans(10, n_init=3, random_state=seed).fit(Xtr), False
    torch.manual_seed(seed)
    enc, dec = mlp_autoencoder(d, hidden=(256, 64), n_latent=10)
    _train_ae(enc, dec, Xtr, sz.mlp_epochs, seed)
    with torch.no_grad():
        codes = enc(torch.from_numpy(Xtr)).numpy()
    km = KMeans(10, n_init=3, random_state=seed).fit(codes)
    yield "AE + k-means (MLP)", (enc, km.cluster_centers_), False
    torch.manual_seed(seed)
    pair = mlp_autoencoder(d, hidden=(256, 64), n_latent=10)
    tell = wc.TELL(10, encoder=pair, pretrain_epochs=sz.mlp_epochs, max_iter=4,
                   random_state=seed)  # fmt: skip
    if "TELL + encoder (MLP)" not in skip:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield "TELL + encoder (MLP)", tell.fit(Xtr), False
    if not (sz.conv and name == "mnist5k") or {"conv AE + k-means", "TELL conv"} <= skip:
        return
    side = round(d**0.5)
    images = Xtr.reshape(-1, 1, side, side)
    if "conv AE + k-means" in skip:
        yield from _tell_conv(images, side, sz, seed)
        return
    torch.manual_seed(seed)
    enc, dec = conv_autoencoder((1, side, side))
    _train_ae(enc, dec, images, sz.conv_epochs, seed)
    with torch.no_grad():
        codes = enc(torch.from_numpy(images)).numpy()
    km = KMeans(10, n_init=3, random_state=seed).fit(codes)
    yield "conv AE + k-means", (enc, km.cluster_centers_), True
    if "TELL conv" not in skip:
        yield from _tell_conv(images, side, sz, seed)


def _tell_conv(images: np.ndarray, side: int, sz: Sizes, seed: int):
    import torch

    import whyclust as wc
    from whyclust.models.autoencoders import conv_autoencoder

    torch.manual_seed(seed)
    pair = conv_autoencoder((1, side, side))
    tell = wc.TELL(10, encoder=pair, pretrain_epochs=sz.conv_epochs, max_iter=2,
                   random_state=seed)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield "TELL conv", tell.fit(images), True


def _cache_path(cfg: Config, name: str, seed: int):
    folder = cfg.cache
    if folder is None:
        return None
    return Path(folder) / f"b-{'quick' if cfg.quick else 'full'}-{name}-{seed}.json"


def _cache_read(cfg: Config, name: str, seed: int):
    path = _cache_path(cfg, name, seed)
    if path is None or not path.is_file():
        return None
    rows = json.loads(path.read_text())
    for _, res in rows:
        res["cons"] = {k: np.asarray(v, dtype=np.float64) for k, v in res["cons"].items()}
    return [tuple(r) for r in rows]


def _cache_write(cfg: Config, name: str, seed: int, rows) -> None:
    path = _cache_path(cfg, name, seed)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = [[label, {**res, "cons": {k: np.asarray(v).tolist() for k, v in res["cons"].items()}}]
             for label, res in rows]  # fmt: skip
    path.write_text(json.dumps(plain))


def _options(opts: dict[str, Any], mean: np.ndarray) -> dict[str, Any]:
    return {k: (mean if isinstance(v, str) and v == "MEAN" else v) for k, v in opts.items()}


def _evaluate(net, Xe: np.ndarray, mean: np.ndarray, sz: Sizes, shape) -> dict[str, Any]:
    """Per-method medians over points for every protocol, conservation and times."""
    import whyclust as wc
    from whyclust.evaluation import deletion_curve, insertion_curve
    from whyclust.networks import EncodedClusterNetwork

    out: dict[str, Any] = {"del": {p: {} for p in PROTOCOLS}, "ins": {}, "flip": {},
                           "time": {}, "cons": {}, "errors": []}  # fmt: skip
    common = {"n_steps": sz.n_steps, "image_shape": shape}
    deep = isinstance(net, EncodedClusterNetwork)
    for label, method, opts, _ in METHODS:
        if not deep and label in DEEP_ONLY:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # every method is warmed up on 2 points first (imports, composites,
                # kernels), so that the time is that of the call itself
                wc.explain(net, Xe[:2], method=method, **_options(opts, mean))
                t0 = time.perf_counter()
                e = wc.explain(net, Xe, method=method, **_options(opts, mean))
                out["time"][label] = time.perf_counter() - t0
                for p in PROTOCOLS:
                    base = mean if p == "mean" else p
                    c = deletion_curve(net, Xe, e.relevance, baseline=base, **common)
                    out["del"][p][label] = float(np.nanmedian(c.auc))
                    if p == "mean":
                        out["flip"][label] = float(np.median(c.flip_fraction))
                ins = insertion_curve(net, Xe, e.relevance, baseline=mean, **common)
                out["ins"][label] = float(np.nanmedian(ins.auc))
            if method == "neon" and "conservation" in e.extras:
                out["cons"][label] = np.asarray(e.extras["conservation"], dtype=np.float64)
        except Exception as exc:  # a cell that cannot run is reported, not fatal
            out["errors"].append(f"{label}: {type(exc).__name__}: {str(exc)[:80]}")
    return out


def _cell(values: list[float]) -> str:
    v = np.asarray([x for x in values if np.isfinite(x)])
    if v.size == 0:
        return "n/a"
    if v.size == 1:
        return f"{v[0]:.3g}"
    return f"{np.median(v):.3g} [{v.min():.3g}, {v.max():.3g}]"


def _median(values: list[float]) -> float:
    v = [x for x in values if np.isfinite(x)]
    return float(np.median(v)) if v else float("nan")


def section_faithfulness(cfg: Config) -> str:
    import whyclust as wc
    from whyclust.metrics import cluster_accuracy

    sz = Sizes.of(cfg)
    labels = [m[0] for m in METHODS]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    quantus_models: dict[str, tuple[Any, np.ndarray, bool]] = {}
    for name in cfg.datasets:
        if available(name):
            continue
        X, y = load(name)
        X = X.astype(np.float32)
        if name == "fashion":
            keep = np.random.default_rng(0).choice(X.shape[0], sz.fashion_points, replace=False)
            X, y = X[np.sort(keep)], y[np.sort(keep)]
        perm = np.random.default_rng(1).permutation(X.shape[0])
        test, train = perm[: sz.eval_points], perm[sz.eval_points :]
        Xtr, Xte, yte = X[train], X[test], y[test]
        mean = Xtr.mean(0)
        side = round(X.shape[1] ** 0.5)
        d = X.shape[1]
        for seed in cfg.seeds if cfg.seeds is not None else range(sz.seeds):
            cached = _cache_read(cfg, name, seed)
            if cached is not None and (seed > 0 or name == "fashion"):
                for label, res in cached:
                    results.setdefault((name, label), []).append(res)
                continue
            done = dict(cached or [])
            fresh = []
            for label, model, images in _models(name, Xtr, sz, seed, skip=set(done)):
                net = wc.neuralize(model)
                Xe = Xte.reshape(-1, 1, side, side) if images else Xte
                if label == "AE + k-means (MLP)" and seed == 0 and name != "fashion":
                    quantus_models[name] = (net, Xe[: sz.quantus_points], images)
                if label in done:
                    continue
                say(f"faithfulness: {name} / {label} / seed {seed}")
                m = mean.reshape(1, side, side) if images else mean
                Xe = Xe[: sz.conv_points] if images else Xe[: sz.big_points] if d > 100 else Xe
                res = _evaluate(net, Xe, m, sz, None if images else (side, side))
                res["acc"] = cluster_accuracy(yte[: len(Xe)], net.predict(Xe))
                res["points"] = len(Xe)
                done[label] = res
                fresh.append(label)
                _cache_write(cfg, name, seed, list(done.items()))
            for label, res in done.items():
                results.setdefault((name, label), []).append(res)
    rows = list(results)
    out = [
        "## b. Faithfulness of the explanations",
        "",
        f"Every model is trained on all but {sz.eval_points} points of its data set and "
        f"evaluated on those held-out points (MNIST-5k and Fashion-MNIST rows: the first "
        f"{sz.big_points}, conv rows: the first {sz.conv_points}, for time on shared cores); "
        f"deep rows over {sz.seeds} model seeds "
        "(k-means raw: 1 seed). Cells: median over seeds of the per-seed median over points "
        "[min, max over seeds]. Fashion-MNIST: a random subset of "
        f"{sz.fashion_points:,} images. Small models (CPU, shared cores): MLP autoencoder "
        f"d-256-64-10 trained {sz.mlp_epochs} epochs on digits, {sz.big_epochs} on the 784-pixel "
        "sets (Adam, MSE); TELL with that autoencoder (as many pretraining epochs, 4 "
        "clustering epochs); no k-means (raw) row on the 784-pixel sets; conv rows: the library's "
        f"conv autoencoder, {sz.conv_epochs} epochs (TELL conv: {sz.conv_epochs} + 2). "
        "Deletion / insertion: whyclust.evaluation, "
        f"{sz.n_steps} steps, area of f_c / f_c(x), lower deletion and higher insertion are "
        "better. Each method's reference:",
        "",
        table(["method", "reference"], [[m[0], m[3]] for m in METHODS]),
        "",
    ]
    headers = ["dataset", "model", "ACC (held-out)", *labels]
    for proto, title in (
        ("mean", "Deletion AUC, mean replacement (training mean)"),
        ("blur", "Deletion AUC, blur replacement (Gaussian, sigma 2 px)"),
        ("zero", "Deletion AUC, zero replacement"),
    ):
        body = []
        for key in rows:
            rs = results[key]
            cells = [_cell([r["del"][proto].get(m, np.nan) for r in rs]) for m in labels]
            acc = _cell([r["acc"] for r in rs])
            body.append([LABELS.get(key[0], key[0]), key[1], acc, *cells])
        out += [f"### {title}", "", table(headers, body), ""]
    body = [[LABELS.get(k[0], k[0]), k[1], "",
             *(_cell([r["ins"].get(m, np.nan) for r in results[k]]) for m in labels)]
            for k in rows]  # fmt: skip
    out += ["### Insertion AUC, mean replacement (higher is better)", "", table(headers, body), ""]
    body = [[LABELS.get(k[0], k[0]), k[1], "",
             *(_cell([r["flip"].get(m, np.nan) for r in results[k]]) for m in labels)]
            for k in rows]  # fmt: skip
    flip_title = "Fraction of features removed until the assignment flips"
    out += [
        f"### {flip_title} (mean replacement, lower is better)",
        "",
        "Per point, the first deletion step at which the point leaves its cluster (inf where it "
        "never does: points of the cluster the training mean belongs to); median over points.",
        "",
        table(headers, body),
        "",
    ]
    out += _conservation_and_time(results, rows, cfg)
    out += _targets(results, rows, cfg)
    errors = sorted({e for k in rows for r in results[k] for e in r["errors"]})
    if errors:
        out += ["Cells that failed: " + "; ".join(errors), ""]
    if cfg.partial:  # a run that only fills the cache
        return "\n".join(out)
    out += [_quantus_table(quantus_models), "", _ground_truth(cfg), ""]
    return "\n".join(out)


def _conservation_and_time(results, rows, cfg: Config) -> list[str]:
    body = []
    for key in rows:
        rs = results[key]
        cells = []
        for label in ("NEON", "NEON zero-bias", "NEON-B(mean)"):
            cons = [r["cons"][label] for r in rs if label in r["cons"]]
            if not cons:
                cells.append("n/a")
                continue
            c = np.concatenate(cons)
            c = c[np.isfinite(c)]
            q10, q50, q90 = np.percentile(c, [10, 50, 90])
            cells.append(f"{q50:.3f} [{q10:.3f}, {q90:.3f}]")
        t = {m: _median([r["time"].get(m, np.nan) for r in rs]) for m in
             ("NEON", "NEON-B(mean)", "gradient", "occl(mean)")}  # fmt: skip
        body.append([LABELS.get(key[0], key[0]), key[1], *cells, t["NEON"], t["NEON-B(mean)"],
                     t["gradient"], t["NEON"] / t["gradient"], t["occl(mean)"]])  # fmt: skip
    return [
        "### Conservation through the encoder and cost",
        "",
        "sum(R) / f_c per held-out point, pooled over seeds: median [10%, 90%]. NEON-B: "
        "sum(R) / (f_c - part explained by the reference). 1 - NEON's median is the share "
        "absorbed by biases (merged BatchNorm included). Times: seconds for all held-out "
        "points of one model (median over seeds), `wc.explain` end to end, each method "
        "warmed up on 2 points first.",
        "",
        table(["dataset", "model", "NEON", "NEON zero-bias", "NEON-B(mean)", "NEON (s)",
               "NEON-B (s)", "gradient (s)", "NEON / gradient", "occl(mean) (s)"], body),
        "",
    ]  # fmt: skip


def _targets(results, rows, cfg: Config) -> list[str]:
    body = []

    def add(key, what, measured, ok):
        body.append([LABELS.get(key[0], key[0]), key[1], what, measured, mark(ok)])
        cfg.targets.append(("b", key[0], key[1], what, measured, ok))

    for key in rows:
        if key[1] == "k-means (raw)":
            continue
        rs = results[key]
        conv = "conv" in key[1]
        med = {p: {m: _median([r["del"][p].get(m, np.nan) for r in rs]) for m in
                   (*MUST_BEAT, *MEAN_REFERENCED, "NEON", "NEON-B(mean)", "NEON zero-bias")}
               for p in PROTOCOLS}  # fmt: skip
        for p in ("mean",) if conv else ("mean", "blur"):
            neon = med[p]["NEON"]
            others = ", ".join(f"{m} {med[p][m]:.3g}" for m in MUST_BEAT)
            ok = all(neon < med[p][m] for m in MUST_BEAT)
            add(key, f"{p} deletion: NEON < gradient, GxI, IG(0), occl(0)",
                f"NEON {neon:.3g}; {others}", ok)  # fmt: skip
        best = min(med["mean"][m] for m in MEAN_REFERENCED)
        ratio = med["mean"]["NEON-B(mean)"] / best if best < 0 else float("nan")
        add(key, "mean deletion: NEON-B >= 70% of best mean-referenced baseline",
            f"{ratio:.2f} (NEON-B {med['mean']['NEON-B(mean)']:.3g}, best {best:.3g})",
            bool(ratio >= 0.7))  # fmt: skip
        label = "NEON zero-bias" if conv else "NEON"
        cons = [r["cons"][label] for r in rs if label in r["cons"]]
        if cons:
            c = np.concatenate(cons)
            c = c[np.isfinite(c)]
            q10, q50, q90 = np.percentile(c, [10, 50, 90])
            ok = 0.98 <= q50 <= 1.02 and q10 >= 0.9 and q90 <= 1.1
            add(key, f"conservation ({label}): median in [0.98, 1.02], 10-90% in [0.9, 1.1]",
                f"{q50:.3f} [{q10:.3f}, {q90:.3f}]", ok)  # fmt: skip
        ratio_t = _median([r["time"]["NEON"] / r["time"]["gradient"] for r in rs
                           if "NEON" in r["time"] and "gradient" in r["time"]])  # fmt: skip
        add(key, "NEON time <= 2x gradient", f"{ratio_t:.2f}x", bool(ratio_t <= 2.0))
    return ["### Targets of section b", "", table(["dataset", "model", "target", "measured",
            "status"], body), ""]  # fmt: skip


def _quantus_table(models: dict[str, tuple[Any, np.ndarray, bool]]) -> str:
    try:
        from whyclust.evaluation.quantus_metrics import center_randomisation, quantus_scores
    except ImportError as exc:  # pragma: no cover
        return f"### Quantus\n\nSkipped: {exc}"
    picks = [m for m in METHODS if m[0] in
             ("NEON", "NEON-B(mean)", "gradient", "GxI", "IG(0)", "occl(0)", "random")]  # fmt: skip
    body = []
    for name, (net, Xq, _) in models.items():
        say(f"quantus: {name}")
        mean = Xq.mean(0)
        opts = {m[0]: _options(m[2], mean) for m in picks}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frame = None
                rows = []
                for label, method, _, _ in picks:
                    f = quantus_scores(net, Xq, [method], method_options={method: opts[label]})
                    rho = center_randomisation(net, Xq, method, **opts[label])
                    rows.append((label, f.iloc[0].to_dict(), float(np.nanmedian(np.abs(rho)))))
                    frame = f
        except Exception as exc:
            body.append([LABELS.get(name, name), f"failed: {type(exc).__name__}: {exc}"])
            continue
        cols = list(frame.columns) if frame is not None else []
        for label, scores, rho in rows:
            body.append([LABELS.get(name, name), label, *(scores[c] for c in cols), rho])
    cols = ["FaithfulnessCorrelation", "MonotonicityCorrelation", "PixelFlipping",
            "MaxSensitivity"]  # fmt: skip
    return "\n".join([
        "### Quantus metrics and the randomisation check (AE + k-means, seed 0)",
        "",
        "Quantus 0.6 on the first held-out points, the cluster network as a K-logit "
        "classifier (softmax off), label = assigned cluster; Quantus's own 'black' baseline "
        "(each point's minimum, 0 here). Faithfulness / monotonicity correlation: higher is "
        "better; PixelFlipping: mean of f_c / f_c(x) over the flipping steps, lower is "
        "better; MaxSensitivity: lower is more robust (random relevance is seeded, so 0). "
        "Randomisation: median over points of |Spearman correlation| of a point's relevance "
        "before and after drawing new random centers (near 0 passes: the explanation "
        "depends on the model; random relevance is seeded, so 1). Medians over points.",
        "",
        table(["dataset", "method", *cols, "randomised centers: |Spearman|"], body),
    ])  # fmt: skip


def _ground_truth(cfg: Config) -> str:
    """Share of positive relevance on the informative features of synthetic blobs."""
    from sklearn.cluster import KMeans

    import whyclust as wc
    from whyclust.evaluation import relevance_on_informative

    n, k, d, informative_k = (150, 3, 20, 4) if cfg.quick else (600, 4, 20, 4)
    methods = ["neon", "gradient", "gradient_x_input", "integrated_gradients", "occlusion",
               "random"]  # fmt: skip
    rows = []
    for noise_mean in (0.0, 100.0):
        X, _, mask = wc.datasets.make_blobs_with_relevant_features(
            n, k, d, informative_k, noise_mean=noise_mean, random_state=0
        )
        model = KMeans(k, n_init=3, random_state=0).fit(X)
        row: list[Any] = [f"{noise_mean:g}"]
        for m in methods:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row.append(relevance_on_informative(wc.explain(model, X, method=m), mask))
        rows.append(row)
    return "\n".join([
        "### Ground truth: share of positive relevance on the informative features",
        "",
        f"k-means (K={k}) on make_blobs_with_relevant_features: {n} points, {d} features of "
        f"which {informative_k} separate the clusters (ideal share 1, random order "
        f"{informative_k / d:g}); the other features are noise with the given mean. Methods "
        "that are not translation invariant (gradient x input, integrated gradients and "
        "occlusion from 0) fail when the noise mean is large.",
        "",
        table(["noise mean", *methods], rows),
    ])  # fmt: skip
