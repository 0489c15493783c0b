"""scikit-learn estimators in whyclust model files: a fixed table of classes, no pickle.

An estimator is written as its class name (looked up in :data:`CLASSES`, never imported
from the file), its constructor parameters and its fitted attributes, each attribute name
taken from a whitelist per class. Values are encoded as JSON (scalars, strings, lists,
tuples, dicts, slices, dtypes, object arrays of scalars) or as tensors (numeric arrays);
nested estimators (Pipeline steps, ColumnTransformer parts) recurse. A fitted attribute
that is not on the whitelist refuses the save, so nothing needed for ``predict`` is
silently lost. ``BisectingKMeans``' private tree is flattened into arrays and rebuilt.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from whyclust._fileformat import apply_feature_names, feature_names_in

__all__ = ["CLASSES", "decode_estimator", "encode_estimator", "is_sklearn_estimator"]

# class name -> (module, attribute); the only classes a file can make
CLASSES: dict[str, tuple[str, str]] = {
    "Pipeline": ("sklearn.pipeline", "Pipeline"),
    "ColumnTransformer": ("sklearn.compose", "ColumnTransformer"),
    "StandardScaler": ("sklearn.preprocessing", "StandardScaler"),
    "MinMaxScaler": ("sklearn.preprocessing", "MinMaxScaler"),
    "MaxAbsScaler": ("sklearn.preprocessing", "MaxAbsScaler"),
    "RobustScaler": ("sklearn.preprocessing", "RobustScaler"),
    "OneHotEncoder": ("sklearn.preprocessing", "OneHotEncoder"),
    "FunctionTransformer": ("sklearn.preprocessing", "FunctionTransformer"),
    "PCA": ("sklearn.decomposition", "PCA"),
    "TruncatedSVD": ("sklearn.decomposition", "TruncatedSVD"),
    "SimpleImputer": ("sklearn.impute", "SimpleImputer"),
    "MissingIndicator": ("sklearn.impute", "MissingIndicator"),
    "KMeans": ("sklearn.cluster", "KMeans"),
    "MiniBatchKMeans": ("sklearn.cluster", "MiniBatchKMeans"),
    "BisectingKMeans": ("sklearn.cluster", "BisectingKMeans"),
    "GaussianMixture": ("sklearn.mixture", "GaussianMixture"),
}

_NAMES = {"n_features_in_", "feature_names_in_"}
_KMEANS = {"_tol", "_n_init", "_algorithm", "cluster_centers_", "_n_features_out", "labels_",
           "inertia_", "n_iter_"}  # fmt: skip
# fitted attributes kept per class; anything else fitted refuses the save
ATTRS: dict[str, set[str]] = {
    "Pipeline": set(),
    "ColumnTransformer": {"_columns", "_transformer_to_input_indices", "_remainder",
                          "sparse_output_", "transformers_", "output_indices_"},
    "StandardScaler": {"n_samples_seen_", "mean_", "var_", "scale_"},
    "MinMaxScaler": {"n_samples_seen_", "scale_", "min_", "data_min_", "data_max_",
                     "data_range_"},
    "MaxAbsScaler": {"n_samples_seen_", "max_abs_", "scale_"},
    "RobustScaler": {"center_", "scale_"},
    "OneHotEncoder": {"_infrequent_enabled", "categories_", "_drop_idx_after_grouping",
                      "drop_idx_", "_n_features_outs", "_infrequent_indices",
                      "_default_to_infrequent_mappings"},
    "FunctionTransformer": set(),
    "PCA": {"_fit_svd_solver", "mean_", "noise_variance_", "n_samples_", "n_components_",
            "components_", "explained_variance_", "explained_variance_ratio_",
            "singular_values_"},
    "TruncatedSVD": {"components_", "explained_variance_", "explained_variance_ratio_",
                     "singular_values_"},
    "SimpleImputer": {"_fit_dtype", "_fill_dtype", "indicator_", "statistics_"},
    "MissingIndicator": {"features_", "_n_features", "_precomputed"},
    "KMeans": set(_KMEANS),
    "MiniBatchKMeans": _KMEANS | {"_batch_size", "_init_size", "_counts", "_ewa_inertia",
                                  "_ewa_inertia_min", "_no_improvement",
                                  "_n_since_last_reassign", "n_steps_"},
    "BisectingKMeans": (_KMEANS - {"_algorithm", "n_iter_"}) | {"_X_mean", "_bisecting_tree"},
    "GaussianMixture": {"converged_", "weights_", "means_", "covariances_",
                        "precisions_cholesky_", "precisions_", "n_iter_", "lower_bound_",
                        "lower_bounds_"},
}  # fmt: skip
for _attrs in ATTRS.values():
    _attrs |= _NAMES
# fitting-only state, dropped on save and (where prediction needs it) recomputed on load
_DROPPED = {"_n_threads", "_kmeans_single", "_random_state", "_sklearn_output_config"}
# float tensors that may legitimately hold NaN (an all-missing column's statistic)
_NAN_OK = {("SimpleImputer", "statistics_")}
_MAX_DEPTH = 24
_MODEL_KEYS = {"kind", "config", "prefix", "names"}

Encoder = Callable[[Any, str, dict], Any]


def _class(name: str) -> type:
    module, attr = CLASSES[name]
    return getattr(importlib.import_module(module), attr)


def is_sklearn_estimator(model: Any) -> bool:
    """Whether ``model`` is exactly one of the classes of :data:`CLASSES`."""
    name = type(model).__name__
    if name not in CLASSES or not type(model).__module__.startswith("sklearn."):
        return False
    return type(model) is _class(name)


# --- encoding ------------------------------------------------------------------------------


def encode_estimator(
    est: Any, tensors: dict[str, np.ndarray], path: str, other: Callable[[Any], tuple]
) -> dict[str, Any]:
    """JSON description of ``est``; numeric arrays go into ``tensors`` under ``path``.

    ``other(model) -> (kind, tensors, config)`` writes a non-scikit-learn model (a whyclust
    clusterer inside a Pipeline). Raises ``TypeError`` for anything it cannot write exactly.
    """
    name = type(est).__name__
    if not is_sklearn_estimator(est):
        raise TypeError(f"cannot save a {name}: not one of {', '.join(CLASSES)}")
    if name == "FunctionTransformer" and (est.func is not None or est.inverse_func is not None):
        raise TypeError(
            "cannot save a FunctionTransformer with a function: a model file never names "
            "code to run"
        )
    params = est.get_params(deep=False)
    if name == "Pipeline" and params.get("memory") is not None:
        raise TypeError("cannot save a Pipeline with a cache (memory=...): set memory=None")
    enc = _Encoder(tensors, other)
    spec_params = {}
    for key, value in params.items():
        if key == "random_state" and isinstance(value, np.random.RandomState):
            value = None  # only seeds a refit; a generator's state is not kept
        spec_params[key] = enc.value(value, f"{path}.p.{key}", 0)
    attrs = {}
    for key, value in vars(est).items():
        if key in params or key in _DROPPED:
            continue
        if key not in ATTRS[name]:
            raise TypeError(
                f"cannot save this {name}: fitted attribute {key!r} is not supported by the "
                "whyclust file format"
            )
        if key == "_bisecting_tree":
            attrs[key] = _encode_tree(value, tensors, f"{path}.a.tree")
        else:
            attrs[key] = enc.value(value, f"{path}.a.{key}", 0)
    return {"class": name, "params": spec_params, "attrs": attrs}


class _Encoder:
    def __init__(self, tensors: dict[str, np.ndarray], other: Callable[[Any], tuple]) -> None:
        self.tensors = tensors
        self.other = other

    def value(self, v: Any, path: str, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise TypeError("cannot save: parameters nest too deeply")
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, np.bool_):
            return bool(v)
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            return _float(float(v))
        if isinstance(v, np.ndarray):
            if v.dtype.kind in "biuf":
                self.tensors[path] = np.ascontiguousarray(v)
                return {"$tensor": path}
            if v.dtype.kind in "OU":
                items = [self.value(x, path, depth + 1) for x in v.reshape(-1).tolist()]
                if any(isinstance(x, (dict, list)) and not _is_float_marker(x) for x in items):
                    raise TypeError(f"cannot save an object array of non-scalars ({path})")
                return {"$objects": items, "shape": list(v.shape), "dtype": v.dtype.str}
            raise TypeError(f"cannot save an array of dtype {v.dtype} ({path})")
        if isinstance(v, np.dtype):
            return {"$dtype": v.str}
        if isinstance(v, type) and issubclass(v, np.generic):
            return {"$dtype_type": np.dtype(v).str}
        if isinstance(v, type) and v in (float, int, bool, str):
            return {"$type": v.__name__}
        if isinstance(v, list):
            return [self.value(x, f"{path}.{i}", depth + 1) for i, x in enumerate(v)]
        if isinstance(v, tuple):
            return {"$tuple": [self.value(x, f"{path}.{i}", depth + 1) for i, x in enumerate(v)]}
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise TypeError(f"cannot save a dict with non-string keys ({path})")
            return {"$dict": {k: self.value(x, f"{path}.{k}", depth + 1) for k, x in v.items()}}
        if isinstance(v, slice):
            return {"$slice": [self.value(x, path, depth + 1) for x in (v.start, v.stop, v.step)]}
        if is_sklearn_estimator(v):
            return {"$estimator": encode_estimator(v, self.tensors, path, self.other)}
        if type(v).__module__.startswith("whyclust."):
            kind, sub, config = self.other(v)
            for key, arr in sub.items():
                self.tensors[f"{path}.{key}"] = arr
            names = feature_names_in(v)
            return {"$model": {"kind": kind, "config": config, "prefix": path, "names": names}}
        raise TypeError(f"cannot save a value of type {type(v).__name__} ({path})")


def _float(x: float) -> Any:
    if math.isfinite(x):
        return x
    return {"$float": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}


def _is_float_marker(x: Any) -> bool:
    return isinstance(x, dict) and set(x) == {"$float"}


def _encode_tree(root: Any, tensors: dict[str, np.ndarray], path: str) -> dict[str, Any]:
    """A _BisectingTree as pre-order arrays: centers, children (-1 = leaf), labels, scores."""
    nodes: list[Any] = []
    stack = [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        if node.left is not None:
            stack.extend([node.right, node.left])  # left is visited first
    index = {id(n): i for i, n in enumerate(nodes)}
    children = np.full((len(nodes), 2), -1, dtype=np.int64)
    labels = np.full(len(nodes), -1, dtype=np.int64)
    for i, n in enumerate(nodes):
        if n.left is not None:
            children[i] = index[id(n.left)], index[id(n.right)]
        else:
            labels[i] = int(n.label)
    tensors[f"{path}.centers"] = np.stack([np.asarray(n.center) for n in nodes])
    tensors[f"{path}.children"] = children
    tensors[f"{path}.labels"] = labels
    tensors[f"{path}.scores"] = np.asarray([float(n.score) for n in nodes], dtype=np.float64)
    return {"$tree": path}


# --- decoding ------------------------------------------------------------------------------


def decode_estimator(
    spec: Any, tensors: dict[str, np.ndarray], other: Callable[[Any, dict, Any], Any]
) -> Any:
    """Rebuild an estimator from :func:`encode_estimator`'s description and tensors.

    ``other(kind, tensors, config) -> model`` rebuilds an embedded whyclust model. Raises
    ``ValueError`` / ``TypeError`` / ``KeyError`` for anything inconsistent.
    """
    return _Decoder(tensors, other).estimator(spec, 0)


class _Decoder:
    def __init__(self, tensors: dict[str, np.ndarray], other: Callable) -> None:
        self.tensors = tensors
        self.other = other

    def estimator(self, spec: Any, depth: int) -> Any:
        if not isinstance(spec, dict) or set(spec) != {"class", "params", "attrs"}:
            raise ValueError("estimator description must have class, params and attrs")
        name = spec["class"]
        if name not in CLASSES:
            raise ValueError(f"estimator class {name!r} is not allowed in a whyclust file")
        self.admit(name)
        params, attrs = spec["params"], spec["attrs"]
        if not isinstance(params, dict) or not isinstance(attrs, dict):
            raise ValueError(f"{name}: params and attrs must be JSON objects")
        if name == "Pipeline" and params.get("memory") is not None:
            raise ValueError("a Pipeline in a file caches nowhere (memory must be null)")
        kwargs = {k: self.value(v, depth + 1, name, k) for k, v in params.items()}
        if name == "FunctionTransformer" and (
            kwargs.get("func") is not None or kwargs.get("inverse_func") is not None
        ):
            raise ValueError("a FunctionTransformer in a file must be the identity")
        fitted = {}
        for key, value in attrs.items():
            if key not in ATTRS[name]:
                raise ValueError(f"{name}: attribute {key!r} is not allowed in a whyclust file")
            if key == "_bisecting_tree":
                fitted[key] = self.tree(value)
            else:
                fitted[key] = self.value(value, depth + 1, name, key)
        est = self.build(name, kwargs, fitted)
        _check_consistent(est, name, attrs)
        return est

    def admit(self, name: str) -> None:
        """Refuse a class this decoder cannot build (every class of CLASSES here)."""

    def build(self, name: str, kwargs: dict[str, Any], fitted: dict[str, Any]) -> Any:
        """The estimator of class ``name`` from decoded parameters and fitted attributes."""
        est = _class(name)(**kwargs)
        if hasattr(est, "_validate_params"):
            est._validate_params()  # scikit-learn's own parameter constraints
        for key, value in fitted.items():
            setattr(est, key, value)
        if "_tol" in ATTRS[name] and fitted:  # k-means family: prediction threads
            from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

            est._n_threads = _openmp_effective_n_threads()
        return est

    def value(self, v: Any, depth: int, owner: str, attr: str) -> Any:
        if depth > _MAX_DEPTH:
            raise ValueError("model description nests too deeply")
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, list):
            return [self.value(x, depth + 1, owner, attr) for x in v]
        if not isinstance(v, dict) or len(v) == 0:
            raise ValueError(f"{owner}.{attr}: unexpected value {v!r}")
        tag = next(iter(v))
        if tag == "$objects":
            if set(v) != {"$objects", "shape", "dtype"} or not isinstance(v["$objects"], list):
                raise ValueError(f"{owner}.{attr}: bad object array")
            shape = tuple(v["shape"])
            if not all(isinstance(s, int) and s >= 0 for s in shape) or math.prod(shape) != len(
                v["$objects"]
            ):
                raise ValueError(f"{owner}.{attr}: object array shape does not match")
            items = [self.value(x, depth + 1, owner, attr) for x in v["$objects"]]
            if any(isinstance(x, (list, dict, tuple)) for x in items):
                raise ValueError(f"{owner}.{attr}: object arrays hold scalars only")
            kind = v["dtype"][1:2] if isinstance(v["dtype"], str) else ""
            if kind not in ("O", "U"):
                raise ValueError(f"{owner}.{attr}: bad dtype {v['dtype']!r}")
            out = np.empty(len(items), dtype=object)
            out[:] = items
            if kind == "U":  # the width comes from the strings, never from the file
                if not all(isinstance(x, str) for x in items):
                    raise ValueError(f"{owner}.{attr}: a string array holds non-strings")
                out = out.astype(str)
            return out.reshape(shape)
        if len(v) != 1:
            raise ValueError(f"{owner}.{attr}: unexpected value {v!r}")
        body = v[tag]
        if tag == "$tensor":
            if body not in self.tensors:
                raise KeyError(f"missing tensor {body!r}")
            arr = np.asarray(self.tensors[body])
            if (
                arr.dtype.kind == "f"
                and (owner, attr) not in _NAN_OK
                and not np.isfinite(arr).all()
            ):
                raise ValueError(f"{owner}.{attr} contains NaN or infinite values")
            return arr
        if tag == "$float":
            if body not in ("nan", "inf", "-inf"):
                raise ValueError(f"{owner}.{attr}: bad float {body!r}")
            return float(body)
        if tag == "$dtype":
            return _safe_dtype(body)
        if tag == "$dtype_type":
            return _safe_dtype(body).type
        if tag == "$type":
            types = {"float": float, "int": int, "bool": bool, "str": str}
            if body not in types:
                raise ValueError(f"{owner}.{attr}: type {body!r} is not allowed")
            return types[body]
        if tag == "$tuple" and isinstance(body, list):
            return tuple(self.value(x, depth + 1, owner, attr) for x in body)
        if tag == "$dict" and isinstance(body, dict):
            return {str(k): self.value(x, depth + 1, owner, attr) for k, x in body.items()}
        if tag == "$slice" and isinstance(body, list) and len(body) == 3:
            parts = [self.value(x, depth + 1, owner, attr) for x in body]
            if not all(
                p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in parts
            ):
                raise ValueError(f"{owner}.{attr}: bad slice")
            return slice(*parts)
        if tag == "$estimator":
            return self.estimator(body, depth + 1)
        if tag == "$model" and isinstance(body, dict) and set(body) == _MODEL_KEYS:
            prefix = str(body["prefix"]) + "."
            sub = {k[len(prefix) :]: a for k, a in self.tensors.items() if k.startswith(prefix)}
            model = self.other(body["kind"], sub, body["config"])
            return apply_feature_names(model, body["names"])
        raise ValueError(f"{owner}.{attr}: unknown value tag {tag!r}")

    def tree(self, v: Any) -> Any:
        from sklearn.cluster._bisect_k_means import _BisectingTree

        if not isinstance(v, dict) or set(v) != {"$tree"}:
            raise ValueError("BisectingKMeans tree must be a $tree reference")
        path = v["$tree"]
        try:
            centers = np.asarray(self.tensors[f"{path}.centers"])
            children = np.asarray(self.tensors[f"{path}.children"])
            labels = np.asarray(self.tensors[f"{path}.labels"])
            scores = np.asarray(self.tensors[f"{path}.scores"])
        except KeyError as exc:
            raise KeyError(f"missing BisectingKMeans tree tensor {exc}") from None
        n = centers.shape[0] if centers.ndim == 2 else -1
        if (
            n < 1
            or centers.dtype.kind != "f"
            or not np.isfinite(centers).all()
            or children.shape != (n, 2)
            or children.dtype.kind not in "iu"
            or labels.shape != (n,)
            or scores.shape != (n,)
        ):
            raise ValueError("BisectingKMeans tree arrays have inconsistent shapes")
        leaf = children[:, 0] < 0
        if not np.array_equal(leaf, children[:, 1] < 0):
            raise ValueError("BisectingKMeans tree: a node must have two children or none")
        refs = children[~leaf].reshape(-1)
        # pre-order: every node but the root is the child of exactly one earlier node
        if sorted(refs.tolist()) != list(range(1, n)) or np.any(
            children[~leaf] <= np.flatnonzero(~leaf)[:, None]
        ):
            raise ValueError("BisectingKMeans tree: children do not form a binary tree")
        if sorted(labels[leaf].tolist()) != list(range(int(leaf.sum()))) or np.any(
            labels[~leaf] != -1
        ):
            raise ValueError("BisectingKMeans tree: leaf labels must be 0..K-1")
        nodes = [
            _BisectingTree(center=centers[i].copy(), indices=None, score=float(scores[i]))
            for i in range(n)
        ]
        for i in range(n):
            if leaf[i]:
                nodes[i].label = int(labels[i])
            else:
                nodes[i].left, nodes[i].right = nodes[children[i, 0]], nodes[children[i, 1]]
        return nodes[0]


def _safe_dtype(text: Any) -> np.dtype:
    if not isinstance(text, str):
        raise ValueError(f"bad dtype {text!r}")
    dtype = np.dtype(text)
    if dtype.kind not in "biufOU" or dtype.fields is not None:
        raise ValueError(f"dtype {text!r} is not allowed")
    return dtype


#: fitted attributes that scikit-learn computes in floating point (a file with integers
#: there was edited)
_FLOAT_ATTRS = ("cluster_centers_", "means_", "weights_", "covariances_", "precisions_",
                "precisions_cholesky_", "components_", "mean_", "scale_", "var_", "center_",
                "min_", "max_abs_", "_X_mean", "explained_variance_")  # fmt: skip


def _check_consistent(est: Any, name: str, attrs: dict) -> None:
    """Shapes of the restored arrays against ``n_features_in_`` (a cheap corruption check)."""
    n_features = getattr(est, "n_features_in_", None)
    if attrs and name not in ("Pipeline", "ColumnTransformer", "FunctionTransformer"):
        if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
            raise ValueError(f"{name}: n_features_in_ must be a positive integer")
    names = getattr(est, "feature_names_in_", None)
    if names is not None and (np.asarray(names).shape != (n_features,)):
        raise ValueError(f"{name}: feature_names_in_ does not match n_features_in_")
    last_axis = ("cluster_centers_", "means_", "mean_", "scale_", "var_", "center_", "min_",
                 "max_abs_", "statistics_", "components_", "_X_mean")  # fmt: skip
    for attr in last_axis:
        arr = getattr(est, attr, None)
        if isinstance(arr, np.ndarray) and arr.ndim >= 1 and arr.shape[-1] != n_features:
            raise ValueError(f"{name}.{attr} has shape {arr.shape}, expected {n_features} features")
    for attr in _FLOAT_ATTRS:
        arr = getattr(est, attr, None)
        if isinstance(arr, np.ndarray) and arr.dtype.kind != "f":
            raise ValueError(f"{name}.{attr} must be floating-point, got dtype {arr.dtype}")
    if name in ("KMeans", "MiniBatchKMeans", "BisectingKMeans") and attrs:
        centers = getattr(est, "cluster_centers_", None)
        if not isinstance(centers, np.ndarray) or centers.ndim != 2 or centers.shape[0] < 1:
            raise ValueError(f"{name}: cluster_centers_ must be a (K, d) array")
        if name != "BisectingKMeans" and centers.shape[0] != est.n_clusters:
            raise ValueError(f"{name}: {centers.shape[0]} centres, but n_clusters={est.n_clusters}")
        labels = getattr(est, "labels_", None)
        if labels is not None and not (
            isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu"
        ):
            raise ValueError(f"{name}: labels_ must be a 1-D integer array")
        if labels is not None and labels.size and (
            int(labels.min()) < 0 or int(labels.max()) >= centers.shape[0]
        ):
            raise ValueError(f"{name}: labels_ must lie in [0, {centers.shape[0]})")
        tree = getattr(est, "_bisecting_tree", None)
        if name == "BisectingKMeans" and tree is not None:
            leaves = list(tree.iter_leaves())
            if np.shape(tree.center) != (n_features,) or len(leaves) != centers.shape[0]:
                raise ValueError(
                    f"{name}: the tree's centres do not match {centers.shape[0]} clusters of "
                    f"{n_features} features"
                )
        mean = getattr(est, "_X_mean", None)
        if name == "BisectingKMeans" and not (
            isinstance(mean, np.ndarray) and mean.shape == (n_features,)
        ):
            raise ValueError(f"{name}: _X_mean must be an array of {n_features} values")
    if name == "GaussianMixture" and attrs:
        k = est.n_components
        means = getattr(est, "means_", None)
        weights = getattr(est, "weights_", None)
        if not (
            isinstance(means, np.ndarray)
            and isinstance(weights, np.ndarray)
            and means.shape[0] == k
            and weights.shape == (k,)
        ):
            raise ValueError("GaussianMixture: means_ / weights_ do not match n_components")
        if not (np.all(np.isfinite(weights)) and np.all(weights > 0)
                and abs(float(np.sum(weights)) - 1.0) <= 1e-6):  # fmt: skip
            raise ValueError("GaussianMixture: weights_ must be positive and sum to 1")
        d = n_features
        expect = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}
        for attr in ("precisions_cholesky_", "covariances_", "precisions_"):
            arr = getattr(est, attr, None)
            if arr is not None and (
                not isinstance(arr, np.ndarray) or arr.shape != expect[est.covariance_type]
            ):
                raise ValueError(
                    f"GaussianMixture.{attr} must have shape {expect[est.covariance_type]} "
                    f"for covariance_type={est.covariance_type!r}"
                )
