"""compare_kit's profiled (RE)ML criterion: equal to statsmodels' log-likelihood, and a real second opinion."""

from __future__ import annotations

import numpy as np
import pytest

import compare_kit as ck
from compare_kit.design import build_design
from compare_kit.engines import frequentist
from compare_kit.engines.profiled import Block, CrossProducts, ProfiledCriterion
from tests.conftest import LME4_MODELS, lme4_table


def _criterion(radon, formula: str, reml: bool) -> ProfiledCriterion:
    design = build_design(ck.ModelSpec.from_formula(formula), radon)
    layout = frequentist._layout(design)
    return frequentist._Checker(design, layout, reml).criterion


@pytest.mark.parametrize("model", list(LME4_MODELS))
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_criterion_optimum_is_lme4s(radon, model, method):
    """The profiled optimum reproduces lme4's logLik for every reference model (1e-4: both optimise it)."""
    design = build_design(ck.ModelSpec.from_formula(LME4_MODELS[model]), radon)
    checker = frequentist._Checker(design, frequentist._layout(design), method == "REML")
    ref = lme4_table("lme4_fit_stats.csv")
    ref = ref[(ref["model"] == model) & (ref["method"] == method)]["logLik"].item()
    assert checker.success
    assert checker.best_loglik == pytest.approx(ref, abs=1e-4)


def test_criterion_equals_statsmodels_loglik_at_the_same_parameters(radon):
    fit = ck.fit_frequentist(ck.ModelSpec.named("correlated_slopes"), radon)
    crit = _criterion(radon, "log_radon ~ floor + (1 + floor | county)", reml=True)
    theta = crit.theta_of(fit.extras["relative_covariances"][0])
    assert crit.loglik(theta) == pytest.approx(fit.stats.loglik, abs=1e-8)


def test_boundary_optimum_is_found(radon):
    from tests.engines.test_frequentist_health import boundary_data

    data = boundary_data()
    design = build_design(ck.ModelSpec.from_formula("y ~ 1 + (1 | g)"), data)
    z = design.blocks[0].z.to_numpy()
    cp = CrossProducts.build(design.y, design.x.to_numpy(), z, design.blocks[0].codes, 6)
    crit = ProfiledCriterion(cp, [Block(0, 1, True)], reml=True)
    theta, _, ok = crit.optimize(np.array([1.0]))
    assert ok and theta[0] < 1e-4


def test_disagreeing_optimizers_are_flagged(radon, monkeypatch):
    """If the two optimizers end more than 1e-3 logLik apart, the result says so."""
    original = frequentist._Checker.__init__

    def shifted(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.best_loglik += 0.5  # pretend compare_kit's optimizer found a higher maximum

    monkeypatch.setattr(frequentist._Checker, "__init__", shifted)
    fit = ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon, information_criteria=False)
    assert any("optimizers disagree" in w for w in fit.health.warnings)
    assert fit.health.attempts[0].startswith("profiled criterion")
    assert any(a.startswith("lbfgs") for a in fit.health.attempts)


def test_agreeing_optimizers_raise_no_flag(radon):
    fit = ck.fit_frequentist(ck.ModelSpec.named("partial_pooling"), radon)
    assert not any("disagree" in w for w in fit.health.warnings)
    assert fit.health.attempts[0].startswith("profiled criterion (compare_kit, SLSQP): logLik -1047.8592")
