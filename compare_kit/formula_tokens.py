"""The formula tokenizer: names, backtick names, numbers and operators, each with its position.

Shared by the formula parser (``spec``) and the arithmetic inside ``I(...)`` (``expressions``).
Anything else in a formula, quotes, dots outside backticks, brackets, is refused here with a
message saying what to write instead. Nothing is evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from compare_kit.errors import SpecError

NAME = "NAME"  # a plain column or function name
QNAME = "QNAME"  # a backtick name: any text without backticks
NUMBER = "NUMBER"
OP = "OP"
END = "END"

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_PATTERN = re.compile(r"([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
# longest first: '**' before '*', '||' before '|'
_OPERATORS = ("||", "**", "~", "+", "-", "*", "^", ":", "/", ",", "(", ")", "|")


@dataclass(frozen=True)
class Token:
    """One token: its kind (NAME, QNAME, NUMBER, OP or END), its text and its position."""

    kind: str
    text: str
    pos: int

    def is_op(self, text: str) -> bool:
        return self.kind == OP and self.text == text


def quote_name(name: str) -> str:
    """A column name as a formula writes it: bare when plain, else in backticks."""
    return name if _PLAIN_NAME.match(name) else f"`{name}`"


def formula_error(formula: str, pos: int, message: str) -> SpecError:
    """A ``SpecError`` that shows the formula with a caret under position ``pos``."""
    pointer = " " * pos + "^"
    return SpecError(f"formula error at position {pos + 1}: {message}\n  {formula}\n  {pointer}")


def tokenize(formula: str) -> list[Token]:
    """The tokens of ``formula``, ending with an END token; a ``SpecError`` at the first bad character."""
    tokens: list[Token] = []
    i, n = 0, len(formula)
    while i < n:
        ch = formula[i]
        if ch in " \t":
            i += 1
            continue
        if ch == "`":
            end = formula.find("`", i + 1)
            if end < 0:
                raise formula_error(formula, i, "a backtick name is not closed; write `column name`")
            name = formula[i + 1 : end]
            if not name.strip():
                raise formula_error(formula, i, "an empty backtick name; write `column name`")
            _check_not_dunder(formula, i, name)
            tokens.append(Token(QNAME, name, i))
            i = end + 1
            continue
        m = _NAME_PATTERN.match(formula, i) or _NUMBER_PATTERN.match(formula, i)
        if m:
            kind = NAME if _NAME_PATTERN.match(m.group()) else NUMBER
            if kind == NAME:
                _check_not_dunder(formula, i, m.group())
            tokens.append(Token(kind, m.group(), i))
            i = m.end()
            continue
        op = next((o for o in _OPERATORS if formula.startswith(o, i)), None)
        if op:
            tokens.append(Token(OP, op, i))
            i += len(op)
            continue
        raise formula_error(formula, i, _bad_character_message(ch))
    tokens.append(Token(END, "", n))
    return tokens


def _check_not_dunder(formula: str, pos: int, name: str) -> None:
    if name.startswith("__"):
        raise formula_error(formula, pos, f"names starting with a double underscore ({name!r}) are not allowed")


_ACCEPTED = ("formulas accept column names, backtick names, the numbers 0 and 1, + - * : / | ( ) ~, "
             "and arithmetic (+ - * / ^ and numbers) inside I(...)")


def _bad_character_message(ch: str) -> str:
    if ch in "'\"":
        return ("quotes are not allowed in formulas; write a column name with spaces or "
                "dots in backticks, like `my column`")
    if ch == ".":
        return ("'.' is not allowed outside backticks and numbers (no attribute access); write a "
                "column name with a dot in backticks, like `my.column`")
    if ch == "=":
        return ("'=' is not allowed: functions take no named options (poly(x, k) takes a column and a "
                "degree; for raw powers write x + I(x^2))")
    return f"the character {ch!r} is not allowed; {_ACCEPTED}"
