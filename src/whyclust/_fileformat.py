"""Low-level helpers of the model file format, shared by io and the model packages.

``finite_array`` checks a tensor read from a file; ``describe_module`` / ``build_module``
turn a torch module built from whitelisted standard layers into JSON and back. Model
packages import this module, never :mod:`whyclust.io`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["build_module", "describe_module", "finite_array"]


# --- helpers for restore functions ---------------------------------------------------------


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
    from torch import nn

    from whyclust.networks.base import L2Normalize

    return L2Normalize if name == "L2Normalize" else getattr(nn, name)


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


