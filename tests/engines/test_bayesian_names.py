"""Safe engine names and their translation to canonical names (no sampling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from compare_kit.design import build_design
from compare_kit.engines.bambi_names import (
    BlockNames,
    build_naming,
    check_fixed_columns,
)
from compare_kit.errors import FitError


@pytest.fixture(scope="module")
def radon() -> pd.DataFrame:
    return ck.load_radon()


def naming_for(formula: str, data: pd.DataFrame):
    design = build_design(ck.ModelSpec.from_text(formula), data)
    return design, build_naming(design)


@pytest.mark.parametrize(("model", "formula"), [
    ("pooled", "y ~ 1 + x0"),
    ("unpooled", "y ~ 0 + c0 + c0:x0"),
    ("partial_pooling", "y ~ 1 + x0 + (1 + z0_1 | g0)"),
    ("correlated_slopes", "y ~ 1 + x0 + (1 + z0_1 | g0)"),
    ("varying_intercept", "y ~ 1 + x0 + (1 | g0)"),
    ("group_predictor", "y ~ 1 + x0 + x1 + (1 | g0)"),
])
def test_formula_is_generated_from_safe_names(radon: pd.DataFrame, model: str, formula: str) -> None:
    _, naming = naming_for(model, radon)
    assert naming.formula == formula
    assert all(c == "y" or c[0] in "xcgz" and c[1:].replace("_", "").isdigit() for c in naming.frame.columns)


def test_user_text_never_reaches_the_engine() -> None:
    evil = "__import__('os').system('echo pwned')"
    data = pd.DataFrame({"resp value": np.arange(12.0) % 5, evil[2:]: np.arange(12.0) ** 0.5,
                         "grp; drop": list("abc") * 4})
    spec = ck.ModelSpec.from_formula(f"`resp value` ~ `{evil[2:]}` + (1 | `grp; drop`)")
    naming = build_naming(build_design(spec, data))
    assert naming.formula == "y ~ 1 + x0 + (1 | g0)"
    assert list(naming.frame.columns) == ["y", "x0", "g0"]
    assert evil[2:] not in naming.formula


def test_block_names_translate_both_ways() -> None:
    block = BlockNames(0, "county", ("A", "B"), ("(Intercept)", "floor"), ("1", "z0_1"), False)
    assert block.bambi_effect(0) == "1|g0"
    assert block.bambi_effect(1) == "z0_1|g0"
    assert block.bambi_sd(1) == "z0_1|g0_sigma"
    assert block.sd_key(0) == "sd__(Intercept)|county"
    assert block.cor_key == "cor|county"


def test_factor_columns_get_r_names(radon: pd.DataFrame) -> None:
    design, naming = naming_for("unpooled", radon)
    assert naming.fixed_columns("c0", ["AITKIN", "CASS"]) == ["countyAITKIN", "countyCASS"]
    assert naming.fixed_columns("c0:x0", ["CASS"]) == ["countyCASS:floor"]
    assert naming.fixed_columns("Intercept", None) == ["(Intercept)"]
    assert naming.prior_key("c0:x0") == "county:floor"
    assert naming.bambi_term("county") == "c0"
    with pytest.raises(FitError, match="unexpected fixed term"):
        naming.fixed_columns("x9", None)


def test_safe_factor_keeps_design_levels_and_order(radon: pd.DataFrame) -> None:
    design, naming = naming_for("partial_pooling", radon)
    g0 = naming.frame["g0"]
    assert tuple(g0.cat.categories) == design.blocks[0].levels
    np.testing.assert_array_equal(g0.cat.codes.to_numpy(), design.blocks[0].codes)
    np.testing.assert_array_equal(naming.frame["z0_1"], design.blocks[0].z["floor"])


def test_check_fixed_columns_catches_any_difference(radon: pd.DataFrame) -> None:
    design, _ = naming_for("pooled", radon)
    good = {c: design.x[c].to_numpy() for c in design.x.columns}
    check_fixed_columns(design, good)
    with pytest.raises(FitError, match="differ from compare_kit's design"):
        check_fixed_columns(design, {"(Intercept)": good["(Intercept)"]})
    with pytest.raises(FitError, match="'floor' does not match"):
        check_fixed_columns(design, {**good, "floor": 1 - good["floor"]})


@pytest.mark.parametrize("formula", [
    "unpooled", "group_predictor",
    "log_radon ~ C(county) + floor",
    "log_radon ~ floor * county",
    "log_radon ~ center(log_uranium) + floor + (0 + floor | county)",
])
def test_bambi_codes_fixed_effects_exactly_like_the_design(radon: pd.DataFrame, formula: str) -> None:
    from compare_kit.engines.bayesian import _build
    from compare_kit.engines.priors import Priors

    design, naming = naming_for(formula, radon)
    built = _build(design, naming, Priors())  # raises FitError on any column mismatch
    assert sorted(c for cols in built.bambi_terms.values() for c in cols) == sorted(design.x.columns)
    for group in built.priors.fixed:  # Bambi's default gives inf for columns without variation
        assert all(np.all(np.isfinite(v)) for v in group.prior.kwargs.values()), group.key


def test_lkj_density_matches_pymc_up_to_a_constant() -> None:
    """compare_kit's LKJ Cholesky construction has the LKJ density (checked against PyMC's)."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    from compare_kit.engines.pymc_models import lkj_cholesky

    k, eta = 3, 2.5
    raw = pt.vector("raw")
    chol, log_density = lkj_cholesky(raw, k, eta)
    f = pytensor.function([raw], [chol, log_density], mode="FAST_RUN")
    rng = np.random.default_rng(0)
    ours, theirs = [], []
    for _ in range(4):
        x = rng.normal(size=k * (k - 1) // 2)
        chol_value, lp = f(x)
        np.testing.assert_allclose(np.diag(chol_value @ chol_value.T), 1.0, atol=1e-12)
        # density of L from PyMC + log|d L / d raw| (numerically) = our density of raw
        pymc_lp = pm.logp(pm.LKJCorr.dist(n=k, eta=eta), chol_value).eval()
        jac = _jacobian(lambda v: f(v)[0][np.tril_indices(k, -1)], x)
        theirs.append(pymc_lp + np.log(abs(np.linalg.det(jac))))
        ours.append(lp)
    diffs = np.array(ours) - np.array(theirs)
    np.testing.assert_allclose(diffs, diffs[0], atol=1e-6)


def _jacobian(fun, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    cols = [(fun(x + h * e) - fun(x - h * e)) / (2 * h) for e in np.eye(len(x))]
    return np.stack(cols, axis=1)
