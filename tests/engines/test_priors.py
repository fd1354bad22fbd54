"""Priors: the safe text form, presets, overrides and their checks (no sampling)."""

from __future__ import annotations

import numpy as np
import pytest

from compare_kit.engines.priors import (
    Prior,
    PriorPreset,
    Priors,
    Role,
    parse_prior,
    preset_priors,
    role_of_key,
)
from compare_kit.errors import SpecError


@pytest.mark.parametrize(("text", "expected"), [
    ("Normal(0, 100)", Prior("Normal", (("mu", 0.0), ("sigma", 100.0)))),
    ("Normal(mu=1.5, sigma=2e1)", Prior("Normal", (("mu", 1.5), ("sigma", 20.0)))),
    ("Normal(sigma=3, mu=-1)", Prior("Normal", (("mu", -1.0), ("sigma", 3.0)))),
    (" HalfCauchy( 5 ) ", Prior("HalfCauchy", (("beta", 5.0),))),
    ("StudentT(3, 0, 2.5)", Prior("StudentT", (("nu", 3.0), ("mu", 0.0), ("sigma", 2.5)))),
    ("Uniform(0, 100)", Prior("Uniform", (("lower", 0.0), ("upper", 100.0)))),
    ("HalfFlat()", Prior("HalfFlat", ())),
    ("LKJ(2)", Prior("LKJ", (("eta", 2.0),))),
])
def test_parse_prior_reads_numbers_and_keywords(text: str, expected: Prior) -> None:
    assert parse_prior(text) == expected


def test_prior_prints_as_it_is_read() -> None:
    prior = parse_prior("Normal(0, 100)")
    assert str(prior) == "Normal(mu=0, sigma=100)"
    assert parse_prior(str(prior)) == prior


def test_per_column_parameters_print_compactly() -> None:
    prior = Prior.of("Normal", mu=np.zeros(85), sigma=np.linspace(6.2, 62.1, 85))
    assert str(prior) == "Normal(mu=0, sigma=[6.2 .. 62.1; one per column])"
    assert prior.kwargs["sigma"].shape == (85,)


@pytest.mark.parametrize(("text", "message"), [
    ("Normal(0, 100", "cannot read the prior"),
    ("__import__('os').system('true')", "cannot read the prior"),
    ("Normal(0, abs(1))", "plain numbers"),
    ("Normal(0, 1, 2)", "takes 2 parameter"),
    ("Normal(0)", "needs the parameter(s) sigma"),
    ("Normal(0, -1)", "must be positive"),
    ("Normal(mu=0, mu=1)", "given twice"),
    ("Normal(0, scale=1)", "has no parameter 'scale'"),
    ("Wishart(3)", "unknown prior distribution"),
    ("Uniform(5, 1)", "0 <= lower < upper"),
    ("Normal(0, inf)", "plain numbers"),
])
def test_parse_prior_rejects_bad_text_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_prior(text)


def test_roles_accept_only_distributions_of_the_right_support() -> None:
    parse_prior("HalfNormal(1)", Role.SD)
    with pytest.raises(SpecError, match="cannot be a prior on a standard deviation.*HalfNormal"):
        parse_prior("Normal(0, 1)", Role.SD)
    with pytest.raises(SpecError, match="cannot be a prior on a coefficient"):
        parse_prior("HalfCauchy(5)", Role.COEFFICIENT)
    with pytest.raises(SpecError, match="correlation matrix; accepted: LKJ"):
        parse_prior("Normal(0, 1)", Role.CORRELATION)


@pytest.mark.parametrize(("key", "role"), [
    ("floor", Role.COEFFICIENT), ("(Intercept)", Role.COEFFICIENT), ("county:floor", Role.COEFFICIENT),
    ("sd__floor", Role.SD), ("sd__(Intercept)|county", Role.SD), ("sd__Observation", Role.SD),
    ("cor", Role.CORRELATION), ("cor|county", Role.CORRELATION),
])
def test_role_of_key(key: str, role: Role) -> None:
    assert role_of_key(key) is role


def test_presets_hold_the_documented_priors() -> None:
    tutorial = preset_priors(PriorPreset.TUTORIAL)
    assert str(tutorial.coefficient) == "Normal(mu=0, sigma=100)"
    assert str(tutorial.group_sd) == "HalfCauchy(beta=5)"
    assert str(tutorial.residual_sd) == "HalfCauchy(beta=5)"
    default = preset_priors(PriorPreset.DEFAULT)
    assert (default.coefficient, default.group_sd, default.residual_sd) == (None, None, None)
    vague = preset_priors(PriorPreset.VAGUE)
    assert vague.coefficient.kwargs["sigma"] >= 1000
    assert vague.group_sd.kwargs["upper"] >= 100


def test_priors_coerce_accepts_names_mappings_and_objects() -> None:
    assert Priors.coerce(None) == Priors()
    assert Priors.coerce("tutorial").preset is PriorPreset.TUTORIAL
    mixed = Priors.coerce({"preset": "vague", "floor": "Normal(0, 1)", "sd__floor": "HalfNormal(0.5)"})
    assert mixed.preset is PriorPreset.VAGUE
    assert str(mixed.override("floor")) == "Normal(mu=0, sigma=1)"
    assert str(mixed.override("sd__floor")) == "HalfNormal(sigma=0.5)"
    assert mixed.override("(Intercept)") is None
    assert Priors.coerce(mixed) is mixed


def test_priors_coerce_rejects_unknown_presets_and_wrong_roles() -> None:
    with pytest.raises(SpecError, match="unknown prior preset 'flat'; accepted: default, tutorial, vague"):
        Priors.coerce("flat")
    with pytest.raises(SpecError, match="standard deviation"):
        Priors.coerce({"sd__floor": "Normal(0, 1)"})
    with pytest.raises(SpecError, match="priors must be a preset name"):
        Priors.coerce(3)  # type: ignore[arg-type]
