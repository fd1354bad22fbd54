"""Health of MixedLM fits: boundary flags, optimizer fallback, structures MixedLM cannot express."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.mixed_linear_model import MixedLM

import compare_kit as ck
from compare_kit.engines import frequentist, mixedlm
from compare_kit.errors import FitError, SpecError


def boundary_data(seed: int = 3) -> pd.DataFrame:
    """Six groups whose means are identical: the between-group SD's REML estimate is 0."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(6, 5))
    y = y - y.mean(axis=1, keepdims=True) + 2.0
    return pd.DataFrame({"y": y.ravel(), "g": np.repeat([f"g{i}" for i in range(6)], 5)})


@pytest.mark.parametrize("factor", [1.0, 0.05, 100.0])
def test_boundary_flag_does_not_depend_on_the_outcome_scale(factor):
    data = boundary_data()
    data["y"] *= factor
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula("y ~ 1 + (1 | g)"), data)
    assert fit.health.boundary
    assert any("singular fit" in w for w in fit.health.warnings)
    # the optimum lies on the bound theta = 0, and the engine evaluates the criterion there, so the
    # SD and the BLUPs are exactly 0 under every BLAS kernel (not merely small)
    sd = fit.table("ran_pars").set_index("term").loc["sd__(Intercept)", "estimate"]
    assert sd == 0.0
    vals = fit.table("ran_vals")
    assert (vals["estimate"] == 0.0).all()
    assert vals["note"].str.contains("shrunk to zero").all()


@pytest.mark.parametrize("factor", [0.05, 100.0])
def test_radon_is_not_flagged_at_any_scale(radon, factor):
    data = radon.assign(log_radon=radon["log_radon"] * factor)
    fit = ck.fit_frequentist(ck.ModelSpec.named("partial_pooling"), data)
    assert not fit.health.boundary and fit.health.converged
    sd = fit.table("ran_pars").set_index("term").loc["sd__floor", "estimate"]
    assert sd == pytest.approx(0.280567026005465 * factor, rel=1e-3)


def test_optimizer_crash_falls_back_to_the_next(radon, monkeypatch):
    original = MixedLM.fit

    def crashing_fit(self, *args, **kwargs):
        if kwargs.get("method") == ["lbfgs"]:
            raise np.linalg.LinAlgError("Singular matrix")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MixedLM, "fit", crashing_fit)
    fit = ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon)
    assert fit.health.converged and fit.health.optimizer == "bfgs"
    assert fit.health.attempts[0].startswith("profiled criterion")
    assert fit.health.attempts[1].startswith("lbfgs: failed (LinAlgError")
    fixed = fit.table("fixed").set_index("term")["estimate"]
    assert fixed["floor"] == pytest.approx(-0.662888726208086, rel=1e-4)


def test_every_optimizer_crashing_is_a_fit_error(radon, monkeypatch):
    def crashing_fit(self, *args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(MixedLM, "fit", crashing_fit)
    with pytest.raises(FitError, match="failed with every optimizer"):
        ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon)


def test_false_convergence_is_caught(radon, monkeypatch):
    """statsmodels' own default start sends L-BFGS to an infinite likelihood it calls converged."""
    monkeypatch.setattr(mixedlm, "start_params", lambda design, layout, checker=None: None)
    monkeypatch.setattr(frequentist, "_checker", lambda *args: None)
    fit = ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon)
    assert fit.health.converged
    assert "lbfgs: infinite log-likelihood" in fit.health.attempts[0]
    assert fit.stats.loglik == pytest.approx(-1048.76099214154, abs=1e-3)


def test_not_converging_anywhere_is_reported_not_hidden(radon, monkeypatch):
    monkeypatch.setattr(mixedlm, "improvable_by", lambda *args: 1.0)
    fit = ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon)
    assert not fit.health.converged
    assert "did not converge" in fit.health.warnings[0]
    statsmodels_attempts = [a for a in fit.health.attempts if not a.startswith("profiled criterion")]
    assert len(statsmodels_attempts) == len(mixedlm.DEFAULT_OPTIMIZERS)


def test_correlated_effects_mixedlm_cannot_fit_are_fitted_by_compare_kits_engine():
    """Correlated effects on an inner or crossed factor: MixedLM cannot express them, so compare_kit's
    engine reports (engine column ``compare_kit``), and a note says why MixedLM was not used."""
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"y": rng.normal(size=120), "x": rng.normal(size=120),
                         "a": np.repeat(list("ABCD"), 30), "b": np.tile(np.repeat(list("pqr"), 10), 4)})
    for formula, why in (("y ~ x + (1 | a) + (1 + x | b:a)", "'b:a' is nested in 'a'"),
                         ("y ~ x + (1 | a) + (1 + x | b)", "the grouping factors are crossed")):
        fit = ck.fit_frequentist(ck.ModelSpec.from_formula(formula), data)
        assert fit.engine == "compare_kit" and set(fit.estimates["engine"]) == {"compare_kit"}
        note = next(n for n in fit.health.notes if n.startswith("statsmodels MixedLM not used"))
        assert why in note and "correlated effects only for the outermost grouping factor" in note
        assert fit.health.converged


def test_mixedlm_can_be_switched_off(radon):
    both = ck.fit_frequentist(ck.ModelSpec.named("partial_pooling"), radon)
    own = ck.fit_frequentist(ck.ModelSpec.named("partial_pooling"), radon, mixedlm=False)
    assert both.engine == "statsmodels" and own.engine == "compare_kit"
    assert any("switched off (mixedlm=False)" in n for n in own.health.notes)
    np.testing.assert_allclose(own.estimates["estimate"], both.estimates["estimate"], rtol=1e-3, atol=1e-5)
    assert own.stats.loglik == pytest.approx(both.stats.loglik, abs=1e-6)
    assert set(both.mixed.engine_seconds) == {"compare_kit", "statsmodels"}
    with pytest.raises(FitError, match="mixedlm must be True or False"):
        ck.fit_frequentist(ck.ModelSpec.named("partial_pooling"), radon, mixedlm="no")


def test_same_coefficient_twice_is_refused(radon):
    with pytest.raises(SpecError, match="appears in two terms"):
        ck.fit_frequentist(ck.ModelSpec.from_formula("log_radon ~ floor + (1 | county) + (1 + floor | county)"),
                           radon)


def test_bad_options(radon):
    spec = ck.ModelSpec.named("varying_intercept")
    with pytest.raises(FitError, match="'REML' or 'ML'"):
        ck.fit_frequentist(spec, radon, method="OLS")
    with pytest.raises(FitError, match="unknown optimizer"):
        ck.fit_frequentist(spec, radon, optimizers=("adam",))
    with pytest.raises(SpecError, match="ModelSpec"):
        ck.fit_frequentist("log_radon ~ floor", radon)


def test_collinear_fixed_effect_is_dropped_and_reported(radon):
    data = radon.assign(floor2=radon["floor"] * 2.0)
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula("log_radon ~ floor + floor2 + (1 | county)"), data)
    fixed = fit.table("fixed").set_index("term")
    assert np.isnan(fixed.loc["floor2", "estimate"])
    assert "linearly dependent" in fixed.loc["floor2", "note"]
    assert fixed.loc["floor", "estimate"] == pytest.approx(-0.662888726208086, rel=1e-4)
