"""The formula syntax the families add: lme4's ``cbind(successes, failures)`` and ``offset(...)``.

``cbind(incidence, size - incidence) ~ ...`` is a binomial response: each side is a column or the
difference ``a - b`` of two columns. ``offset(log(exposure))`` is a fixed-part term with a known
coefficient of 1; inside it, the arithmetic of ``I(...)`` (``expressions``), never evaluated as code.
Both are read token by token from ``formula_tokens``' tokens, as ``expressions`` reads ``I(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from compare_kit.expressions import Binary, Column, ExpressionParser
from compare_kit.expressions import Node as Expression
from compare_kit.expressions import columns_of as expression_columns
from compare_kit.formula_tokens import NAME, OP, QNAME, Token, formula_error
from compare_kit.model_terms import Variable

CBIND = "cbind"
OFFSET = "offset"
CBIND_EXAMPLE = "cbind(successes, failures), e.g. cbind(incidence, size - incidence)"


@dataclass(frozen=True)
class CountColumn:
    """One side of ``cbind()``: a column, or ``column - minus`` (failures as trials minus successes)."""

    column: str
    minus: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.minus is None else (self.column, self.minus)

    @property
    def expression(self) -> Expression:
        """The side as arithmetic (a column, or a difference), for evaluation by ``expressions``."""
        return Column(self.column) if self.minus is None else Binary("-", Column(self.column), Column(self.minus))

    @property
    def variable(self) -> Variable:
        """The side as a model variable: the column, or the arithmetic ``I(a - b)``."""
        return Variable(self.column) if self.minus is None else Variable(self.to_formula(),
                                                                         expression=self.expression)

    def to_formula(self) -> str:
        return self.expression.text()


@dataclass(frozen=True)
class Cbind:
    """lme4's binomial response ``cbind(successes, failures)``; trials are their sum."""

    successes: CountColumn
    failures: CountColumn

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.successes.columns + self.failures.columns))

    def to_formula(self) -> str:
        return f"cbind({self.successes.to_formula()}, {self.failures.to_formula()})"


@dataclass(frozen=True)
class Offset:
    """``offset(...)``: a term added to the linear predictor with its coefficient fixed at 1."""

    expression: Expression

    @property
    def columns(self) -> tuple[str, ...]:
        return expression_columns(self.expression)

    @property
    def label(self) -> str:
        return f"offset({self.expression.text()})"

    @property
    def variable(self) -> Variable:
        """The offset's arithmetic as a model variable (evaluated as ``I(...)`` is)."""
        return Variable(self.expression.text(), expression=self.expression)

    def to_formula(self) -> str:
        return self.label


class _Reader(ExpressionParser):
    """Reads one call from ``tokens`` at ``i`` (inside the call's parentheses); ``i`` ends after its ')'.
    An ``offset()``'s arithmetic is read by the ``ExpressionParser`` this extends."""

    def take(self, op: str, message: str) -> None:
        if not self.tok.is_op(op):
            raise self._fail(message)
        self.i += 1

    def name(self, message: str) -> str:
        if self.tok.kind not in (NAME, QNAME) or self.tokens[self.i + 1].is_op("("):
            raise self._fail(message)
        self.i += 1
        return self.tokens[self.i - 1].text

    def count_column(self, side: str) -> CountColumn:
        what = (f"the {side} of cbind(): a column, or the difference of two columns such as "
                "size - incidence (compute anything else as a column of the table)")
        column = self.name(f"expected {what}")
        minus = None
        if self.tok.is_op("-"):
            self.i += 1
            minus = self.name(f"expected a column name after '-' in {what}")
            if minus == column:
                raise self._fail(f"{column} - {column} is 0 in every row; expected {what}")
        if not (self.tok.is_op(",") or self.tok.is_op(")")):
            raise self._fail(f"expected ',' or ')' after {what}")
        return CountColumn(column, minus)


def read_cbind(formula: str, tokens: list[Token], i: int) -> tuple[Cbind, int]:
    """``cbind(successes, failures)`` at ``tokens[i]``; the Cbind and the index after its ')'."""
    reader = _Reader(formula, tokens, i + 2)
    successes = reader.count_column("successes")
    reader.take(",", f"cbind() takes two arguments, the successes and the failures: {CBIND_EXAMPLE}")
    failures = reader.count_column("failures")
    reader.take(")", f"')' closing cbind(); it takes two arguments: {CBIND_EXAMPLE}")
    return Cbind(successes, failures), reader.i


def read_offset(formula: str, tokens: list[Token], i: int) -> tuple[Offset, int]:
    """``offset(...)`` at ``tokens[i]``: the arithmetic of ``I(...)`` on at least one column."""
    call = tokens[i]
    reader = _Reader(formula, tokens, i + 2)
    if reader.tok.is_op(")"):
        raise formula_error(formula, call.pos, "offset() needs a column, e.g. offset(log(exposure))")
    expression = reader.parse()
    reader.take(")", "an operator (+ - * / ^) or ')' closing offset(...); it takes one expression, "
                "e.g. offset(log(exposure))")
    if not expression_columns(expression):
        raise formula_error(formula, call.pos, "offset(...) must use a column, e.g. offset(log(exposure)); a "
                            "constant offset only shifts the intercept")
    return Offset(expression), reader.i


def is_call(tokens: list[Token], i: int, name: str) -> bool:
    """``tokens[i]`` is the call ``name(``."""
    return tokens[i].kind == NAME and tokens[i].text == name and tokens[i + 1].kind == OP \
        and tokens[i + 1].text == "("


__all__ = ["CBIND", "CBIND_EXAMPLE", "OFFSET", "Cbind", "CountColumn", "Offset", "is_call", "read_cbind",
           "read_offset"]
