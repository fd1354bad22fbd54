"""Options and shared runs for the reliability tests.

``--sbc-sims N`` (or ``COMPARE_KIT_SBC_SIMS=N``) sets the number of simulations of the
calibration test (default 200, sized for CI); ``COMPARE_KIT_SBC_DIR`` (or
``--sbc-dir``) keeps its ranks in that folder instead of pytest's temporary one. The
path of the ranks is printed at the end of the run. The options are defined here, so they
work when ``tests/reliability`` (or a file in it) is on the command line; the
environment variables work from anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SBC_DEFAULT_SIMS = 200
SBC_REPORT: list[str] = []  # lines for the terminal summary

HOSTILE_COLUMN = "<img src=x onerror=alert(1)>"
HOSTILE_LABELS = ["<b>bold</b>", "a&b<", "\"quoted\"", "<script>alert('x')</script>"]
REPRO_FORMULA = f"score ~ dose + (1 | `{HOSTILE_COLUMN}`)"
REPRO_SETTINGS = {"seed": 7, "draws": 100, "tune": 100, "chains": 2, "cv_folds": 3}
REPRO_COMMAND = "compare-kit report --csv repro.csv --seed 7 --draws 100 --tune 100 --chains 2"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("compare_kit reliability")
    group.addoption("--sbc-sims", type=int, default=None,
                    help=f"simulations in the calibration test (default {SBC_DEFAULT_SIMS}, "
                         "or $COMPARE_KIT_SBC_SIMS)")
    group.addoption("--sbc-dir", default=None,
                    help="folder for the calibration ranks "
                         "(default $COMPARE_KIT_SBC_DIR, else a temporary one)")


@pytest.fixture(scope="session")
def sbc_sims(pytestconfig: pytest.Config) -> int:
    value = pytestconfig.getoption("--sbc-sims") or os.environ.get("COMPARE_KIT_SBC_SIMS") or SBC_DEFAULT_SIMS
    return int(value)


@pytest.fixture(scope="session")
def sbc_dir(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    value = pytestconfig.getoption("--sbc-dir") or os.environ.get("COMPARE_KIT_SBC_DIR")
    folder = Path(value) if value else tmp_path_factory.mktemp("sbc")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest hook
    if SBC_REPORT:
        terminalreporter.section("simulation-based calibration")
        for line in SBC_REPORT:
            terminalreporter.write_line(line)


# ------------------------------------------------------------- a small hostile study, run once


def repro_table(seed: int = 11) -> pd.DataFrame:
    """Scores of 10 groups (4 with HTML-like labels) at doses 0-3, grouped by a hostile column name."""
    rng = np.random.default_rng(seed)
    labels = HOSTILE_LABELS + [f"G{i}" for i in range(6)]
    rows = []
    for i, label in enumerate(labels):
        level = rng.normal(0, 1.0)
        for _ in range(4 + i % 3):
            dose = int(rng.integers(0, 4))
            rows.append({"score": round(10 + level + 0.8 * dose + rng.normal(0, 0.7), 4), "dose": dose,
                         HOSTILE_COLUMN: label})
    return pd.DataFrame(rows)


def run_repro(folder: Path, cores: int, seed: int = REPRO_SETTINGS["seed"]):
    """Run the study on ``repro.csv`` with ``cores`` parallel chains; write the report and its tables."""
    from compare_kit.cli import _study_from_formula
    from compare_kit.report.render import write_report
    from compare_kit.study import run_study

    folder.mkdir(parents=True, exist_ok=True)
    csv = folder.parent / "repro.csv"
    if not csv.exists():
        repro_table().to_csv(csv, index=False)
    study = _study_from_formula(REPRO_FORMULA, csv_path=csv).with_settings(**{**REPRO_SETTINGS, "seed": seed})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "cpu_count", lambda: cores)  # fit_bayesian runs min(chains, cpu_count) chains at once
        result = run_study(study)
    write_report(result, folder / "report.html", tables_dir=folder, command=REPRO_COMMAND)
    return result


@pytest.fixture(scope="session")
def repro_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("repro")


@pytest.fixture(scope="session")
def repro_result(repro_root: Path):
    """The study with two chains on two cores (the reproducibility test reruns it on one)."""
    return run_repro(repro_root / "cores2", cores=2)


@pytest.fixture(scope="session")
def repro_html(repro_result, repro_root: Path) -> str:
    return (repro_root / "cores2" / "report.html").read_text(encoding="utf-8")
