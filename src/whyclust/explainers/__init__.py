"""Explain cluster assignments: ``wc.explain(model, X, method=...)``.

Each method is a function ``fn(net, X, **options) -> Explanation`` registered for a network
type with :func:`register_method`; lookup follows the network's class hierarchy, so a
method registered for :class:`~whyclust.networks.ClusterNetwork` serves every model.

Importing this package does not import torch: the methods live in submodules that are
loaded on first use, so that :class:`Explanation` and the torch-free streaming path of
:mod:`whyclust.scale` stay light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from whyclust._validation import as_float_array, feature_names_of
from whyclust.explainers.explanation import Explanation

if TYPE_CHECKING:
    from whyclust.networks import ClusterNetwork

__all__ = ["Explanation", "available_methods", "explain", "register_method"]

_Method = Callable[..., Explanation]
_METHODS: dict[str, dict[type, _Method]] = {}


def register_method(name: str, network_type: type | None = None):
    """Register ``fn(net, X, **options) -> Explanation`` as ``method=name`` for a net type.

    ``network_type`` defaults to :class:`~whyclust.networks.ClusterNetwork` (every model).
    """

    def decorator(fn: _Method) -> _Method:
        key = network_type
        if key is None:
            from whyclust.networks import ClusterNetwork

            key = ClusterNetwork
        _METHODS.setdefault(name, {})[key] = fn
        return fn

    return decorator


def available_methods() -> list[str]:
    _load_method_modules()
    return sorted(_METHODS)


def explain(
    model: Any,
    X: Any,
    method: str = "neon",
    *,
    target: Any = "assigned",
    beta: float | str = "auto",
    batch_size: int | None = None,
    **options: Any,
) -> Explanation:
    """Explain why each point of ``X`` belongs to its cluster.

    Parameters
    ----------
    model : fitted clusterer or ClusterNetwork
        Anything :func:`whyclust.networks` accepts, or a network it returned.
    X : array-like of shape (n, d) or (n, C, H, W)
        Points to explain. float64 input is computed in float64, anything else in float32.
    method : str, default="neon"
        ``"neon"`` (exact LRP of the neuralized model) or a baseline explainer (see
        :func:`available_methods`).
    target : "assigned", int or array of shape (n,), default="assigned"
        The cluster whose logit is explained. A non-assigned target answers "why not this
        cluster?"; its logit is negative.
    beta : "auto" or float >= 0, default="auto"
        Stiffness of NEON's min-take-most rule: 0 spreads relevance evenly over the
        competitors, ``inf`` gives it all to the nearest one, ``"auto"`` uses 1 / mean of
        the assigned-cluster logits over ``X``.
    batch_size : int, optional
        Rows per batch; bounds the working memory. Results do not depend on it.
    **options
        Method-specific options. NEON: ``contrast`` (int or (n,) array) returns the
        contrastive map "why target and not contrast", ``(x - m_ck) * w_ck``, summing to the
        margin h_ck; ``eps`` (relative stabiliser); ``device``.

    Returns
    -------
    Explanation
    """
    from whyclust.explainers.dispatch import engine_for  # (mix branch hook, torch-free)

    engine = engine_for(model) if method == "neon" else None
    if engine is not None:
        return engine(model, X, target=target, beta=beta, batch_size=batch_size, **options)
    from whyclust.networks import neuralize

    net = neuralize(model)
    n_features = getattr(net, "n_features", None)
    names = feature_names_of(X)
    if _is_dask_array(X):
        from whyclust.scale import explain_dask  # optional extra

        return explain_dask(net, X, method=method, target=target, beta=beta, **options)
    fn = _lookup(method, net)
    # methods that detect NaN / inf themselves at lower cost skip the full scan here
    X = as_float_array(
        X, ndim=(2, 3, 4), n_features=n_features, allow_nan=getattr(fn, "checks_finite", False)
    )
    expl = fn(net, X, target=target, beta=beta, batch_size=batch_size, **options)
    if names is not None and expl.feature_names is None:
        expl.feature_names = names
    return expl


def _lookup(method: str, net: ClusterNetwork) -> _Method:
    _load_method_modules()
    table = _METHODS.get(method)
    if table is None:
        raise ValueError(f"unknown method {method!r}; available: {', '.join(sorted(_METHODS))}")
    for klass in type(net).__mro__:
        if klass in table:
            return table[klass]
    raise TypeError(f"method {method!r} does not support {type(net).__name__}")


def _load_method_modules() -> None:
    """Import optional method modules so that they register themselves."""
    import importlib

    importlib.import_module("whyclust.explainers._kmeans")
    for module in ("whyclust.explainers.deep", "whyclust.explainers.baselines"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def _is_dask_array(X: Any) -> bool:
    return type(X).__module__.startswith("dask.")


