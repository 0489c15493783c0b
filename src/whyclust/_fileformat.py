"""Low-level helpers for model files, shared by :mod:`whyclust.io` and the model modules.

This module sits below every model: it imports nothing from whyclust but ``_validation``
(and, lazily, the one custom layer ``L2Normalize`` when a file names it), so model modules
can use it without importing :mod:`whyclust.io`, which imports them.

The model-module protocol (see :data:`whyclust.io.MODEL_MODULES`): a module that defines a
savable model exposes

- ``to_file(model) -> (tensors: dict[str, np.ndarray], config: dict)``: numpy arrays and a
  JSON-serialisable dict, nothing else;
- ``from_file(tensors, config) -> model``: the inverse, raising ``ValueError`` / ``KeyError``
  / ``TypeError`` on inconsistent input (the file's checksum was already verified).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "apply_feature_names",
    "build_module",
    "describe_module",
    "feature_names_in",
    "finite_array",
]


def finite_array(tensors: dict[str, np.ndarray], key: str, ndim: int | None = None) -> np.ndarray:
    """A tensor from the file that must exist, be floating point, finite and of rank ``ndim``."""
    if key not in tensors:
        raise KeyError(f"missing tensor {key!r}")
    arr = np.asarray(tensors[key])
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"tensor {key!r} must be floating point, got {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"tensor {key!r} must be {ndim}-D, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"tensor {key!r} contains NaN or infinite values")
    return arr


def feature_names_in(model: Any) -> list[str] | None:
    """``model.feature_names_in_`` as a list of str, or None when it was fitted without."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(c) for c in names]


def apply_feature_names(model: Any, names: Any) -> Any:
    """Give a restored model the feature names recorded in its file; returns the model.

    A model whose own restore already set names must agree with the file's; a model without
    them gets them when their number matches ``n_features_in_``.
    """
    if names is None:
        return model
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise ValueError("feature_names must be a list of strings")
    own = feature_names_in(model)
    if own is not None:
        if own != names:
            raise ValueError("the model's feature names differ from those of its file")
        return model
    n_features = getattr(model, "n_features_in_", None)
    if n_features != len(names):
        raise ValueError(f"the file names {len(names)} features, the model takes {n_features}")
    model.feature_names_in_ = np.asarray(names, dtype=object)
    return model


# --- torch modules by description: a whitelist of layer types and their arguments ----------

# layer name -> constructor arguments recorded (all plain ints / floats / bools / tuples)
_LAYER_ARGS: dict[str, tuple[str, ...]] = {
    "Linear": ("in_features", "out_features", "bias"),
    "Conv1d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
               "groups", "bias", "padding_mode"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
               "groups", "bias", "padding_mode"),
    "BatchNorm1d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "BatchNorm2d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "LayerNorm": ("normalized_shape", "eps", "elementwise_affine"),
    "ReLU": (),
    "Sigmoid": (),
    "Tanh": (),
    "Identity": (),
    "GELU": (),
    "Softplus": ("beta", "threshold"),
    "LeakyReLU": ("negative_slope",),
    "ELU": ("alpha",),
    "Dropout": ("p",),
    "Flatten": ("start_dim", "end_dim"),
    "Unflatten": ("dim", "unflattened_size"),
    "MaxPool2d": ("kernel_size", "stride", "padding", "dilation"),
    "AvgPool2d": ("kernel_size", "stride", "padding"),
    "AdaptiveAvgPool2d": ("output_size",),
    "L2Normalize": ("eps",),
}  # fmt: skip
_CONTAINERS = ("Sequential",)


def _layer_class(name: str) -> type:
    if name == "L2Normalize":  # the one whyclust layer; only imported when a file names it
        from whyclust.networks.base import L2Normalize

        return L2Normalize
    from torch import nn

    return getattr(nn, name)


def describe_module(module: Any) -> dict[str, Any]:
    """JSON description of a torch module built only from whitelisted layer types.

    ``nn.Sequential`` nests; anything else raises ``TypeError`` naming the layer, since a
    file must never name code to run.
    """
    name = type(module).__name__
    if name in _CONTAINERS and type(module) is _layer_class_safe(name):
        return {"type": name, "children": [describe_module(m) for m in module]}
    if name not in _LAYER_ARGS or type(module) is not _layer_class(name):
        raise TypeError(
            f"cannot save an encoder containing {name}: whyclust files describe encoders "
            "built from standard layers (nn.Sequential of Linear, Conv2d, BatchNorm, "
            "activations, pooling, Flatten); save its weights with torch instead"
        )
    args = {}
    for arg in _LAYER_ARGS[name]:
        value = getattr(module, arg)
        if arg in {"bias", "affine"} and not isinstance(value, bool):
            value = value is not None  # Linear / Conv store the bias tensor itself
        elif arg == "elementwise_affine":
            value = bool(value)
        args[arg] = list(value) if isinstance(value, tuple) else value
    return {"type": name, "args": args}


def _layer_class_safe(name: str) -> type:
    from torch import nn

    return getattr(nn, name)


def build_module(spec: Any, state: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`describe_module`: the module with its weights from ``state``.

    Layers are created on torch's meta device and their tensors assigned from the file, so a
    description with absurd sizes allocates nothing; shapes must match exactly.
    """
    import torch

    with torch.device("meta"):
        module = _build(spec, depth=0)
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
    module.load_state_dict(tensors, strict=True, assign=True)
    for key, t in [*module.named_parameters(), *module.named_buffers()]:
        if t.is_meta:
            raise ValueError(f"encoder tensor {key!r} is missing from the file")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"encoder tensor {key!r} contains NaN or infinite values")
    return module.eval()


def _build(spec: Any, depth: int) -> Any:
    from torch import nn

    if not isinstance(spec, dict) or depth > 32:
        raise ValueError("encoder description must be nested JSON objects")
    name = spec.get("type")
    if name in _CONTAINERS:
        children = spec.get("children")
        if not isinstance(children, list):
            raise ValueError(f"{name} needs a list of children")
        return nn.Sequential(*[_build(c, depth + 1) for c in children])
    if name not in _LAYER_ARGS:
        raise ValueError(f"layer type {name!r} is not allowed in a whyclust file")
    args = spec.get("args", {})
    if not isinstance(args, dict) or set(args) - set(_LAYER_ARGS[name]):
        raise ValueError(f"bad arguments for {name}: {args!r}")
    clean = {}
    for key, value in args.items():
        ok = (
            value is None
            or isinstance(value, (bool, int, float, str))
            or (isinstance(value, list) and all(isinstance(v, (int, float)) for v in value))
        )
        if not ok:
            raise ValueError(f"bad value for {name}.{key}: {value!r}")
        clean[key] = tuple(value) if isinstance(value, list) else value
    return _layer_class(name)(**clean)
