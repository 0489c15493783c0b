"""Fitted affine Pipelines read from a model file without importing scikit-learn.

Importing scikit-learn takes most of a short ``whyclust explain``. A file whose model is a
Pipeline of affine steps (scalers, PCA, TruncatedSVD, column selection by a
ColumnTransformer) ending in k-means is read here into :class:`Fitted` stand-ins: each
carries the class name, constructor parameters and fitted attributes of its estimator,
decoded with the same checks as :func:`whyclust.io.load`. They have no ``fit``,
``transform`` or ``predict``: :func:`whyclust.explain` folds them into the cluster
network exactly as it folds the real estimators, and nothing else takes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from whyclust._features import input_step
from whyclust._sklearn_io import _Decoder

__all__ = ["LIGHT_CLASSES", "Fitted", "decode_light"]

#: the classes a light read builds; a file with any other needs scikit-learn
LIGHT_CLASSES = frozenset({
    "Pipeline", "ColumnTransformer", "FunctionTransformer", "StandardScaler", "MinMaxScaler",
    "MaxAbsScaler", "RobustScaler", "PCA", "TruncatedSVD", "KMeans", "MiniBatchKMeans",
})  # fmt: skip
#: parameters the folding code reads, which scikit-learn's own checks require to be bool
_BOOL_PARAMS = {
    "StandardScaler": ("with_mean", "with_std"),
    "MinMaxScaler": ("clip",),
    "RobustScaler": ("with_centering", "with_scaling"),
    "PCA": ("whiten",),
}


class Fitted:
    """A fitted estimator's parameters and attributes, without its methods."""

    #: routed like the scikit-learn class of the same name (whyclust.engine.kinds)
    reads_as_sklearn = True

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(read without scikit-learn)"


class FittedPipeline(Fitted):
    """The steps of a fitted Pipeline; slicing and the input names work as in scikit-learn."""

    steps: list[tuple[str, Any]]

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return _light_type("Pipeline")({"steps": self.steps[index], "memory": None})
        return self.steps[index][1]

    @property
    def n_features_in_(self) -> Any:
        return getattr(input_step(self), "n_features_in_", None)

    @property
    def feature_names_in_(self) -> Any:
        return getattr(input_step(self), "feature_names_in_", None)


_TYPES: dict[str, type] = {}


def _light_type(name: str) -> type:
    """A :class:`Fitted` subclass named like the scikit-learn class (the folding code
    dispatches on class names)."""
    if name not in _TYPES:
        base = FittedPipeline if name == "Pipeline" else Fitted
        _TYPES[name] = type(name, (base,), {"__module__": __name__})
    return _TYPES[name]


class _NeedsSklearn(Exception):
    pass


class _LightDecoder(_Decoder):
    """:class:`_Decoder`'s checks, building :class:`Fitted` stand-ins of the light classes."""

    def admit(self, name: str) -> None:
        if name not in LIGHT_CLASSES:
            raise _NeedsSklearn(name)

    def build(self, name: str, kwargs: dict[str, Any], fitted: dict[str, Any]) -> Any:
        for key in _BOOL_PARAMS.get(name, ()):
            if not isinstance(kwargs.get(key), bool):
                raise ValueError(f"{name}: parameter {key!r} must be true or false")
        if name == "Pipeline":
            steps = kwargs.get("steps")
            if not isinstance(steps, list) or not all(
                isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str) for s in steps
            ):
                raise ValueError("Pipeline: steps must be (name, estimator) pairs")
        return _light_type(name)({**kwargs, **fitted})


def decode_light(spec: Any, tensors: dict[str, np.ndarray]) -> Any:
    """The :class:`Fitted` tree of an affine k-means Pipeline's description, or None when
    the file holds anything else (then it needs :func:`whyclust.io.load`)."""

    def no_models(*_: Any) -> Any:
        raise _NeedsSklearn("embedded model")

    try:
        model = _LightDecoder(tensors, no_models).estimator(spec, 0)
    except _NeedsSklearn:
        return None
    if type(model).__name__ != "Pipeline" or not model.steps:
        return None
    if type(model.steps[-1][1]).__name__ not in ("KMeans", "MiniBatchKMeans"):
        return None
    return model
