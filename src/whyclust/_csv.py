"""CSV / TSV tables read strictly: every guess is either safe and announced, or refused.

Rules (each refusal is a ``ValueError`` naming the file, the line and the column):

- encoding: UTF-8 with or without a byte-order mark, UTF-16 with one; anything else is
  read as Windows-1252 where it can be, else as Latin-1 (every byte is a character
  there), with a note;
- lines end at ``\\n``, ``\\r\\n`` or ``\\r``; between rows, lines starting with ``#`` and
  blank lines are skipped (inside a quoted cell they are its text); the delimiter is
  ``sep``, or an Excel ``sep=;`` first line, or else whichever of tab, ``;``, ``,`` and
  ``|`` splits every sampled line into the same number (at least 2) of fields, or else a
  single space if it does (with a note); ``;`` tables may use decimal commas, and then a
  number with a dot (a thousands separator?) is refused;
- the header is the first line (``header=True``), or there is none (``header=False``:
  columns ``x0, x1, ...``); by default a first line made only of numbers is the first data
  row, with a note, unless it is 0, 1, ..., d-1 (pandas' labels of an unnamed frame's
  columns), which is a header, with a note; names (in Unicode NFC form, so that macOS and
  Windows spellings of the same name agree) must be unique and non-empty;
- a row with more fields than the header is refused (a metadata first line, or columns
  shifted into an index), as is a row with fewer; one trailing delimiter on every data row
  is dropped with a note, as are rows of empty cells only (a spreadsheet's empty rows); a
  first line starting with the number of rows and another integer (scikit-learn's
  ``n_samples, n_features, class names`` line) is refused, as is a data row repeating a header
  of two or more columns;
- a leading unnamed column holding 0, 1, ..., n-1 (pandas' ``to_csv`` index) is dropped
  with a note (a named one is kept, with a note); other unnamed columns are refused;
  columns with no value at all are dropped with a note;
- a column is numeric if all its non-missing cells are numbers; a column with no number at
  all is categorical (text); a mix is refused at its first non-number.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["MISSING", "Table", "read_table"]

MISSING = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None")
_CANDIDATES = ("\t", ";", ",", "|")
_SAMPLE_LINES = 50
_DECIMAL_COMMA = re.compile(r"^[+-]?(\d+(,\d*)?|,\d+)([eE][+-]?\d+)?$")
_SEP_NAMES = {"\t": "tab", ";": "';'", ",": "','", "|": "'|'"}


@dataclass
class Table:
    """A parsed table: column names, one array per column, and notes on what was guessed."""

    names: list[str]
    columns: list[np.ndarray]  # float64 or object (str), NaN = missing
    lines: np.ndarray  # file line of every row (1-based), for messages
    notes: list[str] = field(default_factory=list)
    sep: str = ","

    def frame(self):
        import pandas as pd

        return pd.DataFrame(dict(zip(self.names, self.columns, strict=True)), copy=False)


def read_table(
    path: str | Path,
    *,
    sep: str | None = None,
    missing: tuple[str, ...] = MISSING,
    text_columns: tuple[str, ...] = (),
    header: bool | None = None,
    numeric_columns: tuple[str, ...] = (),
    keep_columns: tuple[str, ...] = (),
) -> Table:
    """Parse a delimited text file by the rules above. ``text_columns`` stay categorical;
    ``numeric_columns`` must hold numbers (a model's numeric inputs); both are kept even
    when empty, as are ``keep_columns`` (ones the caller drops or splits off itself).
    ``header`` says whether the first line names the columns (None: decided as above)."""
    path = Path(path)
    text, notes = _decode(path)
    physical = _physical_lines(text)
    lines, numbers = _content_lines(physical)
    if not lines:
        raise ValueError(f"{path.name} has no rows (only comments or blank lines)")
    excel = re.fullmatch(r"\s*sep=(.)\s*", lines[0])
    start = 0  # index of the first physical line the table starts from
    if excel:  # Excel's "sep=;" first line names the delimiter
        notes.append(f"{path.name}: line {numbers[0]} says the delimiter is {excel.group(1)!r}")
        sep = sep or excel.group(1)
        start = numbers[0]
        lines, numbers = lines[1:], numbers[1:]
        if not lines:
            raise ValueError(f"{path.name} has no rows")
    if sep is None:
        sep = _sniff(lines, path, notes)
    elif sep in ("\\t", "tab"):
        sep = "\t"
    if len(sep) != 1 or sep in "\"'\r\n":
        raise ValueError(f"the delimiter must be one character, got {sep!r}")
    rows, row_lines = _split(physical, start, sep, path)
    header_is_data = not _has_header(rows[0], row_lines[0], header, path, notes)
    if header_is_data:
        names = [f"x{i}" for i in range(len(rows[0]))]
        body, body_lines = rows, row_lines
    else:
        names = [unicodedata.normalize("NFC", c.strip()) for c in rows[0]]
        body, body_lines = rows[1:], row_lines[1:]
    if not body:
        raise ValueError(f"{path.name} has a header but no rows")
    names, body = _check_widths(names, body, body_lines, header_is_data, path, notes)
    if not header_is_data and len(names) > 1:  # one column: a value may equal its name
        _refuse_repeated_header(names, body, body_lines, path)
    body, body_lines = _skip_empty_rows(body, body_lines, path, notes)
    if not header_is_data and _counts_rows(names, len(body)):
        raise ValueError(
            f"{path.name} line {row_lines[0]} is a metadata line, not column names: its first "
            f"fields ({names[0]}, {names[1]}) count the rows and columns (scikit-learn's "
            "bundled CSV layout); give the file a header of column names"
        )
    cells = np.array(body, dtype=object).reshape(len(body), len(names))
    lines_arr = np.asarray(body_lines, dtype=np.int64)
    keep = {*text_columns, *numeric_columns, *keep_columns}
    names, cells = _drop_index_and_empty(names, cells, path, notes, set(missing), keep)
    _check_names(names, path)
    missing_set = set(missing)
    columns = [
        _convert(cells[:, j], name, lines_arr, path, missing_set, sep, name in text_columns,
                 name in numeric_columns)
        for j, name in enumerate(names)
    ]
    unknown = sorted(set(text_columns) - set(names))
    if unknown:
        raise MissingColumns(unknown, path.name)
    if sep == ";":
        _refuse_mixed_decimals(names, cells, columns, lines_arr, path, missing_set)
    return Table(names, columns, lines_arr, notes, sep)


def _decode(path: Path) -> tuple[str, list[str]]:
    data = path.read_bytes()
    if not data.strip():
        raise ValueError(f"{path} is empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise ValueError(
                f"{path.name} has a UTF-16 byte-order mark but is not UTF-16"
            ) from None
        notes = []
    else:
        try:
            text = data.decode("utf-8-sig")  # strips a byte-order mark if there is one
            notes = []
        except UnicodeDecodeError as exc:
            line = len(re.split(rb"\r\n|\r|\n", data[: exc.start]))
            try:  # Windows' superset of Latin-1: 0x80-0x9f are printable (euro sign, ...)
                text = data.decode("cp1252")
                notes = [f"{path.name} is not UTF-8 (line {line}); read it as Latin-1 "
                         "(Windows-1252)"]  # fmt: skip
            except UnicodeDecodeError:
                text = data.decode("latin-1")
                notes = [f"{path.name} is not UTF-8 (line {line}); read it as Latin-1"]
    if "\x00" in text:
        raise ValueError(f"{path.name} contains NUL bytes: a binary file, not a text table")
    return text, notes


def _physical_lines(text: str) -> list[str]:
    """The file's lines, each with its ending: split at ``\\n``, ``\\r\\n`` or ``\\r`` only (not
    at the other characters ``str.splitlines`` breaks at, which are text inside a cell)."""
    return list(io.StringIO(text, newline=""))


def _content_lines(physical: list[str]) -> tuple[list[str], list[int]]:
    """Lines that are not blank and not ``#`` comments, with their 1-based numbers."""
    lines, numbers = [], []
    for i, line in enumerate(physical, start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            lines.append(line)
            numbers.append(i)
    return lines, numbers


def _sniff(lines: list[str], path: Path, notes: list[str]) -> str:
    sample = lines[:_SAMPLE_LINES]
    for cand in _CANDIDATES:
        try:
            counts = {len(r) for r in csv.reader(sample, delimiter=cand, strict=True)}
        except csv.Error:
            continue
        if len(counts) == 1 and counts.pop() >= 2:
            return cand
    # no delimiter splits every line alike: take the one the header uses most, and let
    # the row checks name the line that does not fit
    header = lines[0]
    best = max(_CANDIDATES, key=lambda c: (header.count(c), c == ","))
    if header.count(best):
        return best
    try:  # none of them at all: one space between fields, as some exports write
        counts = {len(r) for r in csv.reader(sample, delimiter=" ", strict=True)}
    except csv.Error:
        return ","
    if len(counts) == 1 and counts.pop() >= 2:
        notes.append(f"{path.name}: columns separated by single spaces (pass --sep to override)")
        return " "
    return ","


def _split(physical: list[str], start: int, sep: str, path: Path):
    """Rows from ``physical[start:]`` with the line each starts on. Blank and ``#`` lines are
    skipped between rows only: inside a quoted cell they are part of its text, as are the
    line breaks."""
    rows: list[list[str]] = []
    row_lines: list[int] = []
    state = {"next": start, "between": True}

    def feed():
        while state["next"] < len(physical):
            line = physical[state["next"]]
            state["next"] += 1
            if state["between"]:
                stripped = line.strip()
                if not stripped or stripped.startswith("#"):
                    continue
                row_lines.append(state["next"])
                state["between"] = False
            yield line

    reader = csv.reader(feed(), delimiter=sep, strict=True, skipinitialspace=False)
    try:
        for row in reader:
            rows.append(row)
            state["between"] = True
    except csv.Error as exc:
        where = max(state["next"], 1)
        raise ValueError(f"{path.name} line {where}: {exc} (unbalanced quotes?)") from None
    return rows, row_lines


def _has_header(first: list[str], line: int, header: bool | None, path: Path, notes) -> bool:
    """Whether the first line names the columns (see the module docstring)."""
    if header is not None:
        return bool(header)
    if not (all(_is_number(c) for c in first) and any(c.strip() for c in first)):
        return True
    d = len(first)
    if [c.strip() for c in first] == [str(i) for i in range(d)]:
        notes.append(
            f"{path.name}: line {line} (0, 1, ..., {d - 1}) read as column names, pandas' "
            "labels of unnamed columns; pass --no-header (header=False) if it is a data row"
        )
        return True
    notes.append(
        f"{path.name}: line {line} holds only numbers, read as the first data row (columns "
        "x0, x1, ...); pass --header (header=True) if it names the columns"
    )
    return False


def _check_widths(names, body, body_lines, header_is_data, path, notes):
    width = len(names)
    widths = np.fromiter((len(r) for r in body), dtype=np.int64, count=len(body))
    trailing = (
        not header_is_data
        and np.all(widths == width + 1)
        and all(r[-1].strip() == "" for r in body)
    )
    if trailing:
        notes.append(
            f"{path.name}: every row ends with a delimiter; the empty last field is ignored"
        )
        body = [r[:-1] for r in body]
        widths = widths - 1
    bad = np.flatnonzero(widths != width)
    if bad.size:
        i = int(bad[0])
        what = "header (the first line)" if not header_is_data else "first row"
        hint = (  # already the first data row disagrees: the header is suspect
            "; is the first line metadata rather than column names?"
            if i == 0 and not header_is_data
            else ""
        )
        raise ValueError(
            f"{path.name} line {body_lines[i]} has {int(widths[i])} fields but the {what} has "
            f"{width}{hint}"
        )
    return names, body


def _skip_empty_rows(body, body_lines, path, notes):
    """Rows of delimiters only (a spreadsheet's empty rows) are skipped, with a note."""
    empty = [i for i, r in enumerate(body) if len(r) > 1 and not any(c.strip() for c in r)]
    if not empty:
        return body, body_lines
    if len(empty) == len(body):
        raise ValueError(f"{path.name} has no rows with a value")
    shown = ", ".join(str(body_lines[i]) for i in empty[:5]) + (" ..." if len(empty) > 5 else "")
    notes.append(f"{path.name}: line(s) {shown} hold only empty cells and are skipped")
    gone = set(empty)
    keep = [i for i in range(len(body)) if i not in gone]
    return [body[i] for i in keep], [body_lines[i] for i in keep]


def _refuse_repeated_header(names, body, body_lines, path) -> None:
    """A data row that repeats the column names (files pasted together) is refused."""
    for row, line in zip(body, body_lines, strict=True):
        if row and row[0].strip() == names[0] and [c.strip() for c in row] == names:
            raise ValueError(
                f"{path.name} line {line} repeats the header (files joined together?); "
                "remove it"
            )


def _refuse_mixed_decimals(names, cells, columns, lines, path, missing) -> None:
    """In a ``;`` table that writes decimal commas, a number with a dot is refused: it may
    be a thousands separator (1.234 for 1234) as well as a decimal point."""
    numeric = [j for j, c in enumerate(columns) if c.dtype == np.float64]
    text = {j: np.char.strip(cells[:, j].astype(str)) for j in numeric}
    comma = [j for j in numeric if bool(np.any(np.char.find(text[j], ",") >= 0))]
    if not comma:
        return
    for j in numeric:
        dotted = (np.char.find(text[j], ".") >= 0) & ~np.isin(text[j], list(missing))
        if np.any(dotted):
            i = int(np.argmax(dotted))
            raise ValueError(
                f"{path.name} line {int(lines[i])}, column {names[j]!r}: {str(text[j][i])!r} "
                f"has a dot but column {names[comma[0]]!r} writes decimal commas; is the dot a "
                "thousands separator? write the numbers one way"
            )


def _counts_rows(names: list[str], n_rows: int) -> bool:
    """Whether the header starts with the row count and another integer (n_samples, n_features)."""
    if len(names) < 2 or not all(c.strip().isdigit() for c in names[:2]):
        return False
    return int(names[0]) == n_rows


class MissingColumns(ValueError):
    """Columns named as categorical that the file does not have."""

    def __init__(self, columns: list[str], source: str) -> None:
        super().__init__(f"categorical column(s) not in {source}: {', '.join(columns)}")
        self.columns = columns


def _drop_index_and_empty(names, cells, path, notes, missing, keep=frozenset()):
    n = cells.shape[0]
    if names and names[0] in ("", "Unnamed: 0"):
        col = [c.strip() for c in cells[:, 0]]
        if col == [str(i) for i in range(n)]:
            notes.append(
                f"{path.name}: the unnamed first column is the row index written by pandas "
                "(0, 1, ..., n-1); it is not used as a feature"
            )
            names, cells = names[1:], cells[:, 1:]
    elif names and n >= 3 and [c.strip() for c in cells[:, 0]] == [str(i) for i in range(n)]:
        notes.append(
            f"{path.name}: the first column {names[0]!r} holds 0, 1, ..., n-1 (a row index?); "
            "it is used as a feature unless you drop it"
        )
    empty = [j for j in range(len(names)) if names[j] not in keep
             and all(str(c).strip() in missing for c in cells[:, j])]  # fmt: skip
    if empty and len(empty) < len(names):
        shown = ", ".join(repr(names[j]) if names[j] else f"#{j + 1}" for j in empty)
        notes.append(f"{path.name}: column(s) {shown} hold no value and are ignored")
        keep = [j for j in range(len(names)) if j not in set(empty)]
        names, cells = [names[j] for j in keep], cells[:, keep]
    return names, cells


def _check_names(names: list[str], path: Path) -> None:
    unnamed = [i + 1 for i, c in enumerate(names) if not c or c.startswith("Unnamed: ")]
    if unnamed:
        raise ValueError(
            f"{path.name}: column {unnamed[0]} has no name (a pandas index? write the file "
            "with index=False, or name the column in the header)"
        )
    seen: dict[str, int] = {}
    for i, c in enumerate(names):
        if c in seen:
            raise ValueError(
                f"{path.name}: column name {c!r} appears twice (columns {seen[c] + 1} and "
                f"{i + 1}); column names must be unique"
            )
        seen[c] = i


def _convert(col, name, lines, path, missing, sep, as_text, numeric=False) -> np.ndarray:
    import pandas as pd

    text = pd.Series(col, dtype=object).str.strip()
    is_missing = text.isin(missing).to_numpy()
    if as_text:
        out = text.to_numpy(dtype=object).copy()
        out[is_missing] = np.nan  # as pandas and a fitted OneHotEncoder spell missing
        return out
    values = pd.to_numeric(text.where(~is_missing), errors="coerce").to_numpy(dtype=np.float64)
    failed = np.isnan(values) & ~is_missing & ~text.str.lower().isin(["nan"]).to_numpy()
    if failed.any() and sep == ";":
        present = text[~is_missing]
        if present.str.match(_DECIMAL_COMMA).all():  # 1,5 in a ';' table
            values = pd.to_numeric(
                text.where(~is_missing).str.replace(",", ".", regex=False), errors="coerce"
            ).to_numpy(dtype=np.float64)
            failed = np.isnan(values) & ~is_missing
    if not failed.any():
        return values
    if not numeric and failed.sum() == (~is_missing).sum():  # no number at all: text
        out = text.to_numpy(dtype=object).copy()
        out[is_missing] = np.nan  # as pandas and a fitted OneHotEncoder spell missing
        return out
    i = int(np.flatnonzero(failed)[0])
    raise ValueError(
        f"{path.name} line {int(lines[i])}, column {name!r}: {text.iloc[i]!r} is not a number "
        "(a marker of missing values? list it with --na-values / missing=; a text column? "
        "name it with --categorical / categorical=)"
    )


def _is_number(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True
