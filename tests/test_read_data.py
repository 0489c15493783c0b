"""read_data: tables, arrays and image folders in; clear ValueError / TypeError for bad files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from whyclust.datasets import read_data


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- tables -----------------------------------------------------------------------------


def test_csv_with_header_and_labels(tmp_path):
    path = write(tmp_path, "d.csv", "a,b,kind\n1,2.5,cat\n3,-4,dog\n5,6e-3,cat\n")
    X, y, names = read_data(path, label_column="kind")
    np.testing.assert_array_equal(X, [[1, 2.5], [3, -4], [5, 6e-3]])
    assert names == ["a", "b"]
    assert list(y) == ["cat", "dog", "cat"]


def test_csv_without_header_keeps_the_first_row(tmp_path):
    with pytest.warns(UserWarning, match="read as the first data row"):
        X, _, names = read_data(write(tmp_path, "d.csv", "1,2\n3,4\n5,6\n"))
    assert X.shape == (3, 2)
    assert names == ["x0", "x1"]


def test_pandas_labels_of_unnamed_columns_are_a_header(tmp_path):
    """``pd.DataFrame(X).to_csv(index=False)`` writes 0, 1, ..., d-1 as its first line."""
    table = np.arange(12.0).reshape(4, 3) / 7
    pd.DataFrame(table).to_csv(tmp_path / "u.csv", index=False)
    with pytest.warns(UserWarning, match="read as column names"):
        X, _, names = read_data(tmp_path / "u.csv")
    assert names == ["0", "1", "2"]
    np.testing.assert_allclose(X, table, rtol=1e-15)


def test_tsv_and_parquet(tmp_path):
    X, _, _ = read_data(write(tmp_path, "d.tsv", "a\tb\n1\t2\n3\t4\n"))
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    frame = pd.DataFrame({"u": [1.0, 2.0], "v": [3.0, 4.0], "label": [0, 1]})
    frame.to_parquet(tmp_path / "d.parquet")
    X, y, names = read_data(tmp_path / "d.parquet", label_column="label")
    assert X.dtype == np.float64 and names == ["u", "v"]
    np.testing.assert_array_equal(y, [0, 1])


def test_npy_tabular_and_images(tmp_path):
    A = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.save(tmp_path / "a.npy", A)
    X, y, names = read_data(tmp_path / "a.npy")
    np.testing.assert_array_equal(X, A)
    assert y is None and names is None
    np.save(tmp_path / "img.npy", np.zeros((3, 1, 4, 4), dtype=np.uint8))
    assert read_data(tmp_path / "img.npy")[0].shape == (3, 1, 4, 4)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_npy_with_pickled_objects_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    np.save(tmp_path / "obj.npy", np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    (tmp_path / "raw.npy").write_bytes(pickle.dumps(_Payload(marker)))
    for name in ("obj.npy", "raw.npy"):
        with pytest.raises(ValueError, match=r"not a plain numeric .npy"):
            read_data(tmp_path / name)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("name", "content", "error", "match"),
    [
        ("empty.csv", "", ValueError, "is empty"),
        ("blank.csv", "\n\n", ValueError, "empty"),
        ("header.csv", "a,b\n", ValueError, "header but no rows"),
        ("long.csv", "a,b\n1,2\n3,4,5,6\n", ValueError, r"line 3 has 4 fields but the header"),
        ("short.csv", "a,b,c\n1,2,3\n4,5\n", ValueError, r"line 3 has 2 fields .* has 3"),
        ("text.csv", "a,b\n1,x\n2,y\n", TypeError, "non-numeric columns: b"),
        (
            "nan.csv",
            "a,b\n1,2\nnan,3\n",
            ValueError,
            r"missing value \(empty or NaN\) in line 3, column 'a'",
        ),
        ("inf.csv", "a,b\n1,2\n3,inf\n", ValueError, "infinite value in line 3, column 'b'"),
        ("only_label.csv", "y\n1\n2\n", ValueError, "no feature columns"),
        ("data.xlsx", "a,b\n1,2\n", ValueError, "unsupported file type '.xlsx'"),
        ("bin.csv", "\x00\x01\x02", ValueError, "csv"),
        ("vec.npy", None, ValueError, "2-D or 3-D or 4-D"),
        ("junk.npy", "not numpy", ValueError, "not a plain numeric .npy"),
        ("junk.parquet", "not parquet", ValueError, "not a readable Parquet"),
    ],
)
def test_bad_files(tmp_path, name, content, error, match):
    path = tmp_path / name
    if content is None:
        np.save(path, np.arange(5.0))
    else:
        path.write_text(content)
    label = "y" if name == "only_label.csv" else None
    with pytest.raises(error, match=match):
        read_data(path, label_column=label)


def test_missing_file_and_label_column(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_data(tmp_path / "nope.csv")
    path = write(tmp_path, "d.csv", "a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"label column 'y' not in d.csv; columns: a, b"):
        read_data(path, label_column="y")


# --- image folders ----------------------------------------------------------------------


def save_image(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(arr).save(path)


def test_greyscale_folder(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(3, 5, 7), dtype=np.uint8)
    for i, img in enumerate(imgs):
        save_image(tmp_path / f"{i}.png", img)
    (tmp_path / "notes.txt").write_text("ignored")
    X, y, names = read_data(tmp_path)
    assert X.shape == (3, 1, 5, 7) and X.dtype == np.float32
    np.testing.assert_allclose(X[:, 0], imgs / 255.0, atol=1e-7)
    assert y is None and names is None


def test_class_subfolders_and_colour(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    grey = rng.integers(0, 256, size=(4, 4), dtype=np.uint8)
    colour = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    save_image(tmp_path / "cats" / "a.png", grey)
    save_image(tmp_path / "dogs" / "b.png", colour)
    save_image(tmp_path / "dogs" / "c.jpg", colour)
    X, y, _ = read_data(tmp_path)
    assert X.shape == (3, 3, 4, 4)
    assert list(y) == ["cats", "dogs", "dogs"]
    np.testing.assert_allclose(X[0], np.broadcast_to(grey / 255.0, (3, 4, 4)), atol=1e-7)
    np.testing.assert_allclose(X[1], np.moveaxis(colour, -1, 0) / 255.0, atol=1e-7)
    assert 0.0 <= X.min() and X.max() <= 1.0


def test_bad_image_folders(tmp_path):
    with pytest.raises(ValueError, match="holds no images"):
        read_data(tmp_path)
    save_image(tmp_path / "a.png", np.zeros((4, 4), dtype=np.uint8))
    save_image(tmp_path / "b.png", np.zeros((5, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"images differ in size: a.png is 4x4, b.png is 4x5"):
        read_data(tmp_path)
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"b.png is not a readable image"):
        read_data(tmp_path)
    with pytest.raises(ValueError, match="label_column applies to CSV"):
        read_data(tmp_path, label_column="y")


# --- property tests of the CSV reader ------------------------------------------------------

_finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=st.integers(1, 6).flatmap(
        lambda d: arrays(np.float64, st.tuples(st.integers(1, 12), st.just(d)), elements=_finite)
    ),
    header=st.booleans(),
)
@pytest.mark.filterwarnings("ignore:.*read as the first data row")
def test_numeric_tables_round_trip(tmp_path, table, header):
    path = tmp_path / "t.csv"
    names = [f"f{i}" for i in range(table.shape[1])]
    pd.DataFrame(table, columns=names).to_csv(path, index=False, header=header)
    X, y, got_names = read_data(path)
    assert y is None
    np.testing.assert_allclose(X, table, rtol=1e-14, atol=0)
    assert got_names == (names if header else [f"x{i}" for i in range(table.shape[1])])


_junk_text = st.text(
    alphabet=st.sampled_from([*"0123456789.,-+eE \n\t\"'nanifNA;x#\r", "\x00", "é"]),
    max_size=80,
)


@pytest.mark.filterwarnings(
    "ignore:.*(Latin-1|hold no value|ends with a delimiter|row index|data row|column names"
    "|separated by single spaces)"
)
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=80), _junk_text.map(str.encode)))
def test_junk_gives_value_or_type_error_only(tmp_path, content):
    path = tmp_path / "junk.csv"
    path.write_bytes(content)
    try:
        X, _, _ = read_data(path)
    except (ValueError, TypeError):
        return
    assert X.ndim == 2 and X.shape[0] >= 1 and np.isfinite(X).all()


def test_pandas_index_column_is_announced_and_left_out(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})
    frame.to_csv(tmp_path / "i.csv")  # with pandas' unnamed index column
    with pytest.warns(UserWarning, match="row index written by pandas"):
        X, _, names = read_data(tmp_path / "i.csv")
    assert names == ["a", "b"]
    np.testing.assert_array_equal(X, frame.to_numpy())


def test_drop_sep_and_missing_options(tmp_path):
    path = write(tmp_path, "d.csv", "id;a;b\n1;1,5;7\n2;2;3\n")
    X, _, names = read_data(path, drop=["id"], sep=";")
    assert names == ["a", "b"]
    np.testing.assert_array_equal(X, [[1.5, 7.0], [2.0, 3.0]])  # decimal comma
    path = write(tmp_path, "q.csv", "id,a,b\n1,1,?\n2,2,3\n")
    with pytest.raises(ValueError, match=r"missing value .* line 2, column 'b'"):
        read_data(path, drop=["id"], missing=("", "?"))
    with pytest.raises(ValueError, match=r"line 2, column 'b': '\?' is not a number"):
        read_data(path, drop=["id"])
