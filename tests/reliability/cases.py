"""The reliability case table (issue 7): one row per messy input, with what a careful user expects.

Every case is a CSV text and a formula, so the same row runs through the Python API
(``test_matrix_api.py``: ``load_csv`` -> ``ModelSpec`` -> both engines) and through the
command line (``test_matrix_cli.py``: ``compare-kit fit`` and ``compare-kit report``).
``docs/reliability.md`` lists every case id; ``test_docs.py`` keeps the two in step.

An ``error`` case must stop with a ``CompareKitError`` whose message contains
``phrase`` (CLI: exit code 2, the phrase on stderr, no traceback, no output file).
An ``ok`` case must fit; ``phrase`` must then appear among the fit's warnings or
notes (``where``), and ``check`` (if any) looks at the result in detail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

SENTINEL = "{sentinel}"  # replaced by a path in tmp_path: it must never be created


@dataclass(frozen=True)
class Case:
    id: str
    section: str
    csv: str
    formula: str
    outcome: str  # "error" or "ok"
    phrase: str
    where: str = "message"  # ok cases: "warnings" or "notes"
    check: Callable | None = field(default=None, compare=False)
    # the CLI prints this (warnings on stderr); None: the same as phrase
    cli_phrase: str | None = None
    # a behaviour still missing in the code: the reason names the change needed (strict xfail,
    # so the test fails as soon as the change lands and the mark must go)
    api_gap: str = ""
    cli_gap: str = ""  # compare-kit fit
    report_gap: str = ""  # compare-kit report


def table(groups: int = 8, rows: int = 6, seed: int = 1, *, sep: str = ",", labels: list[str] | None = None,
          extra: dict[str, list[str]] | None = None, header: list[str] | None = None) -> str:
    """A small random-intercept table: y = 1 + 0.5 x + u_g + e, as CSV text (values to 4 decimals)."""
    rng = np.random.default_rng(seed)
    labels = labels or [f"G{i}" for i in range(groups)]
    g = np.repeat(labels, rows)
    x = rng.normal(size=len(g))
    y = 1 + 0.5 * x + np.repeat(rng.normal(size=len(labels)), rows) + rng.normal(0, 0.5, len(g))
    cols = {"y": [f"{v:.4f}" for v in y], "x": [f"{v:.4f}" for v in x], "g": list(g)}
    for name, values in (extra or {}).items():
        cols[name] = values
    names = header or list(cols)
    lines = [sep.join(names)]
    lines += [sep.join(cols[c][i] for c in cols) for i in range(len(g))]
    return "\n".join(lines) + "\n"


def _with(text: str, row: int, column: str, value: str) -> str:
    lines = text.splitlines()
    names = lines[0].split(",")
    cells = lines[row + 1].split(",")
    cells[names.index(column)] = value
    lines[row + 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


BASE = table()
N_BASE = 48


def _replace_column(text: str, column: str, values: list[str]) -> str:
    lines = text.splitlines()
    j = lines[0].split(",").index(column)
    out = [lines[0]]
    for line, v in zip(lines[1:], values, strict=True):
        cells = line.split(",")
        cells[j] = v
        out.append(",".join(cells))
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------- detailed checks


def _distinct_labels(fit) -> None:
    assert fit.stats.n_groups == {"g": 6}
    levels = set(fit.table("ran_vals")["level"])
    assert levels == {"NA", "None", "nan", "007", "07", "7"}


def _dropped_rows(fit) -> None:
    s = fit.data_summary
    assert (s.n_input, s.n_used, s.n_dropped) == (N_BASE, N_BASE - 3, 3)
    assert s.dropped_by_column == {"x": 1, "y": 2}


def _accepted(n_groups: int) -> Callable:
    def check(fit) -> None:
        assert fit.health.converged
        assert fit.stats.n_groups == {"g": n_groups}
    return check


def _not_estimable(term: str) -> Callable:
    def check(fit) -> None:
        fixed = fit.table("fixed").set_index("term")
        assert np.isnan(fixed.loc[term, "estimate"])
        assert "not estimable" in fixed.loc[term, "note"]
        assert np.isfinite(fixed.loc["x", "estimate"])
    return check


def _single_rows_listed(fit) -> None:
    note = next(n for n in fit.health.notes if "single row" in n)
    assert "G0" in note and "G1" in note and "2 group(s)" in note


def _semicolons(fit) -> None:
    assert fit.stats.nobs == N_BASE and fit.stats.n_groups == {"g": 8}


def _bom(fit) -> None:
    assert fit.stats.nobs == N_BASE
    assert fit.spec.response.column == "y"


_NA_LABELS = ["NA", "None", "nan", "007", "07", "7"]
_SINGLE = table(groups=8, rows=6)
_single_lines = _SINGLE.splitlines()
# G0 and G1 keep one row each (radon has such counties too)
_SINGLE_ROWS = "\n".join([_single_lines[0]] + [ln for i, ln in enumerate(_single_lines[1:])
                                                 if i // 6 >= 2 or i % 6 == 0]) + "\n"
# level "c" of k has one row, and that row's response is missing: after dropping it, "c" has no rows
_LEVEL_LOST = _with(_with(table(extra={"k": ["a", "b"] * 24}), 0, "k", "c"), 0, "y", "")

CASES: list[Case] = [
    # ---------------------------------------------------------------- 1. formulas
    Case("formula-syntax", "formulas", BASE, "y ~ x +", "error", "position 8"),
    Case("formula-unbalanced", "formulas", BASE, "y ~ x + (1 | g", "error", "')' closing"),
    Case("formula-unknown-column", "formulas", BASE, "y ~ xx + (1 | g)", "error", "did you mean 'x'"),
    Case("formula-unknown-group", "formulas", BASE, "y ~ x + (1 | group)", "error",
         "the column 'group', which is not in the table"),
    Case("formula-unsupported-function", "formulas", BASE, "y ~ ns(x, 3) + (1 | g)", "error",
         "unknown function 'ns'"),
    Case("formula-unsupported-power", "formulas", BASE, "y ~ x^2 + (1 | g)", "error",
         "allowed only inside I(...)"),
    Case("formula-unsupported-offset", "formulas", BASE, "y ~ x + offset(x) + (1 | g)", "error",
         "fitting a Gaussian model with an offset is not available yet"),
    Case("inject-import", "formulas", BASE, "y ~ __import__('os').system('touch {sentinel}')", "error",
         "double underscore"),
    Case("inject-exec", "formulas", BASE, "y ~ exec(x) + (1 | g)", "error", "unknown function 'exec'"),
    Case("inject-exec-string", "formulas", BASE, "y ~ exec(\"open('{sentinel}', 'w')\")", "error",
         "quotes are not allowed"),
    Case("inject-eval", "formulas", BASE, "y ~ x + eval(x)", "error", "unknown function 'eval'"),
    Case("inject-open", "formulas", BASE, "y ~ open('{sentinel}', 'w')", "error", "quotes are not allowed"),
    Case("inject-open-call", "formulas", BASE, "y ~ open(x) + (1 | g)", "error", "unknown function 'open'"),
    Case("inject-attribute", "formulas", BASE, "y ~ x.__class__", "error", "no attribute access"),
    Case("inject-dunder", "formulas", BASE, "y ~ x + (1 | __builtins__)", "error", "double underscore"),
    Case("inject-dunder-backticks", "formulas", BASE, "y ~ `__import__`", "error", "double underscore"),
    Case("inject-os-system", "formulas", BASE, "y ~ os.system('touch {sentinel}')", "error",
         "no attribute access"),
    Case("inject-np-savetxt", "formulas", BASE, "y ~ np.savetxt('{sentinel}', x)", "error",
         "no attribute access"),
    Case("inject-pd-to-csv", "formulas", BASE, "y ~ x + pd.DataFrame.to_csv('{sentinel}')", "error",
         "no attribute access"),
    Case("inject-in-transform", "formulas", BASE, "y ~ log(__import__('os').system('touch {sentinel}'))",
         "error", "double underscore"),
    Case("inject-backtick-code", "formulas", BASE, "y ~ `os.system('touch {sentinel}')` + (1 | g)", "error",
         "which is not in the table"),
    Case("formula-no-fixed-effects", "formulas", BASE, "y ~ 0 + (1 | g)", "error",
         "'y ~ 0 + (1 | g)' has no fixed effects"),
    Case("inject-statement", "formulas", BASE, "y ~ x; import os; os.system('touch {sentinel}')", "error",
         "';' is not allowed"),
    # ---------------------------------------------------------------- 2. tables
    Case("table-empty", "tables", "", "y ~ x + (1 | g)", "error", "is empty"),
    Case("table-header-only", "tables", "y,x,g\n", "y ~ x + (1 | g)", "error", "no data rows"),
    Case("table-missing-response", "tables", table(header=["score", "x", "g"]), "y ~ x + (1 | g)", "error",
         "the column 'y', which is not in the table"),
    Case("table-missing-group", "tables", table(header=["y", "x", "grp"]), "y ~ x + (1 | g)", "error",
         "the column 'g', which is not in the table"),
    Case("table-text-response", "tables", _with(BASE, 4, "y", "high"), "y ~ x + (1 | g)", "error",
         "response 'y' must be numeric"),
    Case("table-typo-in-numbers", "tables", _with(BASE, 7, "x", "seven"), "y ~ x + (1 | g)", "error",
         "the predictor 'x' is mostly numbers, but it holds text: 'seven' (row 8); fix those values, or "
         "write C(x)"),
    Case("table-footer-row", "tables", BASE + "Total,,\n", "y ~ x + (1 | g)", "error",
         "the response 'y' must be numeric, but it holds text: 'Total' (row 49)"),
    Case("table-thousands-separator", "tables", _with(BASE, 5, "x", '"1,234.5"'), "y ~ x + (1 | g)", "error",
         "'1,234.5' looks like a number written with a thousands separator: remove the separators"),
    Case("table-decimal-commas", "tables", table(sep=";").replace(".", ","), "y ~ x + (1 | g)", "error",
         "looks like a number written with a decimal comma: write it with a point"),
    Case("table-text-predictor", "tables", table(extra={"k": ["low", "high"] * 24}), "y ~ x + k + (1 | g)",
         "ok", "'k' holds text, so it is a categorical predictor with 2 levels (high, low)", where="notes"),
    Case("table-duplicated-columns", "tables", table(header=["y", "x", "x"]), "y ~ x + (1 | g)", "error",
         "duplicated column names: x"),
    Case("table-bom", "tables", "\ufeff" + BASE, "y ~ x + (1 | g)", "ok", "", check=_bom),
    Case("table-semicolons", "tables", table(sep=";"), "y ~ x + (1 | g)", "ok", "", check=_semicolons),
    Case("table-na-labels-distinct", "tables", table(labels=_NA_LABELS), "y ~ x + (1 | g)", "ok", "",
         check=_distinct_labels),
    Case("table-missing-values", "tables",
         _with(_with(_with(BASE, 2, "y", ""), 9, "y", "NA"), 20, "x", "NaN"),
         "y ~ x + (1 | g)", "ok", "45 of 48 rows used; 3 dropped for missing values in: y (2), x (1)",
         where="summary", check=_dropped_rows),
    Case("table-infinite-response", "tables", _with(BASE, 3, "y", "inf"), "y ~ x + (1 | g)", "error",
         "'y' has 1 infinite value"),
    Case("table-infinite-predictor", "tables", _with(BASE, 3, "x", "-Infinity"), "y ~ x + (1 | g)", "error",
         "'x' has 1 infinite value"),
    Case("table-constant-response", "tables", _replace_column(BASE, "y", ["2.5"] * N_BASE), "y ~ x + (1 | g)",
         "error", "is constant"),
    Case("table-constant-predictor", "tables", table(extra={"c": ["3"] * N_BASE}), "y ~ x + c + (1 | g)",
         "ok", "", check=_not_estimable("c")),
    Case("table-collinear", "tables",
         table(extra={"x2": [f"{2 * float(v.split(',')[1]) + 1:.4f}" for v in BASE.splitlines()[1:]]}),
         "y ~ x + x2 + (1 | g)", "ok", "", check=_not_estimable("x2")),
    Case("table-level-without-rows", "tables", _LEVEL_LOST, "y ~ x + k + (1 | g)", "ok",
         "level(s) with no rows", where="notes"),
    # ---------------------------------------------------------------- 3. groups
    Case("groups-one", "groups", table(groups=1, rows=20), "y ~ x + (1 | g)", "error", "only 1 level"),
    Case("groups-three", "groups", table(groups=3, rows=10), "y ~ x + (1 | g)", "ok", "only 3 groups",
         where="warnings"),
    Case("groups-every-row", "groups", table(groups=30, rows=1), "y ~ x + (1 | g)", "error",
         "every row is its own group"),
    Case("groups-fewer-rows-than-effects", "groups", table(groups=10, rows=2), "y ~ x + (1 + x | g)", "error",
         "fewer random effects than rows"),
    Case("groups-single-row", "groups", _SINGLE_ROWS, "y ~ x + (1 | g)", "ok", "have a single row",
         where="notes", check=_single_rows_listed),
]

CASE_IDS = [c.id for c in CASES]


def params(cases: list[Case], gap: str) -> list:
    """pytest params of ``cases``; a case with a known gap (``api_gap``/``cli_gap``) is a strict xfail."""
    import pytest

    out = []
    for c in cases:
        reason = getattr(c, gap)
        marks = [pytest.mark.xfail(strict=True, reason=f"needs a code change: {reason}")] if reason else []
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def case(case_id: str) -> Case:
    return next(c for c in CASES if c.id == case_id)
