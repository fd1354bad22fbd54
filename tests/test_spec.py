"""The formula parser: a table of accepted and rejected formulas, and injection attempts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from compare_kit.errors import DataError, SpecError
from compare_kit.spec import CANONICAL_MODELS, ModelSpec

ACCEPTED = [
    # formula, canonical form, fixed labels, random (group, terms, correlated)
    ("y ~ x", "y ~ x", ("(Intercept)", "x"), []),
    ("y ~ 1", "y ~ 1", ("(Intercept)",), []),
    ("y ~ 0 + x", "y ~ 0 + x", ("x",), []),
    ("y ~ -1 + x", "y ~ 0 + x", ("x",), []),
    ("y ~ x - 1", "y ~ 0 + x", ("x",), []),
    ("y ~ x + -1", "y ~ 0 + x", ("x",), []),
    ("y ~ x + 1", "y ~ x", ("(Intercept)", "x"), []),
    ("y ~ a:b", "y ~ a:b", ("(Intercept)", "a:b"), []),
    ("y ~ a*b", "y ~ a + b + a:b", ("(Intercept)", "a", "b", "a:b"), []),
    ("y ~ a*b*c", "y ~ a + b + c + a:b + a:c + b:c + a:b:c",
     ("(Intercept)", "a", "b", "c", "a:b", "a:c", "b:c", "a:b:c"), []),
    ("y ~ a + a", "y ~ a", ("(Intercept)", "a"), []),
    ("y ~ a:b + b:a", "y ~ a:b", ("(Intercept)", "a:b"), []),
    ("y ~ C(g)", "y ~ C(g)", ("(Intercept)", "g"), []),
    ("log(y) ~ log(x) + sqrt(z)", "log(y) ~ log(x) + sqrt(z)", ("(Intercept)", "log(x)", "sqrt(z)"), []),
    ("y ~ center(x) + scale(z) + exp(w)", "y ~ center(x) + scale(z) + exp(w)",
     ("(Intercept)", "center(x)", "scale(z)", "exp(w)"), []),
    ("y ~ `my var` + `a.b`", "y ~ `my var` + `a.b`", ("(Intercept)", "my var", "a.b"), []),
    ("y~x+(1|g)", "y ~ x + (1 | g)", ("(Intercept)", "x"), [("g", ("(Intercept)",), True)]),
    ("y ~ x + (1 + x | g)", "y ~ x + (1 + x | g)", ("(Intercept)", "x"),
     [("g", ("(Intercept)", "x"), True)]),
    ("y ~ x + (x | g)", "y ~ x + (1 + x | g)", ("(Intercept)", "x"), [("g", ("(Intercept)", "x"), True)]),
    ("y ~ x + (0 + x | g)", "y ~ x + (0 + x | g)", ("(Intercept)", "x"), [("g", ("x",), True)]),
    ("y ~ x + (-1 + x | g)", "y ~ x + (0 + x | g)", ("(Intercept)", "x"), [("g", ("x",), True)]),
    ("y ~ x + (x || g)", "y ~ x + (1 + x || g)", ("(Intercept)", "x"), [("g", ("(Intercept)", "x"), False)]),
    ("y ~ x + (1 + x || g)", "y ~ x + (1 + x || g)", ("(Intercept)", "x"),
     [("g", ("(Intercept)", "x"), False)]),
    ("y ~ (1 | a/b)", "y ~ (1 | a) + (1 | b:a)", ("(Intercept)",),
     [("a", ("(Intercept)",), True), ("b:a", ("(Intercept)",), True)]),
    ("y ~ (1 | a/b/c)", "y ~ (1 | a) + (1 | b:a) + (1 | c:b:a)", ("(Intercept)",),
     [("a", ("(Intercept)",), True), ("b:a", ("(Intercept)",), True), ("c:b:a", ("(Intercept)",), True)]),
    ("y ~ (1 | a:b)", "y ~ (1 | a:b)", ("(Intercept)",), [("a:b", ("(Intercept)",), True)]),
    ("y ~ x + (1 | a) + (1 | b)", "y ~ x + (1 | a) + (1 | b)", ("(Intercept)", "x"),
     [("a", ("(Intercept)",), True), ("b", ("(Intercept)",), True)]),
    ("y ~ x + (1 | `my group`)", "y ~ x + (1 | `my group`)", ("(Intercept)", "x"),
     [("my group", ("(Intercept)",), True)]),
    ("  y  ~  x  ", "y ~ x", ("(Intercept)", "x"), []),
    ("y ~ x + (1 + log(z) | g)", "y ~ x + (1 + log(z) | g)", ("(Intercept)", "x"),
     [("g", ("(Intercept)", "log(z)"), True)]),
    # poly(x, k) stands for its k orthogonal components, named as R names its columns
    ("y ~ poly(x, 2)", "y ~ poly(x, 2)", ("(Intercept)", "poly(x, 2)1", "poly(x, 2)2"), []),
    ("y ~ poly(x,2) * z", "y ~ poly(x, 2) + z + poly(x, 2):z",
     ("(Intercept)", "poly(x, 2)1", "poly(x, 2)2", "z", "poly(x, 2)1:z", "poly(x, 2)2:z"), []),
    ("y ~ x + (poly(x, 2) || g)", "y ~ x + (1 + poly(x, 2) || g)", ("(Intercept)", "x"),
     [("g", ("(Intercept)", "poly(x, 2)1", "poly(x, 2)2"), False)]),
    # I(...): arithmetic with R's precedence, one canonical text per expression
    ("y ~ I(x**2)", "y ~ I(x^2)", ("(Intercept)", "I(x^2)"), []),
    ("y ~ x + I(x ^ 2) + I(x^2)", "y ~ x + I(x^2)", ("(Intercept)", "x", "I(x^2)"), []),
    ("y ~ I(-x^2) + I((-x)^2)", "y ~ I(-x^2) + I((-x)^2)", ("(Intercept)", "I(-x^2)", "I((-x)^2)"), []),
    ("y ~ I(w/h^2) + I(log(d + 1))", "y ~ I(w/h^2) + I(log(d + 1))",
     ("(Intercept)", "I(w/h^2)", "I(log(d + 1))"), []),
    ("y ~ I(a - (b - c)) + I(a - b - c) + I(2^-1 * x) + I(1e3 * .5 * `my x`)",
     "y ~ I(a - (b - c)) + I(a - b - c) + I(2^-1 * x) + I(1000 * 0.5 * `my x`)",
     ("(Intercept)", "I(a - (b - c))", "I(a - b - c)", "I(2^-1 * x)", "I(1000 * 0.5 * `my x`)"), []),
    ("y ~ I(x^z^2):g", "y ~ I(x^z^2):g", ("(Intercept)", "I(x^z^2):g"), []),
]

REJECTED = [
    ("y ~ 0 + (1 | g)", "'y ~ 0 + (1 | g)' has no fixed effects"),
    ("y ~ -1 + (1 + x | g)", "keep the intercept (write '1 +' instead of '0 +', or leave out '- 1')"),
    # formula, a phrase the message must contain
    ("", "empty"),
    ("y", "'~'"),
    ("~ x", "expected a column name"),
    ("y ~", "expected a column name"),
    ("y ~ x +", "expected a column name"),
    ("y ~ x ++ z", "expected a column name"),
    ("y ~ 2", "numbers other than 0 and 1"),
    ("y ~ 0.5 * x", "numbers other than 0 and 1"),
    ("y ~ x - z", "only the intercept can be removed"),
    ("y ~ (x)", "parentheses are only for random-effect terms"),
    ("y ~ (1 | )", "grouping column name"),
    ("y ~ (1 | g", "')' closing"),
    ("y ~ (1 + (x | g) | h)", "cannot be nested"),
    ("y ~ (1 | log(g))", "must be a column name"),
    ("y ~ (0 | g)", "needs an intercept or a predictor"),
    ("y ~ (g | g)", "both a predictor and the grouping factor"),
    ("y ~ y + x", "also appears on the right-hand side"),
    ("y ~ x^2", "'^' and '**' are arithmetic, allowed only inside I(...)"),
    ("y ~ (a + b)^2", "(a + b)^2 shorthand for interactions is not supported"),
    ("y ~ I(3 * 2)", "I(...) must use at least one column"),
    ("y ~ I(x", "')' closing I(...)"),
    ("y ~ I(x +)", "expected a column name, a number"),
    ("y ~ I(+x)", "a leading '+' is not needed"),
    ("y ~ I(abs(x))", "unknown function 'abs' inside I(...)"),
    ("y ~ I(center(x))", "unknown function 'center' inside I(...)"),
    ("y ~ I(1e999 * x)", "the number 1e999 is too large"),
    ("y ~ I(" + "(" * 40 + "x" + ")" * 40 + ")", "nests more than 32 levels"),
    ("y ~ I(" + "-" * 40 + "x)", "nests more than 32 levels"),
    ("I(y / 2) ~ x", "the response cannot be an expression"),
    ("poly(y, 2) ~ x", "the response cannot be a polynomial basis"),
    ("y ~ (1 | I(g))", "must be a column name"),
    ("y ~ x + (I(g^2) | g)", "'g' is both a predictor and the grouping factor"),
    ("y ~ poly(x)", "poly(x, k) takes a column and a degree"),
    ("y ~ poly(x, 0)", "a whole number from 1 to 10"),
    ("y ~ poly(x, 11)", "a whole number from 1 to 10"),
    ("y ~ poly(x, 2.5)", "a whole number from 1 to 10"),
    ("y ~ poly(x, 2, raw = TRUE)", "functions take no named options"),
    ("y ~ poly(x, 2, 3)", "')' closing poly(x, k)"),
    ("y ~ poly(log(x), 2)", "one column name inside poly(...)"),
    ("y ~ x, z", "',' separates arguments only in poly(x, k)"),
    ("y ~ Q(x)", "unknown function 'Q'"),
    ("y ~ log(x, 2)", "')' closing log(...); log() takes one column name"),
    ("y ~ log(log(x))", "not a function call (functions do not nest, except inside I(...))"),
    ("C(y) ~ x", "response cannot be categorical"),
    ("y + z ~ x", "single column"),
    ("y ~ x | g", "expected '+', '-' or the end"),
    ("y ~ `x", "not closed"),
    ("y ~ ``", "empty backtick"),
    ("y ~ x\n+ z", "control characters"),
    ("y ~ x; import os", "';' is not allowed"),
    ("y ~ x" + " + x" * 600, "characters long"),
    ("y ~ x ~ z", "expected '+', '-' or the end"),
]

INJECTIONS = [
    "y ~ __import__('os').system('touch {s}')",
    "y ~ __import__(\"os\").system(\"touch {s}\")",
    "y ~ exec(\"open('{s}','w')\")",
    "y ~ eval(x)",
    "y ~ open('{s}', 'w')",
    "y ~ os.system('touch {s}')",
    "y ~ np.savetxt('{s}', x)",
    "y ~ pd.DataFrame.to_csv",
    "y ~ x.__class__",
    "y ~ __builtins__",
    "y ~ `__import__`",
    "y ~ x + (1 | __class__)",
    "y ~ I(__import__('os').system('touch {s}'))",
    "y ~ C(x, __import__('os').system('touch {s}'))",
    "y ~ log(x).__globals__",
    "y ~ [c for c in ()]",
    "y ~ lambda: 0",
    "y ~ x if True else z",
]


@pytest.mark.parametrize(("formula", "canonical", "fixed", "random"), ACCEPTED)
def test_accepted_formulas(formula, canonical, fixed, random):
    spec = ModelSpec.from_formula(formula)
    assert spec.canonical_formula() == canonical
    assert spec.fixed_labels == fixed
    assert [(r.group, r.term_labels, r.correlated) for r in spec.random] == random
    assert ModelSpec.from_formula(spec.canonical_formula()) == spec.with_label(spec.label) or \
        ModelSpec.from_formula(spec.canonical_formula()).canonical_formula() == canonical


@pytest.mark.parametrize(("formula", "phrase"), REJECTED)
def test_rejected_formulas_say_what_is_wrong(formula, phrase):
    with pytest.raises(SpecError) as err:
        ModelSpec.from_formula(formula)
    assert phrase in str(err.value)


def test_error_points_at_the_position():
    with pytest.raises(SpecError) as err:
        ModelSpec.from_formula("log_radon ~ floor + exec(x)")
    text = str(err.value)
    assert "position 21" in text and "unknown function 'exec'" in text
    assert text.splitlines()[-1].index("^") == 2 + 20


@pytest.mark.parametrize("template", INJECTIONS)
def test_injection_is_rejected_before_any_engine_runs(template, tmp_path, radon):
    sentinel = tmp_path / "sentinel"
    formula = template.format(s=sentinel)
    with pytest.raises(SpecError):
        spec = ModelSpec.from_formula(formula)
        ck.fit_frequentist(spec, radon.rename(columns={"log_radon": "y", "floor": "x"}))
    assert not sentinel.exists()


def test_injection_through_the_cli_leaves_no_sentinel(tmp_path):
    sentinel = tmp_path / "sentinel"
    result = subprocess.run(
        [sys.executable, "-m", "compare_kit.cli", "fit", "--engine", "frequentist",
         "--formula", f"log_radon ~ __import__('os').system('touch {sentinel}')"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "double underscore" in result.stderr
    assert not sentinel.exists()


@pytest.mark.parametrize("name", list(CANONICAL_MODELS))
def test_named_models(name):
    spec = ModelSpec.named(name)
    assert spec.label == name and spec.description
    assert spec.canonical_formula() == ModelSpec.from_formula(CANONICAL_MODELS[name][0]).canonical_formula()


def test_partial_pooling_is_the_uncorrelated_tutorial_model():
    spec = ModelSpec.named("partial_pooling")
    assert len(spec.random) == 1 and not spec.random[0].correlated
    assert spec.random[0].term_labels == ("(Intercept)", "floor")
    assert ModelSpec.named("correlated_slopes").random[0].correlated


def test_unknown_model_name():
    with pytest.raises(SpecError, match="partial_pooling"):
        ModelSpec.named("partial")


def test_unknown_column_names_the_closest(radon):
    spec = ModelSpec.from_formula("log_radon ~ flor + (1 | county)")
    with pytest.raises(DataError) as err:
        ck.fit_frequentist(spec, radon)
    assert "'flor'" in str(err.value) and "'floor'" in str(err.value)


def test_importing_spec_loads_no_engine_or_plotting():
    code = ("import sys, compare_kit.spec, compare_kit; "
            "bad = [m for m in ('pymc', 'bambi', 'matplotlib', 'pytensor', 'statsmodels') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_spec_is_frozen_and_hashable():
    spec = ModelSpec.from_formula("y ~ x + (1 | g)")
    with pytest.raises(AttributeError):
        spec.label = "other"  # type: ignore[misc]
    assert hash(spec) == hash(ModelSpec.from_formula("y ~ x + (1 | g)"))


def test_categorical_coding_follows_r(radon):
    """0 + county gives every county an indicator; with an intercept the first level is dropped."""
    from compare_kit.design import build_design

    full = build_design(ModelSpec.from_formula("log_radon ~ 0 + county"), radon)
    assert full.x.shape[1] == 85 and full.x.columns[0] == "countyAITKIN"
    contrast = build_design(ModelSpec.from_formula("log_radon ~ county"), radon)
    assert contrast.x.shape[1] == 85 and list(contrast.x.columns[:2]) == ["(Intercept)", "countyANOKA"]
    inter = build_design(ModelSpec.from_formula("log_radon ~ floor * county"), radon)
    # R names these floor:countyANOKA (term order), and drops the first county's
    assert "floor:countyANOKA" in inter.x.columns and "floor:countyAITKIN" not in inter.x.columns


def test_design_frame_is_untouched(radon):
    before = radon.copy()
    ck.fit_frequentist(ModelSpec.named("pooled"), radon)
    pd.testing.assert_frame_equal(radon, before)


def test_tests_live_beside_the_package():
    assert (Path(__file__).parent.parent / "compare_kit" / "spec.py").exists()


@pytest.mark.parametrize(("formula", "first", "last"), [
    # R 4.2.2: colnames(model.matrix(~0 + herd + period, cbpp)) etc., on a cbpp-shaped table
    ("y ~ 0 + C(herd) + C(period)", ["herd1", "herd2"], ["herd3", "period2", "period3", "period4"]),
    ("y ~ 0 + size + C(period)", ["size", "period1"], ["period2", "period3", "period4"]),
    ("y ~ 0 + C(period) + C(herd) + C(period):size", ["period1", "period2"],
     ["herd3", "period1:size", "period2:size", "period3:size", "period4:size"]),
])
def test_without_an_intercept_the_first_factor_takes_its_place(formula, first, last):
    """R codes the first factor of an intercept-free model fully and every later factor by contrasts."""
    from compare_kit.design import build_design

    table = pd.DataFrame({"herd": np.repeat([1, 2, 3], 8), "period": np.tile([1, 2, 3, 4], 6),
                          "size": np.arange(24.0) % 7 + 1, "y": np.sin(np.arange(24.0))})
    columns = list(build_design(ModelSpec.from_formula(formula), table).x.columns)
    assert columns[:len(first)] == first and columns[-len(last):] == last
