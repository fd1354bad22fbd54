"""Profile-likelihood intervals of the SDs against lme4's ``confint(method = "profile")``
(tests/reference/lme4/make_profile.R, lme4 1.1-31)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import compare_kit as ck
from compare_kit.design import build_design
from compare_kit.engines.frequentist import own_engine
from compare_kit.engines.profile_likelihood import _Profile
from tests.conftest import REFERENCE

CUTOFF = float(stats.chi2.ppf(0.95, 1))
MODELS = {
    "varying_intercept": (None, "log_radon ~ floor + (1 | county)"),
    "varying_intercept_slope": (None, "log_radon ~ floor + (1 + floor | county)"),
    "uncorrelated_intercept_slope": (None, "log_radon ~ floor + (1 + floor || county)"),
    "plates": ("plates.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "crossed_correlated": ("crossed_correlated.csv", "y ~ x + (1 + x | subject) + (1 + x | item)"),
    "nested_intercepts": ("nested.csv", "y ~ x + (1 | school/class)"),
}
# lme4 interpolates its profile with splines; near a correlation of 1 its lower end for subject's
# slope SD lies inside the interval: at lme4's end, compare_kit exhibits parameters whose ML deviance
# is 3.67 above the minimum, below the 3.84 cutoff (test below), so the true end is lower
LME4_INSIDE = {("crossed_correlated", "sd_x|subject", "low")}


def _design(model: str, radon: pd.DataFrame):
    file, formula = MODELS[model]
    spec = ck.ModelSpec.from_formula(formula)
    data = radon if file is None else ck.load_csv(REFERENCE / "lme4" / file, text_columns=spec.grouping_columns)
    return build_design(spec, data)


def _lme4_name(group: str, term: str) -> str:
    return "sigma" if group == "Residual" else f"sd_{term.removeprefix('sd__')}|{group}"


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "lme4" / "profile_intervals.csv")


@pytest.mark.parametrize("model", list(MODELS))
def test_intervals_match_lme4(model, radon, reference):
    spec_file, formula = MODELS[model]
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula(formula), _design(model, radon).data, mixedlm=False)
    ours = fit.profile_intervals()
    assert len(ours) == sum(b.z.shape[1] for b in fit.design.blocks) + 1
    for method in ("REML", "ML"):  # lme4 profiles the ML deviance for both
        ref = reference[(reference.model == model) & (reference.method == method)].set_index("parameter")
        for row in ours.itertuples():
            name = _lme4_name(row.group, row.term)
            for end, value in (("low", row.conf_low), ("high", row.conf_high)):
                if (model, name, end) in LME4_INSIDE:
                    assert value < ref.loc[name, end] - 5e-3
                else:
                    assert value == pytest.approx(ref.loc[name, end], abs=1e-3), (model, method, name, end)


def test_each_end_is_where_the_profile_crosses_the_cutoff(radon):
    design = _design("varying_intercept_slope", radon)
    model = own_engine(design, reml=False)
    optimum = model.optimize()
    sigma = float(np.sqrt(model.factor(optimum.theta).pwrss / model.n))
    table = ck.fit_frequentist(design.spec, radon, mixedlm=False).profile_intervals()
    for (term, coef), row in zip([(0, 0), (0, 1), (None, None)], table.itertuples(), strict=True):
        profile = _Profile(model, optimum.theta, sigma, term, coef)
        assert profile(row.ml_estimate) == pytest.approx(0.0, abs=1e-6)
        assert profile(row.conf_high) == pytest.approx(CUTOFF, abs=1e-4)
        if row.conf_low > 0:
            assert profile(row.conf_low) == pytest.approx(CUTOFF, abs=1e-4)
        else:  # the SD may be 0: the profile at 0 is within the cutoff
            assert profile(0.0) <= CUTOFF


def test_lme4s_spline_end_lies_inside_the_interval():
    design = _design("crossed_correlated", None)
    model = own_engine(design, reml=False)
    optimum = model.optimize()
    sigma = float(np.sqrt(model.factor(optimum.theta).pwrss / model.n))
    profile = _Profile(model, optimum.theta, sigma, 0, 1)  # subject's slope SD
    assert profile(0.0375993054603638) < CUTOFF - 0.1  # lme4's lower end (ML fit)


def test_profile_intervals_need_a_mixed_model(radon):
    with pytest.raises(ck.FitError, match="no random term"):
        ck.fit_frequentist(ck.ModelSpec.named("pooled"), radon).profile_intervals()
    fit = ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon)
    with pytest.raises(ck.FitError, match="level must lie strictly between 0 and 1"):
        fit.profile_intervals(1.5)
    narrow, wide = fit.profile_intervals(0.5), fit.profile_intervals(0.99)
    assert (narrow.conf_low > wide.conf_low).all() and (narrow.conf_high < wide.conf_high).all()


@pytest.mark.parametrize("model", ["varying_intercept", "plates", "nested_intercepts"])
def test_profile_option_puts_the_intervals_in_the_tidy_table(model, radon, reference):
    _, formula = MODELS[model]
    data = _design(model, radon).data
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula(formula), data, profile=True)
    sds = fit.estimates[fit.estimates["term"].str.startswith("sd__")]
    assert len(sds) == sum(b.z.shape[1] for b in fit.design.blocks) + 1
    ref = reference[(reference.model == model) & (reference.method == "REML")].set_index("parameter")
    for row in sds.itertuples():
        name = _lme4_name(row.group, row.term)
        assert row.conf_low == pytest.approx(ref.loc[name, "low"], abs=1e-3)
        assert row.conf_high == pytest.approx(ref.loc[name, "high"], abs=1e-3)
        assert "profile likelihood" in row.note
    plain = ck.fit_frequentist(ck.ModelSpec.from_formula(formula), data)
    assert plain.estimates[plain.estimates["term"].str.startswith("sd__")]["conf_low"].isna().all()
    others = fit.estimates[~fit.estimates["term"].str.startswith("sd__")]
    pd.testing.assert_frame_equal(others, plain.estimates[~plain.estimates["term"].str.startswith("sd__")])


def test_profile_option_must_be_a_bool(radon):
    with pytest.raises(ck.FitError, match="profile must be True or False"):
        ck.fit_frequentist(ck.ModelSpec.from_formula("log_radon ~ floor + (1 | county)"), radon, profile="yes")
