"""Design matrices built from a ModelSpec and a table, with R's coding rules.

Both engines start here, so a model means the same thing to each: the same
rows (missing values dropped once, for both), the same columns with the same
canonical names (``(Intercept)``, ``floor``, ``countyAITKIN:floor``), the same
grouping levels. Nothing here evaluates user text: names are looked up as
columns and transforms come from a fixed table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from compare_kit.errors import DataError, SpecError
from compare_kit.expressions import evaluate
from compare_kit.family import Family
from compare_kit.spec import ModelSpec, Pooling, RandomTerm, Term, Transform, Variable
from compare_kit.table_checks import (
    check_cells,
    check_columns,
    check_magnitudes,
    check_text_where_numbers_are_read,
    is_text,
    looks_numeric,
    with_text_labels,
)
from compare_kit.levels import level_codes, level_labels, level_text, recoded
from compare_kit.outcomes import mismatch_notes, read_outcome, row_effects_identified, row_effects_refused
from compare_kit.transforms import PolyBasis, TransformState
from compare_kit.wording import count

__all__ = ["INTERCEPT", "DataSummary", "Design", "GroupingBlock", "TransformState", "build_design", "is_factor",
           "level_labels", "level_text", "model_columns", "nested_in", "nesting_parents"]

INTERCEPT = "(Intercept)"
MIN_RELATIVE_SPREAD = 1e-8  # a column varying by less than this share of its size is a constant in float64


@dataclass(frozen=True)
class DataSummary:
    """What happened to the table on its way into the model."""

    n_input: int
    n_used: int
    dropped_by_column: dict[str, int]
    data_hash: str

    @property
    def n_dropped(self) -> int:
        return self.n_input - self.n_used

    def describe(self) -> str:
        if not self.n_dropped:
            return f"{self.n_used} rows used; none dropped."
        cols = ", ".join(f"{c} ({k})" for c, k in self.dropped_by_column.items() if k)
        return (f"{self.n_used} of {self.n_input} rows used; {self.n_dropped} dropped for "
                f"missing values in: {cols}.")


@dataclass(frozen=True, eq=False)
class GroupingBlock:
    """The random-effect design for one random term: groups, levels and Z columns."""

    term: RandomTerm
    levels: tuple[str, ...]
    codes: np.ndarray  # per row, index into ``levels``
    z: pd.DataFrame  # per row, one column per random coefficient (canonical names)

    @property
    def group(self) -> str:
        return self.term.group

    @property
    def sizes(self) -> pd.Series:
        counts = np.bincount(self.codes, minlength=len(self.levels))
        return pd.Series(counts, index=pd.Index(self.levels, name="level"), name="n")


@dataclass(frozen=True, eq=False)
class Design:
    """Everything an engine needs to fit ``spec`` to the cleaned table.

    ``y`` is the response: a measurement (gaussian), 0/1 (bernoulli), a count (poisson) or the
    successes (binomial, with ``trials`` their totals; None for the other families). ``offset`` is
    the formula's ``offset(...)`` per row (None without one). ``rows``: each row's position in the
    table given (0 is the first data row), for messages that name rows.
    """

    spec: ModelSpec
    data: pd.DataFrame  # the rows used, the model's columns only
    y: np.ndarray
    x: pd.DataFrame  # fixed-effect columns, estimable and aliased alike
    blocks: tuple[GroupingBlock, ...]
    summary: DataSummary
    categorical: frozenset[str]
    notes: tuple[str, ...] = field(default=())  # facts a reader should know (e.g. one-row groups)
    warnings: tuple[str, ...] = field(default=())  # facts that weaken the results (e.g. few groups)
    state: TransformState = field(default_factory=TransformState)  # centre and scale of these rows
    trials: np.ndarray | None = None
    offset: np.ndarray | None = None
    rows: np.ndarray | None = None

    @property
    def family(self) -> Family:
        return self.spec.family

    @property
    def response_label(self) -> str:
        return self.spec.response.label

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def pooling(self) -> Pooling:
        """Partial with random terms; none when groups enter as fixed factors; else complete."""
        if self.blocks:
            return Pooling.PARTIAL
        if any(is_factor(v, self.categorical) for t in self.spec.fixed for v in t.variables):
            return Pooling.NONE
        return Pooling.COMPLETE

    @cached_property
    def aliased(self) -> dict[str, str]:
        """Fixed columns that cannot be estimated, each with the reason (R's NA coefficients)."""
        return _aliased_columns(self)

    @cached_property
    def x_estimable(self) -> pd.DataFrame:
        """The fixed-effect columns that can be estimated (``x`` without ``aliased``)."""
        return self.x.drop(columns=list(self.aliased))

    def variable_values(self, var: Variable) -> np.ndarray:
        """A numeric variable's values on the rows used, transform applied (e.g. ``log(x)``)."""
        return _transformed(var, self.data, "predictor", self.state)

    def group_sizes(self, group: str) -> pd.Series:
        for block in self.blocks:
            if block.group == group:
                return block.sizes
        codes, levels = _group_codes(self.data, tuple(group.split(":")))
        counts = np.bincount(codes, minlength=len(levels))
        return pd.Series(counts, index=pd.Index(levels, name="level"), name="n")


def build_design(spec: ModelSpec, data: pd.DataFrame, state: TransformState | None = None) -> Design:
    """Check the table against the spec and build the model's matrices.

    ``state`` gives the centring and scaling of a fit's own rows (``Design.state``), to put new
    rows on that fit's scale; by default they are learnt from ``data``.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    data = with_text_labels(data)
    check_columns(spec, data)
    check_cells(spec, data)
    text_notes = check_text_where_numbers_are_read(spec, data)
    frame, summary, rows = _drop_missing(spec, data)
    if len(frame) == 0:
        raise DataError("no rows are left after dropping rows with missing values in "
                        f"{', '.join(spec.columns)}")
    categorical = _categorical_columns(spec, frame)
    state = learn_state(spec, frame, categorical) if state is None else state
    if spec.family is Family.GAUSSIAN:
        y, trials = _response(spec, frame, state), None
        text_notes += mismatch_notes(spec, y)
    else:
        outcome = read_outcome(spec, frame, rows, lambda v: _transformed(v, frame, "response", state))
        y, trials = outcome.y, outcome.trials
    offset = None if spec.offset is None else _expression_values(spec.offset.variable, frame, "offset",
                                                                  spec.offset.label, rows)
    x = _fixed_matrix(spec, frame, categorical, state)
    blocks = tuple(_grouping_block(r, frame, categorical, state) for r in spec.random)
    notes = text_notes + _unused_level_notes(spec, data, frame, categorical) + _group_size_notes(blocks)
    design = Design(spec, frame, y, x, blocks, summary, categorical, notes, _few_group_warnings(blocks),
                    state, trials, offset, rows)
    _check_groups(design)
    _check_column_scales(design)
    if spec.family is Family.GAUSSIAN:
        _check_not_an_exact_fit(design)
    return design


# ------------------------------------------------------------------ checks


def _check_column_scales(design: Design) -> None:
    """Every model column, computed ones included, must be usable in floating point: magnitudes
    within the table's limits, and not varying only in its last digits (a constant to the model)."""
    columns = [("response", design.response_label, design.y)]
    columns += [("fixed-effect column", name, design.x[name].to_numpy(dtype=float)) for name in design.x.columns]
    columns += [(f"random-effect column of {b.term.to_formula()}", name, b.z[name].to_numpy(dtype=float))
                for b in design.blocks for name in b.z.columns]
    for role, name, values in columns:
        check_magnitudes(f"the {role} {name!r}", values, "rescale the variables it is computed from "
                         "(scale(x), or other units)")
        size = float(np.abs(values).max())
        spread = float(np.ptp(values))
        if 0 < spread < MIN_RELATIVE_SPREAD * size:
            raise DataError(f"the {role} {name!r} is constant in floating point: its values differ by at most "
                            f"{spread:.3g} around {size:.6g}, a relative spread of {spread / size:.1e} (below "
                            f"{MIN_RELATIVE_SPREAD:g}); center the variables it is computed from (center(x), "
                            "or I(x - a typical value))")


def _check_not_an_exact_fit(design: Design) -> None:
    """The fixed effects alone must not reproduce the response: with no residual variation left, the
    residual SD is 0 and neither engine has a likelihood to work with."""
    x = design.x_estimable.to_numpy(dtype=float)
    if x.shape[1] == 0:
        return
    norms = np.linalg.norm(x, axis=0)
    norms[norms == 0] = 1.0
    coef, *_ = np.linalg.lstsq(x / norms, design.y, rcond=None)
    residual = design.y - (x / norms) @ coef
    if np.abs(residual).max() <= 1e-10 * np.abs(design.y).max():
        raise DataError(f"the fixed effects fit {design.response_label!r} exactly (every residual is 0 "
                        f"within rounding, over {design.n} rows and {x.shape[1]} coefficients), so there is "
                        "no variation left for the residual or the groups; check whether the response is a "
                        "copy or a combination of the predictors, or whether there are more rows to add")


def _drop_missing(spec: ModelSpec, data: pd.DataFrame) -> tuple[pd.DataFrame, DataSummary, np.ndarray]:
    """The rows with every model column present, what was dropped, and the kept rows' positions."""
    frame = data.loc[:, list(spec.columns)]
    missing = frame.isna()
    dropped_by_column = {c: int(missing[c].sum()) for c in frame.columns if missing[c].any()}
    keep = ~missing.any(axis=1)
    used = frame.loc[keep].reset_index(drop=True)
    digest = hashlib.sha256(pd.util.hash_pandas_object(used, index=False).values.tobytes()).hexdigest()
    summary = DataSummary(len(frame), len(used), dropped_by_column, digest[:16])
    return used, summary, np.flatnonzero(keep.to_numpy())


def _categorical_columns(spec: ModelSpec, frame: pd.DataFrame) -> frozenset[str]:
    predictors = spec.variables[1:]
    cats = {v.column for v in predictors if v.categorical}
    for v in predictors:
        for column in v.columns:
            if is_text(frame[column]):
                if not v.as_is:
                    raise DataError(f"{v.label} needs a numeric column, but {column!r} holds text "
                                    f"(for example {str(frame[column].iloc[0])!r})")
                cats.add(column)
    return frozenset(cats)


def is_factor(var: Variable, categorical: frozenset[str]) -> bool:
    """The variable enters as indicator columns: its column as it is (no transform), and categorical."""
    return var.as_is and var.column in categorical


def learn_state(spec: ModelSpec, frame: pd.DataFrame, categorical: frozenset[str]) -> TransformState:
    """What these rows fix for the stateful transforms and the factors' levels (see ``TransformState``)."""
    means: dict[str, float] = {}
    sds: dict[str, float] = {}
    polys: dict[tuple[str, int], PolyBasis] = {}
    levels: dict[str, tuple[str, ...]] = {}
    for var in spec.variables:
        if var.transform in (Transform.CENTER, Transform.SCALE):
            values = _numeric(frame, var.column, "predictor")
            means[var.column] = float(values.mean())
            if var.transform is Transform.SCALE:
                sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
                if not sd > 0:
                    raise DataError(f"scale({var.column}) divides by the standard deviation, which is 0: "
                                    f"{var.column!r} is constant")
                sds[var.column] = sd
        elif var.poly is not None and (var.column, var.poly.degree) not in polys:
            values = _numeric(frame, var.column, "predictor")
            polys[(var.column, var.poly.degree)] = PolyBasis.fit(values, var.poly.degree, var.column)
        elif is_factor(var, categorical) and var.column not in levels:
            levels[var.column] = level_labels(frame[var.column])[1]
    return TransformState(means, sds, polys, levels)


def _numeric(frame: pd.DataFrame, column: str, role: str) -> np.ndarray:
    series = frame[column]
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(series):
        sample = next((str(v) for v in series if not looks_numeric(v)), str(series.iloc[0]))
        raise DataError(f"the {role} {column!r} must be numeric, but it holds text such as {sample!r}")
    values = series.to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        bad = int((~np.isfinite(values)).sum())
        raise DataError(f"the column {column!r} has {bad} infinite value(s); remove or fix those rows")
    return values


def _transformed(var: Variable, frame: pd.DataFrame, role: str, state: TransformState) -> np.ndarray:
    if var.expression is not None:
        return _expression_values(var, frame, role)
    values = _numeric(frame, var.column, role)
    if var.poly is not None:
        return state.polys[(var.column, var.poly.degree)].columns(values)[:, var.poly.index - 1]
    match var.transform:
        case None:
            return values
        case Transform.LOG:
            if np.any(values <= 0):
                raise DataError(f"log({var.column}) needs positive values, but {var.column!r} is zero or "
                                f"negative in {count(int((values <= 0).sum()), 'row')}")
            return np.log(values)
        case Transform.SQRT:
            if np.any(values < 0):
                raise DataError(f"sqrt({var.column}) needs values >= 0, but {var.column!r} is negative in "
                                f"{count(int((values < 0).sum()), 'row')}")
            return np.sqrt(values)
        case Transform.EXP:
            with np.errstate(over="ignore"):
                out = np.exp(values)
            if not np.all(np.isfinite(out)):
                raise DataError(f"exp({var.column}) overflows: values of {var.column!r} are too large")
            return out
        case Transform.CENTER:
            return values - state.means[var.column]
        case Transform.SCALE:
            return (values - state.means[var.column]) / state.sds[var.column]
    raise SpecError(f"unknown transform {var.transform}")  # pragma: no cover - enum is closed


def _expression_values(var: Variable, frame: pd.DataFrame, role: str, label: str | None = None,
                       rows: np.ndarray | None = None) -> np.ndarray:
    """``I(...)`` (or ``offset(...)``: ``label``) evaluated on every row; rows where it is undefined are
    named with their inputs (and their row in the table, given the positions ``rows``)."""
    columns = {c: _numeric(frame, c, role) for c in var.columns}
    values = evaluate(var.expression, columns.__getitem__)
    if values.shape != (len(frame),):  # pragma: no cover - every expression reads a column
        values = np.broadcast_to(values, (len(frame),)).astype(float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        row = int(bad[0])
        inputs = ", ".join(f"{c} = {level_text(float(v[row]))}" for c, v in columns.items())
        first = f"the first in row {int(rows[row]) + 1}, where" if rows is not None else "the first where"
        raise DataError(f"{label or var.label} is not a finite number in {count(bad.size, 'row')} of the rows "
                        f"used ({first} {inputs}): a division by zero, a log or square root of a negative number, "
                        "or an overflow; fix those rows or change the expression")
    return values


def _response(spec: ModelSpec, frame: pd.DataFrame, state: TransformState) -> np.ndarray:
    y = _transformed(spec.response, frame, "response", state)
    if len(y) > 1 and np.ptp(y) == 0:
        raise DataError(f"the response {spec.response.label!r} is constant ({y[0]:g} in every row); "
                        "there is nothing to model")
    return y


# ---------------------------------------------------------- fixed effects


def _term_columns(term: Term, frame: pd.DataFrame, categorical: frozenset[str],
                  full_coding: dict[Variable, bool], state: TransformState) -> dict[str, np.ndarray]:
    """The columns one term contributes, R-named (``countyAITKIN:floor``)."""
    columns: dict[str, np.ndarray] = {"": np.ones(len(frame))}
    for var in term.variables:
        if is_factor(var, categorical):
            labels = state.levels[var.column]
            codes = level_codes(frame[var.column], labels)
            start = 0 if full_coding[var] else 1
            parts = {f"{var.column}{labels[k]}": (codes == k).astype(float)
                     for k in range(start, len(labels))}
        else:
            parts = {var.label: _transformed(var, frame, "predictor", state)}
        columns = {(f"{a}:{b}" if a else b): va * vb
                   for a, va in columns.items() for b, vb in parts.items()}
    return columns


def _coding(term: Term, terms: tuple[Term, ...], intercept: bool,
            categorical: frozenset[str]) -> dict[Variable, bool]:
    """R's rule: a factor gets full indicator coding when its margin is absent. Without an intercept, the
    first term holding a factor takes the intercept's place for the terms after it (``0 + a + b`` codes
    ``a`` fully and ``b`` by contrasts, as R's ``model.matrix`` does)."""
    keys = {t.key for t in terms}
    earlier = terms[:terms.index(term)]
    if intercept or any(is_factor(v, categorical) for t in earlier for v in t.variables):
        keys.add(frozenset())
    full: dict[Variable, bool] = {}
    for var in term.variables:
        if is_factor(var, categorical):
            full[var] = (term.key - {var}) not in keys
    return full


def _design_columns(terms: tuple[Term, ...], intercept: bool, frame: pd.DataFrame,
                    categorical: frozenset[str], state: TransformState) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    if intercept:
        columns[INTERCEPT] = np.ones(len(frame))
    for term in terms:
        coding = _coding(term, terms, intercept, categorical)
        for name, values in _term_columns(term, frame, categorical, coding, state).items():
            if name in columns:
                raise DataError(f"two model columns would both be called {name!r} (one of them from the term "
                                f"{term.label!r}): rename a column so that the names differ")
            columns[name] = values
    return pd.DataFrame(columns)


def _fixed_matrix(spec: ModelSpec, frame: pd.DataFrame, categorical: frozenset[str],
                  state: TransformState) -> pd.DataFrame:
    x = _design_columns(spec.fixed, spec.intercept, frame, categorical, state)
    if x.shape[1] == 0:
        x = pd.DataFrame(index=range(len(frame)))
    return x


def _aliased_columns(design: Design) -> dict[str, str]:
    """Columns in the span of the columns before them, as R's ``lm`` finds them (tol 1e-7)."""
    x = design.x
    if x.shape[1] == 0:
        return {}
    values = x.to_numpy()
    norms = np.linalg.norm(values, axis=0)
    unit = values / np.where(norms > 0, norms, 1.0)
    r = np.linalg.qr(unit, mode="r")
    diag = np.abs(np.diag(r)) if r.shape[0] >= r.shape[1] else np.abs(
        np.concatenate([np.diag(r), np.zeros(r.shape[1] - r.shape[0])]))
    aliased = [j for j in range(values.shape[1]) if norms[j] == 0 or diag[j] < 1e-7]
    return {x.columns[j]: _alias_reason(design, x.columns[j]) for j in aliased}


def _alias_reason(design: Design, column: str) -> str:
    values = design.x[column].to_numpy()
    parts = column.split(":")
    cats = {}
    nums = []
    for part in parts:
        var = next((v for t in design.spec.fixed for v in t.variables
                    if is_factor(v, design.categorical) and part.startswith(v.column)
                    and part[len(v.column):] in level_labels(design.data[v.column])[1]), None)
        if var is not None:
            cats[var.column] = part[len(var.column):]
        else:
            nums.append(part)
    if cats and nums:
        rows = np.ones(design.n, dtype=bool)
        for col, level in cats.items():
            rows &= design.data[col].astype(str).to_numpy() == level
        where = " and ".join(f"{c} = {lv}" for c, lv in cats.items())
        num = nums[0]
        var_values = _numeric_values_for_label(design, num, rows)
        if var_values is not None and len(np.unique(var_values)) <= 1:
            v = level_text(float(var_values[0])) if len(var_values) else "?"
            return (f"not estimable: every row with {where} has {num} = {v}, so its slope "
                    f"on {num} is not identified")
    if not np.any(values):
        return "not estimable: the column is zero in every row used"
    return "not estimable: linearly dependent on other columns (aliased)"


def _numeric_values_for_label(design: Design, label: str, rows: np.ndarray) -> np.ndarray | None:
    for term in design.spec.fixed:
        for var in term.variables:
            if var.label == label and not is_factor(var, design.categorical):
                return _transformed(var, design.data, "predictor", design.state)[rows]
    return None


# ---------------------------------------------------------- random effects


def _group_codes(frame: pd.DataFrame, grouping: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    text = frame[grouping[0]].map(level_text).astype(str)
    for col in grouping[1:]:
        text = text + ":" + frame[col].map(level_text).astype(str)
    uniques = sorted(text.unique())
    index = {u: i for i, u in enumerate(uniques)}
    return text.map(index).to_numpy(dtype=int), tuple(uniques)


def _grouping_block(term: RandomTerm, frame: pd.DataFrame, categorical: frozenset[str],
                    state: TransformState) -> GroupingBlock:
    codes, levels = _group_codes(frame, term.grouping)
    z = _design_columns(term.terms, term.intercept, frame, categorical, state)
    return GroupingBlock(term, levels, codes, z)


@dataclass(frozen=True, eq=False)
class ModelColumns:
    """A fitted design's columns computed for other rows (no checks: the caller vouches for the rows)."""

    x: pd.DataFrame  # the design's fixed-effect columns
    z: tuple[pd.DataFrame, ...]  # per grouping block, its random-effect columns
    codes: tuple[np.ndarray, ...]  # per block, each row's index in the block's levels; -1 for a new level


def model_columns(design: Design, frame: pd.DataFrame) -> ModelColumns:
    """``design``'s columns for the rows of ``frame``, with the fitted rows' transform state and levels.

    ``frame`` must hold every column the model reads except the outcome's, with no missing values and
    only factor levels the fitted rows have (a new level of a grouping factor is allowed: code -1)."""
    frame = frame.reset_index(drop=True)
    x = _design_columns(design.spec.fixed, design.spec.intercept, frame, design.categorical, design.state)
    x = x.reindex(columns=design.x.columns, fill_value=0.0)
    z, codes = [], []
    for block in design.blocks:
        z.append(_design_columns(block.term.terms, block.term.intercept, frame, design.categorical,
                                 design.state).reindex(columns=block.z.columns, fill_value=0.0))
        codes.append(recoded(*_group_codes(frame, block.term.grouping), block.levels))
    return ModelColumns(x, tuple(z), tuple(codes))


def nested_in(inner: GroupingBlock, outer: GroupingBlock) -> bool:
    """Each level of ``inner`` lies within a single level of ``outer``."""
    pairs = pd.DataFrame({"i": inner.codes, "o": outer.codes}).drop_duplicates()
    return bool(pairs["i"].is_unique)


def nesting_parents(design: Design) -> dict[int, int]:
    """Block index -> the index of the closest block it is nested in (only blocks that have one).

    A block is nested in another when each of its levels lies within a single level of the
    other and the other has fewer levels; of several, the one with most levels is the parent.
    """
    blocks = design.blocks
    out: dict[int, int] = {}
    for i, inner in enumerate(blocks):
        outers = [k for k, outer in enumerate(blocks)
                  if k != i and len(outer.levels) < len(inner.levels) and nested_in(inner, outer)]
        if outers:
            out[i] = max(outers, key=lambda k: len(blocks[k].levels))
    return out


def _check_groups(design: Design) -> None:
    seen: dict[tuple[str, str], str] = {}
    for block in design.blocks:
        for coef in block.z.columns:
            if (block.group, coef) in seen:
                raise SpecError(f"the random coefficient {coef!r} for {block.group!r} appears in two terms "
                                f"({seen[(block.group, coef)]} and {block.term.to_formula()}); keep it in one")
            seen[(block.group, coef)] = block.term.to_formula()
    for block in design.blocks:
        n_levels = len(block.levels)
        if n_levels < 2:
            raise DataError(f"the grouping factor {block.group!r} has only {n_levels} level; a random "
                            "effect needs at least two groups (five or more to estimate its SD well)")
        n_coefs = n_levels * block.z.shape[1]
        per_row = row_effects_identified(design.family, design.trials)
        if n_levels >= design.n and not per_row:
            raise DataError(f"every row is its own group of {block.group!r} ({n_levels} groups for "
                            f"{design.n} rows): {row_effects_refused(design.family)}")
        if n_coefs > design.n or (n_coefs == design.n and not per_row):
            raise DataError(f"the random term {block.term.to_formula()} has {n_coefs} group effects "
                            f"for {design.n} rows; there must be fewer random effects than rows"
                            + (" (or as many, for a count or binomial outcome)" if per_row else ""))


def _unused_level_notes(spec: ModelSpec, data: pd.DataFrame, frame: pd.DataFrame,
                        categorical: frozenset[str]) -> tuple[str, ...]:
    """Levels of a categorical column that no row used carries: declared but empty (pandas
    categories), or lost when their rows were dropped for missing values."""
    notes = []
    for col in spec.columns:
        series = data[col]
        declared: set[str] = set()
        if isinstance(series.dtype, pd.CategoricalDtype):
            declared = {level_text(c) for c in series.cat.categories}
        elif col in categorical:
            declared = {level_text(v) for v in series.dropna().unique()}
        if not declared:
            continue
        used = {level_text(v) for v in frame[col].unique()}
        unused = sorted(declared - used)
        if unused:
            notes.append(f"categorical column {col!r} has level(s) with no rows, left out: "
                         f"{', '.join(unused)}")
    return tuple(notes)


def _few_group_warnings(blocks: tuple[GroupingBlock, ...]) -> tuple[str, ...]:
    return tuple(
        f"only {len(b.levels)} groups of {b.group!r}: its SDs rest on {len(b.levels)} group effects and are "
        "poorly estimated (the frequentist estimate may sit at zero, the posterior depends on the prior); "
        "five or more groups are advisable"
        for b in dict((blk.group, blk) for blk in blocks).values() if 2 <= len(b.levels) <= 4)


def _group_size_notes(blocks: tuple[GroupingBlock, ...]) -> tuple[str, ...]:
    notes = []
    for b in dict((blk.group, blk) for blk in blocks).values():
        sizes = b.sizes
        single = list(sizes[sizes == 1].index)
        if single and len(single) == len(sizes):
            notes.append(f"every group of {b.group!r} has a single row: its random effect is one per row, an "
                         "observation-level effect (it models overdispersion)")
        elif single:
            shown = ", ".join(single[:12]) + (f" and {len(single) - 12} more" if len(single) > 12 else "")
            notes.append(f"{len(single)} group(s) of {b.group!r} have a single row ({shown}): they are kept; "
                         "their effects come mostly from the population distribution")
    return tuple(notes)
