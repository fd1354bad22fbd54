"""Bundled data and safe CSV loading."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from compare_kit.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def test_load_radon_is_the_tutorial_data(radon):
    assert radon.shape == (919, 4)
    assert radon["county"].nunique() == 85
    aitkin = radon[radon["county"] == "AITKIN"]["log_radon"].round(6).tolist()
    assert aitkin == [0.832909, 0.832909, 1.098612, 0.09531]
    sizes = radon.groupby("county").size()
    assert sizes.min() == 1 and sizes.max() == 116
    assert set(radon["floor"]) == {0, 1}


def test_bundled_files_are_the_ones_data_readme_describes():
    """Each bundled file's SHA-256 is the one data/README.md gives for it (its provenance)."""
    import hashlib
    import re

    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    stated = {name: digest for digest, name in re.findall(r"`([0-9a-f]{64})`\s+`([\w.]+)`", readme)}
    assert sorted(stated) == ["cty.dat", "radon_mn.csv", "srrs2.dat"]
    for name, digest in stated.items():
        assert hashlib.sha256((ROOT / "data" / name).read_bytes()).hexdigest() == digest, name


def test_wheel_ships_the_data_and_loads_it_when_installed(tmp_path):
    """Build the wheel, install it into a fresh target, and load the data from there."""
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-w", str(wheel_dir), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheel_dir.glob("compare_kit-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        for name in ("radon_mn.csv", "srrs2.dat", "cty.dat", "README.md"):
            assert f"compare_kit/data/{name}" in zf.namelist()
        zf.extractall(tmp_path / "site")
    code = ("import compare_kit, sys; d = compare_kit.load_radon(); s = compare_kit.load_srrs2(); "
            "assert compare_kit.__file__.startswith(sys.argv[1]), compare_kit.__file__; "
            "assert s.attrs['source']['srrs2'].startswith(sys.argv[1]); print(len(d), len(s))")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site"), "PATH": ""}, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "919 12777"


def _write(tmp_path: Path, text: str, name: str = "t.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_group_labels_stay_text_and_distinct(tmp_path):
    rows = ["y,g"] + [f"{i}.5,{g}" for i, g in enumerate(["NA", "None", "nan", "007", "07", "7"] * 3)]
    path = _write(tmp_path, "\n".join(rows))
    frame = ck.load_csv(path, text_columns=["g"])
    assert sorted(frame["g"].unique()) == ["007", "07", "7", "NA", "None", "nan"]
    assert frame["g"].isna().sum() == 0
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula("y ~ 1 + (1 | g)"), frame)
    assert fit.stats.n_groups == {"g": 6}


def test_leading_zero_codes_stay_text_without_being_told(tmp_path):
    frame = ck.load_csv(_write(tmp_path, "y,g\n1,007\n2,07\n3,7\n"))
    assert frame["g"].tolist() == ["007", "07", "7"]


def test_missing_values_are_dropped_and_reported(tmp_path, radon):
    frame = radon.copy()
    frame.loc[[0, 5, 9], "log_radon"] = np.nan
    frame.loc[[5, 20], "floor"] = np.nan
    fit = ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), frame)
    summary = fit.data_summary
    assert (summary.n_input, summary.n_used, summary.n_dropped) == (919, 915, 4)
    assert summary.dropped_by_column == {"floor": 2, "log_radon": 3}
    assert "915 of 919 rows used; 4 dropped" in summary.describe()


def test_csv_numeric_na_tokens_are_missing(tmp_path):
    frame = ck.load_csv(_write(tmp_path, "y,x,g\n1.5,NA,a\n2.5,1,b\n,2,NA\n"))
    assert frame["x"].isna().tolist() == [True, False, False]
    assert frame["y"].isna().tolist() == [False, False, True]
    assert frame["g"].tolist() == ["a", "b", "NA"]


def test_bom_and_semicolons(tmp_path):
    path = _write(tmp_path, "\ufeffy;x;g\n1,0;1;a\n2;3;b\n".replace("1,0", "1.0"))
    frame = ck.load_csv(path)
    assert list(frame.columns) == ["y", "x", "g"]
    assert frame["y"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_any_line_ending_reads_the_same(tmp_path, newline):
    """Old Mac files end lines with a carriage return alone; Python's csv module refused them."""
    path = tmp_path / "t.csv"
    path.write_bytes(newline.join(["y,x,g", "1.5,2,a", '3,4,"b c"', ""]).encode())
    frame = ck.load_csv(path)
    assert frame.to_dict("list") == {"y": [1.5, 3.0], "x": [2, 4], "g": ["a", "b c"]}


@pytest.mark.parametrize(("text", "phrase"), [
    ("", "is empty"),
    ("y,x,g\n", "no data rows"),
    ("y,x,x\n1,2,3\n", "duplicated column names: x"),
    ("y,,g\n1,2,3\n", "column without a name"),
    ("y,x\n1,2\n3\n", "row 3 has 1 cells"),
])
def test_bad_tables_get_clear_errors(tmp_path, text, phrase):
    with pytest.raises(DataError, match=phrase):
        ck.load_csv(_write(tmp_path, text))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="no file at"):
        ck.load_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        ck.load_csv(tmp_path)


def test_non_numeric_response_and_infinite_values(tmp_path):
    frame = ck.load_csv(_write(tmp_path, "y,x,g\nlow,1,a\nhigh,2,b\nlow,3,a\n"))
    with pytest.raises(DataError, match="response 'y' must be numeric.*'low'"):
        ck.fit_frequentist(ck.ModelSpec.from_formula("y ~ x"), frame)
    frame = ck.load_csv(_write(tmp_path, "y,x\n1,1\n2,inf\n3,2\n4,5\n"))
    with pytest.raises(DataError, match="'x' has 1 infinite"):
        ck.fit_frequentist(ck.ModelSpec.from_formula("y ~ x"), frame)


def test_constant_response_is_an_error(radon):
    frame = radon.assign(log_radon=1.0)
    with pytest.raises(DataError, match="constant"):
        ck.fit_frequentist(ck.ModelSpec.named("pooled"), frame)


def test_one_group_and_every_row_its_own_group(radon):
    with pytest.raises(DataError, match="only 1 level"):
        ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon.assign(county="X"))
    with pytest.raises(DataError, match="every row is its own group"):
        ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"),
                           radon.assign(county=[str(i) for i in range(len(radon))]))


def test_text_predictor_becomes_categorical(tmp_path):
    frame = pd.DataFrame({"y": [1.0, 2, 3, 4, 5, 7], "k": ["a", "b", "c", "a", "b", "c"]})
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula("y ~ k"), frame)
    assert fit.table("fixed")["term"].tolist() == ["(Intercept)", "kb", "kc"]
