"""Column names of the data against those a model was fitted with (as scikit-learn checks).

A model fitted on a DataFrame records its columns in ``feature_names_in_``; explaining a
frame whose columns are missing, extra or in another order would silently compute on the
wrong features, so :func:`check_feature_names` refuses it, naming the columns.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "check_feature_names",
    "data_feature_names",
    "input_step",
    "model_feature_names",
    "pipeline_n_features",
]


def input_step(pipeline: Any) -> Any:
    """The first step of a Pipeline that is not None or ``"passthrough"``: the one that
    records the Pipeline's input columns (scikit-learn asks the first step, a string)."""
    for _, est in pipeline.steps:
        if est is not None and not (isinstance(est, str) and est == "passthrough"):
            return est
    return None


def pipeline_n_features(pipeline: Any) -> int | None:
    """The number of input columns a fitted Pipeline was fitted with, or None."""
    n = getattr(input_step(pipeline), "n_features_in_", None)
    return None if n is None else int(n)

_SHOWN = 8  # names listed per kind of mismatch


def model_feature_names(model: Any) -> list[str] | None:
    """``feature_names_in_`` of a model, or of a Pipeline's first step; None if absent."""
    names = getattr(model, "__dict__", {}).get("feature_names_in_")
    if names is None and isinstance(getattr(model, "steps", None), list):  # a Pipeline
        step = input_step(model)
        return None if step is None else model_feature_names(step)
    return None if names is None else [str(c) for c in names]


def data_feature_names(X: Any) -> list[str] | None:
    """Column names of a DataFrame when all are strings (as scikit-learn uses them), None
    when none are; a mix of string and other names is a ``TypeError``, as in scikit-learn
    (such names could not be checked against the fitted ones)."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "dtypes"):
        return None
    names = list(columns)
    is_str = [isinstance(c, str) for c in names]
    if not names or not any(is_str):
        return None
    if not all(is_str):
        odd = [c for c, s in zip(names, is_str, strict=True) if not s]
        raise TypeError(
            "X's column names mix strings and other types (not strings: "
            f"{', '.join(repr(c) for c in odd[:5])}{', ...' if len(odd) > 5 else ''}): "
            "name every column with a string, e.g. "
            "X.columns = X.columns.astype(str)"
        )
    return names


def check_feature_names(model: Any, X: Any) -> None:
    """Raise ``ValueError`` unless ``X``'s columns are the model's fitted columns, in order.

    Only a DataFrame (string column names) against a model fitted with names is checked: a
    plain array, or a model fitted without names, passes (scikit-learn warns in those cases;
    whyclust accepts silently). The message lists the missing, unexpected and reordered
    columns.
    """
    fitted = model_feature_names(model)
    given = data_feature_names(X)
    if fitted is None or given is None or given == fitted:
        return
    fitted_set, given_set = set(fitted), set(given)
    parts = []
    missing = [c for c in fitted if c not in given_set]
    extra = [c for c in given if c not in fitted_set]
    if missing:
        parts.append(f"missing {_names(missing)}")
    if extra:
        parts.append(f"unexpected {_names(extra)}")
    if not missing and not extra:
        if len(given) != len(fitted):
            dupes = sorted({c for c in given if given.count(c) > 1})
            parts.append(f"repeated {_names(dupes or given)}")
        else:
            moved = [g for g, f in zip(given, fitted, strict=True) if g != f]
            parts.append(
                f"in another order ({_names(moved)} moved; expected order: {_names(fitted)})"
            )
    raise ValueError(
        "the columns of X do not match the feature names the model was fitted with: "
        + "; ".join(parts)
    )


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(c) for c in names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
