"""Safe names in, canonical names out: the one place where Bambi/PyMC names are made and read.

No user text ever reaches Bambi or formulae (they can run Python). From the
``Design`` this module builds a table whose columns have generated names
(``y``, ``x0``, ``c0``, ``g0``, ``z0_1`` ...) and a Bambi formula over those names
only, generated from the parse. It then translates every engine name back to
compare_kit's canonical names (``countyAITKIN:floor``, ``sd__floor`` ...):

=====================  ===========================  =========================
engine name            meaning                      canonical
=====================  ===========================  =========================
``Intercept``          fixed intercept              ``(Intercept)``
``x0``                 numeric fixed term           ``floor``
``c0`` level ``A``     factor column                ``countyA``
``c0:x0`` level ``A``  interaction column           ``countyA:floor``
``1|g0``               group intercepts             ran_vals ``(Intercept)``
``z0_1|g0``            group slopes                 ran_vals ``floor``
``1|g0_sigma``         their SD                     ``sd__(Intercept)``
``sigma``              residual SD                  ``sd__Observation``
``t0``                 binomial trials              ``cbind`` successes + failures
``o0``                 the offset's values          ``offset(...)``
=====================  ===========================  =========================

A binomial model's response is Bambi's ``p(y, t0)`` (successes out of trials); an offset is
``offset(o0)``, a column of the values compare_kit computed from the parse (never the user's text).

The hand-built PyMC model (``pymc_models``) names its variables with
``pymc_fixed_name`` / ``pymc_block_names`` from here too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from compare_kit.design import INTERCEPT, Design, is_factor, level_labels
from compare_kit.errors import FitError
from compare_kit.family import Family
from compare_kit.results import group_key, sd_term
from compare_kit.spec import Term, Variable

BAMBI_INTERCEPT = "Intercept"
BAMBI_RESIDUAL = "sigma"
RESPONSE = "y"
TRIALS = "t0"
OFFSET = "o0"


@dataclass(frozen=True)
class FixedTerm:
    """One fixed term of the spec as Bambi sees it."""

    label: str  # canonical term label: "floor", "county", "county:floor"
    term: Term
    safe: str  # Bambi term name: "x0", "c0", "c0:x0"


@dataclass(frozen=True)
class BlockNames:
    """One random term (grouping block) with its engine and canonical names."""

    index: int
    group: str  # canonical grouping factor: "county"
    levels: tuple[str, ...]
    coefs: tuple[str, ...]  # canonical coefficient names: "(Intercept)", "floor"
    safe_coefs: tuple[str, ...]  # Bambi's: "1", "z0_1"
    correlated: bool

    @property
    def safe_group(self) -> str:
        return f"g{self.index}"

    def bambi_effect(self, j: int) -> str:
        """Bambi's name of coefficient ``j``'s group effects, e.g. ``z0_1|g0``."""
        return f"{self.safe_coefs[j]}|{self.safe_group}"

    def bambi_sd(self, j: int) -> str:
        return f"{self.bambi_effect(j)}_sigma"

    def sd_key(self, j: int) -> str:
        """Canonical prior key of coefficient ``j``'s SD, e.g. ``sd__floor|county``."""
        return group_key(sd_term(self.coefs[j]), self.group)

    @property
    def cor_key(self) -> str:
        return f"cor|{self.group}"


@dataclass(frozen=True, eq=False)
class BambiNaming:
    """The safe table, the generated formula and the name translations for one design."""

    frame: pd.DataFrame
    formula: str
    intercept: bool
    fixed: tuple[FixedTerm, ...]
    blocks: tuple[BlockNames, ...]
    categorical: dict[str, Variable]  # safe name -> variable, for factor columns
    trials: str | None = None  # binomial: what t0 holds (successes + failures)
    offset: str | None = None  # what o0 holds: the offset's label
    spec_family: Family = Family.GAUSSIAN

    @property
    def family(self) -> Family:
        return self.spec_family

    @property
    def gaussian(self) -> bool:
        """The model has a residual SD (Bambi's ``sigma``)."""
        return self.spec_family is Family.GAUSSIAN

    def legend(self, response_label: str) -> tuple[tuple[str, str], ...]:
        """Each safe name of the generated formula with what it stands for in the user's table."""
        pairs = [(RESPONSE, response_label)]
        if self.trials is not None:
            pairs.append((TRIALS, self.trials))
        if self.offset is not None:
            pairs.append((OFFSET, self.offset))
        seen = set()
        for f in self.fixed:
            for safe, var in zip(f.safe.split(":"), f.term.variables, strict=True):
                if safe not in seen:
                    seen.add(safe)
                    pairs.append((safe, var.label))
        for b in self.blocks:
            pairs.append((b.safe_group, b.group))
            pairs += [(s, c) for s, c in zip(b.safe_coefs, b.coefs, strict=True) if s != "1"]
        return tuple(pairs)

    def fixed_columns(self, bambi_term: str, levels: list[str] | None) -> list[str]:
        """Canonical design columns of one Bambi common term, in Bambi's column order."""
        if bambi_term == BAMBI_INTERCEPT:
            return [INTERCEPT]
        term = next((f for f in self.fixed if f.safe == bambi_term), None)
        if term is None:
            raise FitError(f"internal error: Bambi made an unexpected fixed term {bambi_term!r}")
        n_cat = sum(1 for v in term.term.variables if _is_cat(v, self))
        if n_cat == 0:
            return [term.label]
        if levels is None:
            raise FitError(f"internal error: Bambi gave no levels for the factor term {term.label!r}")
        return [_column_name(term.term, self, _split_levels(level, n_cat)) for level in levels]

    def prior_key(self, bambi_term: str) -> str:
        """Canonical prior key of a Bambi common term (its term label)."""
        if bambi_term == BAMBI_INTERCEPT:
            return INTERCEPT
        return next(f.label for f in self.fixed if f.safe == bambi_term)

    def bambi_term(self, label: str) -> str:
        """Bambi's common term name for a canonical fixed term label."""
        if label == INTERCEPT:
            return BAMBI_INTERCEPT
        return next(f.safe for f in self.fixed if f.label == label)


def build_naming(design: Design) -> BambiNaming:
    """Make the safe table and the Bambi formula for ``design``."""
    spec = design.spec
    frame: dict[str, object] = {RESPONSE: design.y}
    safe_of: dict[Variable, str] = {}
    categorical: dict[str, Variable] = {}
    n_num = n_cat = 0
    for term in spec.fixed:
        for var in term.variables:
            if var in safe_of:
                continue
            if is_factor(var, design.categorical):
                name = f"c{n_cat}"
                n_cat += 1
                codes, labels = level_labels(design.data[var.column])
                frame[name] = pd.Categorical.from_codes(codes, categories=list(labels))
                categorical[name] = var
            else:
                name = f"x{n_num}"
                n_num += 1
                frame[name] = design.variable_values(var)
            safe_of[var] = name
    fixed = tuple(FixedTerm(t.label, t, ":".join(safe_of[v] for v in t.variables)) for t in spec.fixed)
    blocks = []
    parts = ["1" if spec.intercept else "0"] + [f.safe for f in fixed]
    for b, block in enumerate(design.blocks):
        frame[f"g{b}"] = pd.Categorical.from_codes(block.codes, categories=list(block.levels))
        coefs = tuple(str(c) for c in block.z.columns)
        safe_coefs = []
        for j, coef in enumerate(coefs):
            if coef == INTERCEPT:
                safe_coefs.append("1")
            else:
                frame[f"z{b}_{j}"] = block.z[coef].to_numpy(dtype=float)
                safe_coefs.append(f"z{b}_{j}")
        names = BlockNames(b, block.group, tuple(block.levels), coefs, tuple(safe_coefs),
                           block.term.correlated)
        blocks.append(names)
        inner = ["1" if INTERCEPT in coefs else "0"] + [s for s in safe_coefs if s != "1"]
        parts.append(f"({' + '.join(inner)} | g{b})")
    trials = offset = None
    response = RESPONSE
    if design.trials is not None and spec.cbind is not None:
        frame[TRIALS] = design.trials
        trials = f"{spec.cbind.successes.to_formula()} + {spec.cbind.failures.to_formula()}"
        response = f"p({RESPONSE}, {TRIALS})"
    if design.offset is not None and spec.offset is not None:
        frame[OFFSET] = design.offset
        offset = spec.offset.label
        parts.append(f"offset({OFFSET})")
    formula = f"{response} ~ {' + '.join(parts)}"
    return BambiNaming(pd.DataFrame(frame), formula, spec.intercept, fixed, tuple(blocks), categorical,
                       trials, offset, design.family)


def _is_cat(var: Variable, naming: BambiNaming) -> bool:
    return var in naming.categorical.values()


def _split_levels(level: str, n_cat: int) -> list[str]:
    parts = [level] if n_cat == 1 else level.split(", ")
    if len(parts) != n_cat:
        raise FitError(f"internal error: cannot split Bambi's level {level!r} into {n_cat} factor levels")
    return parts


def _column_name(term: Term, naming: BambiNaming, levels: list[str]) -> str:
    """R's column name, e.g. ``countyAITKIN:floor``, from a term and its factor levels."""
    out, k = [], 0
    for var in term.variables:
        if _is_cat(var, naming):
            out.append(f"{var.column}{levels[k]}")
            k += 1
        else:
            out.append(var.label)
    return ":".join(out)


# ------------------------------------------------------------ PyMC model names


def pymc_fixed_name(i: int) -> str:
    """The hand-built PyMC model's name for fixed term group ``i``."""
    return f"fixed_{i}"


@dataclass(frozen=True)
class PymcBlockVars:
    """Variable names of one block in the hand-built PyMC model."""

    sd: str
    z: str
    chol: str
    level_dim: str
    coef_dim: str
    centred: str  # a block centred on the fixed intercept: the group intercepts a_g
    effects: str  # ... and its group effects u_g = a_g - b0 (a deterministic)


def pymc_block_names(block: BlockNames) -> PymcBlockVars:
    b = block.index
    return PymcBlockVars(sd=f"sd_{b}", z=f"z_{b}", chol=f"corr_chol_{b}",
                         level_dim=f"level_{b}", coef_dim=f"coef_{b}", centred=f"a_{b}", effects=f"u_{b}")


PYMC_RESIDUAL = "sigma"


def check_fixed_columns(design: Design, columns: dict[str, np.ndarray]) -> None:
    """Raise unless the engine's fixed columns are exactly the design's, value for value."""
    expected = set(design.x.columns)
    got = set(columns)
    if got != expected:
        raise FitError("internal error: the Bayesian model's fixed-effect columns differ from "
                       f"compare_kit's design (missing {sorted(expected - got)[:5]}, extra "
                       f"{sorted(got - expected)[:5]}); please report this with your formula")
    for name, values in columns.items():
        if not np.allclose(values, design.x[name].to_numpy(), rtol=0, atol=1e-10):
            raise FitError(f"internal error: the Bayesian model's column {name!r} does not match "
                           "compare_kit's design; please report this with your formula")
