"""compare_kit's own (RE)ML engine: lme4's optimum for every structure, exact boundaries, a real second opinion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from compare_kit.design import build_design
from compare_kit.engines import lmm, mixedlm
from compare_kit.engines.lmm import LinearMixedModel, ReTerm
from tests.conftest import LME4_MODELS, REFERENCE, lme4_table
from tests.engines.test_frequentist_health import boundary_data

STRUCTURES = {
    "nested_intercepts": ("nested.csv", "y ~ x + (1 | school/class)"),
    "nested_slopes": ("nested.csv", "y ~ x + (1 + x | school) + (1 | class:school)"),
    "crossed_intercepts": ("crossed.csv", "y ~ x + (1 | subject) + (1 | item)"),
    "crossed_slopes": ("crossed.csv", "y ~ x + (1 + x || subject) + (1 | item)"),
}


def _model(design, reml: bool) -> LinearMixedModel:
    terms = [ReTerm(b.codes, len(b.levels), b.z.to_numpy(dtype=float), b.term.correlated) for b in design.blocks]
    return LinearMixedModel(design.y, design.x_estimable.to_numpy(dtype=float), terms, reml)


def _structure_design(model: str):
    file, formula = STRUCTURES[model]
    spec = ck.ModelSpec.from_formula(formula)
    return build_design(spec, ck.load_csv(REFERENCE / "lme4" / file, text_columns=spec.grouping_columns))


@pytest.mark.parametrize("model", list(LME4_MODELS))
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_optimum_is_lme4s_on_radon(radon, model, method):
    """The bounded optimum reproduces lme4's logLik (1e-4: both optimise the same criterion)."""
    design = build_design(ck.ModelSpec.from_formula(LME4_MODELS[model]), radon)
    optimum = _model(design, method == "REML").optimize()
    ref = lme4_table("lme4_fit_stats.csv")
    ref = ref[(ref["model"] == model) & (ref["method"] == method)]["logLik"].item()
    assert optimum.success
    assert optimum.loglik == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("model", list(STRUCTURES))
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("dense", [True, False])
def test_optimum_is_lme4s_for_nested_and_crossed_designs(model, method, dense, monkeypatch):
    """Both ways of holding the cross block (dense, sparse) give lme4's optimum."""
    monkeypatch.setattr(lmm, "DENSE_CROSS_LIMIT", 10**9 if dense else 0)
    monkeypatch.setattr(lmm, "DENSE_FILL", 0.0)
    engine = _model(_structure_design(model), method == "REML")
    assert engine.dense_cross is dense
    ref = lme4_table("structures_fit_stats.csv")
    ref = ref[(ref["model"] == model) & (ref["method"] == method)]["logLik"].item()
    assert engine.optimize().loglik == pytest.approx(ref, abs=1e-4)


def test_criterion_equals_statsmodels_loglik_at_the_same_parameters(radon):
    fit = ck.fit_frequentist(ck.ModelSpec.named("correlated_slopes"), radon)
    design = build_design(ck.ModelSpec.named("correlated_slopes"), radon)
    engine = _model(design, reml=True)
    theta = engine.theta_of(fit.mixed.relative_covariances)
    assert engine.loglik(theta) == pytest.approx(fit.stats.loglik, abs=1e-8)
    assert np.sqrt(engine.sigma2(theta)) == pytest.approx(
        fit.table("ran_pars").set_index("term").loc["sd__Observation", "estimate"], rel=1e-6)


def test_theta_round_trip_keeps_exact_zeros():
    rng = np.random.default_rng(0)
    term = ReTerm(np.repeat(np.arange(10), 5), 10, np.column_stack([np.ones(50), rng.normal(size=50)]), True)
    engine = LinearMixedModel(rng.normal(size=50), np.ones((50, 1)), [term], reml=True)
    theta = np.array([0.7, -0.2, 0.0])
    back = engine.theta_of(engine.relative_covariances(theta))
    assert back[2] == 0.0  # a rounding-level remainder of the slope variance is not a tiny SD
    np.testing.assert_allclose(back, theta, rtol=1e-12)


@pytest.mark.parametrize("factor", [0.05, 1.0, 100.0])
@pytest.mark.parametrize("reml", [True, False])
def test_boundary_is_found_exactly(factor, reml):
    """Six groups with equal means: the group SD's optimum is the bound itself, so theta is exactly 0
    at every outcome scale (the result does not hang on where an optimizer happened to stop)."""
    data = boundary_data()
    data["y"] *= factor
    design = build_design(ck.ModelSpec.from_formula("y ~ 1 + (1 | g)"), data)
    optimum = _model(design, reml).optimize()
    assert optimum.theta[0] == 0.0 and optimum.at_bound == (0,)


def test_snapping_takes_the_bound_only_where_the_criterion_allows(radon):
    """A theta next to zero from a stopped optimizer is put on the bound; an interior optimum is not."""
    design = build_design(ck.ModelSpec.from_formula("y ~ 1 + (1 | g)"), boundary_data())
    engine = _model(design, reml=True)
    snapped = engine.snap_to_bound(np.array([2e-4]))
    assert snapped.theta[0] == 0.0 and snapped.deviance <= engine.deviance(np.array([2e-4])) + 1e-12
    radon_engine = _model(build_design(ck.ModelSpec.named("varying_intercept"), radon), reml=True)
    interior = radon_engine.optimize()
    assert interior.at_bound == ()
    assert radon_engine.snap_to_bound(interior.theta).theta == pytest.approx(interior.theta)


def test_a_zero_slope_variance_is_exact():
    """Every group has the same within-group slope (residuals orthogonal to x in each group): the slope SD's
    optimum is the bound, reported as exactly 0 with the singular-fit flag, while the intercept SD is not."""
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(12), 8)
    x = np.tile(np.arange(8.0), 12)
    e = rng.normal(size=len(g)).reshape(12, 8)
    xc = np.arange(8.0) - 3.5
    e -= np.outer(e @ xc / (xc @ xc), xc)  # no slope left in any group's residuals
    y = 1.0 + 0.5 * x + rng.normal(scale=0.7, size=12)[g] + e.ravel()
    data = pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})
    spec = ck.ModelSpec.from_formula("y ~ x + (1 + x || g)")
    assert _model(build_design(spec, data), reml=True).optimize().at_bound == (1,)
    fit = ck.fit_frequentist(spec, data)
    sd = fit.table("ran_pars").set_index("term")["estimate"]
    assert sd["sd__x"] == 0.0 and sd["sd__(Intercept)"] > 0.3 and fit.health.boundary
    slopes = fit.table("ran_vals").query("term == 'x'")
    assert (slopes["estimate"] == 0.0).all() and slopes["std_error"].isna().all()


def test_disagreeing_optimizers_are_flagged(radon, monkeypatch):
    """If the two optimizers end more than 1e-3 logLik apart, the result says so."""
    original = mixedlm.Checker.__init__

    def shifted(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.best_loglik += 0.5  # pretend compare_kit's optimizer found a higher maximum

    monkeypatch.setattr(mixedlm.Checker, "__init__", shifted)
    fit = ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon, information_criteria=False)
    assert any("optimizers disagree" in w for w in fit.health.warnings)
    assert fit.health.attempts[0].startswith("profiled criterion")
    assert any(a.startswith("lbfgs") for a in fit.health.attempts)


def test_agreeing_optimizers_raise_no_flag(radon):
    fit = ck.fit_frequentist(ck.ModelSpec.named("partial_pooling"), radon)
    assert not any("disagree" in w for w in fit.health.warnings)
    assert fit.health.attempts[0].startswith("profiled criterion (compare_kit, SLSQP): logLik -1047.8592")


def test_crossed_designs_get_the_second_opinion_too():
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula(STRUCTURES["crossed_intercepts"][1]),
                             ck.load_csv(REFERENCE / "lme4" / "crossed.csv", text_columns=("subject", "item")))
    assert fit.health.attempts[0].startswith("profiled criterion")
    assert not any("disagree" in w for w in fit.health.warnings)


def _structure_cases(radon):
    cases = [(f, radon) for f in LME4_MODELS.values()]
    for file, formula in STRUCTURES.values():
        spec = ck.ModelSpec.from_formula(formula)
        cases.append((formula, ck.load_csv(REFERENCE / "lme4" / file, text_columns=spec.grouping_columns)))
    return cases


def _dense_henderson(design, theta, engine):
    """Henderson's mixed-model equations solved by brute force: dense Z, Lambda and one inverse."""
    x = design.x_estimable.to_numpy(float)
    zs, lams = [], []
    for block, t in zip(design.blocks, engine.ts(theta), strict=True):
        onehot = np.eye(len(block.levels))[block.codes]
        zs.append((onehot[:, :, None] * block.z.to_numpy(float)[:, None, :]).reshape(design.n, -1))
        lams.append(np.kron(np.eye(len(block.levels)), t))
    z = np.hstack(zs)
    from scipy.linalg import block_diag

    zl = z @ block_diag(*lams)
    q, p = zl.shape[1], x.shape[1]
    a = np.block([[zl.T @ zl + np.eye(q), zl.T @ x], [x.T @ zl, x.T @ x]])
    rhs = np.concatenate([zl.T @ design.y, x.T @ design.y])
    sol = np.linalg.solve(a, rhs)
    inv = np.linalg.inv(a)
    lam = block_diag(*lams)
    return {"beta": sol[q:], "b": lam @ sol[:q], "inv": inv, "lam": lam, "q": q, "p": p,
            "cond": lam @ np.linalg.inv(zl.T @ zl + np.eye(q)) @ lam.T}


@pytest.mark.parametrize("dense", [True, False])
def test_solution_is_hendersons_equations_solved_by_brute_force(radon, dense, monkeypatch):
    """Fixed effects, conditional modes, condVar, Henderson's PEV and cov(b, beta) read off the blocked factor
    equal the dense solution of the mixed-model equations (1e-9), for one, nested and crossed factors."""
    monkeypatch.setattr(lmm, "DENSE_CROSS_LIMIT", 10**9 if dense else 0)
    monkeypatch.setattr(lmm, "DENSE_FILL", 0.0)
    for formula, data in _structure_cases(radon):
        design = build_design(ck.ModelSpec.from_formula(formula), data)
        engine = _model(design, reml=True)
        sol = engine.solve(engine.optimize().theta)
        ref = _dense_henderson(design, sol.theta, engine)
        q, s2, lam = ref["q"], sol.sigma2, ref["lam"]
        np.testing.assert_allclose(sol.beta, ref["beta"], atol=1e-9)
        np.testing.assert_allclose(sol.cov_beta, s2 * ref["inv"][q:, q:], atol=1e-9)
        np.testing.assert_allclose(np.concatenate([b.ravel() for b in sol.b]), ref["b"], atol=1e-9)
        pev_full = s2 * lam @ ref["inv"][:q, :q] @ lam.T
        cross_full = s2 * lam @ ref["inv"][:q, q:]
        start = 0
        for cond, pev, cross in zip(sol.cond_var, sol.pev, sol.cov_b_beta, strict=True):
            n, k, _ = cond.shape
            for g in range(n):
                idx = slice(start + g * k, start + (g + 1) * k)
                np.testing.assert_allclose(cond[g], s2 * ref["cond"][idx, idx], atol=1e-9)
                np.testing.assert_allclose(pev[g], pev_full[idx, idx], atol=1e-9)
                np.testing.assert_allclose(cross[g], cross_full[idx], atol=1e-9)
            start += n * k


def test_a_criterion_that_cannot_be_evaluated_anywhere_is_not_an_optimum(radon):
    """Every evaluation fails (a response with NaN): the optimiser's end is marked as not found."""
    design = build_design(ck.ModelSpec.named("partial_pooling"), radon)
    model = _model(design, reml=True)
    broken = LinearMixedModel(np.full_like(model.y, np.nan), model.x, model.terms, reml=True)
    assert not broken.optimize().found
    assert model.optimize().found


@pytest.mark.parametrize("mixedlm", [True, False])
def test_singular_equations_are_a_fit_error_not_a_library_exception(radon, monkeypatch, mixedlm):
    """A Cholesky that fails at every theta (as on columns constant in floating point) is a FitError."""
    def failing(self, theta):
        raise np.linalg.LinAlgError("Matrix is not positive definite")
    monkeypatch.setattr(LinearMixedModel, "factor", failing)
    with pytest.raises(ck.FitError, match="could not be solved at every variance tried: in floating point"):
        ck.fit_frequentist(ck.ModelSpec.named("partial_pooling"), radon, mixedlm=mixedlm)


def test_equations_singular_at_the_optimum_are_a_fit_error(radon, monkeypatch):
    def failing(self, theta, sigma2=None):
        raise np.linalg.LinAlgError("Singular matrix")
    monkeypatch.setattr(LinearMixedModel, "solve", failing)
    with pytest.raises(ck.FitError, match="could not be solved at the optimum"):
        ck.fit_frequentist(ck.ModelSpec.named("partial_pooling"), radon)


def test_a_long_search_says_how_far_it_got(radon, monkeypatch):
    """Every PROGRESS_SECONDS a watched search reports its evaluations and best value so far."""
    monkeypatch.setattr(lmm, "PROGRESS_SECONDS", 0.0)
    said: list[str] = []
    fit = ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon, mixedlm=False,
                             information_criteria=False, progress=said.append)
    assert said[0].startswith("  compare_kit's engine: 1 evaluations of the criterion, best REML logLik")
    counts = [int(line.split(": ")[1].split()[0]) for line in said]
    assert counts == list(range(1, len(said) + 1))  # one line per evaluation at a 0-second interval
    best = float(said[-1].split("REML logLik ")[1].split()[0])
    assert best == pytest.approx(fit.stats.loglik, abs=1e-3)
