"""Families (issue 16, the user-facing side): the family from the formula, the CLI and study files to
the design; cbind() and offset() in compare_kit's own parser; the outcome checked against the family
with the offending rows named; notes when a Gaussian outcome looks like counts or 0/1; and a clear
error, never a Gaussian fit, when a non-Gaussian model is given to today's engines."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from compare_kit.cli import _study_from_formula, build_parser, main
from compare_kit.design import build_design
from compare_kit.errors import DataError, SpecError
from compare_kit.family import Family, Link, coerce_family
from compare_kit.spec import ModelSpec
from compare_kit.study import StudyError, parse_study, teaching_spec

# ----------------------------------------------------------------------------------------- tables


def herds(n_groups: int = 8, per_group: int = 4, seed: int = 3) -> pd.DataFrame:
    """A small cbpp-like table: incidence out of size per herd and period, and counts with an exposure."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    table = pd.DataFrame({"herd": np.repeat([f"H{i}" for i in range(n_groups)], per_group),
                          "period": np.tile(np.arange(1, per_group + 1), n_groups).astype(float),
                          "size": rng.integers(2, 12, n)})
    table["incidence"] = rng.binomial(table["size"], 0.25)
    table["exposure"] = rng.uniform(0.5, 3.0, n)
    table["ticks"] = rng.poisson(2.0 * table["exposure"])
    table["passed"] = np.where(rng.random(n) < 0.5, "Y", "N")
    table["passed"] = table["passed"].where(np.arange(n) % 2 == 0, "N").where(np.arange(n) % 3 != 0, "Y")
    table["won"] = (table["passed"] == "Y").astype(int)
    return table


# ----------------------------------------------------------------------------------------- parsing

ACCEPTED = [
    # formula, family, success, canonical form, columns
    ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial", None,
     "cbind(incidence, size - incidence) ~ period + (1 | herd)", ("incidence", "size", "period", "herd")),
    ("cbind(s,f)~x", "binomial", None, "cbind(s, f) ~ x", ("s", "f", "x")),
    ("cbind(n - f, f) ~ x", "binomial", None, "cbind(n - f, f) ~ x", ("n", "f", "x")),
    ("cbind(`my s`, `n n` - `my s`) ~ 0 + x", "Binomial", None, "cbind(`my s`, `n n` - `my s`) ~ 0 + x",
     ("my s", "n n", "x")),
    ("ticks ~ x + offset(log(exposure)) + (1 | g)", "poisson", None,
     "ticks ~ x + offset(log(exposure)) + (1 | g)", ("ticks", "x", "exposure", "g")),
    ("ticks ~ offset(exposure) + x", "poisson", None, "ticks ~ x + offset(exposure)", ("ticks", "x", "exposure")),
    ("ticks ~ 1 + offset( log(a) + 2*b )", "poisson", None, "ticks ~ offset(log(a) + 2 * b)",
     ("ticks", "a", "b")),
    ("ticks ~ 0 + x + offset(log(e))", "poisson", None, "ticks ~ 0 + x + offset(log(e))", ("ticks", "x", "e")),
    ("cbind(s, n - s) ~ x + offset(z)", "binomial", None, "cbind(s, n - s) ~ x + offset(z)",
     ("s", "n", "x", "z")),
    ("passed ~ x + (1 | g)", "bernoulli", "Y", "passed ~ x + (1 | g)", ("passed", "x", "g")),
    ("won ~ x", "bernoulli", None, "won ~ x", ("won", "x")),
    ("y ~ x + offset(z)", None, None, "y ~ x + offset(z)", ("y", "x", "z")),
    ("y ~ offset", None, None, "y ~ offset", ("y", "offset")),  # a column called offset is a column
]


@pytest.mark.parametrize(("formula", "family", "success", "canonical", "columns"), ACCEPTED)
def test_accepted_formulas_round_trip_with_their_family(formula, family, success, canonical, columns):
    spec = ModelSpec.from_formula(formula, family=family, success=success)
    assert str(spec) == canonical == spec.canonical_formula()
    assert spec.columns == columns
    assert spec.family is coerce_family(family) and spec.success == success
    again = ModelSpec.from_formula(str(spec), family=spec.family, success=spec.success)
    assert again == dataclasses.replace(spec, formula=str(spec))
    assert str(again) == canonical
    assert (spec.cbind is not None) == (spec.family is Family.BINOMIAL)


def test_each_family_has_its_canonical_link_and_gaussian_is_the_default():
    assert {f.value: f.link for f in Family} == {"gaussian": Link.IDENTITY, "bernoulli": Link.LOGIT,
                                                "binomial": Link.LOGIT, "poisson": Link.LOG}
    spec = ModelSpec.from_formula("y ~ x")
    assert spec.family is Family.GAUSSIAN and not spec.family_given and spec.cbind is None and spec.offset is None
    assert ModelSpec.from_formula("y ~ x", family=Family.POISSON).family is Family.POISSON
    assert ModelSpec.from_formula("y ~ x", family=" POISSON ").family is Family.POISSON
    assert ModelSpec.from_formula("y ~ x", family="gaussian").family_given


def test_the_family_survives_every_way_a_spec_is_built():
    spec = ModelSpec.from_formula("cbind(s, n - s) ~ x + offset(log(e)) + (1 | g)", label="mine",
                                  family="binomial")
    relabelled = spec.with_label("other")
    assert (relabelled.family, relabelled.cbind, relabelled.offset, relabelled.label) == (
        spec.family, spec.cbind, spec.offset, "other")
    assert ModelSpec.from_text("won ~ x", family="bernoulli", success="1").success == "1"
    pooled = spec.sibling("x", "pooled")
    assert str(pooled) == "cbind(s, n - s) ~ x + offset(log(e))" and pooled.family is Family.BINOMIAL
    assert pooled.label == "pooled"
    assert ModelSpec.named("varying_intercept").family is Family.GAUSSIAN
    assert ModelSpec.from_text("pooled", family="gaussian").family_given
    # the teaching demonstrations' derived random-intercept model keeps the family and the offset
    from compare_kit.study import ModelEntry, Study

    slopes = ModelSpec.from_formula("ticks ~ x + offset(log(e)) + (1 + x | g)", label="s", family="poisson")
    derived = teaching_spec(Study("t", "csv", None, (ModelEntry("s", slopes),))).random_intercept
    assert str(derived) == "ticks ~ x + offset(log(e)) + (1 | g)" and derived.family is Family.POISSON


REJECTED = [
    # formula, from_formula keywords, phrase
    ("cbind(a, b) ~ x", {}, "family is 'gaussian': give family='binomial'"),
    ("cbind(a, b) ~ x", {"family": "poisson"}, "cbind(successes, failures) is a binomial response"),
    ("y ~ x", {"family": "binomial"}, "write the response as cbind(successes, failures)"),
    ("y ~ x", {"family": "gamma"}, "unknown family 'gamma'; the families are: gaussian"),
    ("y ~ x", {"family": "binary"}, "did you mean 'bernoulli'?"),
    ("y ~ x", {"family": "logistic"}, "did you mean 'bernoulli'?"),
    ("y ~ x", {"family": 2}, "a family is a name such as \"poisson\""),
    ("log(y) ~ x", {"family": "poisson"}, "the response of a poisson model is its column as it is"),
    ("scale(y) ~ x", {"family": "bernoulli"}, "not scale(y)"),
    ("y ~ x", {"success": "Y"}, "success= names the level of a two-level outcome"),
    ("cbind(s, f) ~ x", {"family": "binomial", "success": "Y"}, "this model's family is 'binomial'"),
    ("y ~ x", {"family": "bernoulli", "success": " "}, "success is empty"),
    ("y ~ x", {"family": "bernoulli", "success": 0.5}, "success must be one level"),
    ("y ~ x", {"family": "bernoulli", "success": ["Y"]}, "success must be the text of one level"),
    ("cbind(a) ~ x", {"family": "binomial"}, "cbind() takes two arguments"),
    ("cbind(a, b, c) ~ x", {"family": "binomial"}, "')' closing cbind()"),
    ("cbind(log(a), b) ~ x", {"family": "binomial"}, "expected the successes of cbind(): a column"),
    ("cbind(a + b, c) ~ x", {"family": "binomial"}, "expected ',' or ')' after the successes"),
    ("cbind(a - b - c, d) ~ x", {"family": "binomial"}, "expected ',' or ')' after the successes"),
    ("cbind(a, n - n) ~ x", {"family": "binomial"}, "n - n is 0 in every row"),
    ("cbind(1, a) ~ x", {"family": "binomial"}, "expected the successes of cbind()"),
    ("cbind(a, n - a) ~ n", {"family": "binomial"}, "the response 'n' also appears on the right-hand side"),
    ("y ~ cbind(a, b)", {}, "cbind(...) can only be the response, left of '~'"),
    ("y ~ x + offset(a) + offset(b)", {}, "a formula takes one offset(...)"),
    ("y ~ x - offset(a)", {}, "an offset cannot be removed with '-'"),
    ("y ~ x:offset(a)", {}, "offset(...) can only be a term of its own in the fixed part"),
    ("y ~ offset(a) * x", {}, "it cannot be part of an interaction"),
    ("y ~ x + (1 + offset(a) | g)", {}, "offset(...) can only be a term of its own in the fixed part"),
    ("offset(y) ~ x", {}, "offset(...) can only be a term of its own"),
    ("y ~ offset()", {}, "offset() needs a column"),
    ("y ~ offset(2 * 3)", {}, "offset(...) must use a column"),
    ("y ~ offset(x, z)", {}, "closing offset(...)"),
    ("y ~ offset(C(x))", {}, "unknown function 'C' inside I(...)"),
    ("y ~ x + offset(log(y))", {}, "the response 'y' also appears on the right-hand side"),
    ("y ~ 0 + offset(z)", {}, "has no fixed effects"),
    ("y ~ offset(__import__('os'))", {}, "double underscore"),
    ("cbind(s, eval(x)) ~ x", {"family": "binomial"}, "expected the failures of cbind()"),
]


@pytest.mark.parametrize(("formula", "keywords", "phrase"), REJECTED)
def test_bad_family_syntax_is_a_spec_error_saying_what_works(formula, keywords, phrase):
    with pytest.raises(SpecError) as err:
        ModelSpec.from_formula(formula, **keywords)
    assert phrase in str(err.value)


def test_an_unknown_family_lists_every_family():
    with pytest.raises(SpecError) as err:
        ModelSpec.from_formula("y ~ x", family="gamma")
    for family in Family:
        assert family.value in str(err.value)


def test_a_named_radon_model_takes_no_other_family():
    with pytest.raises(SpecError, match="named model of the radon survey"):
        ModelSpec.from_text("partial_pooling", family="poisson")


# ------------------------------------------------------------------------------------------ design


def test_binomial_design_carries_successes_and_trials_aligned_with_the_rows():
    table = herds()
    table.loc[5, "period"] = np.nan  # dropped: the arrays skip it
    design = build_design(ModelSpec.from_formula("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                                                 family="binomial"), table)
    kept = table.drop(index=5).reset_index(drop=True)
    np.testing.assert_array_equal(design.y, kept["incidence"].to_numpy(float))
    np.testing.assert_array_equal(design.trials, kept["size"].to_numpy(float))
    assert design.offset is None and design.family is Family.BINOMIAL
    np.testing.assert_array_equal(design.rows, np.delete(np.arange(len(table)), 5))
    assert design.n == len(kept) == len(design.trials) == len(design.x)


def test_binomial_with_two_count_columns_has_their_sum_as_trials():
    table = herds()
    table["failures"] = table["size"] - table["incidence"]
    design = build_design(ModelSpec.from_formula("cbind(incidence, failures) ~ period", family="binomial"), table)
    np.testing.assert_array_equal(design.trials, table["size"].to_numpy(float))


def test_poisson_design_carries_counts_and_the_offset():
    table = herds()
    table.loc[2, "exposure"] = np.nan
    design = build_design(ModelSpec.from_formula("ticks ~ period + offset(log(exposure)) + (1 | herd)",
                                                 family="poisson"), table)
    kept = table.drop(index=2).reset_index(drop=True)
    np.testing.assert_array_equal(design.y, kept["ticks"].to_numpy(float))
    np.testing.assert_allclose(design.offset, np.log(kept["exposure"].to_numpy()))
    assert design.trials is None and design.summary.n_dropped == 1


def test_a_gaussian_design_has_no_trials_and_may_have_an_offset():
    table = herds()
    design = build_design(ModelSpec.from_formula("exposure ~ period + offset(size)"), table)
    assert design.trials is None
    np.testing.assert_array_equal(design.offset, table["size"].to_numpy(float))
    assert build_design(ModelSpec.from_formula("exposure ~ period"), table).offset is None


@pytest.mark.parametrize(("column", "success", "expected"), [
    ("passed", "Y", "Y"), ("passed", "N", "N"), ("won", None, 1), ("won", "0", 0), ("won", 1, 1)])
def test_bernoulli_design_codes_the_success_as_1(column, success, expected):
    table = herds()
    design = build_design(ModelSpec.from_formula(f"{column} ~ period + (1 | herd)", family="bernoulli",
                                                 success=success), table)
    np.testing.assert_array_equal(design.y, (table[column] == expected).to_numpy(float))


def test_bernoulli_reads_a_true_false_column():
    table = herds().assign(flag=lambda t: t["won"] == 1)
    design = build_design(ModelSpec.from_formula("flag ~ period", family="bernoulli"), table)
    np.testing.assert_array_equal(design.y, table["won"].to_numpy(float))


# --------------------------------------------------------------------------- outcomes that do not fit


def _error(formula: str, table: pd.DataFrame, **keywords) -> str:
    with pytest.raises(DataError) as err:
        build_design(ModelSpec.from_formula(formula, **keywords), table)
    return str(err.value)


def test_poisson_names_the_rows_with_negative_or_fractional_counts_as_the_user_sees_them():
    table = herds()
    table.loc[0, "period"] = np.nan  # a dropped row does not shift the numbers
    table.loc[[3, 9], "ticks"] = [-2, -1]
    message = _error("ticks ~ period", table, family="poisson")
    assert "negative in row 4 (ticks = -2), row 10 (ticks = -1)" in message
    table["ticks"] = table["ticks"].astype(float)
    table.loc[[3, 9], "ticks"] = [2.5, 1]
    assert "not whole in row 4 (ticks = 2.5)" in _error("ticks ~ period", table, family="poisson")
    table["ticks"] = 0
    assert "every count of the response 'ticks' is 0" in _error("ticks ~ period", table, family="poisson")


def test_many_offending_rows_are_counted_beyond_the_first_five():
    table = herds()
    table["ticks"] = -1
    assert "row 5 (ticks = -1) and 27 more rows" in _error("ticks ~ period", table, family="poisson")


def test_binomial_names_rows_with_more_successes_than_trials():
    table = herds()
    table.loc[6, ["incidence", "size"]] = [7, 4]
    message = _error("cbind(incidence, size - incidence) ~ period", table, family="binomial")
    assert "the failures (size - incidence) are negative in row 7 (incidence = 7, size = 4)" in message
    assert "more successes (incidence) than trials (size)" in message


@pytest.mark.parametrize(("change", "phrase"), [
    ({"incidence": -1}, "the successes (incidence) are negative in row 2 (incidence = -1"),
    ({"incidence": 1.5}, "the successes (incidence) are not whole in row 2 (incidence = 1.5"),
    ({"incidence": 0, "size": 0}, "has no trials (0 successes and 0 failures) in row 2"),
])
def test_binomial_names_rows_with_impossible_counts(change, phrase):
    table = herds()
    for column, value in change.items():
        table[column] = table[column].astype(float)
        table.loc[1, column] = value
    assert phrase in _error("cbind(incidence, size - incidence) ~ period", table, family="binomial")


@pytest.mark.parametrize(("formula", "family", "column"), [
    ("ticks ~ period", "poisson", "ticks"), ("cbind(incidence, size - incidence) ~ period", "binomial", "size")])
def test_counts_beyond_exact_floating_point_are_refused(formula, family, column):
    """Above 2^53, n + 1 == n in float64: successes would equal trials with failures left (found by fuzzing)."""
    table = herds()
    table[column] = table[column].astype(float)
    table.loc[2, column] = 2.0 ** 63
    assert "must be counts up to 9007199254740992 (2^53" in _error(formula, table, family=family)
    assert "row 3 (" in _error(formula, table, family=family)


def test_binomial_needs_successes_and_failures_somewhere():
    table = herds().assign(incidence=0)
    assert "has no successes in any row" in _error("cbind(incidence, size - incidence) ~ period", table,
                                                   family="binomial")
    table = herds().assign(incidence=lambda t: t["size"])
    assert "has no failures in any row" in _error("cbind(incidence, size - incidence) ~ period", table,
                                                  family="binomial")


def test_bernoulli_errors_name_the_levels_and_their_first_rows():
    table = herds()
    table.loc[4, "passed"] = "maybe"
    message = _error("passed ~ period", table, family="bernoulli", success="Y")
    assert "needs a response with two levels, but 'passed' has 3:" in message and "'maybe' (row 5)" in message
    table = herds()
    message = _error("passed ~ period", table, family="bernoulli", success="yes")
    assert "success='yes' is not a value of the response 'passed'" in message and "'Y' (row 1)" in message
    message = _error("passed ~ period", table, family="bernoulli")
    assert "holds text, with 2 levels" in message and "success='Y' (--success Y" in message
    table.loc[2, "won"] = 2
    message = _error("won ~ period", table, family="bernoulli")
    assert "needs a 0/1 response, but 'won' holds other values: row 3 (won = 2)" in message
    table = herds().assign(won=lambda t: t["won"] + 1)
    assert "give the one that counts as a success: success='2'" in _error("won ~ period", table,
                                                                           family="bernoulli")
    assert "every row of the response 'won' is a success" in _error("won ~ period", herds().assign(won=1),
                                                                     family="bernoulli")
    assert "is a failure" in _error("won ~ period", herds().assign(won=0).head(1), family="bernoulli")  # one row


def test_a_text_outcome_without_a_family_points_to_bernoulli():
    message = _error("passed ~ period", herds())
    assert "must be numeric" in message and "family='bernoulli'" in message and "--success Y" in message


def test_an_offset_that_is_not_a_number_names_its_row():
    table = herds()
    table.loc[7, "exposure"] = 0.0
    message = _error("ticks ~ period + offset(log(exposure))", table, family="poisson")
    assert "offset(log(exposure)) is not a finite number in 1 row" in message
    assert "the first in row 8, where exposure = 0" in message
    table["exposure"] = table["exposure"].astype(str).where(table.index != 5, "oops")
    message = _error("ticks ~ period + offset(log(exposure))", table, family="poisson")
    assert "offset(log(exposure)) reads 'exposure' as numbers, but it holds text: 'oops' (row 6)" in message


def test_a_text_trials_column_is_named_with_its_row():
    table = herds()
    table["size"] = table["size"].astype(str).where(table.index != 2, "n/a?")
    message = _error("cbind(incidence, size - incidence) ~ period", table, family="binomial")
    assert "'size' must be numeric, but it holds text: 'n/a?' (row 3)" in message


# ----------------------------------------------------------------------------------- mismatch notes


@pytest.mark.parametrize(("column", "phrase"), [
    ("ticks", "holds only whole numbers from 0 to"),
    ("won", "holds only 0 and 1: if it is a yes/no outcome, family='bernoulli'"),
    ("size", "family='poisson' (--family poisson) models them as counts"),
])
def test_a_gaussian_outcome_that_looks_like_counts_or_0_1_gets_a_note(column, phrase):
    design = build_design(ModelSpec.from_formula(f"{column} ~ period + (1 | herd)"), herds())
    assert any(phrase in n for n in design.notes), design.notes


def test_two_values_other_than_0_1_suggest_bernoulli_with_a_success_level():
    table = herds().assign(won=lambda t: t["won"] + 1)
    design = build_design(ModelSpec.from_formula("won ~ period"), table)
    assert any("two values, 1 and 2" in n and "success='2'" in n for n in design.notes)


@pytest.mark.parametrize(("formula", "family"), [
    ("exposure ~ period", None),  # a measurement
    ("ticks ~ period", "gaussian"),  # the user said so
    ("sqrt(ticks) ~ period", None),  # a transformed response is the user's choice
    ("ticks ~ period", "poisson"),
])
def test_no_note_for_measurements_stated_families_or_transformed_responses(formula, family):
    design = build_design(ModelSpec.from_formula(formula, family=family), herds())
    assert not any("family=" in n for n in design.notes), design.notes


def test_the_note_reaches_a_gaussian_fits_notes():
    fit = ck.fit_frequentist(ModelSpec.from_formula("ticks ~ period + (1 | herd)"), herds(), mixedlm=False)
    assert any("family='poisson'" in n for n in fit.health.notes)


# ------------------------------------------------------------------- which engine fits a family
# (engines_must_not_run: tests/conftest.py)

FAMILY_MODELS = [
    ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
    ("ticks ~ period + offset(log(exposure)) + (1 | herd)", "poisson"),
    ("won ~ period", "bernoulli"),
]

@pytest.mark.parametrize(("formula", "family"), FAMILY_MODELS)
def test_the_frequentist_engine_fits_every_family(formula, family):
    fit = ck.fit_frequentist(ModelSpec.from_formula(formula, family=family), herds())
    assert fit.spec.family.value == family and fit.stats.loglik_method == "ML"
    assert fit.method == ("Laplace" if fit.design.blocks else "ML")
    assert "sd__Observation" not in set(fit.estimates["term"])
    # the Bayesian engine fits them too: tests/engines/test_bayesian_glmm.py


@pytest.mark.parametrize("engine", ["frequentist", "bayesian"])
def test_no_engine_fits_a_gaussian_model_with_an_offset(engine, engines_must_not_run):
    spec = ModelSpec.from_formula("exposure ~ period + offset(size) + (1 | herd)")
    fit = ck.fit_frequentist if engine == "frequentist" else ck.fit_bayesian
    with pytest.raises(SpecError, match=r"offset\(size\) is read, but fitting a Gaussian model with an offset is not "
                                        "available yet"):
        fit(spec, herds())


def test_the_data_are_checked_before_the_family_is_refused(engines_must_not_run):
    table = herds()
    table.loc[0, "ticks"] = -3
    with pytest.raises(DataError, match="row 1"):
        ck.fit_frequentist(ModelSpec.from_formula("ticks ~ period", family="poisson"), table)


def test_a_study_mixing_families_stops_before_any_fit_or_second_process(monkeypatch, tmp_path):
    import compare_kit.processes
    from compare_kit.study import ModelEntry, StudyError

    def no_sidecar(*_args, **_kwargs):
        raise AssertionError("the second process started")

    monkeypatch.setattr(compare_kit.processes, "Sidecar", no_sidecar)
    herds().to_csv(tmp_path / "h.csv", index=False)
    study = _study_from_formula("ticks ~ period + (1 | herd)", csv_path=tmp_path / "h.csv", family="poisson")
    gaussian = ModelEntry("gaussian", ModelSpec.from_formula("ticks ~ period + (1 | herd)", label="gaussian"))
    mixed = dataclasses.replace(study, models=(*study.models, gaussian))
    with pytest.raises(StudyError, match=r"the models mix families .*gaussian \(gaussian\).*own study"):
        ck.run_study(mixed, workers=2)


# -------------------------------------------------------------------------------------- command line


@pytest.fixture
def herds_csv(tmp_path):
    path = tmp_path / "herds.csv"
    herds().to_csv(path, index=False)
    return path


CLI_FAMILIES = [
    ["--formula", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "--family", "binomial"],
    ["--formula", "ticks ~ period + offset(log(exposure))", "--family", "poisson"],
    ["--formula", "passed ~ period + (1 | herd)", "--family", "bernoulli", "--success", "Y"],
]


CLI_REFUSALS = [
    (["--formula", "ticks ~ period", "--family", "gamma"], "unknown family 'gamma'; the families are"),
    (["--formula", "ticks ~ period", "--success", "Y"], "success= names the level"),
    (["--formula", "cbind(incidence, size - incidence) ~ period"], "give family='binomial'"),
    (["--formula", "passed ~ period", "--family", "bernoulli"], "success='Y' (--success Y"),
]


@pytest.mark.parametrize(("command", "extra", "phrase"), [
    *[(command, extra, phrase) for command in ("fit", "report") for extra, phrase in CLI_REFUSALS],
])
def test_the_cli_exits_2_with_the_familys_message(capsys, herds_csv, tmp_path, extra, phrase, command):
    out = tmp_path / "r.html"
    args = (["fit", "--engine", "frequentist"] if command == "fit" else ["report", "--out", str(out)])
    code = main([*args, "--csv", str(herds_csv), "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert phrase in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("extra", CLI_FAMILIES)
def test_the_cli_fits_every_family(capsys, herds_csv, extra):
    code = main(["fit", "--engine", "frequentist", "--csv", str(herds_csv), "--quiet", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "fixed" in captured.out and "Traceback" not in captured.err


def test_the_cli_refuses_a_row_that_does_not_fit_the_family_with_its_csv_row(capsys, tmp_path):
    table = herds()
    table.loc[11, "ticks"] = -4
    path = tmp_path / "h.csv"
    table.to_csv(path, index=False)
    code = main(["fit", "--engine", "frequentist", "--csv", str(path), "--formula", "ticks ~ period",
                 "--family", "poisson", "--quiet"])
    assert code == 2
    assert "negative in row 12 (ticks = -4)" in capsys.readouterr().err


def test_family_options_need_a_formula(capsys, tmp_path):
    study = tmp_path / "s.toml"
    study.write_text('[models.a]\nformula = "y ~ x"\n')
    for extra in (["--study", str(study)], []):
        assert main(["report", *extra, "--family", "poisson"]) == 2
        assert "--family and --success go with --formula" in capsys.readouterr().err


def test_a_formula_study_gives_its_family_and_offset_to_every_model(herds_csv):
    study = _study_from_formula("ticks ~ period + offset(log(exposure)) + (1 | herd)", csv_path=herds_csv,
                                family="poisson")
    assert [m.label for m in study.models] == ["pooled", "unpooled", "partial_pooling"]
    assert all(m.spec.family is Family.POISSON and m.spec.offset is not None for m in study.models)
    assert str(study.models[1].spec) == "ticks ~ 0 + C(herd) + period + offset(log(exposure))"
    study = _study_from_formula("passed ~ period + (1 | herd)", csv_path=herds_csv, family="bernoulli",
                                success="Y")
    assert {m.spec.success for m in study.models} == {"Y"}


def test_help_documents_family_and_success():
    for command in ("fit", "report"):
        text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
        assert "--family NAME" in text and "--success LEVEL" in text and "cbind(successes, failures)" in text


def test_the_reproducibility_command_keeps_family_and_success():
    from compare_kit.cli import _argv_of

    args = build_parser().parse_args(["report", "--csv", "t.csv", "--formula", "y ~ x", "--family",
                                      "bernoulli", "--success", "Y"])
    assert _argv_of(args)[:8] == ["--csv", "t.csv", "--formula", "y ~ x", "--family", "bernoulli",
                                  "--success", "Y"]


# -------------------------------------------------------------------------------------- study files


def test_a_study_file_gives_each_model_its_family_and_success():
    study = parse_study({"models": {
        "counts": {"formula": "ticks ~ x + offset(log(e)) + (1 | g)", "family": "poisson"},
        "passed": {"formula": "passed ~ x + (1 | g)", "family": "bernoulli", "success": "Y"},
        "coded": {"formula": "won ~ x", "family": "bernoulli", "success": 1},
        "plain": {"formula": "y ~ x"}}})
    specs = {m.label: m.spec for m in study.models}
    assert specs["counts"].family is Family.POISSON and specs["counts"].offset is not None
    assert (specs["passed"].family, specs["passed"].success) == (Family.BERNOULLI, "Y")
    assert specs["coded"].success == "1"
    assert specs["plain"].family is Family.GAUSSIAN and not specs["plain"].family_given


@pytest.mark.parametrize(("model", "phrase"), [
    ('formula = "y ~ x"\nfamily = "gamma"\n', "models.a.family (line 4): unknown family 'gamma'"),
    ('formula = "y ~ x"\nfamily = 3\n', "models.a.family (line 4): must be a family name"),
    ('formula = "y ~ x"\nsuccess = "Y"\n', "models.a.success (line 4): success= names the level"),
    ('formula = "y ~ x"\nfamily = "bernoulli"\nsuccess = true\n', "models.a.success (line 5): success must be"),
    ('formula = "y ~ x"\nfamily = "binomial"\n', "models.a.formula (line 3): family 'binomial' reads successes"),
    ('formula = "y ~ x"\nfamilies = "poisson"\n', "unknown key; a model has formula, priors, family and success"),
])
def test_study_family_errors_name_the_key_and_line(model, phrase):
    import tomllib

    text = f'title = "t"\n[models.a]\n{model}'
    with pytest.raises(StudyError) as err:
        parse_study(tomllib.loads(text), text)
    assert phrase in str(err.value)


def test_the_readmes_family_examples_parse():
    import ast
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    calls = [line for line in readme.splitlines() if line.startswith("ck.ModelSpec.from_formula(")]
    assert len(calls) >= 3
    for line in calls:
        call = ast.parse(line).body[0].value
        args = [ast.literal_eval(a) for a in call.args]
        keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        assert ModelSpec.from_formula(*args, **keywords).family_given
