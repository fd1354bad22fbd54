"""fit_bayesian's option checks: every bad option fails before any sampling."""

from __future__ import annotations

import pandas as pd
import pytest

import compare_kit as ck
from compare_kit.errors import FitError, SpecError


@pytest.fixture(scope="module")
def radon() -> pd.DataFrame:
    return ck.load_radon()


@pytest.mark.parametrize(("options", "message"), [
    ({"draws": 0}, "draws must be a whole number from 1"),
    ({"draws": 10.5}, "draws must be a whole number"),
    ({"chains": True}, "chains must be a whole number"),
    ({"tune": -1}, "tune must be a whole number from 1"),
    ({"seed": -3}, "seed must be a whole number from 0"),
    ({"sampler": "stan"}, "unknown sampler 'stan'; accepted: nutpie, pymc, numpyro"),
    ({"cores": 9, "chains": 2}, "cores must be a whole number from 1 to 2"),
    ({"target_accept": 1.0}, "target_accept must be a number between 0 and 1"),
    ({"progress": "yes"}, "progress must be True, False or a function taking one line of text"),
])
def test_bad_options_raise_fit_error(radon, options, message) -> None:
    with pytest.raises(FitError, match=message):
        ck.fit_bayesian(ck.ModelSpec.named("pooled"), radon, **options)


def test_bad_priors_raise_spec_error(radon) -> None:
    spec = ck.ModelSpec.named("partial_pooling")
    with pytest.raises(SpecError, match="unknown prior preset 'flat'"):
        ck.fit_bayesian(spec, radon, priors="flat")
    with pytest.raises(SpecError, match=r"the prior key 'uranium' names nothing.*accepted keys: "
                                        r"\(Intercept\), floor, sd__\(Intercept\)"):
        ck.fit_bayesian(spec, radon, priors={"uranium": "Normal(0, 1)"})
    with pytest.raises(SpecError, match="names nothing"):  # no correlation in an uncorrelated model
        ck.fit_bayesian(spec, radon, priors={"cor": "LKJ(2)"})


def test_missing_numpyro_names_the_pip_command(radon, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("numpyro", "jax") else real(name, *a))
    with pytest.raises(FitError, match=r"pip install 'compare_kit\[numpyro\]'"):
        ck.fit_bayesian(ck.ModelSpec.named("pooled"), radon, draws=10, tune=10, chains=1,
                        sampler="numpyro")
