"""TELL's model file: ``dump(model) -> (tensors, config)`` and ``restore(tensors, config)``.

Tensors hold the centers, labels and network weights; the JSON config holds the parameters
and the architecture (built-in encoders by name, user encoders by a whitelisted layer
description). Nothing in a file names code to run.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from whyclust._fileformat import build_module, describe_module, finite_array
from whyclust.models.tell._centers import CenterTrainer
from whyclust.models.tell._encoder import build_networks
from whyclust.models.tell._estimator import TELL

__all__ = ["dump", "restore"]

_JSON_PARAMS = (
    "n_clusters", "metric", "n_init", "max_iter", "tol", "batch_size", "optimizer", "lr",
    "center_step", "partial_lr", "init_size", "pretrain_epochs", "cluster_weight",
    "cluster_loss", "encoder_lr", "cluster_encoder_lr", "n_latent", "verbose",
)  # fmt: skip


def dump(model: TELL) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and JSON config of a fitted TELL (``TypeError`` for undescribable modules)."""
    check_is_fitted(model)
    params = {k: getattr(model, k) for k in _JSON_PARAMS}
    for k, v in params.items():
        if isinstance(v, np.generic):
            params[k] = v.item()
    params["augment"] = model.augment if isinstance(model.augment, str) else None
    rs = model.random_state
    params["random_state"] = int(rs) if isinstance(rs, numbers.Integral) else None
    tensors = {"cluster_centers": model.cluster_centers_, "labels": model.labels_}
    config: dict[str, Any] = {
        "params": params,
        "input_shape": list(model.input_shape_),
        "n_iter": int(model.n_iter_),
        "n_steps": int(getattr(model, "n_steps_", 0)),
        "loss": float(model.loss_) if math.isfinite(model.loss_) else None,
        "device": str(model.device),
        "metric": model.metric_,
    }
    if hasattr(model, "feature_names_in_"):
        config["feature_names"] = [str(c) for c in model.feature_names_in_]
    trainer = getattr(model, "_trainer", None)
    for k, v in ({} if trainer is None else trainer.optimizer_state()).items():
        tensors[f"optimizer.{k}"] = v
    if model.encoder_ is None:
        config["mode"] = "raw"
    else:
        config["mode"] = model.encoder if isinstance(model.encoder, str) else "user"
        if config["mode"] == "user":
            # the architecture must be rebuilt from JSON alone: standard layers only
            config["encoder_spec"] = describe_module(model.encoder_)
            config["decoder_spec"] = describe_module(model.decoder_)
        for name, module in (("encoder", model.encoder_), ("decoder", model.decoder_)):
            for k, v in module.state_dict().items():
                tensors[f"{name}.{k}"] = v.detach().cpu().numpy()
        tensors["feature_scale"] = model.feature_scale_
    return tensors, config


def restore(tensors: dict[str, np.ndarray], config: dict[str, Any]) -> TELL:
    """The TELL saved by :func:`dump`; ``ValueError`` / ``KeyError`` on inconsistent input."""
    params = config["params"]
    if not isinstance(params, dict) or set(params) - {*_JSON_PARAMS, "augment", "random_state"}:
        raise ValueError("bad TELL parameters")
    mode = config.get("mode")
    if mode not in ("raw", "mlp", "conv", "user"):
        raise ValueError(f"unknown TELL mode {mode!r}")
    # files written before the metric existed hold cosine models (refits stay cosine too)
    model = TELL(**{"metric": "cosine", **params})
    model._validate_params()
    model.metric_ = config.get("metric", "cosine")
    if model.metric_ not in ("euclidean", "cosine"):
        raise ValueError(f"unknown TELL metric {model.metric_!r}")
    centers = finite_array(tensors, "cluster_centers", ndim=2)
    k = centers.shape[0]
    if k != params.get("n_clusters") or k < 1:
        raise ValueError("cluster_centers do not match n_clusters")
    shape = config["input_shape"]
    if not isinstance(shape, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ValueError(f"bad input_shape {shape!r}")
    model.input_shape_ = tuple(shape)
    model.n_features_in_ = int(np.prod(shape))
    model.cluster_centers_ = centers
    labels = np.asarray(tensors["labels"], dtype=np.int64)
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= k)):
        raise ValueError("labels must be cluster indices in [0, K)")
    model.labels_ = labels
    model.n_iter_ = int(config.get("n_iter") or 0)
    model.n_steps_ = int(config.get("n_steps") or 0)
    loss = config.get("loss")
    model.loss_ = float("nan") if loss is None else float(loss)
    if "feature_names" in config:
        names = config["feature_names"]
        if not (isinstance(names, list) and len(names) == model.n_features_in_
                and all(isinstance(c, str) for c in names)):
            raise ValueError("feature_names must list one string per input feature")
        model.feature_names_in_ = np.asarray(names, dtype=object)
    model._device_ = torch.device("cpu")
    model._dtype_ = torch.float64 if centers.dtype == np.float64 else torch.float32
    if mode == "raw":
        model.encoder_ = model.decoder_ = None
        if centers.shape[1] != model.n_features_in_:
            raise ValueError("cluster_centers do not match the input shape")
    else:
        arrays = {
            name: {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
            for name in ("encoder", "decoder")
        }
        if mode == "user":
            encoder = build_module(config["encoder_spec"], arrays["encoder"])
            decoder = build_module(config["decoder_spec"], arrays["decoder"])
            model.encoder = (encoder, decoder)
        else:
            model.encoder = mode
            encoder, decoder = build_networks(mode, model.input_shape_, model.n_latent)
            for module, part in ((encoder, arrays["encoder"]), (decoder, arrays["decoder"])):
                state = {k: torch.from_numpy(np.array(v)) for k, v in part.items()}
                module.load_state_dict(state, strict=True)
        model.encoder_, model.decoder_ = encoder.eval(), decoder.eval()
        scale = finite_array(tensors, "feature_scale", ndim=1)
        if scale.shape != (k,):
            raise ValueError("feature_scale must hold one value per cluster")
        model.feature_scale_ = scale
    model._trainer = CenterTrainer(
        torch.from_numpy(centers.copy())[None], model.metric_, model.optimizer,
        model._partial_lr(), model.center_step,
    )  # fmt: skip
    model._trainer.load_optimizer_state(
        {k[len("optimizer.") :]: v for k, v in tensors.items() if k.startswith("optimizer.")}
    )
    return model
