"""Fitted scikit-learn models read as plain numpy arrays (no sklearn or torch import).

``mixture_arrays`` (GaussianMixture), ``bisecting_arrays`` (BisectingKMeans' tree) and
``fold_preprocessing``, which splits the chain in front of a Pipeline's clusterer into

- an *encoding* u = E(X) run by the fitted estimators themselves (``SimpleImputer``,
  ``OneHotEncoder``, column selection by a ``ColumnTransformer``): every column of u comes
  from one column of X (its *group*);
- one affine map z = A u + a, the product of the affine steps (``StandardScaler``,
  ``MinMaxScaler``, ``MaxAbsScaler``, ``RobustScaler``, ``PCA`` with or without whitening,
  ``TruncatedSVD``, ``"passthrough"``), read from their fitted attributes in float64.

Anything else is refused with an error naming the step. numpy only (no torch).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "AFFINE_STEPS",
    "ENCODING_STEPS",
    "Folded",
    "bisecting_arrays",
    "check_fitted_steps",
    "fold_preprocessing",
    "missing_cells",
    "mixture_arrays",
]

AFFINE_STEPS = (
    "StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "PCA", "TruncatedSVD",
)  # fmt: skip
ENCODING_STEPS = ("SimpleImputer", "OneHotEncoder", "ColumnTransformer")


@dataclass
class Folded:
    """Encoders, groups and the affine map of a preprocessing chain.

    ``encode(X)`` -> (n, p) float64; ``groups`` (p,) the input column of each u column;
    ``imputed`` [(input columns, missing_values)] of the imputers met first in a block;
    ``diag`` (p,) or ``linear`` (m, p) and ``offset`` (m,).
    """

    encode: Callable[[Any], np.ndarray]
    groups: np.ndarray
    offset: np.ndarray
    diag: np.ndarray | None = None
    linear: np.ndarray | None = None
    imputed: list[tuple[list[int], Any]] = field(default_factory=list)
    #: (p,) the column-wise scaling in front of the first step that mixes columns (PCA):
    #: pull-backs measure distances after it, so that they do not depend on X's units
    scale: np.ndarray | None = None

    @property
    def width(self) -> int:
        return int(self.groups.shape[0])

    def column_scale(self) -> np.ndarray:
        """(p,) the scaling of u's columns in front of any step that mixes them."""
        if self.diag is not None:
            return self.diag
        return self.scale if self.scale is not None else np.ones(self.width)

    def keeps_columns(self, n_in: int) -> bool:
        """Whether u's columns are the ``n_in`` input columns in order (no one-hot encoding,
        reordering or dropped columns; imputers may fill cells)."""
        return self.width == n_in and bool(np.array_equal(self.groups, np.arange(n_in)))

    def dense(self) -> np.ndarray:
        return np.diag(self.diag) if self.diag is not None else self.linear

    def then(self, lin: np.ndarray | None, diag: np.ndarray | None, off: np.ndarray) -> None:
        """Compose with the step z' = lin z + off (or diag * z + off)."""
        if diag is not None and self.diag is not None:
            self.offset = diag * self.offset + off
            self.diag = self.diag * diag
            return
        if self.diag is not None and self.scale is None:  # the first step mixing columns
            self.scale = self.diag.copy()
        a = self.dense()
        step = np.diag(diag) if diag is not None else lin
        self.linear, self.diag = step @ a, None
        self.offset = step @ self.offset + off


def _name(est: Any) -> str:
    return type(est).__name__


def _unsupported(est: Any, where: str) -> TypeError:
    return TypeError(
        f"cannot explain through the pipeline step {where!r} ({_name(est)}): only affine "
        f"steps ({', '.join(AFFINE_STEPS)}, 'passthrough'), SimpleImputer and OneHotEncoder "
        "(first in their column block) and a ColumnTransformer of those (first step) fold "
        "exactly into the cluster network; fit the clusterer on the transformed data and "
        "explain that instead"
    )


def affine_of(est: Any, where: str) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """(linear or None, diag or None, offset) of one fitted affine step, float64."""
    name = _name(est)

    def f(a: Any) -> np.ndarray:  # one layout: the fold's products round the same after a load
        return np.ascontiguousarray(a, dtype=np.float64)

    if name == "StandardScaler":
        n = int(est.n_features_in_)
        scale = f(est.scale_) if est.scale_ is not None else np.ones(n)
        mean = f(est.mean_) if getattr(est, "mean_", None) is not None and est.with_mean else 0.0
        return None, 1.0 / scale, -np.broadcast_to(mean, (n,)) / scale
    if name == "MinMaxScaler":
        if est.clip:
            raise TypeError(
                f"cannot explain through the pipeline step {where!r}: MinMaxScaler(clip=True) "
                "is not affine (refit it with clip=False)"
            )
        return None, f(est.scale_), f(est.min_)
    if name == "MaxAbsScaler":
        return None, 1.0 / f(est.scale_), np.zeros(int(est.n_features_in_))
    if name == "RobustScaler":
        n = int(est.n_features_in_)
        scale = f(est.scale_) if est.scale_ is not None else np.ones(n)
        center = f(est.center_) if est.center_ is not None else np.zeros(n)
        return None, 1.0 / scale, -center / scale
    if name in ("PCA", "TruncatedSVD"):
        comp = f(est.components_)
        mean = f(getattr(est, "mean_", 0.0)) if name == "PCA" else 0.0
        off = -(comp @ np.broadcast_to(mean, (comp.shape[1],)))
        if name == "PCA" and est.whiten:
            scale = np.sqrt(f(est.explained_variance_))
            scale[scale < np.finfo(scale.dtype).eps] = np.finfo(scale.dtype).eps
            comp, off = comp / scale[:, None], off / scale
        return comp, None, off
    raise _unsupported(est, where)


def _select(X: Any, cols: list[int]) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[:, cols]
    return X[:, cols]


def _dense(a: Any) -> np.ndarray:
    """float64 values of a block; a frame's missing cells (``pd.NA`` of pandas' nullable
    dtypes included) become NaN, and non-numeric columns are a ``TypeError`` naming them."""
    if hasattr(a, "toarray"):
        a = a.toarray()
    if hasattr(a, "columns"):
        bad = [str(c) for c in a.columns if getattr(a[c].dtype, "kind", "O") not in "biuf"]
        if bad:
            raise TypeError(
                f"X has non-numeric columns that no encoder of the pipeline takes: "
                f"{', '.join(bad)}; convert them to numbers or one-hot encode them"
            )
        return a.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        return np.asarray(a, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"X has values that are not numbers ({exc})") from None


def check_fitted_steps(steps: list[tuple[str, Any]]) -> None:
    """scikit-learn's NotFittedError for an unfitted step in front of the clusterer (not an
    AttributeError or a confusing column count later)."""
    for _, est in _flatten(steps):
        if _is_identity(est) or not type(est).__module__.startswith("sklearn"):
            continue
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(est)


def _missing_mask(values: Any, missing: Any) -> np.ndarray:
    arr = np.asarray(values)
    if missing is None or (isinstance(missing, float) and np.isnan(missing)):
        import pandas as pd

        return np.asarray(pd.isna(arr) if arr.dtype == object else np.isnan(arr.astype(float)))
    return arr == missing


def _is_identity(est: Any) -> bool:
    """None, "passthrough", or a FunctionTransformer without a function (a fitted
    ColumnTransformer's passthrough)."""
    if est is None or (isinstance(est, str) and est == "passthrough"):
        return True
    return _name(est) == "FunctionTransformer" and getattr(est, "func", 0) is None


def _flatten(steps: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for where, est in steps:
        if _name(est) == "Pipeline":
            out += [(f"{where}__{n}", e) for n, e in _flatten(list(est.steps))]
        else:
            out.append((where, est))
    return out


def fold_steps(steps: list[tuple[str, Any]], cols: list[int]) -> Folded:
    """Fold a chain of steps applied to the input columns ``cols``."""
    encoders: list[Any] = []
    groups = np.asarray(cols, dtype=np.int64)
    imputed: list[tuple[list[int], Any]] = []
    folded: Folded | None = None
    for where, est in _flatten(steps):
        if _is_identity(est):
            continue
        name = _name(est)
        if name in ("SimpleImputer", "OneHotEncoder"):
            if folded is not None:
                raise TypeError(
                    f"cannot explain through the pipeline step {where!r}: a {name} after an "
                    "affine step is not supported (put it first in its column block)"
                )
            if name == "SimpleImputer":
                groups = _imputer_groups(est, groups, where, imputed, first=not encoders)
            else:
                counts = getattr(est, "_n_features_outs", None)
                if counts is None or len(counts) != groups.shape[0]:
                    raise _unsupported(est, where)
                groups = np.repeat(groups, np.asarray(counts, dtype=np.int64))
            encoders.append(est)
            continue
        if name == "ColumnTransformer":
            raise TypeError(
                f"cannot explain through the pipeline step {where!r}: a ColumnTransformer "
                "is supported as the first step of the pipeline only"
            )
        lin, diag, off = affine_of(est, where)
        if folded is None:
            folded = Folded(_encoder(encoders, cols), groups, np.zeros(groups.shape[0]),
                            diag=np.ones(groups.shape[0]))  # fmt: skip
        width = folded.offset.shape[0]
        step_in = diag.shape[0] if diag is not None else lin.shape[1]
        if step_in != width:
            raise ValueError(f"step {where!r} expects {step_in} inputs, the chain gives {width}")
        folded.then(lin, diag, off)
    if folded is None:
        folded = Folded(_encoder(encoders, cols), groups, np.zeros(groups.shape[0]),
                        diag=np.ones(groups.shape[0]))  # fmt: skip
    folded.imputed = imputed
    return folded


def _imputer_groups(
    est: Any, groups: np.ndarray, where: str, imputed: list, first: bool
) -> np.ndarray:
    if getattr(est, "add_indicator", False):
        raise TypeError(
            f"cannot explain through the pipeline step {where!r}: SimpleImputer("
            "add_indicator=True) is not supported (its indicator columns are not affine)"
        )
    if not first:
        raise TypeError(f"the SimpleImputer {where!r} must come first in its column block")
    n_in = int(est.n_features_in_)
    fitted_names = getattr(est, "feature_names_in_", None)
    all_names = [f"x{i}" for i in range(n_in)] if fitted_names is None else list(fitted_names)
    all_names = [str(nm) for nm in all_names]
    kept_names = list(est.get_feature_names_out(all_names))
    kept = [all_names.index(str(nm)) for nm in kept_names]
    imputed.append(([int(g) for g in groups], est.missing_values))
    return groups[kept]


def _encoder(encoders: list[Any], cols: list[int]) -> Callable[[Any], np.ndarray]:
    def encode(X: Any) -> np.ndarray:
        if not encoders and not hasattr(X, "iloc") and X.shape[1] == len(cols):
            if cols == list(range(len(cols))):  # all columns, in order: no copy
                return np.asarray(X) if np.asarray(X).dtype.kind == "f" else _dense(X)
        block = _select(X, cols)
        for est in encoders:
            try:
                block = est.transform(block)
            except ValueError as exc:  # name the user's column, not the block's index
                raise ValueError(_name_the_column(exc, est, cols, X)) from None
        return _dense(block)

    return encode


def _name_the_column(exc: ValueError, est: Any, cols: list[int], X: Any) -> str:
    names = getattr(est, "feature_names_in_", None)
    if names is None and hasattr(X, "columns"):
        names = [X.columns[i] for i in cols]
    if names is None:
        names = [f"x{i}" for i in cols]
    text = str(exc)
    hit = re.search(r"in column (\d+)", text)
    if hit and int(hit.group(1)) < len(names):
        where = f"column {str(names[int(hit.group(1))])!r}"
        text = text[: hit.start()].rstrip() + text[hit.end() :]
    else:
        where = "column(s) " + ", ".join(repr(str(n)) for n in names)
    return f"{_name(est)} of the pipeline, {where}: {text}"


def fold_preprocessing(steps: list[tuple[str, Any]], n_inputs: int) -> Folded:
    """Fold the steps in front of a Pipeline's clusterer (X has ``n_inputs`` columns)."""
    check_fitted_steps(steps)
    flat = _flatten(steps)
    lead = [i for i, (_, e) in enumerate(flat) if not _is_identity(e)]
    if lead and _name(flat[lead[0]][1]) == "ColumnTransformer":
        ct_where, ct = flat[lead[0]]
        folded = _fold_column_transformer(ct, ct_where)
        for where, est in flat[lead[0] + 1 :]:
            if _is_identity(est):
                continue
            lin, diag, off = affine_of(est, where)
            folded.then(lin, diag, off)
        return folded
    return fold_steps(flat, list(range(n_inputs)))


def _fold_column_transformer(ct: Any, where: str) -> Folded:
    to_input = getattr(ct, "_transformer_to_input_indices", None)
    out_idx = getattr(ct, "output_indices_", None)
    if to_input is None or out_idx is None:
        raise TypeError(f"the ColumnTransformer {where!r} is not fitted, or too old a version")
    blocks: list[tuple[int, Folded]] = []
    for name, trans, _ in ct.transformers_:
        sl = out_idx.get(name)
        if sl is None or sl.stop == sl.start or (isinstance(trans, str) and trans == "drop"):
            continue
        cols = [int(i) for i in to_input[name]]
        if isinstance(trans, str) and trans == "passthrough":
            trans = None
        block = fold_steps([(f"{where}__{name}", trans)], cols)
        if block.offset.shape[0] != sl.stop - sl.start:
            raise ValueError(f"block {name!r} of {where!r} gives an unexpected width")
        blocks.append((sl.start, block))
    if not blocks:
        raise ValueError(f"the ColumnTransformer {where!r} outputs no columns")
    blocks.sort(key=lambda b: b[0])
    parts = [b for _, b in blocks]

    def encode(X: Any) -> np.ndarray:
        return np.concatenate([b.encode(X) for b in parts], axis=1)

    groups = np.concatenate([b.groups for b in parts])
    offset = np.concatenate([b.offset for b in parts])
    imputed = [i for b in parts for i in b.imputed]
    if all(b.diag is not None for b in parts):
        diag = np.concatenate([b.diag for b in parts])
        return Folded(encode, groups, offset, diag=diag, imputed=imputed)
    lin = np.zeros((offset.shape[0], groups.shape[0]))
    r = c = 0
    for b in parts:
        a = b.dense()
        lin[r : r + a.shape[0], c : c + a.shape[1]] = a
        r, c = r + a.shape[0], c + a.shape[1]
    scale = np.concatenate([b.column_scale() for b in parts])
    return Folded(encode, groups, offset, linear=lin, imputed=imputed, scale=scale)


def missing_cells(X: Any, imputed: list[tuple[list[int], Any]], n_inputs: int) -> np.ndarray:
    """(n, n_inputs) boolean: the cells an imputer of the chain filled in."""
    n = X.shape[0]
    mask = np.zeros((n, n_inputs), dtype=bool)
    for cols, missing in imputed:
        mask[:, cols] |= _missing_mask(_select(X, cols), missing)
    return mask


def mixture_arrays(model: Any) -> dict[str, Any]:
    """The fitted arrays of a ``GaussianMixture`` (``means``, ``chol``, ``weights``) and its
    ``covariance_type``; NotFittedError if it is not fitted."""
    if getattr(model, "precisions_cholesky_", None) is None or not hasattr(model, "means_"):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(
            f"This {type(model).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )
    if len(model.weights_) < 2:
        raise ValueError(
            f"this {type(model).__name__} has {len(model.weights_)} component: with one "
            "cluster there is no assignment to explain"
        )
    return {
        "means": np.asarray(model.means_, dtype=np.float64),
        "chol": np.asarray(model.precisions_cholesky_, dtype=np.float64),
        "weights": np.asarray(model.weights_, dtype=np.float64),
        "covariance_type": str(model.covariance_type),
    }


def bisecting_arrays(model: Any) -> dict[str, np.ndarray]:
    """The tree of a fitted ``BisectingKMeans`` as arrays (float64 centres in input space).

    ``left``, ``right`` (J, d): children of each internal node; ``signs`` (K, J): +1 / -1
    where leaf c lies under the left / right child of node j, 0 off c's path;
    ``divergence`` (K, K): the node where the paths of two leaves part.
    """
    tree = getattr(model, "_bisecting_tree", None)
    if tree is None or getattr(model, "cluster_centers_", None) is None:
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(
            f"This {type(model).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )
    # predict compares x with the children's centres plus the training mean (when kept)
    shift = np.asarray(getattr(model, "_X_mean", 0.0), dtype=np.float64)
    k = int(model.cluster_centers_.shape[0])
    if k < 2:
        raise ValueError(
            f"this {type(model).__name__} has {k} cluster: with one cluster there is no "
            "assignment to explain"
        )
    left, right, paths = [], [], {}
    stack = [(tree, [])]
    while stack:
        node, path = stack.pop()
        if node.left is None:
            paths[int(node.label)] = path
            continue
        j = len(left)
        left.append(np.asarray(node.left.center, dtype=np.float64) + shift)
        right.append(np.asarray(node.right.center, dtype=np.float64) + shift)
        stack.append((node.right, [*path, (j, -1.0)]))
        stack.append((node.left, [*path, (j, 1.0)]))
    if sorted(paths) != list(range(k)) or len(left) != k - 1:
        raise ValueError("the bisection tree does not match cluster_centers_ (corrupt model?)")
    signs = np.zeros((k, k - 1))
    for c, path in paths.items():
        for j, s in path:
            signs[c, j] = s
    divergence = np.zeros((k, k), dtype=np.int64)
    for c in range(k):
        for o in range(k):
            if c != o:
                parted = (signs[c] * signs[o]) < 0  # exactly one node: where paths part
                divergence[c, o] = int(np.argmax(parted))
    return {"left": np.stack(left), "right": np.stack(right), "signs": signs,
            "divergence": divergence}  # fmt: skip
