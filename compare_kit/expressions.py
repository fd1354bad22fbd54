"""Arithmetic inside ``I(...)``: a small expression tree, its parser and its numpy evaluation.

``I(x^2)``, ``I(weight / height^2)`` or ``I(log(dose + 1))`` are read token by token into frozen
nodes (numbers, column names, ``+ - * / ^``, unary minus, and the functions ``log``, ``sqrt`` and
``exp``) and evaluated with numpy ufuncs, never with ``eval``. ``**`` is read as ``^``, and the
precedence is R's: ``^`` binds tighter than unary minus (``-x^2`` is ``-(x^2)``), which binds tighter
than ``*`` and ``/``, then ``+`` and ``-``; ``^`` groups to the right. Each tree has one canonical
text, so ``I(x**2)`` and ``I(x ^ 2)`` are the same variable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compare_kit.formula_tokens import NAME, NUMBER, OP, QNAME, Token, formula_error, quote_name

MAX_NESTING = 32  # parentheses, calls and unary minus inside one I(...)
FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"log": np.log, "sqrt": np.sqrt, "exp": np.exp}
_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "^": 4, "atom": 5}


@dataclass(frozen=True)
class Number:
    value: float

    def text(self) -> str:
        v = self.value
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


@dataclass(frozen=True)
class Column:
    name: str

    def text(self) -> str:
        return quote_name(self.name)


@dataclass(frozen=True)
class Call:
    func: str
    arg: Node

    def text(self) -> str:
        return f"{self.func}({self.arg.text()})"


@dataclass(frozen=True)
class Negate:
    operand: Node

    def text(self) -> str:
        return "-" + _wrapped(self.operand, _PRECEDENCE["neg"])


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node

    def text(self) -> str:
        level = _PRECEDENCE[self.op]
        if self.op == "^":  # groups to the right: x^y^z is x^(y^z); the exponent may be negated
            return f"{_wrapped(self.left, level + 1)}^{_wrapped(self.right, _PRECEDENCE['neg'])}"
        gap = "" if self.op == "/" else " "  # R's spacing, so that labels are R's column names: a/b, a * b
        return f"{_wrapped(self.left, level)}{gap}{self.op}{gap}{_wrapped(self.right, level + 1)}"


Node = Number | Column | Call | Negate | Binary


def _level(node: Node) -> int:
    if isinstance(node, Binary):
        return _PRECEDENCE[node.op]
    return _PRECEDENCE["neg"] if isinstance(node, Negate) else _PRECEDENCE["atom"]


def _wrapped(node: Node, at_least: int) -> str:
    return node.text() if _level(node) >= at_least else f"({node.text()})"


def columns_of(node: Node) -> tuple[str, ...]:
    """The data columns an expression reads, in order of first use."""
    match node:
        case Column(name):
            return (name,)
        case Call(_, arg) | Negate(arg):
            return columns_of(arg)
        case Binary(_, left, right):
            return tuple(dict.fromkeys(columns_of(left) + columns_of(right)))
    return ()


def evaluate(node: Node, column: Callable[[str], np.ndarray]) -> np.ndarray:
    """The expression's value per row; ``column(name)`` gives a column's numbers. Undefined results
    (a log of a negative number, a division by zero) come out as NaN or infinity, for the caller to
    report with the rows concerned."""
    with np.errstate(all="ignore"):
        return np.asarray(_evaluate(node, column), dtype=float)


def _evaluate(node: Node, column: Callable[[str], np.ndarray]) -> np.ndarray | float:
    match node:
        case Number(value):
            return value
        case Column(name):
            return column(name)
        case Call(func, arg):
            return FUNCTIONS[func](_evaluate(arg, column))
        case Negate(operand):
            return np.negative(_evaluate(operand, column))
        case Binary(op, left, right):
            return _BINARY[op](_evaluate(left, column), _evaluate(right, column))
    raise TypeError(f"not an expression node: {node!r}")  # pragma: no cover - the node types are closed


class ExpressionParser:
    """Reads the arithmetic inside ``I(...)`` from ``tokens`` starting at ``start``.

    expr := sum;  sum := product (('+' | '-') product)*;  product := unary (('*' | '/') unary)*;
    unary := '-' unary | power;  power := atom (('^' | '**') unary)?;
    atom := NUMBER | name | FUNC '(' sum ')' | '(' sum ')'
    """

    def __init__(self, formula: str, tokens: list[Token], start: int) -> None:
        self.formula = formula
        self.tokens = tokens
        self.i = start
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _fail(self, message: str) -> Exception:
        found = self.tok.text or "the end of the formula"
        return formula_error(self.formula, self.tok.pos, f"{message}, found {found!r}")

    def parse(self) -> Node:
        return self._sum()

    def _sum(self) -> Node:
        return self._left_chain(self._product, ("+", "-"))

    def _product(self) -> Node:
        return self._left_chain(self._unary, ("*", "/"))

    def _left_chain(self, operand: Callable[[], Node], ops: tuple[str, str]) -> Node:
        """``operand (op operand)*`` grouped to the left: a - b - c is (a - b) - c."""
        node = operand()
        while self.tok.kind == OP and self.tok.text in ops:
            op = self.tok.text
            self.i += 1
            node = Binary(op, node, operand())
        return node

    def _unary(self) -> Node:
        if self.tok.is_op("-"):
            self._deeper()
            self.i += 1
            node: Node = Negate(self._unary())
            self.depth -= 1
            return node
        if self.tok.is_op("+"):
            raise self._fail("a leading '+' is not needed inside I(...); leave it out")
        return self._power()

    def _power(self) -> Node:
        base = self._atom()
        if self.tok.is_op("^") or self.tok.is_op("**"):
            self.i += 1
            self._deeper()
            exponent = self._unary()
            self.depth -= 1
            return Binary("^", base, exponent)
        return base

    def _atom(self) -> Node:
        tok = self.tok
        if tok.kind == NUMBER:
            self.i += 1
            value = float(tok.text)
            if not np.isfinite(value):
                raise formula_error(self.formula, tok.pos, f"the number {tok.text} is too large")
            return Number(value)
        if tok.kind == NAME and self.tokens[self.i + 1].is_op("("):
            if tok.text not in FUNCTIONS:
                raise formula_error(self.formula, tok.pos,
                                    f"unknown function {tok.text!r} inside I(...); the functions there are "
                                    f"{', '.join(FUNCTIONS)}")
            self.i += 2
            return Call(tok.text, self._parenthesised(f"')' closing {tok.text}(...)"))
        if tok.kind in (NAME, QNAME):
            self.i += 1
            return Column(tok.text)
        if tok.is_op("("):
            self.i += 1
            return self._parenthesised("')' closing '('")
        raise self._fail("expected a column name, a number, a function such as log(...) or '(' inside I(...)")

    def _parenthesised(self, closing: str) -> Node:
        self._deeper()
        node = self._sum()
        if not self.tok.is_op(")"):
            raise self._fail(f"expected an operator (+ - * / ^) or {closing}")
        self.i += 1
        self.depth -= 1
        return node

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise formula_error(self.formula, self.tok.pos,
                                f"I(...) nests more than {MAX_NESTING} levels of parentheses, calls or signs; "
                                "simplify the expression or compute it as a column")
