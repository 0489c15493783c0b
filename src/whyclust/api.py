"""The public entry points: ``wc.explain``, ``wc.neuralize`` and ``wc.counterfactual``.

``explain`` finds the cheapest exact path for its input: models with an array-API engine
(k-means-type models on numpy or pandas input) are explained without building a torch
network, dask arrays go to :mod:`whyclust.scale`, everything else is neuralized and handed
to the method table of :mod:`whyclust.explainers`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from whyclust._features import check_feature_names
from whyclust._validation import SAMPLE_NDIM, as_float_array, frame_labels, unknown_option
from whyclust.explainers import run_method
from whyclust.explainers.explanation import Explanation

__all__ = ["counterfactual", "explain", "neuralize"]


def explain(
    model: Any,
    X: Any,
    method: str = "neon",
    *,
    target: Any = "assigned",
    contrast: Any = None,
    reference: Any = "midpoint",
    beta: float | str = "auto",
    batch_size: int | None = None,
    device: Any = None,
    **options: Any,
) -> Explanation:
    """Explain why each point of ``X`` belongs to its cluster.

    Parameters
    ----------
    model : fitted clusterer or ClusterNetwork
        A scikit-learn ``KMeans`` / ``MiniBatchKMeans`` / ``MeanShift`` (or anything with
        ``cluster_centers_``), ``BisectingKMeans``, ``GaussianMixture``, a ``Pipeline`` of
        supported preprocessing steps ending in one of these, a (K, d) array of
        centroids, :class:`whyclust.TELL`, :class:`whyclust.KernelKMeans`, an
        ``(encoder, centers)`` pair, or a network returned by :func:`neuralize`.
    X : array-like of shape (n, d) or (n, C, H, W), DataFrame or dask array
        Points to explain. float64 input is computed in float64, anything else in float32.
        A dask array gives a lazy explanation (:func:`whyclust.scale.explain_dask`).
    method : str, default="neon"
        ``"neon"`` (exact LRP of the neuralized model) or a baseline explainer:
        ``"gradient"``, ``"gradient_x_input"``, ``"integrated_gradients"``,
        ``"occlusion"``, ``"shap"``, or ``"random"`` (a ranking without information, for
        evaluation); see :func:`whyclust.explainers.available_methods`.
    target : "assigned", int or array of shape (n,), default="assigned"
        The cluster whose logit is explained. A non-assigned target answers "why not this
        cluster?"; its logit is negative.
    contrast : int or array of shape (n,), optional
        NEON only: explain the margin h_ck of ``target`` over this one competitor ("why c
        and not k"), ``(x - r_ck) * w_ck``, summing to h_ck.
    reference : "midpoint", "mean" or array, default="midpoint"
        NEON only: the root each linear margin is explained against. ``"midpoint"`` is
        the point halfway between the two centroids; ``"mean"`` the mean of the data the
        model was fitted on (when the model knows it, else of ``X``); an array of shape
        (d,) or (n, d) any baseline. A baseline is used for a margin where the margin
        changes sign between it and x, the midpoint elsewhere; ``extras`` records which.
    beta : "auto" or float >= 0, default="auto"
        Stiffness of NEON's min-take-most rule: 0 spreads relevance evenly over the
        competitors, ``inf`` gives it all to the nearest one, ``"auto"`` uses 1 / mean of
        the assigned-cluster logits over ``X``.
    batch_size : int, optional
        Rows per batch; bounds the working memory. Results do not depend on it.
    device : str or torch.device, optional
        Where to compute, e.g. ``"cuda"``; default: where the model lives (numpy: CPU).
    **options
        Method-specific options. NEON through an encoder: ``composite`` (zennit composite
        name or instance), ``bounds`` (input range for the first layer's rule),
        ``epsilon``, ``first_rule``, ``gamma``, ``head_gamma``, ``zero_bias``. NEON:
        ``eps`` (relative stabiliser of 1 / h); for k-means, ``out`` (a float array of X's
        shape) receives the relevance, so that repeated calls reuse one buffer. NEON of a
        Pipeline: ``space="model"`` adds the relevance in the clusterer's own input space
        to ``extras``. Baselines: see
        :mod:`whyclust.explainers.baselines`. An option the model's method does not take
        is a ``TypeError`` naming it.

    Returns
    -------
    Explanation
        ``relevance`` (same shape as ``X``), ``logit``, ``cluster``, ``target``, ``beta``.
    """
    names, index, columns = frame_labels(X)
    check_feature_names(model, X)
    if type(X).__module__.startswith("dask."):
        from whyclust.scale import explain_dask

        with _options_named(model, method, options):
            return explain_dask(
                model, X, method=method, target=target, beta=beta, batch_size=batch_size,
                **_neon_options(method, contrast, reference), device=device, **options,
            )  # fmt: skip
    neon = {"target": target, "beta": beta, "batch_size": batch_size, "device": device}
    neon.update(_neon_options(method, contrast, reference))
    with _options_named(model, method, options):
        if method == "neon":
            direct = _array_engine(model)
            if direct is not None:
                return _named(direct(X, **neon, **options), names, index, columns)
        net = neuralize(model)
        X = as_float_array(
            X, ndim=SAMPLE_NDIM, n_features=getattr(net, "n_features", None), allow_nan=False
        )
        return _named(run_method(net, X, method, **neon, **options), names, index, columns)


@contextlib.contextmanager
def _options_named(model: Any, method: str, options: dict[str, Any]):
    """An option of the caller's that the model's explain function does not take is named
    as the caller's, not as a keyword of an internal function."""
    try:
        yield
    except TypeError as exc:
        raise unknown_option(exc, model, method, options) from None


def _array_engine(model: Any) -> Any:
    """``fn(X, **options) -> Explanation`` for models NEON explains without torch, or None."""
    from whyclust.explainers.dispatch import engine_for, model_reference_mean
    from whyclust.explainers.kmeans import explain_kmeans, kmeans_centers

    family = engine_for(model)  # Pipelines, mixtures, bisecting k-means, ...
    if family is not None:
        return lambda X, **kw: family(model, X, **kw)

    centers = kmeans_centers(model)
    if centers is not None:
        mean = model_reference_mean(model)
        return lambda X, **kw: explain_kmeans(centers, _checked(X), model_mean=mean, **kw)
    from whyclust.explainers.kernel import explain_kernel, kernel_parts

    parts = kernel_parts(model)
    if parts is not None:
        # the kernel's exp meets inf before any score could flag it: check X first (its
        # O(n d) scan is small beside the O(n m d) kernel)
        return lambda X, **kw: explain_kernel(
            *parts, as_float_array(X, ndim=SAMPLE_NDIM, allow_nan=False), **kw
        )
    return None


def _checked(X: Any) -> Any:
    # NaN / inf surface in the scores pass with their row, at O(n K) instead of O(n d)
    return as_float_array(X, ndim=SAMPLE_NDIM, allow_nan=True)


def _neon_options(method: str, contrast: Any, reference: Any) -> dict[str, Any]:
    """NEON's own options, passed on only when set (baselines do not take them)."""
    out: dict[str, Any] = {}
    if contrast is not None:
        out["contrast"] = contrast
    if not (isinstance(reference, str) and reference == "midpoint"):
        out["reference"] = reference
    return out


def _named(expl: Explanation, names: list[str] | None, index: Any, columns: Any) -> Explanation:
    if names is not None and expl.feature_names is None:
        expl.feature_names = names
    expl.index, expl.columns = index, columns
    return expl


def neuralize(model: Any, *, device: Any = None, **kwargs: Any) -> Any:
    """Rewrite a fitted clusterer as an exact torch network of cluster logits.

    Parameters
    ----------
    model : object
        Any model :func:`explain` takes: a fitted ``KMeans`` / ``MiniBatchKMeans`` /
        ``MeanShift`` (or any estimator with ``cluster_centers_``), ``BisectingKMeans``,
        ``GaussianMixture``, a ``Pipeline`` ending in one of these, a (K, d) array of
        centroids, a ``whyclust.TELL``, a ``whyclust.KernelKMeans``, an
        ``(encoder, centers)`` pair, or a network already.
    device : str or torch.device, optional
        Move the network there (e.g. ``"cuda"``); a network passed in is moved in place.
    **kwargs
        Passed to the model's converter, e.g. ``input_shape=(1, 28, 28)`` for an
        ``(encoder, centers)`` pair with a convolutional encoder.

    Returns
    -------
    ClusterNetwork
        ``net(x)`` is the (n, K) tensor of logits f_k(x); its argmax is the assignment.
    """
    from whyclust.networks import neuralize as _neuralize

    return _neuralize(model, device=device, **kwargs)


def counterfactual(model: Any, X: Any, target: Any, **options: Any) -> Any:
    """Smallest L2 change that moves each point of ``X`` into the ``target`` cluster.

    See :func:`whyclust.explainers.counterfactual.counterfactual` for the options.
    """
    from whyclust.explainers.counterfactual import counterfactual as _counterfactual

    check_feature_names(model, X)
    return _counterfactual(model, X, target, **options)
