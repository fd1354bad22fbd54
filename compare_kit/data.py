"""Data: the bundled radon survey and safe loading of a user's CSV.

A user's table is read as text first, so that group labels survive exactly
("NA", "None", "007" and "07" are four different groups); a column becomes
numeric only when every cell is a plain number (or empty / NA), and never when
it is named as a text column or a number carries a leading zero.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from compare_kit.errors import DataError

RADON_FILE = "radon_mn.csv"
MISSING_TOKENS = frozenset({"", "NA", "NaN", "nan", "N/A", "NULL", "null", "None", "."})
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z|[+-]?(inf|Inf|INF|infinity|Infinity)\Z")
_LEADING_ZERO = re.compile(r"[+-]?0\d")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}([,'\u00a0 ]\d{3})+(\.\d+)?\Z")
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+\Z")


def separator_hint(value: str) -> str | None:
    """How to fix a number written with a thousands separator or a decimal comma; None otherwise."""
    text = value.strip()
    thousands, decimal = _THOUSANDS.match(text), _DECIMAL_COMMA.match(text)
    if thousands and decimal:
        return (f"{text!r} looks like a number written with a thousands separator or a decimal comma: "
                f"write it as {text.replace(',', '')!r} or {text.replace(',', '.')!r} in the file")
    if thousands:
        plain = re.sub(r"[,'\u00a0 ]", "", text)
        return (f"{text!r} looks like a number written with a thousands separator: remove the separators "
                f"in the file ({plain!r})")
    if decimal:
        return (f"{text!r} looks like a number written with a decimal comma: write it with a point "
                f"({text.replace(',', '.')!r}), e.g. by saving the table with '.' as the decimal separator")
    return None


def bundled_path(name: str) -> Path:
    """Where a bundled data file is: inside the installed package, else the checkout's ``data/``."""
    packaged = resources.files("compare_kit") / "data" / name
    if packaged.is_file():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / "data" / name
    if checkout.is_file():
        return checkout
    raise DataError(f"the bundled {name} is missing from this installation; reinstall compare_kit")


def radon_path() -> Path:
    """Where the bundled radon table is."""
    return bundled_path(RADON_FILE)


def load_radon() -> pd.DataFrame:
    """The Minnesota radon survey: 919 homes in 85 counties (see data/README.md)."""
    frame = pd.read_csv(radon_path(), dtype={"county": str, "floor": int,
                                             "log_radon": float, "log_uranium": float},
                        keep_default_na=False)
    frame["county"] = frame["county"].astype(object)
    return frame


def load_csv(path: str | Path, text_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Read a user's CSV safely.

    The delimiter (comma, semicolon or tab) is detected, a UTF-8 byte-order mark
    is accepted, and columns listed in ``text_columns`` (group columns, say) are
    always kept as text. Empty cells are missing values everywhere; in numeric
    columns NA, NaN, NULL and None are missing too.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"no file at {str(path)!r}; give the path of a CSV table")
    if path.is_dir():
        raise DataError(f"{str(path)!r} is a folder; give the path of a CSV file")
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{str(path)!r} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    return parse_csv_text(raw, source=str(path), text_columns=text_columns)


def parse_csv_text(raw: str, source: str = "the table", text_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Parse CSV text (see ``load_csv``)."""
    lines = [ln for ln in raw.splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{source} is empty; a CSV needs a header row and at least one data row")
    delimiter = _delimiter(lines[0])
    try:
        rows = list(csv.reader(io.StringIO(raw, newline=""), delimiter=delimiter))  # \r, \r\n or \n ends a line; kept inside quotes
    except csv.Error as exc:
        raise DataError(f"{source} is not valid CSV: {exc}") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{source} has no header row: every line is empty once quotes are read")
    header = [h.strip() for h in rows[0]]
    if any(not h for h in header):
        raise DataError(f"{source} has a column without a name (position "
                        f"{header.index('') + 1}); every column needs a header")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(f"{source} has duplicated column names: {', '.join(dupes)}; "
                        "rename them so that each column has one name")
    body = rows[1:]
    if not body:
        raise DataError(f"{source} has a header but no data rows")
    ragged = next((i for i, r in enumerate(body, start=2) if len(r) != len(header)), None)
    if ragged is not None:
        raise DataError(f"{source}: row {ragged} has {len(body[ragged - 2])} cells but the header has "
                        f"{len(header)} (delimiter {delimiter!r}); check quoting and delimiters")
    text = set(text_columns)
    columns = {}
    for j, name in enumerate(header):
        cells = [r[j].strip() for r in body]
        columns[name] = _column(cells, keep_text=name in text)
    return pd.DataFrame(columns)


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _column(cells: list[str], keep_text: bool) -> pd.Series:
    present = [c for c in cells if c not in MISSING_TOKENS]
    numeric = (not keep_text and present
               and all(_NUMBER.match(c) for c in present)
               and not any(_LEADING_ZERO.match(c) for c in present))
    if numeric:
        values = [float(c) if c not in MISSING_TOKENS else np.nan for c in cells]
        series = pd.Series(values, dtype=float)
        # whole numbers become integers only where int64 holds them exactly (|v| <= 2^53)
        whole = series.dropna().apply(float.is_integer).all() and (series.abs() <= 2.0**53).all()
        if whole and not series.isna().any():
            return series.astype(np.int64)
        return series
    return pd.Series([c if c != "" else None for c in cells], dtype=object)
