"""The HTML report: complete, escaped, self-contained and deterministic."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from compare_kit.report import tables as tb
from compare_kit.report.render import DEMO_FILE, SECTIONS, TABLE_FILES
from tests.report.conftest import XSS

SECTION_IDS = [s.id for s in SECTIONS]


def strip_timestamp(html: str) -> str:
    return "\n".join(line for line in html.splitlines() if "Generated at" not in line)


# ----------------------------------------------------------------- fast


def test_numbers_are_rounded_only_for_display():
    assert tb.fmt_num(1.23456) == "1.235"
    assert tb.fmt_num(-0.0001) == "0.000"
    assert tb.fmt_num(float("nan")) == tb.DASH
    assert tb.fmt_num(2.5e7) == "2.50e+07"
    assert tb.fmt_interval(0.1, float("nan")) == tb.DASH
    assert tb.fmt_int(1234.0) == "1,234"


def test_table_html_escapes_cells_and_folds_long_tables():
    frame = pd.DataFrame({"level": [XSS] + [f"G{i}" for i in range(30)], "value": range(31)})
    html = tb.table_html(tb.generic(frame, "t", "caption & more"))
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "caption &amp; more" in html
    assert "<details" in html  # 31 rows > LONG_TABLE
    assert '<td class="int">30</td>' in html  # numbers right-aligned by class


def test_environment_autoescapes():
    env = tb.environment()
    assert env.autoescape is True
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


def test_cli_report_needs_a_formula_with_csv(tmp_path, capsys):
    from compare_kit.cli import main

    assert main(["report", "--csv", str(tmp_path / "t.csv")]) == 2
    assert "--formula" in capsys.readouterr().err
    assert main(["report", "--study", str(tmp_path / "s.toml"), "--formula", "y ~ x"]) == 2


def test_cli_builds_pooled_unpooled_and_partial_models_from_one_formula(tmp_path):
    from compare_kit.cli import _study_from_formula

    pd.DataFrame({"subject": [1, 1, 2, 2, 3, 3], "dose": [0, 1, 0, 1, 0, 1],
                  "reaction_time": [1.0, 2.0, 1.5, 2.5, 0.5, 1.0]}).to_csv(tmp_path / "t.csv", index=False)
    study = _study_from_formula("reaction_time ~ dose + (1 + dose | subject)", csv_path=tmp_path / "t.csv")
    assert [m.label for m in study.models] == ["pooled", "unpooled", "partial_pooling"]
    assert str(study.models[1].spec) == "reaction_time ~ 0 + C(subject) + C(subject):dose"
    assert "radon" not in study.title.lower()


# ----------------------------------------------------------------- slow (sampling)


@pytest.mark.slow
def test_radon_report_has_every_section_figure_and_table(radon_html):
    html = radon_html
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in html and f'href="#{sid}"' in html
    assert html.count("<svg") >= 8
    for fid in ("fig-group-panels", "fig-shrinkage-arrows", "fig-shrinkage-size", "fig-caterpillar-intercept",
                "fig-ppc", "fig-rank", "fig-forest"):
        assert f'id="{fid}"' in html
    assert "Figure not drawn" not in html
    for county in ("CASS", "CROWWING", "FREEBORN"):
        assert county in html
    # 85 counties, under MAX_LEVELS_LISTED: every per-level table lists every county, none is summarised
    assert tb.MAX_LEVELS_LISTED >= 85 and "chosen levels" not in html and "Only chosen" not in html
    for tid in ("tbl-groups-partial_pooling", "tbl-eq-vals-partial_pooling", "tbl-shrinkage"):
        body = html[html.index(f'<table id="{tid}"'):]
        body = body[body.index("<tbody>"):body.index("</tbody>")]
        assert body.count("<tr>") == 85 * (1 if tid == "tbl-groups-partial_pooling" else 2), tid  # 2 terms
    for words in ("In-sample RMSD", "cross-validation", "PSIS leave-one-out", "AIC", "conditional equivalence",
                  "Flattening the prior", "boundary case", "R-hat", "divergences", "nutpie",
                  "log_radon ~ floor + (1 + floor || county)", "y ~ 1 + x0 + (1 + z0_1 | g0)",
                  "HalfNormal", "data hash", "compare-kit report --draws 200"):
        assert words in html, words
    # short chains are flagged at the top, in a problem box. false-failure probability: < 1e-9 (at 2 x 200
    # draws bulk ESS < 400 of 400 is certain (at most 104 seen), and partial_pooling alone had a largest
    # R-hat of 1.026-1.067 over seeds 1-10, P(<= 1.01) ~ 3e-7 lognormal; three more models' R-hats count)
    assert 'class="status status-bad"' in html and "R-hat &gt; 1.01" in html
    # every demonstration names its model: conditional equivalence the study's own, prior flattening a
    # derived random intercept, the boundary case a constructed data set
    models = re.findall(r'<p class="demo-model">Model: <code>(.*?)</code>(.*?)</p>', html)
    assert [m[0] for m in models] == ["log_radon ~ floor + (1 + floor || county)",
                                      "log_radon ~ floor + (1 | county)", "y ~ (1 | group)"]
    assert "as fitted in this study" in models[0][1] and "derived" in models[1][1]
    assert "constructed data set" in models[2][1]


@pytest.mark.slow
def test_report_is_self_contained(radon_html):
    assert "<script" not in radon_html and "<link" not in radon_html
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", radon_html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert "<style>" in radon_html and "@media print" in radon_html


@pytest.mark.slow
def test_report_is_deterministic_except_the_timestamp(radon_result, radon_html):
    from compare_kit.report.render import render_report

    again = render_report(radon_result, command="compare-kit report --draws 200 --tune 200 --chains 2")
    assert strip_timestamp(again) == strip_timestamp(radon_html)
    assert sum("Generated at" in line for line in radon_html.splitlines()) == 1
    quiet = render_report(radon_result, timestamp=False)
    assert not re.search(r"Generated at \d{4}-", quiet)


@pytest.mark.slow
def test_write_report_writes_html_and_the_five_tables(radon_result, tmp_path):
    import compare_kit as ck

    path = ck.write_report(radon_result, tmp_path / "r.html", timestamp=False, tables_dir=tmp_path)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    for name in TABLE_FILES:
        frame = pd.read_csv(tmp_path / name)
        assert len(frame) > 0, name
    assert {"z_difference", "verdict"} <= set(pd.read_csv(tmp_path / "equivalence.csv").columns)
    demo = pd.read_csv(tmp_path / DEMO_FILE.format("conditional_equivalence"))
    assert len(demo) == len(radon_result.demos.conditional_equivalence.table)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic: no temporary files left


@pytest.mark.slow
def test_notebook_views_use_the_report_tables(radon_result):
    freq, bayes = radon_result.fits["partial_pooling"]
    for fit in (freq, bayes):
        html = fit._repr_html_()
        assert '<table id="fit-estimates" class="ck-table">' in html
        assert "SD of county intercepts" in html
    cmp_html = radon_result.comparisons["partial_pooling"]._repr_html_()
    # false-failure probability: < 1e-12 (170 group effects and 2 fixed effects, each within 0.5
    # posterior SD of the frequentist value by a wide margin: one "agree" suffices)
    assert "agree" in cmp_html and 'class="badge ok"' in cmp_html


@pytest.mark.slow
def test_generic_csv_report_is_complete_escaped_and_never_mentions_radon(generic_run):
    assert generic_run["code"] == 0, generic_run["stderr"]
    html = generic_run["html"].read_text(encoding="utf-8")
    assert "radon" not in html.lower()
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in html
    assert "Figure not drawn" not in html
    for fid in ("fig-group-panels", "fig-shrinkage-arrows", "fig-caterpillar-slope", "fig-ppc", "fig-rank"):
        assert f'id="{fid}"' in html
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "reaction_time ~ dose + (1 + dose | subject)" in html
    # the smallest, median and largest subjects are the panels (the injected name is the smallest)
    assert "(the smallest, median and largest groups)" in html
    for name in TABLE_FILES:
        assert (generic_run["tables"] / name).is_file()
    # progress on stderr: each fit is announced
    assert "[partial_pooling] frequentist fit" in generic_run["stderr"] and "Bayesian fit (" in generic_run["stderr"]
    assert "wrote" in generic_run["stderr"]
    # --workers 1: everything in this process, and the exact command is in the reproducibility section
    assert "second process" not in generic_run["stderr"]
    assert "--workers 1" in html


@pytest.mark.slow
def test_quiet_report_of_a_model_without_groups(tmp_path):
    import subprocess
    import sys

    from tests.report.conftest import repeated_measures

    csv = tmp_path / "rm.csv"
    repeated_measures().to_csv(csv, index=False)
    out = tmp_path / "fixed.html"
    run = subprocess.run([sys.executable, "-m", "compare_kit.cli", "report", "--csv", str(csv), "--formula",
                          "reaction_time ~ dose", "--draws", "100", "--tune", "100", "--chains", "2",
                          "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and run.stderr == ""
    html = out.read_text(encoding="utf-8")
    assert "no group panels" in html and "Figure not drawn" not in html
    assert not (tmp_path / "estimates.csv").exists()  # tables only when asked for
