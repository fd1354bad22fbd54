"""Issue 7 through the command line: the same case table as ``test_matrix_api.py``.

Every bad input exits with code 2, one paragraph naming the problem, no traceback,
and no output file (a previous one is left untouched). Most runs call
``compare_kit.cli.main`` in-process (fast); ``test_end_to_end_*`` run the real
``compare-kit`` process for a few cases to prove the same at the process boundary.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from compare_kit.cli import main
from tests.reliability.cases import CASES, case, params
from tests.reliability.test_matrix_api import ERROR_CASES, OK_CASES, materialise

SMALL = ["--draws", "100", "--tune", "100", "--chains", "2"]
PREVIOUS = "previous output, must survive"


def one_paragraph(err: str) -> bool:
    """The message is one paragraph: no blank line inside it (the formula pointer lines belong to it)."""
    return "\n\n" not in err.strip() or err.count("usage:") == 1


def check_refused(code: int, err: str, phrase: str) -> None:
    """Exit 2; the message (after any progress lines) names the problem in one paragraph."""
    assert code == 2, err
    assert "Traceback" not in err
    assert "compare-kit: " in err, err
    message = err[err.index("compare-kit: "):]
    assert phrase in message, err
    assert one_paragraph(message), err


@pytest.mark.parametrize("c", params(ERROR_CASES, "cli_gap"))
def test_error_case_cli_fit(c, tmp_path, capsys):
    path, formula, sentinel = materialise(c, tmp_path)
    out = tmp_path / "estimates.csv"
    code = main(["fit", "--engine", "frequentist", "--csv", str(path), "--formula", formula,
                 "--csv-out", str(out), "--quiet"])
    captured = capsys.readouterr()
    check_refused(code, captured.err, c.phrase)
    assert captured.out == ""
    assert not out.exists() and not sentinel.exists()


@pytest.mark.parametrize("c", params(ERROR_CASES, "report_gap"))
def test_error_case_cli_report(c, tmp_path, capsys):
    path, formula, sentinel = materialise(c, tmp_path)
    out = tmp_path / "report.html"
    out.write_text(PREVIOUS)
    code = main(["report", "--csv", str(path), "--formula", formula, "--out", str(out), *SMALL, "--quiet"])
    captured = capsys.readouterr()
    check_refused(code, captured.err, c.phrase)
    assert out.read_text() == PREVIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, out.name])  # nothing else
    assert not sentinel.exists()


@pytest.mark.parametrize("c", params(OK_CASES, "cli_gap"))
def test_ok_case_cli_fit(c, tmp_path, capsys):
    path, formula, _ = materialise(c, tmp_path)
    out = tmp_path / "estimates.csv"
    code = main(["fit", "--engine", "frequentist", "--csv", str(path), "--formula", formula,
                 "--csv-out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert len(table) > 0
    if c.phrase:
        assert (c.cli_phrase or c.phrase) in captured.err, captured.err


def test_na_like_group_labels_survive_the_cli(tmp_path, capsys):
    path, formula, _ = materialise(case("table-na-labels-distinct"), tmp_path)
    out = tmp_path / "estimates.csv"
    assert main(["fit", "--engine", "frequentist", "--csv", str(path), "--formula", formula,
                 "--csv-out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert set(table.loc[table["effect"] == "ran_vals", "level"]) == {"NA", "None", "nan", "007", "07", "7"}


def test_singular_fit_warning_is_printed(tmp_path, capsys):
    """A boundary fit exits 0 but says so on stderr (the flag itself: test_matrix_api)."""
    from tests.engines.test_frequentist_health import boundary_data

    path = tmp_path / "b.csv"
    boundary_data().to_csv(path, index=False)
    assert main(["fit", "--engine", "frequentist", "--csv", str(path), "--formula", "y ~ 1 + (1 | g)"]) == 0
    assert "warning: singular fit" in capsys.readouterr().err


# ------------------------------------------------------------------ output paths


def test_output_in_a_missing_folder_is_created(tmp_path, capsys):
    path, formula, _ = materialise(case("table-bom"), tmp_path)
    out = tmp_path / "new" / "folder" / "est.csv"
    code = main(["fit", "--engine", "frequentist", "--csv", str(path), "--formula", formula, "--csv-out",
                 str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert len(pd.read_csv(out)) > 0


def test_output_with_a_file_in_the_way(tmp_path, capsys):
    path, formula, _ = materialise(case("table-bom"), tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text(PREVIOUS)
    for args in (["fit", "--engine", "frequentist", "--csv-out", str(blocker / "e.csv")],
                 ["report", "--out", str(blocker / "r.html"), *SMALL],
                 ["report", "--out", str(tmp_path / "r.html"), "--tables-dir", str(blocker / "t"), *SMALL]):
        code = main([*args, "--csv", str(path), "--formula", formula, "--quiet"])
        check_refused(code, capsys.readouterr().err, "is a file, not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, "blocker"])
    assert blocker.read_text() == PREVIOUS


def test_output_without_write_permission(tmp_path, capsys, monkeypatch):
    from compare_kit import io

    path, formula, _ = materialise(case("table-bom"), tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(io.os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    for args in (["fit", "--engine", "frequentist", "--csv-out", str(locked / "e.csv")],
                 ["report", "--out", str(locked / "r.html"), *SMALL]):
        code = main([*args, "--csv", str(path), "--formula", formula, "--quiet"])
        check_refused(code, capsys.readouterr().err, "no permission to write")
    monkeypatch.undo()

    real_mkstemp = io.tempfile.mkstemp

    def denied(*args, **kwargs):  # os.access cannot tell (root, ACLs, read-only mounts): creation fails
        if Path(kwargs.get("dir", "")) == tmp_path:
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(io.tempfile, "mkstemp", denied)
    out = tmp_path / "e.csv"
    code = main(["fit", "--engine", "frequentist", "--csv", str(path), "--formula", formula,
                 "--csv-out", str(out), "--quiet"])
    check_refused(code, capsys.readouterr().err, "Permission denied")
    assert not out.exists() and list(locked.iterdir()) == []


def test_output_path_is_a_folder(tmp_path, capsys):
    path, formula, _ = materialise(case("table-bom"), tmp_path)
    code = main(["report", "--csv", str(path), "--formula", formula, "--out", str(tmp_path), *SMALL,
                 "--quiet"])
    check_refused(code, capsys.readouterr().err, "is a folder")


def test_prior_text_is_never_evaluated(tmp_path, capsys):
    path, formula, _ = materialise(case("table-bom"), tmp_path)
    sentinel = tmp_path / "sentinel"
    for prior in (f"__import__('os').system('touch {sentinel}')", "tutorial; import os"):
        code = main(["fit", "--engine", "bayesian", "--csv", str(path), "--formula", formula,
                     "--priors", prior, "--quiet", *SMALL])
        check_refused(code, capsys.readouterr().err, "unknown prior preset")
    assert not sentinel.exists()


# ------------------------------------------------------------------ the real process


def _process(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compare_kit.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.mark.parametrize("case_id", ["inject-os-system", "table-empty", "groups-one",
                                     "table-infinite-response"])
def test_end_to_end_fit(case_id, tmp_path):
    c = case(case_id)
    path, formula, sentinel = materialise(c, tmp_path)
    out = tmp_path / "estimates.csv"
    run = _process("fit", "--engine", "frequentist", "--csv", str(path), "--formula", formula,
                   "--csv-out", str(out), cwd=tmp_path)
    check_refused(run.returncode, run.stderr, c.phrase)
    assert run.stdout == ""
    assert not out.exists() and not sentinel.exists()


def test_end_to_end_report(tmp_path):
    c = case("inject-np-savetxt")
    path, formula, sentinel = materialise(c, tmp_path)
    out = tmp_path / "report.html"
    out.write_text(PREVIOUS)
    run = _process("report", "--csv", str(path), "--formula", formula, "--out", str(out), *SMALL, "--quiet",
                   cwd=tmp_path)
    check_refused(run.returncode, run.stderr, c.phrase)
    assert out.read_text() == PREVIOUS and not sentinel.exists()


def test_report_validates_every_model_before_sampling(tmp_path, capsys, monkeypatch):
    """A column missing from the user's model must stop the report before any Bayesian fit runs."""
    from compare_kit.engines import bayesian

    def no_sampling(*_args, **_kwargs):
        raise AssertionError("sampled before the bad input was rejected")

    monkeypatch.setattr(bayesian, "fit_bayesian", no_sampling)
    c = case("formula-unknown-group")
    path, formula, _ = materialise(c, tmp_path)
    code = main(["report", "--csv", str(path), "--formula", formula, "--out", str(tmp_path / "r.html"),
                 *SMALL, "--quiet"])
    check_refused(code, capsys.readouterr().err, c.phrase)


def test_the_case_table_covers_every_section():
    assert {c.section for c in CASES} == {"formulas", "tables", "groups"}
