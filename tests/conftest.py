"""Shared fixtures: the bundled radon data and the lme4 reference tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import compare_kit as ck

REFERENCE = Path(__file__).parent / "reference"
SURVEY_DATA = Path(__file__).resolve().parents[1] / "data"  # the bundled srrs2.dat and cty.dat

# lme4 reference model names -> compare_kit formulas (make_reference.R has the lme4 side)
LME4_MODELS = {
    "varying_intercept": "log_radon ~ floor + (1 | county)",
    "varying_intercept_slope": "log_radon ~ floor + (1 + floor | county)",
    "uncorrelated_intercept_slope": "log_radon ~ floor + (1 + floor || county)",
    "intercept_only": "log_radon ~ 1 + (1 | county)",
    "group_predictor": "log_radon ~ floor + log_uranium + (1 | county)",
}


@pytest.fixture(scope="session")
def radon() -> pd.DataFrame:
    return ck.load_radon()


def lme4_table(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "lme4" / name, keep_default_na=False, na_values=["NA"])


def assert_variance_components_match(pars: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Our ran_pars rows against lme4's ``as.data.frame(VarCorr(m))``.

    SDs within 1e-3 relative and correlations within 0.01 absolute: variance parameters
    are flat in the likelihood, so optimizers agree less closely on them. lme4 calls the
    second term of ``(1 + x || g)`` group ``g.1``: the same factor.
    """
    for _, r in ref.iterrows():
        group = r["grp"].removesuffix(".1")
        if group == "Residual":
            term = "sd__Observation"
        elif pd.isna(r["var2"]) or r["var2"] == "":
            term = f"sd__{r['var1']}"
        else:
            term = f"cor__{r['var1']}.{r['var2']}"
        ours = pars[(pars["group"] == group) & (pars["term"] == term)]["estimate"]
        assert len(ours) == 1, (group, term)
        if term.startswith("cor__"):
            assert abs(ours.iloc[0] - r["sdcor"]) < 0.01
        else:
            assert ours.iloc[0] == pytest.approx(r["sdcor"], rel=1e-3)
    assert len(pars) == len(ref)


@pytest.fixture
def engines_must_not_run(monkeypatch):
    """Fail loudly if a model reaches statsmodels or the sampler."""
    from compare_kit.engines import bayesian, frequentist, glmm_fit

    def forbidden(*_args, **_kwargs):
        raise AssertionError("an engine ran before the bad input was rejected")

    for module, name in ((frequentist, "_fit_mixed"), (frequentist, "_fit_ols"), (glmm_fit, "_fit_glm"),
                         (glmm_fit, "_fit_glmm"), (bayesian, "_build"),
                         (bayesian, "run_sampler")):
        monkeypatch.setattr(module, name, forbidden)
