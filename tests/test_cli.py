"""The command line: output, exit codes and messages without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compare_kit.cli import MAX_UNPOOLED_LEVELS, _study_from_formula, main


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compare_kit.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_fit_frequentist_prints_and_writes_the_tidy_table(tmp_path):
    out = tmp_path / "est.csv"
    result = _run("fit", "--engine", "frequentist", "--formula", "varying_intercept", "--csv-out", str(out))
    assert result.returncode == 0, result.stderr
    assert "sd__(Intercept)" in result.stdout and "AITKIN" in result.stdout
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert len(table) == 2 + 2 + 85 * 2
    fixed = table[table["effect"] == "fixed"].set_index("term")["estimate"]
    assert fixed["floor"] == pytest.approx(-0.662888726208086, rel=1e-4)


@pytest.mark.parametrize(("args", "phrase"), [
    (["fit", "--engine", "frequentist", "--formula", "log_radon ~ flor"], "did you mean 'floor'"),
    (["fit", "--engine", "frequentist", "--formula", "log_radon ~ floor +"], "position"),
    (["fit", "--engine", "frequentist", "--csv", "/no/such.csv", "--formula", "y ~ x"], "no file at"),
    (["fit", "--engine", "frequentist", "--csv-out", "/etc/passwd/dir/x.csv"], "is a file, not a folder"),
    (["fit", "--engine", "magic"], "invalid choice"),
    (["fit", "--engine", "frequentist", "--draws", "-3"], "must be a whole number from 1 to 1000000, got -3"),
    (["report", "--tables-dir", "/etc/passwd"], "is a file, not a folder"),
    (["report", "--workers", "0"], "above 0"),
    (["fit", "--engine", "frequentist", "--csv", "tests/nothing.csv"], "--csv needs --formula"),
    (["nonsense"], "invalid choice"),
])
def test_bad_input_exits_2_without_traceback(capsys, args, phrase):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert phrase in err
    assert "Traceback" not in err


def test_no_partial_output_on_failure(tmp_path):
    out = tmp_path / "est.csv"
    out.write_text("previous content")
    code = main(["fit", "--engine", "frequentist", "--formula", "log_radon ~ nope", "--csv-out", str(out)])
    assert code == 2
    assert out.read_text() == "previous content"
    assert list(tmp_path.iterdir()) == [out]


def test_csv_input_with_generic_columns(tmp_path):
    rows = ["score,dose,subject"]
    for s in range(8):
        for d in range(4):
            rows.append(f"{10 + s * 0.7 + d * 1.3 + ((s * 7 + d * 3) % 5) * 0.4:.3f},{d},S{s:02d}")
    path = tmp_path / "rm.csv"
    path.write_text("\n".join(rows))
    out = tmp_path / "o.csv"
    code = main(["fit", "--engine", "frequentist", "--csv", str(path), "--formula",
                 "score ~ dose + (1 | subject)", "--csv-out", str(out), "--quiet"])
    assert code == 0
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert set(table.loc[table["effect"] == "ran_vals", "level"]) == {f"S{s:02d}" for s in range(8)}


def test_fit_without_mixedlm_reports_compare_kits_engine(tmp_path):
    out = tmp_path / "o.csv"
    for flag, engine in (([], "statsmodels"), (["--no-mixedlm"], "compare_kit")):
        code = main(["fit", "--engine", "frequentist", "--formula", "varying_intercept", "--csv-out", str(out),
                     "--quiet", *flag])
        assert code == 0
        assert set(pd.read_csv(out)["engine"]) == {engine}


def test_the_reproducibility_command_keeps_every_option_given():
    from compare_kit.cli import _argv_of, build_parser

    argv = ["report", "--seed", "3", "--no-mixedlm", "--no-timestamp"]
    assert _argv_of(build_parser().parse_args(argv)) == ["--seed", "3", "--no-mixedlm", "--no-timestamp"]


# the report command (HTML, tables, progress, --quiet) is tested in tests/report/


@pytest.mark.parametrize(("levels", "unpooled"), [(MAX_UNPOOLED_LEVELS, True), (MAX_UNPOOLED_LEVELS + 1, False)])
def test_formula_studies_leave_out_no_pooling_for_many_levels(tmp_path, levels, unpooled):
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"g": np.repeat(np.arange(levels), 2), "x": rng.normal(size=2 * levels)})
    table["y"] = table["x"] + rng.normal(size=len(table))
    table.to_csv(tmp_path / "t.csv", index=False)
    said: list[str] = []
    study = _study_from_formula("y ~ x + (1 | g)", csv_path=tmp_path / "t.csv", say=said.append)
    assert ("unpooled" in [m.label for m in study.models]) is unpooled
    assert bool(said) is not unpooled
    if said:
        assert f"g has {levels} levels" in said[0]


def test_a_formula_study_title_names_every_grouping_factor(tmp_path):
    table = pd.DataFrame({"a": [1, 1, 2, 2, 3, 3], "b": [1, 2, 1, 2, 1, 2], "y": [1.0, 2.1, 2.9, 4.2, 5.0, 6.3]})
    table.to_csv(tmp_path / "t.csv", index=False)
    study = _study_from_formula("y ~ 1 + (1 | a) + (1 | b)", csv_path=tmp_path / "t.csv")
    assert study.title.startswith("y by a and b:")


def test_fit_profile_gives_the_sds_intervals(tmp_path):
    out = tmp_path / "est.csv"
    assert main(["fit", "--engine", "frequentist", "--formula", "log_radon ~ floor + (1 | county)", "--profile",
                 "--quiet", "--csv-out", str(out)]) == 0
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    sds = table[table["term"].str.startswith("sd__")]
    assert len(sds) == 2 and sds["conf_low"].notna().all() and (sds["conf_low"] < sds["estimate"]).all()
    assert sds["note"].str.contains("profile likelihood").all()
