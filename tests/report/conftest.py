"""Studies run once per test session at small settings, shared by the render and browser tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

XSS = "<script>alert(1)</script>"
SMALL = {"draws": 200, "tune": 200, "chains": 2, "cv_folds": 3}


def repeated_measures(seed: int = 3) -> pd.DataFrame:
    """Reaction times of 18 subjects at doses 0-4, with subject-specific levels and dose slopes.

    One subject is named like an injected script; it is the smallest group, so it is
    drawn in the group panels and listed in every per-group table.
    """
    rng = np.random.default_rng(seed)
    names = [f"S{i:02d}" for i in range(1, 18)] + [XSS]
    sizes = [6 + (i % 7) for i in range(17)] + [3]
    rows = []
    for name, size in zip(names, sizes, strict=True):
        level = rng.normal(0, 30)
        slope = rng.normal(0, 6)
        dose = rng.integers(0, 5, size)
        rt = 300 + level + (15 + slope) * dose + rng.normal(0, 20, size)
        rows += [{"subject": name, "dose": int(d), "reaction_time": round(float(r), 2)}
                 for d, r in zip(dose, rt, strict=True)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def radon_result():
    from compare_kit.study import load_study, run_study

    return run_study(load_study().with_settings(**SMALL))


@pytest.fixture(scope="session")
def radon_html(radon_result) -> str:
    from compare_kit.report.render import render_report

    return render_report(radon_result, command="compare-kit report --draws 200 --tune 200 --chains 2")


@pytest.fixture(scope="session")
def generic_run(tmp_path_factory) -> dict[str, Path]:
    """The CLI on a repeated-measures CSV: the report, its tables and what it printed."""
    import contextlib
    import io

    from compare_kit.cli import main

    folder = tmp_path_factory.mktemp("generic")
    csv = folder / "reaction_times.csv"
    repeated_measures().to_csv(csv, index=False)
    out = folder / "new" / "reaction_times.html"  # a missing folder is created, as --tables-dir's is
    tables = folder / "tables" / "nested"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["report", "--csv", str(csv), "--formula", "reaction_time ~ dose + (1 + dose | subject)",
                     "--draws", "200", "--tune", "200", "--chains", "2", "--workers", "1", "--out", str(out),
                     "--tables-dir", str(tables)])
    return {"code": code, "html": out, "tables": tables, "stderr": err.getvalue(), "csv": csv}
