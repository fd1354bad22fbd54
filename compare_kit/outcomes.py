"""A model's outcome read from the table for its family: 0/1, counts, or successes out of trials.

``read_outcome`` turns the response column(s) into the arrays an engine needs and refuses an outcome
the family cannot model with a ``DataError`` naming the offending rows as the user sees them (row 1 is
the first data row below a CSV's header). ``mismatch_notes`` says when a Gaussian model's outcome
looks like counts or 0/1. ``check_fit_available`` stops a model an engine, or a study, cannot fit yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from compare_kit.errors import DataError, FitError, SpecError
from compare_kit.family import Family, Link
from compare_kit.levels import level_text
from compare_kit.spec import ModelSpec, Variable
from compare_kit.table_checks import is_text
from compare_kit.wording import count

__all__ = ["FitSide", "Outcome", "check_fit_available", "mismatch_notes", "read_outcome", "require_gaussian",
           "response_mean", "row_effects_identified", "row_effects_refused"]

SHOWN_ROWS = 5  # offending rows named in a message; the rest are counted
MAX_COUNT = 2.0 ** 53  # the largest count held exactly in float64 (and every whole number below it)
Numbers = Callable[[Variable], np.ndarray]  # a numeric variable's values on the rows used


@dataclass(frozen=True, eq=False)
class Outcome:
    """The outcome on the rows used: ``y`` (the response; 0/1 for bernoulli; successes for binomial)
    and, for binomial, ``trials`` (successes + failures); None otherwise."""

    y: np.ndarray
    trials: np.ndarray | None = None


def read_outcome(spec: ModelSpec, frame: pd.DataFrame, rows: np.ndarray, numbers: Numbers) -> Outcome:
    """The outcome of a non-Gaussian ``spec`` on ``frame`` (the rows used; ``rows``: their positions in
    the user's table), checked against the family."""
    where = _Rows(rows)
    match spec.family:
        case Family.BERNOULLI:
            return Outcome(_bernoulli(spec, frame[spec.response.column], where))
        case Family.POISSON:
            return Outcome(_poisson(spec, numbers(spec.response), where))
        case Family.BINOMIAL:
            return _binomial(spec, frame, numbers, where)
    raise SpecError(f"read_outcome is for non-Gaussian families, not {spec.family.value!r}")  # pragma: no cover


def mismatch_notes(spec: ModelSpec, y: np.ndarray) -> tuple[str, ...]:
    """A note when a Gaussian model's outcome, with no family given, looks like 0/1 or counts."""
    response = spec.response
    if spec.family is not Family.GAUSSIAN or spec.family_given or not response.as_is or not len(y):
        return ()
    values = np.unique(y)
    name = response.column
    if len(values) == 2:
        if set(values.tolist()) == {0.0, 1.0}:
            return (f"the response {name!r} holds only 0 and 1: if it is a yes/no outcome, family='bernoulli' "
                    "(--family bernoulli) models it as one; this Gaussian model treats it as a measurement",)
        a, b = (level_text(float(v)) for v in values)
        return (f"the response {name!r} holds only two values, {a} and {b}: if it is a yes/no outcome, "
                f"family='bernoulli' with success='{b}' (the value that counts as a success) models it as "
                "one; this Gaussian model treats it as a measurement",)
    if len(values) >= 3 and values[0] >= 0 and np.all(values == np.round(values)):
        y_text = response.to_formula()
        return (f"the response {name!r} holds only whole numbers from {level_text(float(values[0]))} to "
                f"{level_text(float(values[-1]))}: if they are counts of events, family='poisson' (--family "
                "poisson) models them as counts, and if they are successes out of a known number of trials n, "
                f"family='binomial' with cbind({y_text}, n - {y_text}) ~ ... does; this Gaussian model treats "
                "them as measurements",)
    return ()


class FitSide(StrEnum):
    """Who fits a model: one engine, or a study (both engines compared, and the report)."""

    FREQUENTIST = "frequentist"
    BAYESIAN = "bayesian"
    STUDY = "study"


def check_fit_available(spec: ModelSpec, side: FitSide) -> None:
    """A ``SpecError`` for a model ``side`` cannot fit yet.

    Both engines, and so studies (the report), fit every family (the frequentist one by maximum likelihood,
    the Bayesian one by Bambi's families or compare_kit's PyMC model), with any offset. No engine fits a
    Gaussian model with an offset yet.
    """
    if spec.family is Family.GAUSSIAN and spec.offset is not None:
        raise SpecError(f"{spec.offset.label} is read, but fitting a Gaussian model with an offset is not "
                        "available yet (offsets are fitted for the bernoulli, binomial and poisson families); "
                        "leave the offset out, or add it to the response yourself (a column holding y - offset)")


def require_gaussian(spec: ModelSpec, what: str) -> None:
    """A ``FitError`` when ``what``, a method for Gaussian models (most read the residual SD), is asked of a
    model (or a fit's ``spec``) of another family."""
    if spec.family is not Family.GAUSSIAN:
        model = "a GLMM" if spec.random else "a GLM"
        raise FitError(f"{what}: available for Gaussian models only, for now; {spec.label!r} is {model} of family "
                       f"{spec.family.value!r}, which has no residual SD. For GLMs and GLMMs: compare(freq, bayes) and "
                       "shrinkage_table on the link scale, predictive.in_sample_scores and "
                       "predictive.cross_validated_scores (log score, Brier score, deviance), and the fit's own "
                       "tables (fit.estimates, fit.predict(new_rows), fit.fitted()); profile intervals and the "
                       "report come later")


def response_mean(link: Link, eta: np.ndarray) -> np.ndarray:
    """The mean on the response scale at the linear predictor ``eta``: the inverse of the canonical link."""
    eta = np.asarray(eta, dtype=float)
    match link:
        case Link.LOGIT:
            return 0.5 * (1.0 + np.tanh(0.5 * eta))  # the logistic function, without overflow
        case Link.LOG:
            with np.errstate(over="ignore"):
                return np.exp(eta)
    return eta


def row_effects_identified(family: Family, trials: np.ndarray | None) -> bool:
    """A random effect per row can be told apart from the family's own spread: counts, and successes out
    of more than one trial (overdispersion, as glmer fits ``(1 | row)``); not a measurement's residual, nor
    a 0/1 outcome, whose every row's distribution is fixed by its probability alone."""
    if family is Family.POISSON:
        return True
    return family is Family.BINOMIAL and trials is not None and bool(np.any(trials > 1))


def row_effects_refused(family: Family) -> str:
    """Why a random effect per row is refused for ``family`` (one without ``row_effects_identified``)."""
    if family is Family.GAUSSIAN:
        return "the group effects cannot be told apart from the residual; use a coarser grouping factor"
    return ("a 0/1 outcome carries no information on a random effect per row (each row's distribution is its "
            "probability alone, so the effect's SD is not identified; glmer fits one without complaint, at an "
            "SD its approximation makes up); use a coarser grouping factor. An effect per row models "
            "overdispersion of counts (family poisson) or of successes out of several trials (binomial)")


# ------------------------------------------------------------------------------------------- rows


class _Rows:
    """Offending rows named as the user sees them: ``row 4 (size = 3, incidence = 5)``."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def name(self, bad: np.ndarray, shown: dict[str, np.ndarray | pd.Series]) -> str:
        """The first ``SHOWN_ROWS`` rows where ``bad`` holds, each with the values of ``shown``."""
        index = np.flatnonzero(bad)
        parts = []
        for i in index[:SHOWN_ROWS]:
            values = ", ".join(f"{column} = {_value(np.asarray(v)[i])}" for column, v in shown.items())
            parts.append(f"row {int(self.rows[i]) + 1} ({values})")
        more = f" and {count(len(index) - SHOWN_ROWS, 'more row')}" if len(index) > SHOWN_ROWS else ""
        return ", ".join(parts) + more

    def first_rows(self, labels: pd.Series) -> str:
        """Each distinct label with the first row holding it: ``'N' (row 1), 'Y' (row 2)``."""
        first = labels.reset_index(drop=True).drop_duplicates()
        return ", ".join(f"{label!r} (row {int(self.rows[i]) + 1})" for i, label in first.items())


def _value(v: object) -> str:
    if isinstance(v, float | np.floating):
        return level_text(float(v)) if float(v).is_integer() else f"{float(v):.6g}"
    return repr(v) if isinstance(v, str) else str(v)


def _whole(values: np.ndarray) -> np.ndarray:
    return values == np.round(values)


def _check_exact(values: np.ndarray, what: str, shown: dict[str, np.ndarray], where: _Rows) -> None:
    """Counts must be held exactly in floating point (up to 2^53); above, n + 1 == n."""
    big = values > MAX_COUNT
    if big.any():
        raise DataError(f"{what} must be counts up to {MAX_COUNT:.0f} (2^53, the largest whole numbers held exactly "
                        f"in floating point), but {where.name(big, shown)} holds more; check those rows")


# ----------------------------------------------------------------------------------------- families


def _bernoulli(spec: ModelSpec, series: pd.Series, where: _Rows) -> np.ndarray:
    name = spec.response.column
    labels = series.astype(object).map(level_text).astype(str).reset_index(drop=True)
    levels = list(dict.fromkeys(labels))
    if spec.success is None:
        if is_text(series):
            advice = (f"give the level that counts as a success: success='{sorted(levels)[-1]}' "
                      f"(--success {sorted(levels)[-1]}; success = \"{sorted(levels)[-1]}\" in a study file)"
                      if len(levels) == 2 else "a bernoulli outcome has two levels")
            raise DataError(f"the response {name!r} of a bernoulli model holds text, with "
                            f"{count(len(levels), 'level')}: {where.first_rows(labels)}; {advice}")
        values = series.to_numpy(dtype=float)
        bad = (values != 0) & (values != 1)
        if bad.any():
            distinct = np.unique(values)
            hint = (f"; with two values, give the one that counts as a success: success="
                    f"'{level_text(float(distinct[-1]))}'" if len(distinct) == 2 else "; recode it as 0/1 (1 for "
                    "a success)")
            raise DataError(f"family 'bernoulli' needs a 0/1 response, but {name!r} holds other values: "
                            f"{where.name(bad, {name: values})}{hint}")
        y = values
    else:
        if spec.success not in levels:
            raise DataError(f"success={spec.success!r} is not a value of the response {name!r}, whose "
                            f"values are: {where.first_rows(labels)}; give one of them as it is written")
        if len(levels) > 2:
            raise DataError(f"family 'bernoulli' needs a response with two levels, but {name!r} has "
                            f"{len(levels)}: {where.first_rows(labels)}; fix or remove the rows with a third "
                            "level, or recode the outcome in two levels")
        y = (labels == spec.success).to_numpy(dtype=float)
    if np.ptp(y) == 0:  # the table has rows: an empty one is refused before
        what = "a success" if y[0] == 1 else "a failure"
        raise DataError(f"every row of the response {name!r} is {what}: a bernoulli model needs both "
                        "successes and failures")
    return y


def _poisson(spec: ModelSpec, y: np.ndarray, where: _Rows) -> np.ndarray:
    name = spec.response.column
    if np.any(y < 0):
        raise DataError(f"family 'poisson' models counts, 0 or more, but the response {name!r} is negative in "
                        f"{where.name(y < 0, {name: y})}; fix those rows, or use the default gaussian family "
                        "for a measurement")
    if not np.all(_whole(y)):
        raise DataError(f"family 'poisson' models counts, whole numbers, but the response {name!r} is not whole "
                        f"in {where.name(~_whole(y), {name: y})}; a rate (events per unit of exposure) is "
                        "modelled as its count with offset(log(exposure)), and a measurement with the default "
                        "gaussian family")
    if not np.any(y > 0):
        raise DataError(f"every count of the response {name!r} is 0: a poisson model needs some events")
    _check_exact(y, f"the response {name!r} of a poisson model", {name: y}, where)
    return y


def _binomial(spec: ModelSpec, frame: pd.DataFrame, numbers: Numbers, where: _Rows) -> Outcome:
    cbind = spec.cbind
    assert cbind is not None  # the parser gives every binomial model its cbind()
    successes = numbers(cbind.successes.variable)
    failures = numbers(cbind.failures.variable)
    shown = {c: numbers(Variable(c)) for c in cbind.columns}
    text = cbind.to_formula()
    for side, values in (("successes", successes), ("failures", failures)):
        if np.any(values < 0):
            formula = getattr(cbind, side).to_formula()
            more = (f": more successes ({cbind.successes.column}) than trials ({cbind.failures.column})"
                    if side == "failures" and cbind.successes.minus is None
                    and cbind.failures.minus == cbind.successes.column else "")
            raise DataError(f"{text} needs successes and failures of 0 or more, but the {side} ({formula}) "
                            f"are negative in {where.name(values < 0, shown)}{more}; fix those rows")
        if not np.all(_whole(values)):
            raise DataError(f"{text} counts successes and failures, whole numbers, but the {side} "
                            f"({getattr(cbind, side).to_formula()}) are not whole in "
                            f"{where.name(~_whole(values), shown)}; fix those rows")
    trials = successes + failures
    _check_exact(trials, f"the trials of {text} (successes + failures)", shown, where)
    if np.any(trials == 0):
        raise DataError(f"{text} has no trials (0 successes and 0 failures) in {where.name(trials == 0, shown)}; "
                        "such rows carry no information: remove them, or leave their cells empty")
    if not np.any(successes > 0) or not np.any(failures > 0):
        what = "no successes" if not np.any(successes > 0) else "no failures"
        raise DataError(f"{text} has {what} in any row: a binomial model needs both successes and failures")
    return Outcome(successes, trials)
