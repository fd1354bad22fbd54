"""The package's layers: imports flow one way, and results render without the report or matplotlib."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "compare_kit"
ROOT_NAMES = {"fit_frequentist", "fit_bayesian", "load_radon", "load_csv", "load_srrs2", "load_study",
              "run_study", "write_report", "coverage_study", "compare", "ModelSpec", "CANONICAL_MODELS"}
# modules that may use the package root's API: the command line only (it is the top layer)
MAY_IMPORT_ROOT = {"cli.py", "__init__.py"}


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _root_imports(path: Path) -> list[str]:
    """``import compare_kit`` or ``from compare_kit import <API name>`` anywhere in the module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name == "compare_kit" for a in node.names):
            found.append(f"line {node.lineno}: import compare_kit")
        if isinstance(node, ast.ImportFrom) and node.module == "compare_kit" and node.level == 0:
            api = [a.name for a in node.names if a.name in ROOT_NAMES]
            if api:
                found.append(f"line {node.lineno}: from compare_kit import {', '.join(api)}")
    return found


def test_no_module_below_the_cli_imports_the_package_root():
    offenders = {str(p.relative_to(PACKAGE)): _root_imports(p) for p in _modules()
                 if p.name not in MAY_IMPORT_ROOT or p.parent != PACKAGE}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}


LOADS = r"""
import sys
import compare_kit.results, compare_kit.compare
import compare_kit as ck
data = ck.load_radon()
spec = ck.ModelSpec.named("varying_intercept")
freq = ck.fit_frequentist(spec, data)
html = freq._repr_html_()
assert "<table" in html
def watched():
    return {m for m in sys.modules if m.split(".")[0] == "matplotlib" or m.startswith("compare_kit.report")}
if sys.argv[1] == "both":
    bayes = ck.fit_bayesian(spec, data, draws=50, tune=50, chains=1, compile_cache=False)
    before = watched() - {m for m in watched() if m.startswith("compare_kit.report")}  # bambi loads matplotlib
    assert "<table" in bayes._repr_html_() and "<table" in ck.compare(freq, bayes)._repr_html_()
    print(",".join(sorted(watched() - before)))
else:
    print(",".join(sorted(watched())))
"""


def _loaded_by(which: str) -> str:
    run = subprocess.run([sys.executable, "-c", LOADS, which], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_a_frequentist_fits_html_needs_neither_matplotlib_nor_the_report():
    assert _loaded_by("frequentist") == ""


@pytest.mark.slow
def test_bayesian_fits_and_comparisons_render_without_matplotlib_or_the_report():
    """Bambi itself imports matplotlib; the HTML of a Bayesian fit and of a comparison adds none of it."""
    assert _loaded_by("both") == ""
