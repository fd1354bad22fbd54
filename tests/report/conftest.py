"""Studies run once per test session at small settings, shared by the render and browser tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

XSS = "<script>alert(1)</script>"
SMALL = {"draws": 200, "tune": 200, "chains": 2, "cv_folds": 3}
STUDENTS, LECTURERS = 120, 25  # students above plots.MANY_LEVELS (a ranked caterpillar), lecturers below


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


def crossed_ratings(seed: int = 11) -> pd.DataFrame:
    """Ratings y of lecturers d by students s, each student rating about 5 of the 25 lecturers (InstEval's
    design, small): student and lecturer effects crossed, a fixed service effect."""
    rng = np.random.default_rng(seed)
    student_effect = rng.normal(0, 0.5, STUDENTS)
    lecturer_effect = rng.normal(0, 0.4, LECTURERS)
    rows = []
    for s in range(STUDENTS):
        for d in rng.choice(LECTURERS, size=2 + s % 7, replace=False):
            service = int(rng.integers(0, 2))
            y = 3 + 0.3 * service + student_effect[s] + lecturer_effect[d] + rng.normal(0, 0.8)
            rows.append({"s": f"S{s:03d}", "d": f"D{d:02d}", "service": service, "y": round(y, 3)})
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


@pytest.fixture(scope="session")
def crossed_run(tmp_path_factory) -> Path:
    """The report of a crossed study (``(1 | s) + (1 | d)``) with its demonstrations, at small settings."""
    from compare_kit.cli import _study_from_formula
    from compare_kit.report.render import write_report
    from compare_kit.study import run_study

    folder = tmp_path_factory.mktemp("crossed_report")
    csv = folder / "ratings.csv"
    crossed_ratings().to_csv(csv, index=False)
    study = _study_from_formula("y ~ service + (1 | s) + (1 | d)", csv_path=csv).with_settings(**SMALL, mixedlm=False)
    return write_report(run_study(study, workers=1), folder / "crossed.html")


@pytest.fixture(scope="session")
def two_model_run(tmp_path_factory) -> Path:
    """The report of a study file with a random-intercept and a random-slope model (no no-pooling model)."""
    from compare_kit.report.render import write_report
    from compare_kit.study import load_study, run_study

    folder = tmp_path_factory.mktemp("two_models")
    repeated_measures().to_csv(folder / "reaction_times.csv", index=False)
    (folder / "study.toml").write_text(
        'title = "Reaction times: intercepts and slopes"\n[data]\ncsv = "reaction_times.csv"\n'
        '[settings]\ndraws = 200\ntune = 200\nchains = 2\ncv_folds = 3\ndemos = false\n'
        '[models.intercepts]\nformula = "reaction_time ~ dose + (1 | subject)"\n'
        '[models.slopes]\nformula = "reaction_time ~ dose + (1 + dose | subject)"\n', encoding="utf-8")
    return write_report(run_study(load_study(folder / "study.toml"), workers=1), folder / "two.html")


LME4 = Path(__file__).resolve().parents[1] / "reference" / "lme4"


@pytest.fixture(scope="session")
def binary_run(tmp_path_factory) -> Path:
    """The report of a bernoulli study (the small clusters of tests/reference/lme4, one factor) from a study
    file with its success level, at small settings."""
    from compare_kit.report.render import write_report
    from compare_kit.study import load_study, run_study

    folder = tmp_path_factory.mktemp("binary_report")
    (folder / "study.toml").write_text(
        f'title = "Small clusters: a 0/1 outcome"\n[data]\ncsv = "{LME4 / "small_clusters.csv"}"\n'
        '[settings]\ndraws = 200\ntune = 200\nchains = 2\ncv_folds = 3\n'
        '[models.pooled]\nformula = "y ~ x"\nfamily = "bernoulli"\nsuccess = "1"\n'
        '[models.clusters]\nformula = "y ~ x + (1 | cluster)"\nfamily = "bernoulli"\nsuccess = "1"\n',
        encoding="utf-8")
    return write_report(run_study(load_study(folder / "study.toml"), workers=1), folder / "binary.html")


@pytest.fixture(scope="session")
def count_run(tmp_path_factory) -> dict:
    """``compare-kit report --family poisson`` on the crossed counts with an offset, at small settings (the
    CLI has no fold setting: 10 folds of Laplace refits, a second or two)."""
    import contextlib
    import io

    from compare_kit.cli import main

    out = tmp_path_factory.mktemp("count_report") / "counts.html"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["report", "--csv", str(LME4 / "counts.csv"), "--family", "poisson", "--formula",
                     "count ~ x + (1 | site) + (1 | year) + offset(log(exposure))", "--draws", "200",
                     "--tune", "200", "--chains", "2", "--workers", "1", "--out", str(out)])
    return {"code": code, "html": out, "stderr": err.getvalue()}
