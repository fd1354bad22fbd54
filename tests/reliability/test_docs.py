"""docs/reliability.md matches the tests: cases, statuses and test names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.reliability.cases import CASES

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
DOC = ROOT / "docs" / "reliability.md"
REFERENCE = re.compile(r"`((?:tests/[\w/]+/)?\w+\.py)::(\w+)(?:\[([^\]`]+)\])?`")
MATRIX_TESTS = {"test_error_case_api", "test_ok_case_api", "test_error_case_cli_fit", "test_ok_case_cli_fit",
                "test_error_case_cli_report"}


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def functions_of(path: Path) -> dict[str, bool]:
    """Test functions of a module -> whether they carry an xfail mark."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name: any("xfail" in ast.unparse(d) for d in node.decorator_list)
            for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def resolve(file: str) -> Path:
    return ROOT / file if "/" in file else HERE / file


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows.append(cells)
    return rows


def test_every_named_test_exists():
    refs = REFERENCE.findall(doc_text())
    assert len(refs) > 20
    for file, name, param in refs:
        path = resolve(file)
        assert path.is_file(), file
        assert name in functions_of(path), f"{file}::{name}"
        if param and name in MATRIX_TESTS:
            case_id = param.split("-", 1)[1] if param.startswith(("frequentist-", "bayesian-")) else param
            assert case_id in {c.id for c in CASES}, param


def test_every_reliability_test_is_named():
    named = {(resolve(f).resolve(), n) for f, n, _ in REFERENCE.findall(doc_text())}
    for path in sorted(HERE.glob("test_*.py")):
        if path.name == "test_docs.py":
            continue
        for name in functions_of(path):
            assert (path.resolve(), name) in named, f"docs/reliability.md does not name {path.name}::{name}"


def test_case_table_matches_the_cases():
    rows = {r[0].strip("`"): r for r in table_rows(doc_text()) if len(r) == 6 and r[0].startswith("`")}
    assert set(rows) == {c.id for c in CASES}, set(rows) ^ {c.id for c in CASES}
    for c in CASES:
        _, _, expected, api, fit, report = rows[c.id]
        assert api == ("gap" if c.api_gap else "pass"), c.id
        assert fit == ("gap" if c.cli_gap else "pass"), c.id
        want_report = ("gap" if c.report_gap else "pass") if c.outcome == "error" else "—"
        assert report == want_report, c.id
        if c.outcome == "error":
            assert not expected.startswith("fits"), c.id


def test_gaps_are_marked_in_the_other_tables():
    """A row naming an xfail test says **gap**, and a **gap** row names an xfail test."""
    for row in table_rows(doc_text()):
        line = " | ".join(row)
        refs = REFERENCE.findall(line)
        if not refs or (len(row) == 6 and row[0].startswith("`")):
            continue
        xfail = any(functions_of(resolve(f)).get(n, False) for f, n, _ in refs)
        assert xfail == ("**gap**" in line), line


def test_readme_links_here():
    assert "docs/reliability.md" in (ROOT / "README.md").read_text(encoding="utf-8")
