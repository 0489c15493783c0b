"""Safe model files: one safetensors file whose header carries a JSON description.

No pickle anywhere: tensors are read by safetensors (a length-prefixed JSON header plus raw
buffers) and the model is rebuilt from the JSON config by code registered here. Model modules
register their own (dump, restore) pair with :func:`register_format`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT_VERSION", "atomic_path", "load", "register_format", "save"]

FORMAT_VERSION = 1
_MAGIC_KEY = "whyclust"

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
    """Teach :func:`save` / :func:`load` a model type.

    ``dump(model) -> (tensors, config)`` with numpy arrays and a JSON-serialisable dict;
    ``restore(tensors, config) -> model``. Later registrations are tried first.
    """
    test = (lambda m: isinstance(m, matches)) if isinstance(matches, type) else matches
    _FORMATS[kind] = _Format(kind, test, dump, restore)


def _format_for(model: Any) -> _Format:
    _load_model_modules()
    for fmt in reversed(list(_FORMATS.values())):
        if fmt.matches(model):
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
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def save(model: Any, path: str | os.PathLike) -> Path:
    """Write a fitted model to ``path`` (safetensors + JSON; no pickle). Returns the path."""
    from safetensors.numpy import save_file

    fmt = _format_for(model)
    tensors, config = fmt.dump(model)
    header = {
        "format_version": FORMAT_VERSION,
        "kind": fmt.kind,
        "config": config,
    }
    metadata = {_MAGIC_KEY: json.dumps(header, sort_keys=True)}
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    if not arrays:  # safetensors needs no tensors, but keep files uniform
        arrays = {"__empty__": np.zeros(0, dtype=np.float32)}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp), metadata=metadata)
    return path


def load(path: str | os.PathLike) -> Any:
    """Read a model written by :func:`save`. Pickles and tampered files are refused."""
    header, tensors = read_model_file(path)
    kind = header.get("kind")
    _load_model_modules()
    fmt = _FORMATS.get(kind)
    if fmt is None:
        raise ValueError(f"{path}: unknown model kind {kind!r}")
    try:
        return fmt.restore(tensors, header.get("config", {}))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{path}: model file is inconsistent ({exc})") from None


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Validate a whyclust file and return (header, tensors) without building the model."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:1] == b"\x80" or head[:2] in (b"PK",) or head[:1] in (b"(", b"c"):
        raise ValueError(
            f"{path} looks like a pickle or archive; whyclust only reads its own safetensors "
            "model files and never unpickles"
        )
    if len(head) < 9 or head[8:9] != b"{":
        raise ValueError(f"{path} is not a whyclust model file (no safetensors header)")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            metadata = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path} is corrupt or not a whyclust model file ({exc})") from None
    raw = metadata.get(_MAGIC_KEY)
    if raw is None:
        raise ValueError(f"{path} is a safetensors file but not a whyclust model")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: model description is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: model description must be a JSON object")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ValueError(
            f"{path}: unsupported format version {version!r} (this whyclust reads up to "
            f"{FORMAT_VERSION})"
        )
    tensors.pop("__empty__", None)
    return header, tensors


def _load_model_modules() -> None:
    import whyclust.models  # noqa: F401  (registers model formats)


# --- built-in formats -------------------------------------------------------------------


def _is_sklearn_kmeans(model: Any) -> bool:
    try:
        from sklearn.cluster import KMeans, MiniBatchKMeans
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, (KMeans, MiniBatchKMeans))


def _dump_sklearn_kmeans(model: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "cluster_centers_")
    params = {
        k: v
        for k, v in model.get_params().items()
        if isinstance(v, (int, float, str, bool, type(None)))
    }
    config = {
        "class": type(model).__name__,
        "params": params,
        "n_iter": int(getattr(model, "n_iter_", 0)),
        "inertia": float(getattr(model, "inertia_", float("nan"))),
    }
    tensors = {"cluster_centers": np.asarray(model.cluster_centers_)}
    if getattr(model, "labels_", None) is not None:
        tensors["labels"] = np.asarray(model.labels_, dtype=np.int64)
    return tensors, config


def _restore_sklearn_kmeans(tensors: dict[str, np.ndarray], config: dict[str, Any]) -> Any:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    classes = {"KMeans": KMeans, "MiniBatchKMeans": MiniBatchKMeans}
    cls = classes[config["class"]]
    model = cls()
    valid = model.get_params()
    model.set_params(**{k: v for k, v in config.get("params", {}).items() if k in valid})
    centers = np.asarray(tensors["cluster_centers"])
    if centers.ndim != 2 or centers.shape[0] < 1 or not np.isfinite(centers).all():
        raise ValueError("cluster_centers must be a finite (K, d) array")
    model.cluster_centers_ = centers
    model.n_features_in_ = centers.shape[1]
    model._n_features_out = centers.shape[0]
    model.n_iter_ = config.get("n_iter", 0)
    model.inertia_ = config.get("inertia", float("nan"))
    if "labels" in tensors:
        model.labels_ = tensors["labels"]
    if cls is MiniBatchKMeans:
        model.n_steps_ = 0
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    model._n_threads = _openmp_effective_n_threads()
    return model


def _dump_kmeans_network(net: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    return {"centers": net.centers.detach().cpu().numpy()}, {}


def _restore_kmeans_network(tensors: dict[str, np.ndarray], config: dict[str, Any]) -> Any:
    from whyclust.neuralize.kmeans import KMeansNetwork

    return KMeansNetwork(tensors["centers"])


def _is_kmeans_network(model: Any) -> bool:
    from whyclust.neuralize.kmeans import KMeansNetwork

    return isinstance(model, KMeansNetwork)


register_format("sklearn-kmeans", _is_sklearn_kmeans, _dump_sklearn_kmeans, _restore_sklearn_kmeans)
register_format("kmeans-network", _is_kmeans_network, _dump_kmeans_network, _restore_kmeans_network)
