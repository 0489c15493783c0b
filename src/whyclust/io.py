"""Safe model files: one safetensors file whose header carries a JSON description.

No pickle anywhere: tensors are read by safetensors (a length-prefixed JSON header plus raw
buffers) and the model is rebuilt from the JSON config by code of this package; nothing in
a file can name a class or function to import. The header records a format version and a
SHA-256 of every tensor, so truncated, edited or bit-flipped files are refused.

Which code writes and reads which model is fixed here, in one table:

- scikit-learn estimators (``kind="sklearn"``): KMeans, MiniBatchKMeans, BisectingKMeans,
  GaussianMixture and Pipelines of scalers, PCA / TruncatedSVD, SimpleImputer,
  OneHotEncoder and ColumnTransformer ending in any clusterer here (see
  :mod:`whyclust._sklearn_io`), ``feature_names_in_`` included;
- whyclust's own models, by :data:`MODEL_MODULES`: ``kind -> "module:Class"``; the module
  exposes ``to_file(model) -> (tensors, config)`` and ``from_file(tensors, config)`` and
  imports :mod:`whyclust._fileformat`, never this module;
- the torch views ``kmeans-network`` and ``encoded-network``;
- kinds added with :func:`register_format` (for code outside whyclust).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from whyclust._fileformat import (
    apply_feature_names,
    build_module,
    describe_module,
    feature_names_in,
    finite_array,
)

__all__ = [
    "FORMAT_VERSION",
    "MODEL_MODULES",
    "SavedNotes",
    "atomic_path",
    "build_module",
    "describe_module",
    "dump_model",
    "finite_array",
    "load",
    "load_for_explanation",
    "not_features",
    "open_model",
    "read_model_file",
    "register_format",
    "restore_model",
    "save",
]

FORMAT_VERSION = 1
_MAGIC_KEY = "whyclust"
_MAX_HEADER_BYTES = 64 << 20  # a model description is small; refuse absurd headers early

# whyclust's models: kind -> "module:Class"; the module defines to_file / from_file
MODEL_MODULES: dict[str, str] = {
    "tell": "whyclust.models.tell:TELL",
    "kernel-kmeans": "whyclust.models.kernel_kmeans:KernelKMeans",
}

Dump = Callable[[Any], tuple[dict[str, np.ndarray], dict[str, Any]]]
Restore = Callable[[dict[str, np.ndarray], dict[str, Any]], Any]


@dataclass(frozen=True)
class _Format:
    kind: str
    matches: Callable[[Any], bool]
    dump: Dump
    restore: Restore


_FORMATS: dict[str, _Format] = {}


def register_format(kind: str, matches: type | Callable[[Any], bool], dump: Dump, restore: Restore):
    """Teach :func:`save` / :func:`load` a model type defined outside whyclust.

    ``dump(model) -> (tensors, config)`` with numpy arrays and a JSON-serialisable dict;
    ``restore(tensors, config) -> model``. Later registrations are tried first. ``restore``
    should raise ``ValueError`` / ``KeyError`` / ``TypeError`` on inconsistent input. The
    kinds of :data:`MODEL_MODULES` and the built-in kinds cannot be replaced.
    """
    test = (lambda m: isinstance(m, matches)) if isinstance(matches, type) else matches
    _FORMATS.pop(kind, None)  # re-registering moves the kind to the front
    _FORMATS[kind] = _Format(kind, test, dump, restore)


def _model_module(kind: str) -> tuple[Any, type]:
    module_name, cls_name = MODEL_MODULES[kind].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ValueError(
            f"model kind {kind!r} is not available ({module_name} is missing)"
        ) from None
    return module, getattr(module, cls_name)


def _model_codec(kind: str) -> tuple[type, Dump, Restore]:
    module, cls = _model_module(kind)
    to_file, from_file = getattr(module, "to_file", None), getattr(module, "from_file", None)
    if to_file is None or from_file is None:
        # model modules written before the to_file / from_file protocol registered their
        # (dump, restore) pair with register_format when imported
        fmt = _FORMATS.get(kind)
        if fmt is None:
            raise TypeError(f"{module.__name__} defines no to_file / from_file")
        to_file, from_file = fmt.dump, fmt.restore
    return cls, to_file, from_file


def _format_for(model: Any) -> _Format:
    from whyclust import _sklearn_io

    if _sklearn_io.is_sklearn_estimator(model):
        return _Format("sklearn", _sklearn_io.is_sklearn_estimator, _dump_sklearn, _restore_sklearn)
    if type(model).__module__.startswith("whyclust.models"):
        for kind in MODEL_MODULES:
            cls, dump, restore = _model_codec(kind)
            if isinstance(model, cls):
                return _Format(kind, lambda m, c=cls: isinstance(m, c), dump, restore)
    for fmt in reversed(list(_FORMATS.values())):
        if fmt.kind not in MODEL_MODULES and fmt.matches(model):
            return fmt
    raise TypeError(f"cannot save a {type(model).__name__}: no whyclust file format for it")


class atomic_path:
    """Context manager giving a temporary path next to ``path``, renamed onto it on success.

    Nothing half-written is left behind: on error the temporary file is removed.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __enter__(self) -> Path:
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise FileNotFoundError(f"folder does not exist: {parent}")
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder; give a file name")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def dump_model(model: Any) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
    """``(kind, tensors, config)`` of a model; lets composite formats embed other models."""
    fmt = _format_for(model)
    tensors, config = fmt.dump(model)
    return fmt.kind, tensors, config


def restore_model(kind: Any, tensors: dict[str, np.ndarray], config: Any) -> Any:
    """Rebuild a model of a known ``kind`` (the inverse of :func:`dump_model`)."""
    if not isinstance(config, dict):
        raise ValueError("model config must be a JSON object")
    if kind == "sklearn":
        return _restore_sklearn(tensors, config)
    if isinstance(kind, str) and kind in MODEL_MODULES:
        return _model_codec(kind)[2](tensors, config)
    fmt = _FORMATS.get(kind) if isinstance(kind, str) else None
    if fmt is None:
        known = sorted({"sklearn", *MODEL_MODULES, *_FORMATS})
        raise ValueError(f"unknown model kind {kind!r} (known: {', '.join(known)})")
    return fmt.restore(tensors, config)


def save(
    model: Any,
    path: str | os.PathLike,
    *,
    not_features: Sequence[str] = (),
    fit_beta: float | None = None,
) -> Path:
    """Write a fitted model to ``path`` (safetensors + JSON; no pickle). Returns the path.

    The file is written to a temporary name and renamed, so an interrupted save never leaves
    a partial file at ``path``. ``not_features`` names columns of the fitting table that
    are not inputs of the model (labels, ids): the CLI leaves them out of a table again
    (:func:`not_features`). ``fit_beta``: NEON's ``beta="auto"`` on the fitting data,
    which the CLI uses for every file it explains with the model.
    """
    from safetensors.numpy import save_file

    kind, tensors, config = dump_model(model)
    arrays = {str(k): np.ascontiguousarray(v) for k, v in tensors.items()}
    if not arrays:  # safetensors needs no tensors, but keep files uniform
        arrays = {"__empty__": np.zeros(0, dtype=np.float32)}
    header = {"format_version": FORMAT_VERSION, "kind": kind, "config": config}
    names = feature_names_in(model)
    if names is not None:  # kept for every kind, whatever its own config records
        header["feature_names"] = names
    if not_features:
        header["not_features"] = [str(c) for c in not_features]
    if fit_beta is not None:
        header["fit_beta"] = _check_fit_beta("fit_beta", fit_beta)
    try:
        header["sha256"] = _digest(header, arrays)
        text = json.dumps(header, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"cannot save a {type(model).__name__}: config is not JSON ({exc})"
        ) from None
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp), metadata={_MAGIC_KEY: text})
    return path


def load(path: str | os.PathLike) -> Any:
    """Read a model written by :func:`save`. Pickles and tampered files are refused.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the problem for
    anything that is not an intact whyclust model file. No code from the file is ever run.
    """
    return open_model(path)[0]


def not_features(path: str | os.PathLike) -> list[str]:
    """The ``not_features`` a model file was saved with (checked like the rest of it)."""
    header, _ = read_model_file(path)
    return _not_features(path, header)


def load_for_explanation(path: str | os.PathLike) -> Any:
    """:func:`load` for :func:`whyclust.explain` only: a Pipeline of affine steps ending in
    k-means comes back as plain fitted arrays (:mod:`whyclust._light`), without importing
    scikit-learn; any other model as :func:`load` gives it."""
    return open_model(path, light=True)[0]


@dataclass(frozen=True)
class SavedNotes:
    """What :func:`save` recorded beside the model: its ``not_features`` and ``fit_beta``."""

    not_features: list[str]
    fit_beta: float | None


def open_model(path: str | os.PathLike, *, light: bool = False) -> tuple[Any, SavedNotes]:
    """The model (as :func:`load_for_explanation` gives it when ``light``, else as
    :func:`load` does) and what was saved with it, from one read of the file."""
    header, tensors = read_model_file(path)
    beta = header.get("fit_beta")
    try:
        beta = None if beta is None else _check_fit_beta(f"{path}: fit_beta", beta)
    except TypeError as exc:  # a file's content is a value problem, whatever its type
        raise ValueError(str(exc)) from None
    notes = SavedNotes(_not_features(path, header), beta)
    try:
        model = _light_model(header, tensors) if light else None
        if model is None:
            model = restore_model(header.get("kind"), tensors, header.get("config", {}))
        return apply_feature_names(model, header.get("feature_names")), notes
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())  # torch's messages span several lines
        raise ValueError(f"{path}: model file is inconsistent ({detail})") from None


def _light_model(header: dict[str, Any], tensors: dict[str, np.ndarray]) -> Any:
    config = header.get("config")
    if header.get("kind") != "sklearn" or not isinstance(config, dict):
        return None
    if set(config) != {"estimator"}:
        return None
    from whyclust._light import decode_light

    return decode_light(config["estimator"], tensors)


def _check_fit_beta(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number, got {value!r}")
    if not (math.isfinite(value) and value >= 0):  # JSON holds no inf
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


def _not_features(path: str | os.PathLike, header: dict[str, Any]) -> list[str]:
    value = header.get("not_features", [])
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ValueError(f"{path}: not_features must be a list of column names")
    return value


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Validate a whyclust file and return (header, tensors) without building the model."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such model file: {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    with open(path, "rb") as fh:
        head = fh.read(16)
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{path} is empty")
    header_len = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    framed = len(head) >= 9 and head[8:9] == b"{"
    if not framed:
        # The safetensors frame comes first: its 8-byte length may start with any byte.
        if head[:1] == b"\x80" or head[:2] == b"PK" or head[:1] in (b"(", b"c", b"]", b"}"):
            raise ValueError(
                f"{path} looks like a pickle or archive; whyclust only reads its own "
                "safetensors model files and never unpickles"
            )
        raise ValueError(f"{path} is not a whyclust model file (no safetensors header)")
    if header_len > _MAX_HEADER_BYTES or 8 + header_len > size:
        raise ValueError(f"{path} is truncated or corrupt (header length {header_len})")
    try:
        tensors = {}
        with safe_open(str(path), framework="numpy") as fh:
            metadata = fh.metadata() or {}
            for key in fh.keys():
                tensors[key] = fh.get_tensor(key)
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is corrupt or not a whyclust model file ({exc})") from None
    raw = metadata.get(_MAGIC_KEY)
    if raw is None:
        raise ValueError(f"{path} is a safetensors file but not a whyclust model")
    try:
        header = json.loads(raw, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: model description is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: model description must be a JSON object")
    version = header.get("format_version")
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not 1 <= version <= FORMAT_VERSION
    ):
        raise ValueError(
            f"{path}: unsupported format version {version!r} (this whyclust reads up to "
            f"{FORMAT_VERSION})"
        )
    expected = header.get("sha256")
    if not isinstance(expected, str):
        raise ValueError(f"{path}: model description has no checksum; the file was altered")
    if _digest(header, tensors) != expected:
        raise ValueError(f"{path}: checksum mismatch, the file was altered or is corrupt")
    tensors.pop("__empty__", None)
    return header, tensors


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed in a model description")


def _digest(header: dict[str, Any], tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 over the header (less its checksum) and every tensor's name, dtype, shape, bytes."""
    h = hashlib.sha256()
    fields = {k: v for k, v in header.items() if k != "sha256"}
    h.update(json.dumps(fields, sort_keys=True, allow_nan=False).encode())
    for key in sorted(tensors):
        arr = np.ascontiguousarray(tensors[key])
        h.update(json.dumps([key, arr.dtype.str, list(arr.shape)]).encode())
        h.update(memoryview(arr).cast("B") if arr.size else b"")
    return h.hexdigest()


# --- built-in formats -------------------------------------------------------------------


def _no_dump(model: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    raise TypeError("this kind is read-only")


def _dump_sklearn(model: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from sklearn.utils.validation import check_is_fitted

    from whyclust._sklearn_io import encode_estimator

    check_is_fitted(model)
    tensors: dict[str, np.ndarray] = {}
    spec = encode_estimator(model, tensors, "m", dump_model)
    return tensors, {"estimator": spec}


def _restore_sklearn(tensors: dict[str, np.ndarray], config: dict[str, Any]) -> Any:
    from whyclust._sklearn_io import decode_estimator

    if set(config) != {"estimator"}:
        raise ValueError("an sklearn model config holds one estimator description")
    return decode_estimator(config["estimator"], tensors, restore_model)


# files written before the "sklearn" kind: KMeans / MiniBatchKMeans centres and labels only
def _restore_sklearn_kmeans(tensors: dict[str, np.ndarray], config: dict[str, Any]) -> Any:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    classes = {"KMeans": KMeans, "MiniBatchKMeans": MiniBatchKMeans}
    if config.get("class") not in classes:
        raise ValueError(f"unknown k-means class {config.get('class')!r}")
    cls = classes[config["class"]]
    model = cls()
    valid = model.get_params()
    params = config.get("params", {})
    if not isinstance(params, dict):
        raise ValueError("params must be a JSON object")
    model.set_params(**{k: v for k, v in params.items() if k in valid})
    centers = finite_array(tensors, "cluster_centers", ndim=2)
    if centers.shape[0] < 1 or centers.shape[1] < 1:
        raise ValueError(f"cluster_centers has shape {centers.shape}")
    model.cluster_centers_ = centers
    model.n_features_in_ = centers.shape[1]
    model._n_features_out = centers.shape[0]
    model.n_iter_ = int(config.get("n_iter") or 0)
    inertia = config.get("inertia")
    model.inertia_ = float("nan") if inertia is None else float(inertia)
    if "labels" in tensors:
        labels = np.asarray(tensors["labels"])
        if labels.ndim != 1 or (
            labels.size and (labels.min() < 0 or labels.max() >= centers.shape[0])
        ):
            raise ValueError("labels must be cluster indices in [0, K)")
        model.labels_ = labels
    if cls is MiniBatchKMeans:
        model.n_steps_ = 0
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    model._n_threads = _openmp_effective_n_threads()
    return model


def _is_kmeans_network(model: Any) -> bool:
    if "whyclust.networks" not in sys.modules:  # no network can exist yet: keep torch out
        return False
    from whyclust.networks.kmeans import KMeansNetwork

    return isinstance(model, KMeansNetwork)


def _dump_kmeans_network(net: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    return {"centers": net.centers.detach().cpu().numpy()}, {}


def _restore_kmeans_network(tensors: dict[str, np.ndarray], config: dict[str, Any]) -> Any:
    from whyclust.networks.kmeans import KMeansNetwork

    return KMeansNetwork(finite_array(tensors, "centers", ndim=2))


def _is_encoded_network(model: Any) -> bool:
    if "whyclust.networks" not in sys.modules:
        return False
    from whyclust.networks.base import EncodedClusterNetwork

    return isinstance(model, EncodedClusterNetwork)


def _dump_encoded_network(net: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if net.n_features is None:
        raise ValueError(
            "this network does not know its input size, and a model file records it: "
            "neuralize it with input_shape= (or n_features=) before saving"
        )
    spec = describe_module(net.encoder)  # TypeError for layers it cannot describe
    tensors = {
        f"encoder.{k}": v.detach().cpu().numpy() for k, v in net.encoder.state_dict().items()
    }
    head_kind, head_tensors, head_config = dump_model(net.head)
    tensors.update({f"head.{k}": v for k, v in head_tensors.items()})
    config = {
        "encoder": spec,
        "head": {"kind": head_kind, "config": head_config},
        "n_features": int(net.n_features),
    }
    return tensors, config


def _restore_encoded_network(tensors: dict[str, np.ndarray], config: dict[str, Any]) -> Any:
    from whyclust.networks.base import ClusterNetwork, EncodedClusterNetwork

    enc = {k[len("encoder.") :]: v for k, v in tensors.items() if k.startswith("encoder.")}
    head_t = {k[len("head.") :]: v for k, v in tensors.items() if k.startswith("head.")}
    encoder = build_module(config["encoder"], enc)
    head_info = config["head"]
    if not isinstance(head_info, dict):
        raise ValueError("head must be a JSON object")
    head = restore_model(head_info.get("kind"), head_t, head_info.get("config", {}))
    if not isinstance(head, ClusterNetwork):
        raise ValueError(f"head must be a cluster network, got {type(head).__name__}")
    n_features = config["n_features"]
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}")
    return EncodedClusterNetwork(encoder, head, n_features).eval()


_FORMATS["sklearn-kmeans"] = _Format(
    "sklearn-kmeans", lambda m: False, _no_dump, _restore_sklearn_kmeans
)
register_format("kmeans-network", _is_kmeans_network, _dump_kmeans_network, _restore_kmeans_network)
register_format(
    "encoded-network", _is_encoded_network, _dump_encoded_network, _restore_encoded_network
)
