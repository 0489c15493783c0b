"""Baseline explainers of the target logit f_c(x) = net(x)[:, c], for every ClusterNetwork.

They serve k-means, TELL, kernel k-means and deep models alike and return the same
:class:`~whyclust.explainers.Explanation` as NEON, so that faithfulness benchmarks compare like
with like. The attributions come from captum (gradient, gradient x input, integrated
gradients, occlusion) and shap (kernel or permutation explainer); nothing is re-implemented.

Options (passed through ``wc.explain(..., method=..., **options)``):

- ``baseline`` (``"gradient_x_input"``, ``"integrated_gradients"``, ``"occlusion"``): the
  reference point, ``0`` / ``"zero"`` (default), ``"mean"`` (the mean of the explained X),
  a scalar or an array broadcastable to one point. ``"gradient_x_input"`` with a baseline
  b is gradient x (x - b). ``extras["reference"]`` names it in the Explanation.
- ``"integrated_gradients"``: ``n_steps`` (default 32).
- ``"occlusion"``: ``window`` (sliding window shape of one point, default all ones:
  one feature at a time), ``stride`` (default 1), ``perturbations_per_eval`` (occluded
  copies per forward pass, default 16; only speed and memory depend on it).
- ``"random"``: uniform random relevance (a ranking with no information), seeded by
  ``random_state`` (default 0).
- ``"shap"``: ``algorithm`` ("kernel" or "permutation"), ``background`` (array of points
  or an int: that many rows of X drawn at random, default 50), ``nsamples`` (kernel: model
  evaluations per point, default "auto"; permutation: ``max_evals``, default
  10 (2 d + 1)), ``random_state``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from whyclust.explainers.explanation import Explanation
from whyclust.explainers.neon import batched_logits, resolve_targets, row_batches, to_tensor
from whyclust.networks.base import ClusterNetwork, evaluating

__all__ = ["BASELINE_METHODS"]

_ROWS = 256


def _compute_dtype(net: ClusterNetwork, X: np.ndarray) -> torch.dtype:
    param = next(iter(net.parameters()), None)
    if param is not None:
        return param.dtype
    return net.dtype


def _prepare(net: ClusterNetwork, X: np.ndarray, target: Any, device: Any):
    dev = torch.device(device) if device is not None else net.device
    dtype = _compute_dtype(net, X)
    net = evaluating(net, dev)
    logits = batched_logits(net, X, 4 * _ROWS, dev, dtype)
    assigned = logits.argmax(1)
    tgt = resolve_targets(target, assigned, net.n_clusters)
    logit = logits.gather(1, tgt[:, None])[:, 0]
    return net, dev, dtype, assigned, tgt, logit


def _reject_neon_options(name: str, contrast: Any, beta: Any) -> None:
    if contrast is not None:
        raise ValueError(f"contrast= is a NEON option; method {name!r} explains one logit")
    del beta  # the stiffness of NEON's min-take-most rule has no meaning here


def _captum_method(name: str, build: Callable[..., Any]):
    def method(
        net: ClusterNetwork,
        X: np.ndarray,
        *,
        target: Any = "assigned",
        beta: Any = None,
        contrast: Any = None,
        batch_size: int | None = None,
        device: Any = None,
        **options: Any,
    ) -> Explanation:
        _reject_neon_options(name, contrast, beta)
        try:
            import captum.attr  # noqa: F401
        except ImportError as exc:  # pragma: no cover - captum is in the "explain" extra
            raise ImportError(
                f"method {name!r} needs captum: pip install 'whyclust[explain]'"
            ) from exc
        net, dev, dtype, assigned, tgt, logit = _prepare(net, X, target, device)
        bs = _ROWS if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        reference = options.get("baseline")
        options = _resolve_baseline(options, X)
        attribute = build(net, X.shape[1:], dtype, dev, **options)
        out = np.empty(X.shape, dtype=X.dtype)
        for rows in row_batches(X.shape[0], bs):
            x = to_tensor(X[rows], dev, dtype).requires_grad_(True)
            attr = attribute(x, tgt[rows].to(dev))
            out[rows] = attr.detach().cpu().numpy()
        return Explanation(
            relevance=out,
            logit=logit.numpy().astype(X.dtype),
            cluster=assigned.numpy(),
            target=tgt.numpy(),
            method=name,
            extras={"reference": _reference_name(name, reference)},
        )

    method.__name__ = f"explain_{name}"
    method.__doc__ = f"Captum {name} attribution of the target logit f_c(x)."
    return method


def _no_options(name: str, options: dict[str, Any]) -> None:
    if options:
        raise TypeError(f"unknown option(s) for method {name!r}: {', '.join(sorted(options))}")


def _build_gradient(net, shape, dtype, dev, **options):
    from captum.attr import Saliency

    _no_options("gradient", options)
    saliency = Saliency(net)
    return lambda x, t: saliency.attribute(x, target=t, abs=False)


def _build_gradient_x_input(net, shape, dtype, dev, *, baseline=None, **options):
    from captum.attr import InputXGradient, Saliency

    _no_options("gradient_x_input", options)
    if baseline is None or (np.isscalar(baseline) and float(baseline) == 0.0):
        ixg = InputXGradient(net)
        return lambda x, t: ixg.attribute(x, target=t)
    saliency = Saliency(net)
    base = _baseline_tensor(baseline, shape, dtype, dev)
    return lambda x, t: saliency.attribute(x, target=t, abs=False) * (x.detach() - base)


def _resolve_baseline(options: dict[str, Any], X: np.ndarray) -> dict[str, Any]:
    """``baseline="mean"`` / ``"zero"`` as arrays / None; anything else unchanged."""
    base = options.get("baseline")
    if isinstance(base, str):
        if base == "mean":
            options = {**options, "baseline": X.mean(0, dtype=np.float64)}
        elif base == "zero":
            options = {**options, "baseline": None}
        else:
            raise ValueError(f"baseline must be 'zero', 'mean', a number or an array, got {base!r}")
    return options


def _reference_name(method: str, baseline: Any) -> str:
    if method == "gradient":
        return "none"
    if baseline is None:
        return "zero"
    if isinstance(baseline, str):
        return baseline
    if np.isscalar(baseline):
        return "zero" if float(baseline) == 0.0 else f"constant {float(baseline):g}"
    return "array"


def _baseline_tensor(baseline: Any, shape, dtype, dev) -> torch.Tensor | float:
    if baseline is None:
        return 0.0
    if np.isscalar(baseline):
        value = float(baseline)
        if not np.isfinite(value):
            raise ValueError("baseline must be finite")
        return value
    arr = np.asarray(baseline, dtype=np.float64)
    try:
        arr = np.broadcast_to(arr, tuple(shape))
    except ValueError:
        raise ValueError(
            f"baseline of shape {arr.shape} does not broadcast to one point of shape {tuple(shape)}"
        ) from None
    if not np.isfinite(arr).all():
        raise ValueError("baseline must be finite")
    return torch.tensor(np.array(arr), dtype=dtype, device=dev)[None]


def _build_integrated_gradients(net, shape, dtype, dev, *, baseline=None, n_steps=32, **options):
    from captum.attr import IntegratedGradients

    _no_options("integrated_gradients", options)
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 2:
        raise ValueError(f"n_steps must be an integer >= 2, got {n_steps!r}")
    ig = IntegratedGradients(net)
    base = _baseline_tensor(baseline, shape, dtype, dev)

    def attribute(x, t):
        b = base.expand_as(x) if isinstance(base, torch.Tensor) else base
        return ig.attribute(x, baselines=b, target=t, n_steps=int(n_steps))

    return attribute


def _build_occlusion(
    net, shape, dtype, dev, *, window=None, stride=1, baseline=None, perturbations_per_eval=16,
    **options,
):
    from captum.attr import Occlusion

    _no_options("occlusion", options)
    shape = tuple(shape)
    # Python ints: captum takes a tuple of numpy integers for one shape per input
    win = (1,) * len(shape) if window is None else tuple(map(int, np.atleast_1d(window)))
    if len(win) == 1 and len(shape) == 3:  # (k,) on images: k x k patches over all channels
        win = (shape[0], int(win[0]), int(win[0]))
    if len(win) != len(shape) or any(w < 1 or w > s for w, s in zip(win, shape, strict=True)):
        raise ValueError(f"window {win} does not fit one point of shape {shape}")
    strides = stride
    if isinstance(stride, (int, np.integer)) and len(shape) == 3 and window is not None:
        strides = (shape[0], int(stride), int(stride))
    occ = Occlusion(net)
    base = _baseline_tensor(baseline, shape, dtype, dev)

    def attribute(x, t):
        b = base.expand_as(x) if isinstance(base, torch.Tensor) else base
        with torch.no_grad():
            return occ.attribute(
                x.detach(),
                sliding_window_shapes=win,
                strides=strides,
                baselines=b,
                target=t,
                perturbations_per_eval=int(perturbations_per_eval),
            )

    return attribute


def _explain_shap(
    net: ClusterNetwork,
    X: np.ndarray,
    *,
    target: Any = "assigned",
    beta: Any = None,
    contrast: Any = None,
    batch_size: int | None = None,
    device: Any = None,
    algorithm: str = "kernel",
    background: Any = 50,
    nsamples: Any = "auto",
    random_state: Any = 0,
) -> Explanation:
    """SHAP values of the target logit f_c(x), one explainer per target cluster."""
    _reject_neon_options("shap", contrast, beta)
    try:
        with warnings.catch_warnings():  # shap's import trips matplotlib's deprecations
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            import shap
    except ImportError as exc:
        raise ImportError(
            "method 'shap' needs the optional shap package: pip install 'whyclust[shap]'"
        ) from exc
    if algorithm not in ("kernel", "permutation"):
        raise ValueError(f"algorithm must be 'kernel' or 'permutation', got {algorithm!r}")
    net, dev, dtype, assigned, tgt, logit = _prepare(net, X, target, device)
    n = X.shape[0]
    flat = X.reshape(n, -1)
    bg = _background(background, flat, random_state)
    bs = 4 * _ROWS if batch_size is None else int(batch_size)

    def logit_fn(c: int) -> Callable[[np.ndarray], np.ndarray]:
        def f(z: np.ndarray) -> np.ndarray:
            z = np.asarray(z).reshape((-1, *X.shape[1:]))
            out = np.empty(z.shape[0], dtype=np.float64)
            with torch.no_grad():
                for rows in row_batches(z.shape[0], bs):
                    out[rows] = net(to_tensor(z[rows], dev, dtype))[:, c].double().cpu().numpy()
            return out

        return f

    out = np.empty(flat.shape, dtype=X.dtype)
    tgt_np = tgt.numpy()
    for c in np.unique(tgt_np):
        rows = np.flatnonzero(tgt_np == c)
        if algorithm == "kernel":
            explainer = shap.KernelExplainer(logit_fn(int(c)), bg)
            with _global_seed(random_state):  # KernelExplainer draws from np.random
                values = explainer.shap_values(flat[rows], nsamples=nsamples, silent=True)
        else:
            masker = shap.maskers.Independent(bg, max_samples=bg.shape[0])
            explainer = shap.explainers.Permutation(logit_fn(int(c)), masker, seed=random_state)
            # shap's own "auto" budget is slow; 10 antithetic permutations by default
            d = flat.shape[1]
            evals = 10 * (2 * d + 1) if nsamples == "auto" else int(nsamples)
            values = explainer(flat[rows], max_evals=evals, silent=True).values
        out[rows] = np.asarray(values).reshape(len(rows), -1)
    return Explanation(
        relevance=out.reshape(X.shape),
        logit=logit.numpy().astype(X.dtype),
        cluster=assigned.numpy(),
        target=tgt_np,
        method="shap",
        extras={
            "algorithm": algorithm,
            "n_background": int(bg.shape[0]),
            "reference": "background sample",
        },
    )


def _background(background: Any, flat: np.ndarray, random_state: Any) -> np.ndarray:
    if isinstance(background, (int, np.integer)) and not isinstance(background, bool):
        if background < 1:
            raise ValueError(f"background must be >= 1 rows, got {background}")
        rng = np.random.default_rng(random_state)
        take = min(int(background), flat.shape[0])
        return flat[np.sort(rng.choice(flat.shape[0], take, replace=False))]
    bg = np.asarray(background, dtype=flat.dtype)
    bg = bg.reshape(bg.shape[0], -1) if bg.ndim > 1 else bg.reshape(1, -1)
    if bg.shape[1] != flat.shape[1]:
        raise ValueError(f"background has {bg.shape[1]} features, X has {flat.shape[1]}")
    if not np.isfinite(bg).all():
        raise ValueError("background contains NaN or infinite values")
    return bg


def _explain_random(
    net: ClusterNetwork,
    X: np.ndarray,
    *,
    target: Any = "assigned",
    beta: Any = None,
    contrast: Any = None,
    batch_size: int | None = None,
    device: Any = None,
    random_state: Any = 0,
) -> Explanation:
    """Uniform random relevance in [0, 1): the no-information ranking of faithfulness tables."""
    _reject_neon_options("random", contrast, beta)
    _, _, _, assigned, tgt, logit = _prepare(net, X, target, device)
    rel = np.random.default_rng(random_state).random(X.shape).astype(X.dtype)
    return Explanation(
        relevance=rel,
        logit=logit.numpy().astype(X.dtype),
        cluster=assigned.numpy(),
        target=tgt.numpy(),
        method="random",
        extras={"reference": "none"},
    )


BASELINE_METHODS = {
    "gradient": _captum_method("gradient", _build_gradient),
    "gradient_x_input": _captum_method("gradient_x_input", _build_gradient_x_input),
    "integrated_gradients": _captum_method("integrated_gradients", _build_integrated_gradients),
    "occlusion": _captum_method("occlusion", _build_occlusion),
    "shap": _explain_shap,
    "random": _explain_random,
}


@contextlib.contextmanager
def _global_seed(random_state: Any) -> Iterator[None]:
    """numpy's global generator seeded from ``random_state`` (None: left alone), and its
    state restored afterwards."""
    if random_state is None:
        yield
        return
    seed = np.random.default_rng(random_state).integers(2**32)
    state = np.random.get_state()  # noqa: NPY002 (shap draws from the legacy generator)
    np.random.seed(int(seed))  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002
