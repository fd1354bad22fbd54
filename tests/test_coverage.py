"""The coverage study: profile intervals, designs and seeds, summaries, report, CLI (fast);
the Bayesian fast path against fit_bayesian, and the process pool against a Dask LocalCluster
with retried and recorded failures (slow, tiny sizes)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from compare_kit.coverage import CoverageConfig, CoverageError, CoverageResult, SamplerConfig
from compare_kit.coverage.config import FORMULA, N_COUNTIES, radon_design, real_response, sim_seeds
from compare_kit.coverage.profile import RandomInterceptCriterion, profile_intervals
from compare_kit.coverage.study import summarise, summarise_group_effects
from compare_kit.coverage.tasks import make_tasks

# lme4 1.1-31, R 4.2 (its profile ends are spline-interpolated: good to ~1e-5):
#   m <- lmer(log_radon ~ floor + (1 | county), d, REML = FALSE)
#                      confint(m, method = "profile", oldNames = FALSE)  (the REML fit gives the same)
LME4_PROFILE = {"sd": (0.2340542024, 0.4057427184), "sigma": (0.6921137641, 0.7613301444)}
# the same for the ten counties below (set.seed(3); sample(unique(d$county), 10)): a zero lower end
TEN = ["BENTON", "BROWN", "CHIPPEWA", "DODGE", "LACQUIPARLE", "LINCOLN", "OTTERTAIL", "PIPESTONE", "SWIFT",
       "WRIGHT"]
LME4_PROFILE_TEN = {"sd": (0.0, 0.57773616018), "sigma": (0.5107482479, 0.80638845044)}
LME4_REML_TEN = {"sd": 0.2307193, "sigma": 0.6369084}


def _arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    codes = np.unique(frame["county"].to_numpy(), return_inverse=True)[1]
    x = np.column_stack([np.ones(len(frame)), frame["floor"].to_numpy(dtype=float)])
    return frame["log_radon"].to_numpy(dtype=float), x, codes, int(codes.max()) + 1


# ------------------------------------------------------------------ profile likelihood


def test_ml_profile_intervals_equal_lme4_confint(radon):
    p = profile_intervals(*_arrays(radon), reml=False)
    assert (p.tau.low, p.tau.high) == pytest.approx(LME4_PROFILE["sd"], abs=1e-5)
    assert (p.sigma.low, p.sigma.high) == pytest.approx(LME4_PROFILE["sigma"], abs=1e-5)
    ten = profile_intervals(*_arrays(radon[radon["county"].isin(TEN)]), reml=False)
    assert ten.tau.low == 0.0
    assert ten.tau.high == pytest.approx(LME4_PROFILE_TEN["sd"][1], abs=1e-5)
    assert (ten.sigma.low, ten.sigma.high) == pytest.approx(LME4_PROFILE_TEN["sigma"], abs=1e-5)


def test_reml_estimates_equal_lme4_and_the_frequentist_engine(radon):
    sub = radon[radon["county"].isin(TEN)]
    p = profile_intervals(*_arrays(sub), reml=True)
    assert p.tau.estimate == pytest.approx(LME4_REML_TEN["sd"], rel=1e-5)
    assert p.sigma.estimate == pytest.approx(LME4_REML_TEN["sigma"], rel=1e-5)
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula(FORMULA), radon, information_criteria=False)
    pars = fit.table("ran_pars").set_index("group")["estimate"]
    full = profile_intervals(*_arrays(radon), reml=True)
    assert full.tau.estimate == pytest.approx(pars["county"], rel=1e-4)
    assert full.sigma.estimate == pytest.approx(pars["Residual"], rel=1e-5)
    assert full.tau.low < full.tau.estimate < full.tau.high


@pytest.mark.parametrize("reml", [True, False])
def test_criterion_is_the_engines_profiled_criterion(radon, reml):
    from compare_kit.engines.lmm import LinearMixedModel, ReTerm

    y, x, codes, g = _arrays(radon)
    ours = RandomInterceptCriterion(y, x, codes, g, reml)
    engine = LinearMixedModel(y, x, [ReTerm(codes, g, np.ones((len(y), 1)), False)], reml)
    thetas = np.array([0.0, 0.1, 0.43, 1.0, 3.0])
    expected = [engine.deviance(np.array([t])) for t in thetas]
    np.testing.assert_allclose(ours.profiled_deviance(thetas), expected, rtol=1e-11)
    # sigma profiled out by hand: the minimum over sigma of the full criterion is the profiled deviance
    sig = np.sqrt(ours.parts(0.43)[1] / ours.dof)
    assert ours.deviance(0.43, sig)[0] == pytest.approx(ours.profiled_deviance(0.43)[0], rel=1e-12)
    assert ours.deviance(0.43, sig * 1.01)[0] > ours.deviance(0.43, sig)[0]


def test_reml_profile_intervals_agree_with_a_brute_force_grid(radon):
    """The interval ends against the criterion minimised over a fine (theta, sigma) grid, for an
    interior and a zero-boundary estimate."""
    for frame in (radon[radon["county"].isin(sorted(radon["county"].unique())[:30])],
                  radon[radon["county"].isin(TEN)]):
        crit = RandomInterceptCriterion(*_arrays(frame), reml=True)
        p = crit.profiles()
        sigmas = np.linspace(0.4, 1.0, 1201)
        thetas = np.concatenate([[0.0], np.linspace(1e-4, 2.0, 2000)])
        logdet, prss = crit.parts(thetas)
        dev = (logdet[:, None] + crit.dof * (np.log(2 * np.pi) + 2 * np.log(sigmas))[None, :]
               + prss[:, None] / sigmas[None, :] ** 2)  # (theta, sigma)
        best = dev.min()
        inside_sigma = sigmas[dev.min(axis=0) - best <= 3.841458820694124]
        assert inside_sigma.min() == pytest.approx(p.sigma.low, abs=1e-3)
        assert inside_sigma.max() == pytest.approx(p.sigma.high, abs=1e-3)
        taus = thetas[:, None] * sigmas[None, :]
        grid_tau = np.linspace(0.0, 1.2, 601)
        profile_tau = np.array([dev[np.abs(taus - t) < 0.003].min() for t in grid_tau])
        inside_tau = grid_tau[profile_tau - best <= 3.841458820694124]
        assert inside_tau.min() == pytest.approx(p.tau.low, abs=5e-3)
        assert inside_tau.max() == pytest.approx(p.tau.high, abs=5e-3)


# ------------------------------------------------------------------ designs, seeds, tasks


def test_designs_are_real_counties_and_seeded(radon):
    full = radon_design(N_COUNTIES, 7)
    assert full.n == len(radon) == 919 and full.n_groups == 85
    sizes_by_name = radon.groupby("county").size().sort_index().to_numpy()
    np.testing.assert_array_equal(np.bincount(full.codes), sizes_by_name)
    a, b, other = radon_design(10, 7), radon_design(10, 7), radon_design(10, 8)
    assert a is b and list(a.frame["county"].unique()) != list(other.frame["county"].unique())
    sizes = radon.groupby("county").size()
    for county, rows in a.frame.groupby("county"):
        assert len(rows) == sizes[county]
        np.testing.assert_array_equal(rows["floor"], radon.loc[radon["county"] == county, "floor"])
    # codes follow the sorted labels (the engines' level order)
    labels = a.frame["county"].to_numpy()
    assert (np.array(sorted(set(labels)))[a.codes] == labels).all()
    np.testing.assert_array_equal(real_response(a), np.concatenate(
        [radon.loc[radon["county"] == c, "log_radon"].to_numpy() for c in sorted(set(labels))]))
    big = radon_design(120, 7)
    assert big.n_groups == 120 and set(np.bincount(big.codes)) <= set(sizes)


def test_seeds_depend_only_on_seed_groups_and_index():
    rng1, s1 = sim_seeds(1, 10, 3)
    rng2, s2 = sim_seeds(1, 10, 3)
    assert s1 == s2 and rng1.normal() == rng2.normal()
    assert sim_seeds(1, 10, 4)[1] != s1 and sim_seeds(1, 30, 3)[1] != s1 and sim_seeds(2, 10, 3)[1] != s1
    for chunk in (1, 3, 10):
        tasks = make_tasks(CoverageConfig(groups=(10, 30), sims=7, chunk=chunk))
        sims = sorted((t.n_groups, i) for t in tasks for i in range(t.start, t.stop))
        assert sims == [(k, i) for k in (10, 30) for i in range(7)]


@pytest.mark.parametrize(("settings", "phrase"), [
    ({"groups": (2,)}, "from 3"), ({"groups": (10, 10)}, "repeat"), ({"groups": ()}, "at least one"),
    ({"sims": 0}, "sims"), ({"draws": 5}, "draws"), ({"seed": -1}, "seed"), ({"level": 1.5}, "level"),
    ({"sims": 2.5}, "sims"),
])
def test_bad_settings_are_coverage_errors(settings, phrase):
    from compare_kit.coverage.study import _as_config

    with pytest.raises(CoverageError, match=phrase):
        _as_config(None, settings)


def test_unknown_setting_and_bad_workers():
    with pytest.raises(CoverageError, match="unknown coverage setting"):
        ck.coverage_study(sim=3)
    with pytest.raises(CoverageError, match="workers"):
        ck.coverage_study(groups=(10,), sims=1, workers=0)
    with pytest.raises(ValueError, match="unknown tasks"):
        make_tasks(CoverageConfig(groups=(10,), sims=2), {"k99-s000000-000002": ("raise", 1)})


# ------------------------------------------------------------------ summaries


def _intervals() -> pd.DataFrame:
    rows = []
    cases = [(1.0, 0.5, 1.5), (1.2, 1.1, 1.3), (0.9, 0.0, 2.0), (1.1, 0.6, 1.6)]
    for sim, (est, low, high) in enumerate(cases):
        rows.append({"n_groups": 10, "sim": sim, "engine": "frequentist", "parameter": "floor",
                     "method": "Wald", "truth": 1.0, "estimate": est, "conf_low": low, "conf_high": high,
                     "covered": low <= 1.0 <= high, "width": high - low})
    return pd.DataFrame(rows)


def test_coverage_summary_values():
    table = summarise(_intervals())
    r = table.iloc[0]
    assert r["n_datasets"] == 4 and r["coverage"] == 0.75
    assert r["coverage_mc_se"] == pytest.approx(np.sqrt(0.75 * 0.25 / 4))
    assert r["mean_width"] == pytest.approx((1.0 + 0.2 + 2.0 + 1.0) / 4)
    assert r["bias"] == pytest.approx(0.05)
    assert r["rmse"] == pytest.approx(np.sqrt((0 + 0.04 + 0.01 + 0.01) / 4))


def test_group_effects_summary_pairs_the_engines():
    fits = pd.DataFrame({"n_groups": 10, "sim": [0, 0, 1, 1, 2], "engine": ["frequentist", "bayesian"] * 2
                         + ["frequentist"], "group_rmse": [0.3, 0.2, 0.5, 0.6, 0.4]})
    g = summarise_group_effects(fits).set_index("engine")
    assert g.loc["frequentist", "n_datasets"] == 3 and g.loc["bayesian", "n_datasets"] == 2
    assert g.loc["frequentist", "rmse"] == pytest.approx(np.sqrt((0.09 + 0.25 + 0.16) / 3))
    assert g.loc["bayesian", "difference_vs_blup"] == pytest.approx(0.0)  # (-0.1 + 0.1) / 2, paired
    assert g.loc["bayesian", "difference_mc_se"] == pytest.approx(np.std([-0.1, 0.1], ddof=1) / np.sqrt(2))


def _fake_result(error_text: str = "boom") -> CoverageResult:
    from compare_kit.coverage.study import FAILURE_COLUMNS, FIT_COLUMNS

    cfg = CoverageConfig(groups=(10, 30), sims=4, sampler=SamplerConfig(chains=2, draws=100, tune=100))
    rows = []
    for k in (10, 30):
        for par, truth in (("(Intercept)", 1.49), ("floor", -0.66), ("sd__(Intercept)", 0.32),
                           ("sd__Observation", 0.73)):
            for engine, method in (("frequentist", "Wald" if "sd" not in par else "profile (REML)"),
                                   ("bayesian", "posterior equal-tailed")):
                for sim in range(4):
                    low, high = truth - 0.1 * (sim + 1) / k * 10, truth + 0.05 * sim
                    rows.append({"n_groups": k, "sim": sim, "engine": engine, "parameter": par,
                                 "method": method, "truth": truth, "estimate": truth, "conf_low": low,
                                 "conf_high": high, "covered": low <= truth <= high, "width": high - low})
    intervals = pd.DataFrame(rows)
    fits = pd.DataFrame([{"n_groups": k, "sim": s, "engine": e, "sampler_seed": 1, "converged": True,
                          "boundary": False, "max_rhat": 1.0, "min_ess_bulk": 500.0, "divergences": 0,
                          "group_rmse": 0.2 + 0.01 * s, "profile_tau_gap": 0.0, "seconds": 0.1}
                         for k in (10, 30) for s in range(4) for e in ("frequentist", "bayesian")],
                        columns=FIT_COLUMNS)
    failures = pd.DataFrame([{"task": "k10-s000000-000002", "n_groups": 10, "first_sim": 0, "last_sim": 1,
                              "attempt": 1, "error": error_text, "final": False}], columns=FAILURE_COLUMNS)
    return CoverageResult(cfg, summarise(intervals), summarise_group_effects(fits), intervals, fits, failures,
                          pd.DataFrame(), "test", {"wall": 1.0})


def test_report_page_escapes_data_and_is_deterministic(tmp_path):
    from compare_kit.report.coverage import render_coverage, write_coverage_report

    result = _fake_result("<script>alert('x')</script>")
    html = render_coverage(result, timestamp=False, command="compare-kit coverage --sims 4 <b>")
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html
    assert html.count("<svg") == 3 and 'id="fig-coverage"' in html and 'id="fig-rmse"' in html
    assert 'id="tbl-coverage"' in html and 'id="tbl-failures"' in html and "retried" in html
    assert html == render_coverage(result, timestamp=False, command="compare-kit coverage --sims 4 <b>")
    out = write_coverage_report(result, tmp_path / "c.html", timestamp=False, tables_dir=tmp_path)
    assert out.read_text(encoding="utf-8") == render_coverage(result, timestamp=False)
    table = pd.read_csv(tmp_path / "coverage.csv")
    assert len(table) == 16 and {"coverage", "coverage_mc_se", "mean_width"} <= set(table.columns)
    assert (tmp_path / "coverage_failures.csv").read_text().count("alert") == 1


def test_coverage_figure_marks_the_nominal_level():
    from compare_kit.report.coverage import coverage_figure

    fig = coverage_figure(_fake_result().table)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4
    for ax in axes:
        assert any(np.allclose(line.get_ydata(), 0.95) for line in ax.get_lines())
        assert ax.get_ylim()[1] <= 1.01


# ------------------------------------------------------------------ command line


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compare_kit.cli", "coverage", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("args", "phrase"), [
    (["--groups", "10,x"], "whole number"),
    (["--groups", "2,30"], "from 3"),
    (["--sims", "0"], "above 0"),
    (["--tables-dir", "/etc/passwd/dir"], "is a file, not a folder"),
    (["--out", "/etc/passwd/dir/c.html"], "is a file, not a folder"),
    (["--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"], "cannot reach the Dask scheduler"),
    (["--scheduler", "localhost"], "tcp://"),
    (["--target-accept", "1.5"], "between 0 and 1"),
    (["--workers", "0"], "above 0"),
])
def test_cli_bad_input_exits_2_without_traceback(args, phrase, tmp_path):
    result = _cli(*args, "--out", str(tmp_path / "c.html")) if "--out" not in args else _cli(*args)
    assert result.returncode == 2, result.stderr
    assert phrase in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_cli_internal_error_exits_1(monkeypatch, capsys, tmp_path):
    import compare_kit.coverage as cov
    from compare_kit.cli import main

    def broken(*_a, **_k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(cov, "coverage_study", broken)
    assert main(["coverage", "--out", str(tmp_path / "c.html"), "--quiet"]) == 1
    assert "internal error" in capsys.readouterr().err


def test_cli_writes_the_page_and_tables(monkeypatch, tmp_path):
    import compare_kit.coverage as cov
    from compare_kit.cli import main

    seen = {}

    def fake(config, **kw):
        seen["config"], seen["kw"] = config, kw
        return _fake_result()

    monkeypatch.setattr(cov, "coverage_study", fake)
    code = main(["coverage", "--groups", "10,30", "--sims", "4", "--seed", "3", "--workers", "2", "--draws",
                 "100", "--tune", "100", "--chains", "2", "--target-accept", "0.9", "--out", str(tmp_path / "c.html"), "--tables-dir",
                 str(tmp_path / "new" / "tables"), "--quiet", "--no-timestamp"])
    assert code == 0
    cfg = seen["config"]
    assert cfg.groups == (10, 30) and cfg.sims == 4 and cfg.seed == 3 and seen["kw"]["workers"] == 2
    assert (cfg.sampler.draws, cfg.sampler.tune, cfg.sampler.chains) == (100, 100, 2)
    assert cfg.sampler.target_accept == 0.9
    assert "compare-kit coverage --groups 10,30 --sims 4 --seed 3" in (tmp_path / "c.html").read_text()
    assert (tmp_path / "new" / "tables" / "coverage_intervals.csv").is_file()


# ------------------------------------------------------------------ slow: real fits


@pytest.mark.slow
def test_fast_path_is_fit_bayesian_with_default_priors():
    """The model compiled once with swapped data gives fit_bayesian's posterior: on the design's real
    response (priors scaled to it) the same draws for the same seed; on a simulated response, where
    fit_bayesian scales its default priors to the simulated data instead, the same means within Monte
    Carlo error."""
    from compare_kit.coverage import fits

    cfg = CoverageConfig(sampler=SamplerConfig(chains=2, draws=300, tune=300))
    sim = radon_design(10, cfg.design_seed)
    spec = ck.ModelSpec.from_formula(FORMULA)
    engine = fits.fast_bayes(10, cfg.design_seed)
    assert engine.built.prior_record["sd__Observation"].endswith("[Bambi default, data-scaled]")
    y_real = real_response(sim)
    draws, _ = engine.fit(y_real, 7, cfg)
    ref = ck.fit_bayesian(spec, sim.data(y_real), draws=300, tune=300, chains=2, seed=7, cores=1)
    est = ref.estimates.set_index(["effect", "term"])["estimate"]
    fixed = [est["fixed", "(Intercept)"], est["fixed", "floor"]]
    # the same model, seed and arithmetic in one process (only the source of y differs: shared vs constant),
    # hence the same draws under whatever BLAS kernel the machine has
    assert draws.fixed.mean(axis=(0, 1)) == pytest.approx(fixed, rel=1e-6)
    assert draws.blocks[0].sd.mean() == pytest.approx(est["ran_pars", "sd__(Intercept)"], rel=1e-6)
    assert draws.residual.mean() == pytest.approx(est["ran_pars", "sd__Observation"], rel=1e-6)

    y_sim, _ = sim.simulate(np.random.default_rng(11), cfg.truth)
    rows, health, _ = fits.fit_bayesian(sim, y_sim, 5, cfg, {"n_groups": 10, "sim": 0})
    ref = ck.fit_bayesian(spec, sim.data(y_sim), draws=300, tune=300, chains=2, seed=99, cores=1)
    population = ["fixed", "ran_pars"]
    est = ref.estimates[ref.estimates["effect"].isin(population)].set_index("term")
    ess = ref.diagnostics[ref.diagnostics["effect"].isin(population)].set_index("term")["ess_bulk"]
    for row in rows:
        term = row["parameter"]
        se = est.loc[term, "std_error"]
        mc_error = np.sqrt(se**2 / ess[term] + se**2 / health["min_ess_bulk"])
        # false-failure probability: <= 3e-4 for the four (over 80 pairs of seeds the ratio below has SD
        # 0.84, 0.54, 1.06 and 0.61 (ESS-based errors are rough at 2 x 300, and the fast path's uses its
        # smallest ESS), at most 3.1: 5 is 4.7 SDs, 3.8 at 1.25 times the largest spread; at 4 it was
        # ~1e-3). Catches posterior means ~0.6 posterior SD apart.
        assert abs(row["estimate"] - est.loc[term, "estimate"]) < 5 * mc_error, term
    # false-failure probability: <= 1e-4 (the largest R-hat of 2 x 300 draws for this 10-county model was
    # 1.01-1.095 over 80 seeds; a lognormal fit gives P(> 1.1) = 1.4% (the old limit), P(> 1.3) = 4e-5).
    # Chains stuck apart give R-hat far above 1.3.
    assert health["max_rhat"] < 1.3, health["max_rhat"]


@pytest.mark.slow
def test_process_pool_and_local_cluster_give_the_same_tables(tmp_path, monkeypatch):
    """Two fresh worker processes with an empty PyTensor compile folder (a cold CI machine), then a
    two-worker Dask LocalCluster with that folder now filled: identical tables for the same seed.
    Injected faults: a task that raises once and one whose worker dies once are retried and recorded;
    a task that always raises is given up, listed as final, and its data sets are missing."""
    from distributed import LocalCluster

    compiledir = tmp_path / "pytensor"
    compiledir.mkdir()
    monkeypatch.setenv("PYTENSOR_FLAGS", f"base_compiledir={compiledir}")
    cfg = CoverageConfig(groups=(10, 30), sims=4, chunk=2, seed=5, retries=1,
                         sampler=SamplerConfig(chains=2, draws=100, tune=100))
    once, dies, always = "k10-s000000-000002", "k10-s000002-000004", "k30-s000000-000002"
    pool = ck.coverage_study(cfg, workers=2,
                             faults={once: ("raise", 1), dies: ("exit", 1), always: ("raise", 9)})
    assert any(compiledir.rglob("*")), "the workers should have filled the compile folder"
    # dashboard on a free port: None still means distributed's default 8787, which another cluster on the
    # machine (a second test run, a user's notebook) may hold
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster:
        dask = ck.coverage_study(cfg, scheduler=cluster.scheduler_address,
                                 faults={once: ("raise", 1), always: ("raise", 9)})
    assert dask.executor.startswith("Dask cluster") and pool.executor.startswith("local process pool")
    assert dask.tasks["worker"][dask.tasks["done"]].nunique() == 2  # both workers did some of the tasks
    # equal by construction: the same code, seeds and data on the same machine (one BLAS kernel), compiled
    # without fastmath, so a cold compile and a cached one round alike
    for name in ("table", "group_effects", "intervals"):
        pd.testing.assert_frame_equal(getattr(pool, name), getattr(dask, name), check_exact=True)
    pd.testing.assert_frame_equal(pool.fits.drop(columns="seconds"), dask.fits.drop(columns="seconds"),
                                  check_exact=True)
    # failures: recorded with their error, retried, the hopeless one given up
    f = pool.failures
    assert list(f["task"]) == [once, dies, always, always]
    assert list(f["final"]) == [False, False, False, True]
    assert "InjectedFault" in f["error"].iloc[0] and "exit code 17" in f["error"].iloc[1]
    assert list(dask.failures["task"]) == [once, always, always] and dask.failures["final"].sum() == 1
    assert not ((pool.intervals["n_groups"] == 30) & (pool.intervals["sim"] < 2)).any()
    counts = pool.table.set_index(["n_groups", "engine", "parameter", "method"])["n_datasets"]
    assert set(counts.loc[10]) == {4} and set(counts.loc[30]) == {2}
    assert set(pool.table["parameter"]) == {"(Intercept)", "floor", "sd__(Intercept)", "sd__Observation"}
    assert pool.table["coverage_mc_se"].notna().all()


def test_unhealthy_fits_are_named_in_the_status_box():
    from compare_kit.report.coverage import health_problems, render_coverage

    result = _fake_result()
    assert health_problems(result.fits) == []
    assert "Fits to look at" not in render_coverage(result, timestamp=False)
    fits = result.fits
    bad = (fits["engine"] == "bayesian") & (fits["n_groups"] == 10) & (fits["sim"] < 3)
    fits.loc[bad, "divergences"] = [2, 7, 1]
    fits.loc[bad, "converged"] = False
    fits.loc[(fits["engine"] == "frequentist") & (fits["n_groups"] == 30) & (fits["sim"] == 0), "boundary"] = True
    problems = health_problems(fits)
    assert len(problems) == 2
    assert problems[0].startswith("10 groups, Bayesian: 3 of 4 fits did not converge: 3 of 4 had divergent "
                                  "transitions (at most 7")
    assert "--target-accept" in problems[0] and "--draws" not in problems[0]
    assert problems[1].startswith("30 groups, frequentist: 1 of 4 REML fits")
    html = render_coverage(result, timestamp=False)
    assert "Fits to look at" in html and "3 of 4 had divergent transitions" in html
    assert 'class="status status-warn"' in html and "but 3 fits did not converge" in html


def test_an_rhat_problem_gets_the_remedy_of_short_chains():
    from compare_kit.report.coverage import health_problems, render_coverage

    result = _fake_result()
    fits = result.fits
    bayes = fits["engine"] == "bayesian"
    fits.loc[bayes, "converged"] = False
    fits.loc[bayes, "max_rhat"] = 1.08
    problems = health_problems(fits)
    assert all("R-hat above" in p and "--draws" in p and "--target-accept" not in p for p in problems)
    html = render_coverage(result, timestamp=False)
    assert 'class="status status-warn"' in html and 'class="status status-ok"' not in html


@pytest.mark.parametrize(("covered", "datasets", "marked"), [
    (12, 12, False),  # every interval covered: MC SE is 0, yet 12 of 12 is what 95% gives most often
    (114, 120, False),  # 0.95 exactly
    (100, 120, True),  # 0.833: p < 1e-4 against 95%
    (40, 40, False),  # p = 0.95^40 * 2-sided ~ 0.26
])
def test_coverage_is_marked_by_an_exact_test_not_by_mc_se(covered, datasets, marked):
    from compare_kit.report.coverage import coverage_p_value, OFF_NOMINAL_P

    assert (coverage_p_value(covered / datasets, datasets, 0.95) < OFF_NOMINAL_P) is marked
