"""Tables for the command line: reading DATA, the stored preparation, the model's input.

Kept apart from :mod:`whyclust.cli` (the click commands) so that each stays readable; it
imports nothing heavy at module level.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def is_table(path: str) -> bool:
    return Path(path).suffix.lower() in TABLE_SUFFIXES and not Path(path).is_dir()


def read_any(
    path, label_column, quiet, drop=None, sep=None, na_values=None, categorical=(), header=None,
    numeric=(),
):
    """``(frame, None, y)`` for a table (strictly parsed, notes printed), else ``(None, X, y)``.

    ``categorical`` / ``numeric``: a fitted model's text and number columns (kept when
    empty; a text cell in a number column is an error naming its line)."""
    from whyclust import datasets

    if not is_table(path):
        if drop or sep or na_values or header is not None:
            raise ValueError(
                "--drop, --sep, --header and --na-values apply to CSV and Parquet files"
            )
        X, y, _ = datasets.read_data(path, label_column=label_column, progress=not quiet)
        return None, X, y
    from whyclust._csv import MISSING

    frame, y, notes = datasets.read_frame(
        path,
        label_column=label_column,
        drop=split_list(drop),
        sep=sep,
        missing=(*MISSING, *split_list(na_values)),
        categorical=categorical,
        header=header,
        numeric=numeric,
    )
    for note in notes:
        if not quiet:
            click.echo(f"note: {note}", err=True)
    return frame, None, y


def text_columns(frame) -> list[str]:
    from whyclust._validation import is_numeric_dtype

    return [
        str(c) for c, t in zip(frame.columns, frame.dtypes, strict=True) if not is_numeric_dtype(t)
    ]


def refuse_text_columns(frame, path: str, hint: str) -> None:
    text = text_columns(frame)
    if text:
        shown = ", ".join(text[:5]) + (" ..." if len(text) > 5 else "")
        raise TypeError(f"{Path(path).name} has non-numeric columns: {shown} ({hint})")


def scaler(name: str):
    from sklearn import preprocessing

    return {
        "standard": preprocessing.StandardScaler,
        "robust": preprocessing.RobustScaler,
        "minmax": preprocessing.MinMaxScaler,
    }[name]()


def table_pipeline(frame, est, scale: str, impute: str, categorical: str | None, data: str):
    """Pipeline(ColumnTransformer(numeric: impute + scale, text: one-hot), clusterer)."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from whyclust.datasets import check_table_finite

    text = text_columns(frame)
    if text and categorical is None:
        refuse_text_columns(
            frame,
            data,
            hint="one-hot encode them with --categorical auto, leave them out with --drop, "
            "or name the label column with --label-column",
        )
    if categorical not in (None, "auto"):
        unnamed = [c for c in text if c not in set(split_list(categorical))]
        if unnamed:
            raise TypeError(
                f"{Path(data).name} has non-numeric columns not named by --categorical: "
                f"{', '.join(unnamed[:5])} (add them, use --categorical auto, or --drop them)"
            )
    numeric = [str(c) for c in frame.columns if str(c) not in set(text)]
    if numeric:
        values = frame[numeric].to_numpy(dtype=np.float64)
        if impute == "none":
            check_table_finite(values, frame[numeric], Path(data).name, hint=" (use --impute)")
        else:  # missing cells are filled; infinite ones never are
            check_table_finite(
                np.where(np.isnan(values), 0.0, values), frame[numeric], Path(data).name
            )
            empty = [c for c in numeric if frame[c].isna().all()]
            if empty:
                raise ValueError(
                    f"{Path(data).name}: column {empty[0]!r} has no value to impute from"
                )
    parts: list[tuple[str, Any, list[str]]] = []
    steps: list[tuple[str, Any]] = []
    if impute != "none":
        from sklearn.impute import SimpleImputer

        steps.append(("impute", SimpleImputer(strategy=impute)))
    if scale != "none":
        steps.append(("scale", scaler(scale)))
    if numeric:
        parts.append(("numeric", Pipeline(steps) if steps else "passthrough", numeric))
    if text:
        from sklearn.preprocessing import OneHotEncoder

        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        parts.append(("categorical", encoder, text))
    note = f"{scale} scaling" if scale != "none" else "no scaling"
    if impute != "none":
        note += f", {impute} imputation"
    if text:
        note += f", {len(text)} one-hot encoded"
    if not steps and not text:
        return NamedFit(est), note  # nothing to prepare: the bare clusterer, fitted by name
    prepare = ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
    return Pipeline([("prepare", prepare), ("cluster", est)]), note


class NamedFit:
    """Fit a bare clusterer on a numeric frame and make sure it records the column names."""

    def __init__(self, est: Any) -> None:
        self.est = est
        self.steps = None

    def fit(self, frame):
        self.est.fit(frame)
        if getattr(self.est, "feature_names_in_", None) is None:  # e.g. KernelKMeans
            import numpy as np

            self.est.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        return self.est


def timed_fit(est, X, quiet: bool):
    last = last_step(est)
    params = last.get_params() if hasattr(last, "get_params") else {}
    own = type(last).__module__.startswith("whyclust")  # scikit-learn's verbose is noisy
    if own and "verbose" in params and not quiet:
        last.set_params(verbose=1 if isinstance(params["verbose"], int) else True)
    import warnings

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # one line each, not a source path
        warnings.simplefilter("always")
        fitted = est.fit(X)
    elapsed = time.perf_counter() - start
    for w in caught:
        if quiet:
            continue
        if type(w.message).__name__ == "ConvergenceWarning" or w.category is UserWarning:
            click.echo(f"note: {' '.join(str(w.message).split())}", err=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return fitted, elapsed


def last_step(model: Any) -> Any:
    if isinstance(model, NamedFit):
        return model.est
    steps = getattr(model, "steps", None)
    return steps[-1][1] if isinstance(steps, list) and steps else model


def is_pipeline(model: Any) -> bool:
    return isinstance(getattr(model, "steps", None), list)


def model_input(est, data, model_path, label_column, quiet, drop, sep, na_values, header=None,
                leave_out=()):  # fmt: skip
    """``(X, names, y)``: the raw table for a Pipeline, numbers otherwise, and the labels.

    ``leave_out``: columns the model file says are not features (``fit --label-column`` /
    ``--drop``), dropped with a note where the table has them. Column names are then checked
    against the model's fitted names (missing, extra or reordered columns are an error),
    and for arrays the number of features.
    """
    from whyclust._features import check_feature_names

    text = stored_text_columns(est)
    unused = {*text, *dropped_columns(est)}
    fitted = [str(c) for c in getattr(est, "feature_names_in_", ())]
    frame, X, y = read_any(data, label_column, quiet, drop, sep, na_values, text, header,
                           numeric=[c for c in fitted if c not in unused])  # fmt: skip
    if frame is None:
        check_n_features(est, X, data, model_path)
        return X, None, y
    again = [c for c in leave_out if c in frame.columns and c not in fitted]
    if again:
        frame = frame.drop(columns=again)
        if not quiet:
            click.echo(f"note: leaving out {', '.join(map(repr, again))}: not features of "
                       "the model (--label-column / --drop at fit)", err=True)  # fmt: skip
    names = [str(c) for c in frame.columns]
    try:
        check_feature_names(est, frame)
    except ValueError as exc:
        extra = [c for c in names if c not in fitted] if fitted else []
        hint = (f"; leave {', '.join(map(repr, extra))} out with --label-column or --drop"
                if extra else "")  # fmt: skip
        raise ValueError(f"{Path(data).name} does not fit {model_path}: {exc}{hint}") from None
    if is_pipeline(est):
        _refuse_unfilled(est, frame, data)
        if not quiet:
            for note in _unseen_categories(est, frame):
                click.echo(f"note: {note}", err=True)
        return frame, names, y
    from whyclust._validation import as_float_array
    from whyclust.datasets import check_table_finite

    refuse_text_columns(frame, data, hint="--drop them")
    X = as_float_array(frame, name=Path(data).name, allow_nan=True)
    check_table_finite(X, frame, Path(data).name)
    check_n_features(est, X, data, model_path)
    if getattr(est, "feature_names_in_", None) is not None:
        return frame, names, y  # names reach wc.explain, which checks them again
    return X, names, y


def read_ids(
    data: str, column: str, sep: str | None, na_values: str | None, header: bool | None = None
) -> list[str]:
    """The values of one column of a table, as text (ids need not be numbers)."""
    from whyclust._csv import MISSING, MissingColumns
    from whyclust.datasets import read_frame

    if not is_table(data):
        raise ValueError("--id-column applies to CSV and Parquet files")
    try:
        frame, _, _ = read_frame(
            data,
            sep=sep,
            missing=(*MISSING, *split_list(na_values)),
            categorical=(column,),
            header=header,
        )
    except MissingColumns:
        raise ValueError(f"--id-column {column!r} is not a column of {Path(data).name}") from None
    values = frame[column]
    if values.isna().any():
        raise ValueError(f"--id-column {column!r} has empty cells")
    return [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in values]


def point_ids(data: str, id_column: str | None, drop: str | None, sep: str | None,
              na_values: str | None, header: bool | None) -> tuple[list[str] | None, str | None]:
    """The points' names and the ``--drop`` list: ``--id-column``'s values (the column is
    then dropped from the features), an image folder's file paths, or None."""
    if id_column is not None:
        ids = read_ids(data, id_column, sep, na_values, header)
        return ids, ",".join([*([drop] if drop else []), id_column])
    if Path(data).is_dir():
        from whyclust.datasets import image_files

        return [p.relative_to(data).as_posix() for p in image_files(data)[0]], drop
    return None, drop


def explanation_frame(expl, names: list[str] | None, ids: list[str] | None, id_name: str):
    """The table ``explain`` writes: the points' ids (if any), cluster, target (where it
    differs), logit, then one relevance column per feature."""
    import numpy as np
    import pandas as pd

    rel = np.asarray(expl.relevance).reshape(expl.n_samples, -1)
    d = rel.shape[1]
    cols = list(names) if names is not None and len(names) == d else [f"x{i}" for i in range(d)]
    reserved = {"cluster", "target", "logit"}
    cols = [f"relevance_{c}" if c in reserved else c for c in cols]
    frame = pd.DataFrame(rel, columns=cols)
    frame.insert(0, "logit", np.asarray(expl.logit))
    if not np.array_equal(expl.target, expl.cluster):
        frame.insert(0, "target", np.asarray(expl.target))
    frame.insert(0, "cluster", np.asarray(expl.cluster))
    if ids is not None:
        if id_name in frame.columns:
            raise ValueError(f"--id-column {id_name!r} would clash with an output column")
        if len(ids) != expl.n_samples:
            raise ValueError(f"{len(ids)} ids for {expl.n_samples} points (did DATA change?)")
        frame.insert(0, id_name, ids)
    return frame


def _leading_parts(est: Any) -> list[tuple[Any, list[str]]]:
    """(transformer, input column names) of a stored Pipeline's leading ColumnTransformer;
    columns given by position or by a boolean mask are named by the Pipeline's inputs."""
    import numpy as np

    from whyclust._features import input_step, model_feature_names

    if not is_pipeline(est) or not est.steps:
        return []
    names = model_feature_names(est) or []
    out = []
    for _, part, columns in getattr(input_step(est), "transformers_", None) or []:
        if isinstance(columns, slice) and isinstance(columns.start or columns.stop, str):
            start = 0 if columns.start is None else names.index(columns.start)
            stop = len(names) if columns.stop is None else names.index(columns.stop) + 1
            cols = np.arange(start, stop)  # a slice of labels includes its end
        elif isinstance(columns, slice):
            cols = np.arange(len(names))[columns]
        else:
            cols = np.atleast_1d(np.asarray(columns))
        if cols.dtype == bool:
            cols = np.flatnonzero(cols)
        out.append((part, [names[c] if isinstance(c, int) and -len(names) <= c < len(names)
                           else str(c) for c in cols.tolist()]))  # fmt: skip
    return out


def _part_steps(part: Any) -> list[Any]:
    """The estimators of one ColumnTransformer part: a Pipeline's steps, or the part."""
    return [s for _, s in getattr(part, "steps", None) or []] or [part]


def _step_named(steps: list[Any], name: str) -> Any:
    """The first step whose class name contains ``name`` (e.g. "Imputer"), or None."""
    return next((s for s in steps if name in type(s).__name__), None)


def _refuse_unfilled(est: Any, frame, data: str) -> None:
    """An infinite cell in a column of numbers the stored Pipeline reads, or a missing one
    where it does not impute, is an error naming its line and column."""
    import numpy as np

    columns: list[str] = []
    imputed: set[str] = set()
    for part, cols in _leading_parts(est):
        steps = _part_steps(part)
        if (isinstance(part, str) and part == "drop") or (
            _step_named(steps, "OneHotEncoder") is not None
        ):
            continue
        if _step_named(steps, "Imputer") is not None:
            imputed.update(cols)
        columns += [c for c in cols if c in frame.columns and c not in columns]
    if not columns:
        return
    try:
        values = frame[columns].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        return  # text where numbers belong: the model's own checks name it
    bad = np.isinf(values) | (np.isnan(values) & ~np.isin(columns, list(imputed)))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        lines = frame.attrs.get("lines")
        where = f"line {int(lines[row])}" if lines is not None else f"data row {row + 1}"
        what = ("a missing value (empty or NaN) that the model, fitted without --impute, "
                "cannot fill in" if np.isnan(values[row, col]) else "an infinite value")
        raise ValueError(f"{Path(data).name} {where} in column {columns[col]!r}: {what}")


def _unseen_categories(est: Any, frame) -> list[str]:
    """One note per one-hot encoded column with values the encoder did not see at fit:
    their indicator columns are all 0 (the encoder ignores unknown categories)."""
    notes = []
    for part, cols in _leading_parts(est):
        steps = _part_steps(part)
        encoder = _step_named(steps, "OneHotEncoder")
        if encoder is None or getattr(encoder, "categories_", None) is None:
            continue
        imputes = _step_named(steps, "Imputer") is not None
        for col, cats in zip(cols, encoder.categories_, strict=False):
            if col not in frame.columns:
                continue
            values = frame[col]
            unseen = ~values.isin(list(cats)) & ~(values.isna() & imputes)
            if not unseen.any():
                continue
            rows = unseen.to_numpy().nonzero()[0]
            lines = frame.attrs.get("lines")
            first = f"line {int(lines[rows[0]])}" if lines is not None else f"row {rows[0] + 1}"
            shown = ", ".join(repr(v) for v in values[unseen].drop_duplicates().head(3))
            notes.append(
                f"column {col!r}: {len(rows)} row(s) (first at {first}) hold categories not "
                f"seen at fit ({shown}); their one-hot columns are all 0"
            )
    return notes


def stored_text_columns(est: Any) -> tuple[str, ...]:
    """Columns the stored Pipeline one-hot encodes as text (``fit --categorical`` may name
    columns of numbers): explain and report must read them as text again."""
    import numpy as np

    out: list[str] = []
    for part, columns in _leading_parts(est):
        categories = getattr(part, "categories_", None)
        if type(part).__name__ == "OneHotEncoder" and categories is not None:
            if all(getattr(c, "dtype", None) == np.dtype(object) for c in categories):
                out.extend(columns)
    return tuple(out)


def dropped_columns(est: Any) -> list[str]:
    """Input columns a Pipeline's leading ColumnTransformer drops (they may hold anything)."""
    return [c for part, columns in _leading_parts(est)
            if isinstance(part, str) and part == "drop" for c in columns]  # fmt: skip


def check_n_features(est, X, data: str, model_path: str) -> None:
    d = 1
    for s in X.shape[1:]:
        d *= int(s)
    expected = getattr(est, "n_features_in_", None)
    if expected is None:
        expected = getattr(est, "n_features", None)
    if isinstance(expected, int) and d != expected:
        raise ValueError(
            f"{data} has {d} features, but the model in {model_path} expects {expected}"
        )


def model_n_clusters(model: Any, expl=None) -> int:
    last = last_step(model)
    centers = getattr(last, "cluster_centers_", None)
    if centers is not None:
        return int(centers.shape[0])
    for attr in ("n_clusters", "n_components"):
        value = getattr(last, attr, None)
        if isinstance(value, int):
            return value
    return int(expl.cluster.max()) + 1 if expl is not None and expl.n_samples else 0


def refuse_empty_clusters(labels, n_clusters: int, rows, data: str) -> None:
    """A model with clusters no point of DATA falls in is not saved (too few distinct rows)."""
    import numpy as np

    used = int(np.count_nonzero(np.bincount(labels, minlength=n_clusters)))
    if used < n_clusters:
        import pandas as pd

        distinct = len(pd.DataFrame(np.asarray(rows).reshape(len(labels), -1)).drop_duplicates())
        raise ValueError(
            f"only {used} of the {n_clusters} clusters hold a point of {Path(data).name} "
            f"({distinct} distinct rows): lower -k / --n-clusters"
        )


#: column names a labels file may use for its label column
_LABEL_NAMES = ("label", "labels", "y", "target", "class")


def read_label_file(path: Path, n: int):
    """``--labels FILE``: a ``.npy`` array, or a delimited text file (delimiter sniffed as
    for DATA) of one column or with one column named like a label (``label``, ``y``,
    ``target``, ``class``); refuses missing labels and other layouts instead of guessing."""
    import numpy as np

    from whyclust._csv import read_table
    from whyclust.metrics import first_missing

    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False).reshape(-1)
    table = read_table(path)
    if len(table.names) > 1:
        named = [i for i, c in enumerate(table.names) if c.strip().lower() in _LABEL_NAMES]
        if len(named) != 1:
            raise ValueError(
                f"{path.name} has {len(table.names)} columns ({', '.join(table.names)}): "
                "give a file of one column, or name its label column 'label'"
            )
        col, lines = table.columns[named[0]], table.lines
    else:
        col, lines = table.columns[0], table.lines
        first = table.names[0].strip().lstrip("+-").replace(".", "", 1)
        if col.shape[0] == n - 1 or first.isdigit():  # a first label taken for a name
            table = read_table(path, header=False)
            col, lines = table.columns[0], table.lines
    missing = first_missing(col)
    if missing is not None:
        raise ValueError(f"{path.name} line {int(lines[missing])} has no label")
    if col.dtype.kind == "f" and np.all(col == np.round(col)):
        return col.astype(np.int64)
    return col.astype(str) if col.dtype == object else col

