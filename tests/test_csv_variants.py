"""Malformed real-world CSV files: each is either parsed to the right values or refused.

Every "ok" variant is checked cell by cell (names, numbers, text, missing), not merely for
not crashing; every "error" variant must end the CLI with exit code 2, one line on stderr
naming the problem, and no file written.
"""

from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pytest

from whyclust.cli import main
from whyclust.datasets import read_frame

NaN = math.nan

# name: (file name, content (str is UTF-8), read_frame options, expected)
# expected: ("ok", {column: values}, note substring or None) | ("error", message regex)
VARIANTS = {
    "plain": ("a.csv", "a,b\n1,2\n3,4\n", {}, ("ok", {"a": [1, 3], "b": [2, 4]}, None)),
    "utf-8 byte-order mark": (
        "bom.csv",
        "\ufeffalpha,b\n1,2\n",
        {},
        ("ok", {"alpha": [1], "b": [2]}, None),
    ),
    "latin-1 header": (
        "l1.csv",
        "caf\xe9,b\n1,2\n".encode("latin-1"),
        {},
        ("ok", {"caf\xe9": [1], "b": [2]}, "read it as Latin-1"),
    ),
    "utf-16 with mark": (
        "u16.csv",
        "a,b\n1,2\n".encode("utf-16"),
        {},
        ("ok", {"a": [1], "b": [2]}, None),
    ),
    "semicolon": ("s.csv", "a;b\n1;2\n3;4\n", {}, ("ok", {"a": [1, 3], "b": [2, 4]}, None)),
    "semicolon, decimal comma": (
        "dc.csv",
        "a;b\n1,5;2\n3;4,25\n-0,5;1e3\n",
        {},
        ("ok", {"a": [1.5, 3, -0.5], "b": [2, 4.25, 1000]}, None),
    ),
    "tab in a .txt": ("t.txt", "a\tb\n1\t2\n", {}, ("ok", {"a": [1], "b": [2]}, None)),
    "tsv with commas in text": (
        "t.tsv",
        "a\tname\n1\tx, y\n2\tz\n",
        {},
        ("ok", {"a": [1, 2], "name": ["x, y", "z"]}, None),
    ),
    "pipe": ("p.csv", "a|b\n1|2\n", {}, ("ok", {"a": [1], "b": [2]}, None)),
    "explicit --sep": ("e.csv", "a:b\n1:2\n", {"sep": ":"}, ("ok", {"a": [1], "b": [2]}, None)),
    "excel sep= line": (
        "x.csv",
        "sep=;\na;b\n1;2\n",
        {},
        ("ok", {"a": [1], "b": [2]}, "delimiter is ';'"),
    ),
    "comment lines": (
        "c.csv",
        "# exported by a tool\n# units: cm\na,b\n1,2\n# a note\n3,4\n",
        {},
        ("ok", {"a": [1, 3], "b": [2, 4]}, None),
    ),
    "blank lines": (
        "bl.csv",
        "\n\na,b\n\n1,2\n\n3,4\n\n",
        {},
        ("ok", {"a": [1, 3], "b": [2, 4]}, None),
    ),
    "windows line ends": (
        "w.csv",
        "a,b\r\n1,2\r\n3,4\r\n",
        {},
        ("ok", {"a": [1, 3], "b": [2, 4]}, None),
    ),
    "old mac line ends": ("m.csv", "a,b\r1,2\r3,4\r", {}, ("ok", {"a": [1, 3], "b": [2, 4]}, None)),
    "all fields quoted": ("q.csv", '"a","b"\n"1","2"\n', {}, ("ok", {"a": [1], "b": [2]}, None)),
    "comma inside a quoted name": (
        "qn.csv",
        '"width, cm",b\n1,2\n',
        {},
        ("ok", {"width, cm": [1], "b": [2]}, None),
    ),
    "spaces around cells and names": (
        "sp.csv",
        " a , b \n 1 , 2 \n",
        {},
        ("ok", {"a": [1], "b": [2]}, None),
    ),
    "number formats": (
        "n.csv",
        "a,b,c\n1e3,-2.5E-2,+3\n.5,-0,7.\n",
        {},
        ("ok", {"a": [1000, 0.5], "b": [-0.025, -0.0], "c": [3, 7]}, None),
    ),
    "trailing delimiter everywhere": (
        "td.csv",
        "a,b,\n1,2,\n3,4,\n",
        {},
        ("ok", {"a": [1, 3], "b": [2, 4]}, "hold no value"),
    ),
    "trailing delimiter on data rows": (
        "tr.csv",
        "a,b\n1,2,\n3,4,\n",
        {},
        ("ok", {"a": [1, 3], "b": [2, 4]}, "ends with a delimiter"),
    ),
    "pandas index column": (
        "pi.csv",
        ",a,b\n0,1,2\n1,3,4\n2,5,6\n",
        {},
        ("ok", {"a": [1, 3, 5], "b": [2, 4, 6]}, "row index written by pandas"),
    ),
    "pandas index read and written again": (
        "pu.csv",
        "Unnamed: 0,a\n0,7\n1,8\n",
        {},
        ("ok", {"a": [7, 8]}, "row index"),
    ),
    "empty named column": (
        "ec.csv",
        "a,notes,b\n1,,2\n3,,4\n",
        {},
        ("ok", {"a": [1, 3], "b": [2, 4]}, "'notes'"),
    ),
    "missing markers": (
        "na.csv",
        "a,b\n1,NA\n,4\nNaN,null\n5,6\n",
        {},
        ("ok", {"a": [1, NaN, NaN, 5], "b": [NaN, 4, NaN, 6]}, None),
    ),
    "question marks as missing, by request": (
        "qm.csv",
        "a,b\n1,?\n3,4\n",
        {"missing": ("", "?")},
        ("ok", {"a": [1, 3], "b": [NaN, 4]}, None),
    ),
    "numeric first row means no header, announced": (
        "nh.csv",
        "1,2\n3,4\n",
        {},
        ("ok", {"x0": [1, 3], "x1": [2, 4]}, "read as the first data row"),
    ),
    "pandas' labels 0..d-1 of unnamed columns are a header": (
        "labels.csv",
        "0,1,2\n5.1,3.5,1.4\n4.9,3.0,1.4\n",
        {},
        ("ok", {"0": [5.1, 4.9], "1": [3.5, 3.0], "2": [1.4, 1.4]}, "read as column names"),
    ),
    "numeric header, by request": (
        "years.csv",
        "2019,2020\n1,2\n3,4\n",
        {"header": True},
        ("ok", {"2019": [1, 3], "2020": [2, 4]}, None),
    ),
    "no header, by request": (
        "nohead.csv",
        "0,1\n1,0\n",
        {"header": False},
        ("ok", {"x0": [0, 1], "x1": [1, 0]}, None),
    ),
    "single column": ("one.csv", "a\n1\n2\n", {}, ("ok", {"a": [1, 2]}, None)),
    "single spaces between fields (scikit-learn's linnerud files)": (
        "space.csv",
        "Chins Situps\n5 162\n2 110\n",
        {},
        ("ok", {"Chins": [5, 2], "Situps": [162, 110]}, "single spaces"),
    ),
    "text with spaces stays one column": (
        "city.csv",
        "city\nNew York\nLos Angeles\n",
        {},
        ("ok", {"city": ["New York", "Los Angeles"]}, None),
    ),
    "text column": (
        "tc.csv",
        "a,colour\n1,red\n2,\n3,blue\n",
        {},
        ("ok", {"a": [1, 2, 3], "colour": ["red", None, "blue"]}, None),
    ),
    "numbers as a categorical column, by request": (
        "cat.csv",
        "a,zip\n1,01234\n2,98765\n",
        {"categorical": ["zip"]},
        ("ok", {"a": [1, 2], "zip": ["01234", "98765"]}, None),
    ),
    "infinite cell parses (fit refuses it)": (
        "inf.csv",
        "a,b\n1,inf\n2,-Infinity\n",
        {},
        ("ok", {"a": [1, 2], "b": [np.inf, -np.inf]}, None),
    ),
    "windows line ends, none after the last row": (
        "wn.csv",
        "a,b\r\n1,2\r\n3,4",
        {},
        ("ok", {"a": [1, 3], "b": [2, 4]}, None),
    ),
    "old mac line ends, none after the last row": (
        "mn.csv",
        "a,b\r1,2\r3,4",
        {},
        ("ok", {"a": [1, 3], "b": [2, 4]}, None),
    ),
    "quoted names holding the delimiter and a line break": (
        "qh.csv",
        '"a,x","b\nc"\n1,2\n3,4\n',
        {},
        ("ok", {"a,x": [1, 3], "b\nc": [2, 4]}, None),
    ),
    "line break, blank line and # inside a quoted cell are its text": (
        "ql.csv",
        'a,b\n1,"x\n\n# y"\n3,z\n',
        {},
        ("ok", {"a": [1, 3], "b": ["x\n\n# y", "z"]}, None),
    ),
    "windows line break inside a quoted cell": (
        "qw.csv",
        'a,b\r\n1,"x\r\ny"\r\n3,z\r\n',
        {},
        ("ok", {"a": [1, 3], "b": ["x\r\ny", "z"]}, None),
    ),
    "unicode line separators are text, not line ends": (
        "us.csv",
        "a,b\n1,x\u2028y\n3,z\x85w\n",
        {},
        ("ok", {"a": [1, 3], "b": ["x\u2028y", "z\x85w"]}, None),
    ),
    "quoted numbers": (
        "qn2.csv",
        'a,b\n"1.5"," 2"\n3,4\n',
        {},
        ("ok", {"a": [1.5, 3], "b": [2, 4]}, None),
    ),
    "one data row": ("r1.csv", "a,b\n1,2\n", {}, ("ok", {"a": [1], "b": [2]}, None)),
    "blank and space-only lines at the end": (
        "be.csv",
        "a,b\n1,2\n3,4\n\n  \n\t\n",
        {},
        ("ok", {"a": [1, 3], "b": [2, 4]}, None),
    ),
    "names differing only in case are two columns": (
        "case.csv",
        "a,A\n1,2\n",
        {},
        ("ok", {"a": [1], "A": [2]}, None),
    ),
    "named first column 0..n-1 is kept, with a note": (
        "id.csv",
        "id,a\n0,5\n1,6\n2,7\n",
        {},
        ("ok", {"id": [0, 1, 2], "a": [5, 6, 7]}, "(a row index?)"),
    ),
    "column of NA only": (
        "nacol.csv",
        "a,b\n1,NA\n2,N/A\n",
        {},
        ("ok", {"a": [1, 2]}, "'b' hold no value"),
    ),
    "true / false is text": (
        "bool.csv",
        "a,b\n1,true\n2,false\n",
        {},
        ("ok", {"a": [1, 2], "b": ["true", "false"]}, None),
    ),
    "percentages are text": (
        "pct.csv",
        "a,b\n1,12%\n2,4%\n",
        {},
        ("ok", {"a": [1, 2], "b": ["12%", "4%"]}, None),
    ),
    "infinity in capitals, and overflow": (
        "infc.csv",
        "a,b\n1,INF\n-Inf,1e400\n",
        {},
        ("ok", {"a": [1, -np.inf], "b": [np.inf, np.inf]}, None),
    ),
    "decomposed (macOS) accents read as composed": (
        "nfd.csv",
        "gro\u0308sse,b\n1,2\n",
        {},
        ("ok", {"gr\u00f6sse": [1], "b": [2]}, None),
    ),
    "latin-1 with old mac line ends names the right line": (
        "l1cr.csv",
        "a,b\r1,2\r3,caf\xe9\r".encode("latin-1"),
        {"categorical": ["b"]},
        ("ok", {"a": [1, 3], "b": ["2", "caf\xe9"]}, "(line 3)"),
    ),
    "spreadsheet rows of empty cells are skipped, announced": (
        "er.csv",
        "a,b\n1,2\n,\n3,4\n , \n",
        {},
        ("ok", {"a": [1, 3], "b": [2, 4]}, "line(s) 3, 5 hold only empty cells"),
    ),
    "excel sep= line, then a quoted cell over two lines": (
        "xq.csv",
        'sep=;\r\na;b\r\n1;"x\r\ny"\r\n2;z\r\n',
        {},
        ("ok", {"a": [1, 2], "b": ["x\r\ny", "z"]}, "delimiter is ';'"),
    ),
    "windows-1252 euro sign and ellipsis": (
        "cp.csv",
        b"a,b\n1,\x80 wait\x85\n2,go\n",
        {},
        ("ok", {"a": [1, 2], "b": ["\u20ac wait\u2026", "go"]}, "(Windows-1252)"),
    ),
    "bytes Windows-1252 lacks are read as Latin-1": (
        "l1x.csv",
        b"a,b\n1,x\x81\xe9\n2,go\n",
        {},
        ("ok", {"a": [1, 2], "b": ["x\x81\xe9", "go"]}, "read it as Latin-1"),
    ),
    # --- refused -------------------------------------------------------------------------
    "metadata first line (sklearn wine_data.csv)": (
        "wine.csv",
        "3,2,class_0,class_1\n14.2,1.7,0\n13.2,1.8,1\n12.4,1.2,2\n",
        {},
        (
            "error",
            r"wine.csv line 2 has 3 fields but the header \(the first line\) has 4; "
            "is the first line metadata",
        ),
    ),
    "sklearn metadata line as wide as the rows (iris.csv)": (
        "iris.csv",
        "3,2,setosa\n5.1,3.5,0\n4.9,3.0,1\n4.7,3.2,0\n",
        {},
        ("error", r"iris.csv line 1 is a metadata line, not column names"),
    ),
    "year columns are names": (
        "years.csv",
        "country,2019,2020\nfr,1,2\nde,3,4\n",
        {},
        ("ok", {"country": ["fr", "de"], "2019": [1, 3], "2020": [2, 4]}, None),
    ),
    "more fields than the header": (
        "lg.csv",
        "a,b\n1,2\n3,4\n5,6,7\n",
        {},
        ("error", r"lg.csv line 4 has 3 fields .* has 2"),
    ),
    "fewer fields than the header": (
        "sh.csv",
        "a,b,c\n1,2,3\n4,5\n",
        {},
        ("error", r"sh.csv line 3 has 2 fields .* has 3"),
    ),
    "line numbers count comments": (
        "lc.csv",
        "# c\na,b\n# c\n1,2\n3\n",
        {},
        ("error", r"lc.csv line 5 has 1 fields"),
    ),
    "question mark in a numeric column": (
        "q.csv",
        "a,b\n1,2\n3,?\n",
        {},
        ("error", r"q.csv line 3, column 'b': '\?' is not a number"),
    ),
    "thousands separator": (
        "ts.csv",
        'a,b\n"1,234",2\n5,6\n',
        {},
        ("error", r"line 2, column 'a': '1,234' is not a number"),
    ),
    "duplicate column names": (
        "dup.csv",
        "a,b,a\n1,2,3\n",
        {},
        ("error", r"column name 'a' appears twice \(columns 1 and 3\)"),
    ),
    "unnamed column that is not an index": (
        "un.csv",
        ",a\n5,1\n9,2\n",
        {},
        ("error", r"un.csv: column 1 has no name"),
    ),
    "unnamed column in the middle": (
        "um.csv",
        "a,,b\n1,2,3\n",
        {},
        ("error", r"column 2 has no name"),
    ),
    "unbalanced quote": ("uq.csv", 'a,b\n"1,2\n3,4\n', {}, ("error", r"uq.csv line \d.*quote")),
    "header only": ("h.csv", "a,b\n", {}, ("error", r"header but no rows")),
    "only comments": ("oc.csv", "# nothing\n# here\n", {}, ("error", r"no rows")),
    "empty file": ("empty.csv", "", {}, ("error", r"is empty")),
    "binary file": ("bin.csv", b"\x00\x01\x02abc\x00", {}, ("error", r"NUL bytes|binary")),
    "a form feed does not shift line numbers": (
        "ff.csv",
        "a,b\n1,2\x0c\n3,?\n",
        {},
        ("error", r"ff.csv line 3, column 'b': '\?' is not a number"),
    ),
    "dash as missing is refused unless listed": (
        "dash.csv",
        "a,b\n1,-\n3,4\n",
        {},
        ("error", r"line 2, column 'b': '-' is not a number .*--na-values"),
    ),
    "names differing only by spaces are duplicates": (
        "dsp.csv",
        "a,a \n1,2\n",
        {},
        ("error", r"column name 'a' appears twice"),
    ),
    "composed and decomposed spellings of one name are duplicates": (
        "dnfd.csv",
        "gr\u00f6sse,gro\u0308sse\n1,2\n",
        {},
        ("error", r"appears twice \(columns 1 and 2\)"),
    ),
    "header repeated mid-file (files joined)": (
        "rep.csv",
        "name,colour\nx,red\nname,colour\ny,blue\n",
        {},
        ("error", r"rep.csv line 3 repeats the header"),
    ),
    "dot in a table with decimal commas (thousands separator?)": (
        "dots.csv",
        "a;b\n1.234;2,5\n2.500;6,1\n",
        {},
        ("error", r"dots.csv line 2, column 'a': '1.234' has a dot but column 'b' writes "
                  "decimal commas"),
    ),
    "decimal comma and point in one column": (
        "dmix.csv",
        "a;b\n1,5;2\n3.5;4\n",
        {},
        ("error", r"line 2, column 'a': '1,5' is not a number"),
    ),
    "unicode minus sign": (
        "um2.csv",
        "a,b\n1,\u22122\n2,3\n",
        {},
        ("error", r"line 2, column 'b': '\u22122' is not a number"),
    ),
    "digit group underscores": (
        "und.csv",
        "a,b\n1_000,2\n3,4\n",
        {},
        ("error", r"line 2, column 'a': '1_000' is not a number"),
    ),
    "utf-16 without a byte-order mark": (
        "u16n.csv",
        "a,b\n1,2\n".encode("utf-16-le"),
        {},
        ("error", r"NUL bytes"),
    ),
    "gzip-compressed table": (
        "t.csv.gz",
        gzip.compress(b"a,b\n1,2\n"),
        {},
        ("error", r"unsupported file type '.gz'"),
    ),
    "only rows of empty cells": ("eo.csv", "a,b\n,\n,\n", {}, ("error", r"no rows with a value")),
    "unknown categorical column": (
        "uc.csv",
        "a,b\n1,2\n",
        {"categorical": ["c"]},
        ("error", r"categorical column\(s\) not in uc.csv: c"),
    ),
}


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def test_there_are_at_least_thirty_variants():
    assert len(VARIANTS) >= 30


@pytest.mark.parametrize("case", [c for c, v in VARIANTS.items() if v[3][0] == "ok"])
def test_parsed_values(tmp_path, case):
    name, content, options, (_, expected, note) = VARIANTS[case]
    frame, y, notes = read_frame(_write(tmp_path, name, content), **options)
    assert y is None
    assert list(frame.columns) == list(expected)
    for column, values in expected.items():
        got = frame[column].tolist()
        if all(isinstance(v, (int, float)) for v in values):
            np.testing.assert_array_equal(np.asarray(got, dtype=float), np.asarray(values, float))
            assert frame[column].dtype == np.float64
        else:
            assert [None if pd.isna(g) else g for g in got] == values
    if note is None:
        assert notes == []
    else:
        assert any(note in n for n in notes), notes


@pytest.mark.parametrize("case", [c for c, v in VARIANTS.items() if v[3][0] == "error"])
def test_refused_by_the_reader(tmp_path, case):
    name, content, options, (_, match) = VARIANTS[case]
    with pytest.raises(ValueError, match=match):
        read_frame(_write(tmp_path, name, content), **options)


@pytest.mark.parametrize("case", [c for c, v in VARIANTS.items() if v[3][0] == "error"])
def test_refused_by_the_cli_with_nothing_written(tmp_path, capsys, case):
    name, content, options, (_, match) = VARIANTS[case]
    path = _write(tmp_path, name, content)
    args = ["fit", str(path), "-k", "2", "-o", str(tmp_path / "m.whyclust")]
    if "sep" in options:
        args += ["--sep", options["sep"]]
    if "categorical" in options:
        args += ["--categorical", ",".join(options["categorical"])]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(args) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in out + err
    import re

    assert re.search(match, lines[0]), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("a,b\n1,2\n3,inf\n5,6\n", [], r"infinite value in line 3, column 'b'"),
        ("a,b\n1,2\n3,\n5,6\n", [], r"missing value .* line 3, column 'b' \(use --impute\)"),
        ("a,c\n1,red\n2,blue\n3,red\n", [], r"non-numeric columns: c \(one-hot encode"),
        ("a,b\n1,2\n3,?\n5,6\n", [], r"'\?' is not a number"),
        ("a,b\n1,x\n3,y\n", ["--drop", "z"], r"column to drop 'z' not in"),
        ("a,b\n1,2\n3,4\n", ["--impute", "mean", "--drop", "a,b"], r"no feature columns"),
        ("a,b\n1,\n3,\n5,6\n", ["--impute", "mean"], None),
        ("a,b\n1,2\n3,4\n", ["--sep", ";;"], r"one character"),
        ("a,c,d\n1,x,y\n2,z,w\n", ["--categorical", "c"], r"not named by --categorical: d"),
        ("a,c,d\n1,x,y\n2,z,w\n", ["--categorical", "c,d"], None),
        ("a,zip\n1,01\n2,02\n", ["--categorical", "zip"], None),
    ],
)
def test_cli_table_errors(tmp_path, capsys, content, args, message):
    path = _write(tmp_path, "d.csv", content)
    code = main(["fit", str(path), "-k", "2", "-q", "-o", str(tmp_path / "m.whyclust"), *args])
    _, err = capsys.readouterr()
    if message is None:
        assert code == 0, err
        return
    import re

    assert code == 2
    assert re.search(message, err.strip()), err
    assert not (tmp_path / "m.whyclust").exists()


def test_parquet_reads_like_a_csv(tmp_path):
    frame = pd.DataFrame({"a": [1, 2, 3], "zip": [1, 2, None], "colour": ["r", None, "b"]})
    frame.to_parquet(tmp_path / "t.parquet")
    got, _, notes = read_frame(tmp_path / "t.parquet", categorical=["zip"])
    assert notes == []
    assert got["a"].dtype == np.float64 and got["a"].tolist() == [1, 2, 3]
    assert [None if pd.isna(v) else v for v in got["zip"]] == ["1.0", "2.0", None]
    assert [None if pd.isna(v) else v for v in got["colour"]] == ["r", None, "b"]
    with pytest.raises(ValueError, match="categorical column"):
        read_frame(tmp_path / "t.parquet", categorical=["nope"])
