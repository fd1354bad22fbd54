"""Issue 7 through the Python API: the case table, fits that go wrong, and output files.

The table-driven part (``test_case_api``) runs every row of ``cases.CASES``; the rest
covers what a table row cannot express (optimizer trouble, Bayesian sampling
problems, writing files). ``docs/reliability.md`` maps each case to its test.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.mixed_linear_model import MixedLM

import compare_kit as ck
from compare_kit.errors import CompareKitError, OutputError
from compare_kit.spec import ModelSpec
from tests.engines.test_frequentist_health import boundary_data
from tests.reliability.cases import CASE_IDS, CASES, SENTINEL, Case, params

ERROR_CASES = [c for c in CASES if c.outcome == "error"]
OK_CASES = [c for c in CASES if c.outcome == "ok"]


def materialise(case: Case, folder: Path) -> tuple[Path, str, Path]:
    """The case's CSV file, its formula (sentinel filled in) and the sentinel path."""
    sentinel = folder / "sentinel"
    path = folder / f"{case.id}.csv"
    path.write_bytes(case.csv.encode("utf-8"))
    return path, case.formula.replace(SENTINEL, str(sentinel)), sentinel


def load_for(spec: ModelSpec, path: Path) -> pd.DataFrame:
    """What the CLI does: group and C() columns stay text."""
    text = list(spec.grouping_columns) + [v.column for t in spec.fixed for v in t.variables if v.categorical]
    return ck.load_csv(path, text_columns=text)


@pytest.mark.parametrize("case", params(ERROR_CASES, "api_gap"))
@pytest.mark.parametrize("engine", ["frequentist", "bayesian"])
def test_error_case_api(case, engine, tmp_path, engines_must_not_run):
    """Each bad input raises a CompareKitError naming the problem before any engine runs."""
    path, formula, sentinel = materialise(case, tmp_path)
    with pytest.raises(CompareKitError) as err:
        spec = ModelSpec.from_formula(formula)
        data = load_for(spec, path)
        if engine == "frequentist":
            ck.fit_frequentist(spec, data)
        else:
            ck.fit_bayesian(spec, data, draws=10, tune=10, chains=1)
    assert case.phrase in str(err.value)
    assert "Traceback" not in str(err.value)
    assert not sentinel.exists()


@pytest.mark.parametrize("case", params(OK_CASES, "api_gap"))
def test_ok_case_api(case, tmp_path):
    """Messy but usable inputs fit, and what a reader must know is on the result."""
    path, formula, _ = materialise(case, tmp_path)
    spec = ModelSpec.from_formula(formula)
    fit = ck.fit_frequentist(spec, load_for(spec, path))
    if case.where == "warnings":
        assert any(case.phrase in w for w in fit.health.warnings), fit.health.warnings
    elif case.where == "notes":
        assert any(case.phrase in n for n in fit.health.notes), fit.health.notes
    elif case.where == "summary":
        assert case.phrase in fit.data_summary.describe()
    if case.check is not None:
        case.check(fit)


def test_every_case_has_a_unique_id():
    assert len(set(CASE_IDS)) == len(CASE_IDS)
    assert {c.outcome for c in CASES} == {"error", "ok"}


def test_categorical_level_without_rows_is_noted():
    """A pandas categorical with an unused level: left out, and said so."""
    rng = np.random.default_rng(4)
    data = pd.DataFrame({"y": rng.normal(size=40), "g": np.repeat([f"g{i}" for i in range(8)], 5),
                         "k": pd.Categorical(["a", "b"] * 20, categories=["a", "b", "c"])})
    fit = ck.fit_frequentist(ModelSpec.from_formula("y ~ k + (1 | g)"), data)
    assert any("level(s) with no rows, left out: c" in n for n in fit.health.notes)
    assert fit.table("fixed")["term"].tolist() == ["(Intercept)", "kb"]


def test_radon_single_row_counties_are_accepted_and_listed(radon):
    fit = ck.fit_frequentist(ModelSpec.named("varying_intercept"), radon)
    note = next(n for n in fit.health.notes if "single row" in n)
    singles = sorted(radon.groupby("county").size().loc[lambda s: s == 1].index)
    assert note.startswith(f"{len(singles)} group(s) of 'county' have a single row")
    assert all(c in note for c in singles[:12])
    assert set(singles) <= set(fit.table("ran_vals")["level"])


# ------------------------------------------------------- missing values: same rows for both engines


@pytest.mark.slow
def test_missing_values_drop_the_same_rows_for_both_engines(tmp_path):
    from tests.reliability.cases import case

    c = case("table-missing-values")
    path, formula, _ = materialise(c, tmp_path)
    spec = ModelSpec.from_formula(formula)
    data = load_for(spec, path)
    freq = ck.fit_frequentist(spec, data)
    bayes = ck.fit_bayesian(spec, data, draws=100, tune=100, chains=2, seed=1)
    assert freq.data_summary == bayes.data_summary
    assert bayes.data_summary.describe() == ("45 of 48 rows used; 3 dropped for missing values in: "
                                             "y (2), x (1).")
    assert freq.stats.nobs == bayes.stats.nobs == 45


# ------------------------------------------------------------------ 5,000 groups


@pytest.mark.slow
def test_five_thousand_groups_finish_quickly():
    """20,000 rows in 5,000 groups: the frequentist fit finishes in seconds (measured ~3.5 s on 2 shared
    cores; the Bayesian engine at 2 x 50 draws ~17 s, see docs/reliability.md), far from hanging."""
    rng = np.random.default_rng(5)
    n_groups, rows = 5000, 4
    x = rng.normal(size=n_groups * rows)
    y = 1 + 0.5 * x + np.repeat(rng.normal(size=n_groups), rows) + rng.normal(size=x.size)
    data = pd.DataFrame({"y": y, "x": x, "g": np.repeat([f"g{i}" for i in range(n_groups)], rows)})
    start = time.perf_counter()
    fit = ck.fit_frequentist(ModelSpec.from_formula("y ~ x + (1 | g)"), data, information_criteria=False)
    seconds = time.perf_counter() - start
    assert fit.health.converged and fit.stats.n_groups == {"g": n_groups}
    assert seconds < 60, f"5,000 groups took {seconds:.0f} s"
    sd = fit.table("ran_pars").set_index("term").loc["sd__(Intercept)", "estimate"]
    assert sd == pytest.approx(1.0, abs=0.1)


# ------------------------------------------------------------------ fits that go wrong


@pytest.mark.parametrize("factor", [0.05, 1.0, 100.0])
def test_degenerate_variance_group_effects_are_not_estimates(factor):
    """At a zero group SD the BLUPs are exactly 0: flagged as not estimated, whatever the outcome's scale."""
    data = boundary_data()
    data["y"] *= factor
    fit = ck.fit_frequentist(ModelSpec.from_formula("y ~ 1 + (1 | g)"), data)
    assert fit.health.boundary
    assert any("singular fit" in w for w in fit.health.warnings)
    vals = fit.table("ran_vals")
    assert vals["note"].str.contains("not estimated").all()
    assert (fit.table("ran_pars").query("term == 'sd__(Intercept)'")["note"] == "at the boundary").all()


@pytest.mark.slow
def test_degenerate_variance_group_effects_are_not_compared_as_estimates():
    data = boundary_data()
    spec = ModelSpec.from_formula("y ~ 1 + (1 | g)")
    freq = ck.fit_frequentist(spec, data)
    vals = freq.table("ran_vals")
    assert vals[["std_error", "conf_low", "conf_high"]].isna().all().all()
    bayes = ck.fit_bayesian(spec, data, draws=200, tune=200, chains=2, seed=1)
    eq = ck.compare(freq, bayes).equivalence
    rows = eq[eq["effect"] == "ran_vals"]
    assert not rows["verdict"].isin(["agree", "differ slightly", "differ"]).any()
    assert rows["why"].str.contains("boundary").all()


def test_optimizers_that_disagree_are_flagged(radon, monkeypatch):
    """compare_kit's profiled optimizer stops at its start yet reports success: statsmodels goes on to
    the real maximum; the two answers differ by more than 1e-3 logLik, which the result says."""
    from compare_kit.engines import lmm

    def stops_at_start(self, start=None):
        theta = self.start() if start is None else np.asarray(start, dtype=float)
        return lmm.Optimum(theta, float(self.safe_deviance(theta)), True, 1, ())

    monkeypatch.setattr(lmm.LinearMixedModel, "optimize", stops_at_start)
    fit = ck.fit_frequentist(ModelSpec.named("varying_intercept"), radon)
    assert any("optimizers disagree" in w for w in fit.health.warnings), fit.health.warnings
    assert fit.health.attempts[0].startswith("profiled criterion")
    assert any("converged" in a and not a.startswith("profiled") for a in fit.health.attempts)
    assert fit.stats.loglik == pytest.approx(-1048.76099214154, abs=1e-3)  # statsmodels' answer is kept


def test_optimizer_crash_in_every_optimizer_is_a_clear_error(radon, monkeypatch):
    def crash(self, *args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(MixedLM, "fit", crash)
    with pytest.raises(CompareKitError, match="failed with every optimizer"):
        ck.fit_frequentist(ModelSpec.named("varying_intercept"), radon)


def centred_bambi(monkeypatch):
    """Make the Bayesian engine build Bambi's centred parameterisation (the engine itself is non-centred)."""
    import bambi

    original = bambi.Model

    def centred(*args, **kwargs):
        kwargs["noncentered"] = False
        return original(*args, **kwargs)

    monkeypatch.setattr(bambi, "Model", centred)


@pytest.fixture
def centred_fit(monkeypatch):
    """Six groups with identical means, centred: the funnel at a group SD near 0 makes NUTS diverge.

    The problems must show whatever the draws (a fixed seed does not fix them across BLAS kernels): at the
    old 2 chains x 200 draws (target_accept 0.8) 7 of seeds 1-22 had no divergence. Four chains of 100 draws
    with large steps (target_accept 0.3) make every problem certain; over seeds 1-120: every one of the 480
    chains diverged (1-97 times), the largest R-hat was 1.088-4.1 and the smallest bulk ESS at most 41.
    """
    centred_bambi(monkeypatch)
    return ck.fit_bayesian(ModelSpec.from_formula("y ~ 1 + (1 | g)"), boundary_data(), draws=100, tune=100,
                           chains=4, seed=1, target_accept=0.3)


@pytest.mark.slow
def test_bayesian_divergences_rhat_and_ess_are_flagged(centred_fit):
    flags = centred_fit.health.warnings
    # false-failure probability: < 1e-8 (no chain without a divergence in 480: P(a chain has none) <= 0.006
    # at 95%, and all four would need to). R-hat > 1.01: <= 2e-6 (t fit to log(R-hat - 1) over the 120 seeds,
    # lowest 1.088). Bulk ESS < 400 of 400 draws: cannot fail (at most 41 seen; a funnel's SD mixes slowly)
    assert centred_fit.sampling.divergences > 0
    assert any("divergent transition" in f for f in flags)
    assert any(f.startswith("R-hat > 1.01") for f in flags)
    assert any(f.startswith("bulk ESS < 400") for f in flags)
    assert not centred_fit.health.ok and not centred_fit.health.converged


@pytest.mark.slow
def test_fit_problems_show_at_the_top_of_the_report(centred_fit, repro_result, tmp_path):
    """A few-groups, singular frequentist fit and the divergent Bayesian fit, put into a study result in place
    of its hierarchical model's fits, are listed in the report's status box (before the first section)."""
    import dataclasses

    from compare_kit.report.render import render_report
    from tests.reliability.cases import case

    path, formula, _ = materialise(case("groups-three"), tmp_path)
    spec = ModelSpec.from_formula(formula, label="partial_pooling")
    few = ck.fit_frequentist(spec, load_for(spec, path))
    singular = ck.fit_frequentist(ModelSpec.from_formula("y ~ 1 + (1 | g)", label="unpooled"),
                                  boundary_data())
    fits = dict(repro_result.fits)
    fits["partial_pooling"] = (few, centred_fit)
    fits["unpooled"] = (singular, fits["unpooled"][1])
    html = render_report(dataclasses.replace(repro_result, fits=fits), timestamp=False)
    start = html.index('<section id="status"')
    status = html[start:html.index("</section>", start)]
    assert "status-bad" in status
    # false-failure probability: < 1e-5 (the draws only enter through centred_fit's three flags; see there)
    for phrase in ("only 3 groups of", "singular fit", "divergent transition", "R-hat &gt; 1.01",
                   "bulk ESS &lt; 400"):
        assert phrase in status, phrase
    assert start < html.index('<section id="data"')


# ------------------------------------------------------------------ output


def test_failed_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    """A write that fails half-way (here: the disk fills after the first chunk) keeps the old report."""
    from compare_kit import io

    out = tmp_path / "report.html"
    out.write_text("previous report")
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, text):
            self.handle.write(text[: len(text) // 2])
            self.handle.flush()
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.os, "fdopen", lambda fd, *a, **k: FullDisk(real_fdopen(fd, *a, **k)))
    with pytest.raises(OutputError, match="No space left on device"):
        io.write_text_atomic(out, "<html>" + "x" * 100_000)
    assert out.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left behind


@pytest.mark.slow
def test_failed_render_leaves_the_previous_report_intact(tmp_path, monkeypatch, repro_result):
    from compare_kit.report import render

    out = tmp_path / "r.html"
    out.write_text("previous report")

    def broken(*_args, **_kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(render, "render_report", broken)
    with pytest.raises(RuntimeError):
        render.write_report(repro_result, out)
    assert out.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_csv_tables_are_written_atomically(tmp_path, monkeypatch):
    from compare_kit import io

    out = tmp_path / "est.csv"
    out.write_text("previous table")
    monkeypatch.setattr(io.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    with pytest.raises(OutputError, match="Input/output error"):
        io.write_csv_atomic(out, pd.DataFrame({"a": [1, 2]}))
    assert out.read_text() == "previous table"
    assert [p.name for p in tmp_path.iterdir()] == ["est.csv"]


def test_output_folders_are_created_and_a_file_in_the_way_is_a_clear_error(tmp_path):
    from compare_kit import io

    io.write_text_atomic(tmp_path / "new" / "folder" / "r.html", "x")
    assert (tmp_path / "new" / "folder" / "r.html").read_text() == "x"
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(OutputError, match="'.*file' is a file, not a folder"):
        io.write_text_atomic(tmp_path / "file" / "sub" / "r.html", "x")
    with pytest.raises(OutputError, match="is a folder"):
        io.write_text_atomic(tmp_path, "x")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file", "folder", "new", "r.html"]


def test_output_without_permission_is_a_clear_error(tmp_path, monkeypatch):
    """Checked up front (os.access) and, where that cannot tell (root, ACLs), when the file is created."""
    from compare_kit import io

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(io.os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    with pytest.raises(OutputError, match="no permission to write"):
        io.write_text_atomic(locked / "r.html", "x")
    monkeypatch.undo()

    def denied(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(io.tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match="Permission denied"):
        io.write_text_atomic(tmp_path / "r.html", "x")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_table_text_is_escaped_in_the_report(repro_html):
    """Hostile group labels and column names (see conftest.HOSTILE) appear only escaped."""
    from tests.reliability.conftest import HOSTILE_COLUMN, HOSTILE_LABELS

    for raw in [HOSTILE_COLUMN, *HOSTILE_LABELS]:
        assert raw not in repro_html
    assert "&lt;img src=x onerror=alert(1)&gt;" in repro_html  # the column name, shown as text
    assert "&lt;b&gt;bold&lt;/b&gt;" in repro_html and "a&amp;b&lt;" in repro_html
    assert "<img" not in repro_html and "<b>" not in repro_html and "<script" not in repro_html


def test_one_level_categorical_is_not_a_bare_crash_in_the_bayesian_engine(monkeypatch):
    from compare_kit.engines import bayesian

    def stop(*_args, **_kwargs):  # reaching the sampler means the model was built: that is enough
        raise CompareKitError("built")

    monkeypatch.setattr(bayesian, "run_sampler", stop)
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"y": rng.normal(size=20), "x": rng.normal(size=20), "g": ["only"] * 20})
    spec = ModelSpec.from_formula("y ~ 0 + C(g) + C(g):x")
    ck.fit_frequentist(spec, data)  # the frequentist engine copes: one indicator column
    with pytest.raises(CompareKitError):
        ck.fit_bayesian(spec, data, draws=10, tune=10, chains=1)
