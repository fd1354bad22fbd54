"""The full EPA radon survey: a user's copy of Gelman & Hill's ``srrs2.dat`` and ``cty.dat``.

``srrs2.dat`` holds one row per home (12,777 homes in AZ, IN, MA, MN, MO, ND, PA
and an "R5" region of tribal lands in MI, MN and WI); ``cty.dat`` holds each
county's soil uranium ``Uppm``, keyed by state and county FIPS codes. Both are
comma separated with padded text. The files are not shipped with compare_kit;
``load_srrs2`` reads a copy the user has.

Nothing here evaluates text: cells are split by the csv module, stripped, and
numbers parsed one column at a time.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from compare_kit.data import bundled_path
from compare_kit.errors import DataError

SRRS2_FILE = "srrs2.dat"
CTY_FILE = "cty.dat"
SRRS2_COLUMNS = ("idnum", "state", "stfips", "floor", "activity", "cntyfips", "county")
CTY_COLUMNS = ("stfips", "ctfips", "Uppm")
MEASURED_FLOORS = (0, 1, 2, 3)  # 0 basement, 1 first floor, 2 and 3 upper floors; 9 = not recorded
RADON_OFFSET = 0.1  # log_radon = log(activity + 0.1), as in Gelman & Hill

# reasons a home is dropped, in the order they are checked (each row counted once, by its first reason)
DROP_ACTIVITY_MISSING = "activity missing or not a number"
DROP_ACTIVITY_NEGATIVE = "activity negative"
DROP_STATE_MISSING = "state missing"
DROP_FIPS_MISSING = "state or county FIPS code missing or not a whole number"
DROP_REASONS = (DROP_ACTIVITY_MISSING, DROP_ACTIVITY_NEGATIVE, DROP_STATE_MISSING, DROP_FIPS_MISSING)

OUTPUT_COLUMNS = ("idnum", "state", "state2", "stfips", "cntyfips", "county", "county_name", "region",
                  "floor", "basement", "activity", "log_radon", "uranium", "log_uranium")


def load_srrs2(path: str | Path | None = None, cty_path: str | Path | None = None) -> pd.DataFrame:
    """Read the radon survey ``srrs2.dat`` and join each home's county soil uranium from ``cty.dat``.

    Parameters
    ----------
    path
        A folder holding ``srrs2.dat`` and ``cty.dat``, or the path of ``srrs2.dat``
        (``cty.dat`` is then looked for beside it). ``None`` (the default): the copy
        bundled with compare_kit (see ``data/README.md``).
    cty_path
        Where ``cty.dat`` is, if not beside ``srrs2.dat``.

    Returns
    -------
    pandas.DataFrame
        One row per usable home, in file order, with columns

        ``idnum``, ``state`` (the survey's state field: a postal code, or ``R5``
        for the tribal-lands region), ``state2`` (the postal code of the state the
        home lies in, also for R5), ``stfips``, ``cntyfips``, ``county`` (a label
        unique within ``state``, see below), ``county_name`` (the county's name as
        written in srrs2.dat), ``region`` (the survey's region code), ``floor`` (0
        basement, 1 first floor, 2 and 3 upper floors; missing when not
        recorded), ``basement`` (1 when measured in the basement, ``floor == 0``;
        missing when the floor is not recorded), ``activity`` (pCi/L),
        ``log_radon`` (``log(activity + 0.1)``), ``uranium`` (the county's ``Uppm``)
        and ``log_uranium`` (``log(uranium)``).

        ``frame.attrs["dropped"]`` maps each reason a row can be dropped to the
        number of rows dropped for it (zero included, so the checks made are
        visible); ``frame.attrs["summary"]`` is a plain-text account of the
        reading (rows read, dropped and why, rows kept with a missing value,
        how county labels and uranium were resolved) for a report or the CLI;
        ``frame.attrs["notes"]`` holds the same account as a tuple of sentences.
        They describe the whole file: a subset taken afterwards keeps them.

    Notes
    -----
    Rows dropped (each counted once, under the first reason that applies): the
    radon ``activity`` is missing, not a number or negative (``log_radon`` cannot
    be formed); the state is missing; the state or county FIPS code is missing or
    not a whole number (the county cannot be identified). Nothing is dropped from
    the distributed ``srrs2.dat``.

    Rows kept with missing values, so that a model that does not need the value
    still uses the home (compare_kit's design drops, and reports, rows with a
    missing value in a model's own columns):

    * floor code 9 (or any code other than 0-3): the floor was not recorded, so
      ``floor`` and ``basement`` are missing. Gelman & Hill's ``floor == 0`` would
      count these homes as "not basement"; that is a guess this loader does not
      make. (287 homes, 280 outside R5.)
    * a county with no usable uranium value: ``uranium`` and ``log_uranium`` are
      missing. That is a county absent from ``cty.dat`` (the R5 code 999,
      "county unknown", for instance), one whose ``Uppm`` is 0 (cty.dat's code
      for "not measured": all of Connecticut, Boston's Suffolk county, Cape Cod;
      ``log(0)`` is not a soil level), and one whose ``cty.dat`` rows give
      conflicting values. Duplicate ``cty.dat`` rows (a county listed once per
      map point: 83 extra rows in the distributed file) that agree on ``Uppm``
      are merged.

    Counties are identified by their FIPS codes (state code and county code),
    never by name. A county's name is the stripped name its homes carry in
    srrs2.dat (``county_name``, e.g. ``"ST LOUIS"``); its label ``county`` is that
    name without spaces (``"STLOUIS"``), the spelling of cty.dat and of the
    bundled ``radon_mn.csv``, so the Minnesota rows carry ``load_radon()``'s
    labels. A code whose homes carry no name (23 homes in PA) takes the name other
    homes with that code carry, else cty.dat's, else ``FIPS <ssccc>``; a code
    whose homes carry several names takes the most frequent (ties: alphabetical
    first); a label shared by several codes in one state gets the five-digit FIPS
    code appended, ``"BAYMILLS(26017)"``, so that each label is one county. Names
    and codes match one to one in the seven states; only R5 (reservations that
    span counties, and the code 999, "county unknown") needs the last two rules.

    Row order is the file's. ``radon_mn.csv`` holds the same Minnesota rows
    ordered by county FIPS code: ``frame[frame.state == "MN"].sort_values(
    "cntyfips", kind="stable")`` reproduces it row for row.

    Raises
    ------
    DataError
        A file is missing, unreadable, not text, empty, ragged, or lacks the
        survey's columns.
    """
    srrs2_path, cty_file = _resolve_paths(path, cty_path)
    homes_raw = _read_table(srrs2_path, SRRS2_COLUMNS, "srrs2.dat", _srrs2_hint(srrs2_path))
    cty_raw = _read_table(cty_file, CTY_COLUMNS, "cty.dat", _cty_hint(cty_file))
    homes, dropped = _clean_homes(homes_raw)
    if homes.empty:
        raise DataError(f"{str(srrs2_path)!r}: none of its {len(homes_raw)} rows is usable ("
                        + ", ".join(f"{n} {r}" for r, n in dropped.items() if n) + ")")
    uranium = _county_uranium(cty_raw)
    labels, label_notes = _county_labels(homes, uranium.names)
    keys = list(zip(homes["stfips"], homes["cntyfips"], homes["state"], strict=True))
    homes["county"] = [labels[k][0] for k in keys]
    homes["county_name"] = [labels[k][1] for k in keys]
    frame = _assemble(homes, uranium)
    notes = _notes(len(homes_raw), frame, dropped, uranium, label_notes)
    frame.attrs["dropped"] = dropped
    frame.attrs["notes"] = notes
    frame.attrs["summary"] = "\n".join(notes)
    frame.attrs["source"] = {"srrs2": str(srrs2_path), "cty": str(cty_file)}
    return frame


# ------------------------------------------------------------------ files


def _resolve_paths(path: str | Path | None, cty_path: str | Path | None) -> tuple[Path, Path]:
    if path is None:
        srrs2_path = bundled_path(SRRS2_FILE)
        return srrs2_path, Path(cty_path) if cty_path is not None else bundled_path(CTY_FILE)
    path = Path(path)
    if not path.exists():
        raise DataError(f"no file or folder at {str(path)!r}; give the folder holding {SRRS2_FILE} and "
                        f"{CTY_FILE}, or the path of {SRRS2_FILE}")
    if path.is_dir():
        srrs2_path = path / SRRS2_FILE
        if not srrs2_path.is_file():
            raise DataError(f"the folder {str(path)!r} has no {SRRS2_FILE}; give the folder holding "
                            f"{SRRS2_FILE} and {CTY_FILE}, or the path of {SRRS2_FILE}")
    else:
        srrs2_path = path
    if cty_path is None:
        cty_file = srrs2_path.parent / CTY_FILE
        if not cty_file.is_file():
            raise DataError(f"no {CTY_FILE} beside {str(srrs2_path)!r}; put the county uranium file "
                            f"{CTY_FILE} there or give its path as cty_path")
    else:
        cty_file = Path(cty_path)
        if not cty_file.exists():
            raise DataError(f"no file at {str(cty_file)!r}; cty_path must be the path of {CTY_FILE}")
        if cty_file.is_dir():
            cty_file = cty_file / CTY_FILE
            if not cty_file.is_file():
                raise DataError(f"the folder {str(cty_path)!r} has no {CTY_FILE}; cty_path must be the "
                                f"path of {CTY_FILE} or its folder")
    return srrs2_path, cty_file


def _read_table(path: Path, required: tuple[str, ...], what: str, hint: str) -> pd.DataFrame:
    """A comma-separated file of padded text as a frame of stripped strings ('' for empty cells)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    if b"\x00" in raw[:4096]:
        raise DataError(f"{str(path)!r} is a binary file, not {what}; {hint}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # the survey's files are ASCII; a stray byte must not stop the read
    try:
        reader = csv.reader(io.StringIO(text))
        numbered = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise DataError(f"{str(path)!r} is not comma-separated text like {what} ({exc}); {hint}") from None
    if not numbered:
        raise DataError(f"{str(path)!r} is empty; {hint}")
    rows = [r for _, r in numbered]
    header = [h.strip() for h in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        shown = ", ".join(h for h in header[:12] if h) or "(none)"
        raise DataError(f"{str(path)!r} does not look like {what}: it lacks the column(s) "
                        f"{', '.join(missing)} (its header has {shown}); {hint}")
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        raise DataError(f"{str(path)!r} has duplicated column names ({', '.join(dupes)}); {hint}")
    body = rows[1:]
    if not body:
        raise DataError(f"{str(path)!r} has a header but no data rows; {hint}")
    ragged = next(((line, r) for line, r in numbered[1:] if len(r) != len(header)), None)
    if ragged is not None:
        raise DataError(f"{str(path)!r}: line {ragged[0]} has {len(ragged[1])} fields but the header "
                        f"has {len(header)}; {what} has one comma-separated field per column on every line")
    columns = {name: [r[j].strip() for r in body] for j, name in enumerate(header) if name}
    return pd.DataFrame(columns, dtype=object)


def _srrs2_hint(path: Path) -> str:
    return (f"give Gelman & Hill's {SRRS2_FILE} (one home per line, with columns "
            f"{', '.join(SRRS2_COLUMNS)})" + (f"; {path.name!r} may be the uranium file, which goes in "
                                              "cty_path" if path.name == CTY_FILE else ""))


def _cty_hint(path: Path) -> str:
    return (f"give Gelman & Hill's {CTY_FILE} (one county per line, with columns "
            f"{', '.join(CTY_COLUMNS)})")


# ------------------------------------------------------------------ homes


def _whole_numbers(cells: pd.Series) -> pd.Series:
    values = pd.to_numeric(cells.where(cells != ""), errors="coerce").astype(float)
    return values.where(np.isfinite(values) & (values == np.round(values)))


def _clean_homes(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    activity = pd.to_numeric(raw["activity"].where(raw["activity"] != ""), errors="coerce").astype(float)
    stfips = _whole_numbers(raw["stfips"])
    cntyfips = _whole_numbers(raw["cntyfips"])
    checks = {
        DROP_ACTIVITY_MISSING: ~np.isfinite(activity),
        DROP_ACTIVITY_NEGATIVE: activity < 0,
        DROP_STATE_MISSING: raw["state"] == "",
        DROP_FIPS_MISSING: stfips.isna() | cntyfips.isna(),
    }
    dropped: dict[str, int] = {}
    gone = pd.Series(False, index=raw.index)
    for reason in DROP_REASONS:
        hit = checks[reason].fillna(False).astype(bool) & ~gone
        dropped[reason] = int(hit.sum())
        gone |= hit
    keep = ~gone
    floor = _whole_numbers(raw["floor"])
    floor = floor.where(floor.isin(MEASURED_FLOORS))
    homes = pd.DataFrame({
        "idnum": _whole_numbers(raw["idnum"]),
        "state": raw["state"].astype(object),
        "state2": (raw["state2"] if "state2" in raw else raw["state"]).astype(object),
        "stfips": stfips,
        "cntyfips": cntyfips,
        "name": raw["county"].astype(object),
        "region": _whole_numbers(raw["region"]) if "region" in raw else np.nan,
        "floor": floor,
        "activity": activity,
    })[keep].reset_index(drop=True)
    for col in ("stfips", "cntyfips"):
        homes[col] = homes[col].astype(np.int64)
    for col in ("idnum", "region"):
        if homes[col].notna().all():
            homes[col] = homes[col].astype(np.int64)
    return homes, dropped


# ------------------------------------------------------------------ counties


@dataclass(frozen=True)
class _Uranium:
    """cty.dat resolved to one value per (state FIPS, county FIPS), with what was resolved how."""

    value: dict[tuple[int, int], float]  # missing when zero or conflicting
    names: dict[tuple[int, int], str]
    n_rows: int
    n_counties: int
    merged_rows: int  # duplicate rows agreeing on Uppm (beyond the first of each county)
    conflicting: tuple[tuple[int, int], ...]
    zero: tuple[tuple[int, int], ...]
    unreadable_rows: int  # no usable FIPS codes


def _county_uranium(raw: pd.DataFrame) -> _Uranium:
    st = _whole_numbers(raw["stfips"])
    ct = _whole_numbers(raw["ctfips"])
    uppm = pd.to_numeric(raw["Uppm"].where(raw["Uppm"] != ""), errors="coerce").astype(float)
    ok = st.notna() & ct.notna()
    table = pd.DataFrame({"st": st[ok].astype(np.int64), "ct": ct[ok].astype(np.int64), "uppm": uppm[ok],
                          "name": raw["cty"][ok] if "cty" in raw else ""})
    value: dict[tuple[int, int], float] = {}
    names: dict[tuple[int, int], str] = {}
    conflicting, zero = [], []
    merged = 0
    for (s, c), rows in table.groupby(["st", "ct"], sort=True):
        key = (int(s), int(c))
        vals = rows["uppm"].dropna().unique()
        named = [n for n in rows["name"] if n]
        if named:
            names[key] = named[0]
        if len(vals) > 1:
            conflicting.append(key)
            value[key] = np.nan
            continue
        merged += len(rows) - 1
        if len(vals) == 1 and vals[0] <= 0:
            zero.append(key)
            value[key] = np.nan
        else:
            value[key] = float(vals[0]) if len(vals) else np.nan
    n_counties = len(value)
    return _Uranium(value, names, len(raw), n_counties, merged, tuple(conflicting),
                    tuple(zero), int((~ok).sum()))


def _fips(stfips: int, cntyfips: int) -> str:
    return f"{stfips:02d}{cntyfips:03d}"


def _compact(name: str) -> str:
    """The label of a county name: its spaces removed, as in cty.dat and the bundled radon_mn.csv."""
    return "".join(name.split())


def _county_labels(homes: pd.DataFrame, cty_names: dict[tuple[int, int], str]
                   ) -> tuple[dict[tuple[int, int, str], tuple[str, str]], list[str]]:
    """Per county (state field, state FIPS, county FIPS): its label, unique within the state field, and
    its name as written in srrs2.dat."""
    notes: list[str] = []
    chosen: dict[tuple[int, int, str], str] = {}
    unnamed_rows, borrowed, several = 0, [], []
    for (st, ct, state), names in homes.groupby(["stfips", "cntyfips", "state"], sort=True)["name"]:
        key = (int(st), int(ct), str(state))
        counts = Counter(" ".join(n.split()) for n in names if n)
        unnamed_rows += int((names == "").sum())
        if not counts:
            fallback = cty_names.get((key[0], key[1]))
            chosen[key] = fallback if fallback else f"FIPS {_fips(key[0], key[1])}"
            borrowed.append(f"{state} {_fips(key[0], key[1])} -> {chosen[key]}")
            continue
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        chosen[key] = top[0][0]
        if len(top) > 1:
            several.append((state, _fips(key[0], key[1]), [n for n, _ in top]))
    if unnamed_rows:
        fallback = ", else cty.dat's: " + "; ".join(borrowed) if borrowed else ""
        notes.append(f"{unnamed_rows} home(s) without a county name were labelled by their FIPS code "
                     f"(the name other homes with that code carry{fallback}).")
    if several:
        by_state = Counter(s for s, _, _ in several)
        examples = "; ".join(f"{s} {code}: {', '.join(n)}" for s, code, n in several[:2])
        notes.append("county codes carrying several names, labelled by the most frequent: "
                     + ", ".join(f"{n} in {s}" for s, n in sorted(by_state.items())) + f" (e.g. {examples}).")
    labels = {key: _compact(name) for key, name in chosen.items()}
    shared: dict[tuple[str, str], list[tuple[int, int, str]]] = {}
    for key, label in labels.items():
        shared.setdefault((key[2], label), []).append(key)
    clashes = {k: v for k, v in shared.items() if len(v) > 1}
    for (_, label), keys in clashes.items():
        for key in keys:
            labels[key] = f"{label}({_fips(key[0], key[1])})"
    if clashes:
        by_state = Counter(s for s, _ in clashes)
        notes.append("names used for several county codes in one state, labelled with the FIPS code "
                     "appended: " + ", ".join(f"{n} in {s}" for s, n in sorted(by_state.items())) + ".")
    return {key: (labels[key], chosen[key]) for key in chosen}, notes


# ------------------------------------------------------------------ table


def _assemble(homes: pd.DataFrame, uranium: _Uranium) -> pd.DataFrame:
    keys = list(zip(homes["stfips"], homes["cntyfips"], strict=True))
    u = np.array([uranium.value.get((int(s), int(c)), np.nan) for s, c in keys], dtype=float)
    floor = homes["floor"]
    basement = (floor == 0).astype(float).where(floor.notna())
    frame = homes.drop(columns="name").assign(
        floor=floor.astype(np.int64) if floor.notna().all() else floor,
        basement=basement.astype(np.int64) if basement.notna().all() else basement,
        log_radon=np.log(homes["activity"] + RADON_OFFSET),
        uranium=u,
        log_uranium=np.log(u),
    )
    frame["state"] = frame["state"].astype(object)
    frame["state2"] = frame["state2"].astype(object)
    for col in ("county", "county_name"):
        frame[col] = frame[col].astype(object)
    return frame.loc[:, list(OUTPUT_COLUMNS)]


def _notes(n_read: int, frame: pd.DataFrame, dropped: dict[str, int], uranium: _Uranium,
           label_notes: list[str]) -> tuple[str, ...]:
    n_dropped = sum(dropped.values())
    states = frame.groupby("state", sort=True).size()
    notes = [f"srrs2.dat: {n_read} homes read, {len(frame)} kept in {len(states)} survey states ("
             + ", ".join(f"{s} {n}" for s, n in states.items()) + ")"
             + (", none dropped." if not n_dropped else
                f"; {n_dropped} dropped: " + ", ".join(f"{n} {r}" for r, n in dropped.items() if n) + ".")]
    unknown_floor = int(frame["floor"].isna().sum())
    if unknown_floor:
        notes.append(f"{unknown_floor} home(s) have no recorded floor (code 9): kept, with floor and "
                     "basement missing, so a model using either leaves them out.")
    notes.extend(label_notes)
    cty = (f"cty.dat: {uranium.n_rows} rows for {uranium.n_counties} counties"
           + (f"; {uranium.merged_rows} duplicate rows agreeing on Uppm merged"
              if uranium.merged_rows else "")
           + (f"; {uranium.unreadable_rows} rows without usable FIPS codes ignored"
              if uranium.unreadable_rows else "")
           + (f"; {len(uranium.conflicting)} counties with conflicting Uppm values "
              f"({', '.join(_fips(*k) for k in uranium.conflicting[:5])}) get no uranium value"
              if uranium.conflicting else "; no conflicting values") + ".")
    notes.append(cty)
    no_u = frame[frame["uranium"].isna()]
    if len(no_u):
        keys = set(zip(no_u["stfips"], no_u["cntyfips"], strict=True))
        zero = sorted(k for k in keys if (int(k[0]), int(k[1])) in uranium.zero)
        conflicting = sorted(k for k in keys if (int(k[0]), int(k[1])) in uranium.conflicting)
        absent = sorted(k for k in keys if (int(k[0]), int(k[1])) not in uranium.value)
        blank = len(keys) - len(zero) - len(conflicting) - len(absent)
        parts = []
        if absent:
            parts.append(f"{len(absent)} not in cty.dat")
        if blank:
            parts.append(f"{blank} whose Uppm is empty or not a number")
        if zero:
            parts.append(f"{len(zero)} with Uppm 0 (not measured)")
        if conflicting:
            parts.append(f"{len(conflicting)} with conflicting values")
        counties = no_u.drop_duplicates(["state", "county"])
        shown = ", ".join(f"{s} {c}" for s, c in zip(counties["state"], counties["county"], strict=True))
        notes.append(f"{len(no_u)} home(s) in {len(keys)} count(ies) have no uranium value ("
                     + "; ".join(parts) + f"): kept, with uranium and log_uranium missing, so a model using "
                     f"them leaves those homes out. Counties: {shown}.")
    return tuple(notes)


__all__ = ["CTY_FILE", "DROP_REASONS", "SRRS2_FILE", "load_srrs2"]
