"""The pieces a parsed formula is made of: variables (a column, transformed, categorical, a
component of ``poly()`` or the arithmetic of ``I()``), terms (their interactions) and random terms.

Frozen dataclasses with their formula text and labels; ``spec`` builds them and re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from compare_kit.expressions import Node as Expression
from compare_kit.expressions import columns_of as expression_columns
from compare_kit.formula_tokens import quote_name

__all__ = ["PolyComponent", "RandomTerm", "Term", "Transform", "Variable", "term_formulas"]


class Transform(StrEnum):
    """Transforms a formula may apply to a column (one column in, one column out)."""

    LOG = "log"
    SQRT = "sqrt"
    EXP = "exp"
    CENTER = "center"
    SCALE = "scale"


@dataclass(frozen=True)
class PolyComponent:
    """Degree ``index`` of the orthogonal polynomial basis ``poly(x, degree)``."""

    degree: int
    index: int


@dataclass(frozen=True)
class Variable:
    """One model column: a data column, optionally transformed, marked categorical with ``C()``, one
    component of ``poly()``, or the arithmetic of ``I()`` (then ``column`` is the expression's text)."""

    column: str
    transform: Transform | None = None
    categorical: bool = False
    poly: PolyComponent | None = None
    expression: Expression | None = None

    @property
    def label(self) -> str:
        """The variable as it appears in term names, e.g. ``log(x)``, ``poly(x, 2)1`` or ``I(x^2)``."""
        if self.expression is not None:
            return f"I({self.column})"
        if self.poly is not None:
            return f"poly({self.column}, {self.poly.degree}){self.poly.index}"
        if self.transform is not None:
            return f"{self.transform.value}({self.column})"
        return self.column

    @property
    def columns(self) -> tuple[str, ...]:
        """The data columns the variable reads."""
        return expression_columns(self.expression) if self.expression is not None else (self.column,)

    @property
    def as_is(self) -> bool:
        """The column enters unchanged (plain or in ``C()``): only then can it be categorical."""
        return self.transform is None and self.poly is None and self.expression is None

    def to_formula(self) -> str:
        """The variable in formula syntax; each component of ``poly(x, k)`` writes the whole call."""
        if self.expression is not None:
            return f"I({self.expression.text()})"
        name = quote_name(self.column)
        if self.categorical:
            return f"C({name})"
        if self.poly is not None:
            return f"poly({name}, {self.poly.degree})"
        if self.transform is not None:
            return f"{self.transform.value}({name})"
        return name


@dataclass(frozen=True)
class Term:
    """An interaction of one or more variables (a main effect has one)."""

    variables: tuple[Variable, ...]

    @property
    def label(self) -> str:
        return ":".join(v.label for v in self.variables)

    def to_formula(self) -> str:
        """The term in formula syntax (the components of one ``poly()`` all write the same text)."""
        return ":".join(v.to_formula() for v in self.variables)

    @property
    def key(self) -> frozenset[Variable]:
        """Order-free identity: ``a:b`` and ``b:a`` are the same term."""
        return frozenset(self.variables)


@dataclass(frozen=True)
class RandomTerm:
    """``(intercept + terms | grouping)``; ``correlated=False`` for ``||``."""

    intercept: bool
    terms: tuple[Term, ...]
    grouping: tuple[str, ...]
    correlated: bool = True

    @property
    def group(self) -> str:
        """The grouping factor's name, lme4 style: ``county`` or ``county:state``."""
        return ":".join(self.grouping)

    @property
    def term_labels(self) -> tuple[str, ...]:
        return (("(Intercept)",) if self.intercept else ()) + tuple(t.label for t in self.terms)

    def to_formula(self) -> str:
        parts = ["1" if self.intercept else "0"] + term_formulas(self.terms)
        bar = "|" if self.correlated else "||"
        group = ":".join(quote_name(g) for g in self.grouping)
        return f"({' + '.join(parts)} {bar} {group})"


def term_formulas(terms: tuple[Term, ...]) -> list[str]:
    """Each term's formula text once (the components of one ``poly()`` share theirs)."""
    return list(dict.fromkeys(t.to_formula() for t in terms))
