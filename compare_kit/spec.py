"""ModelSpec: compare_kit's own parser for the lme4 formula subset.

A formula is read by a small tokenizer and a recursive-descent parser into
frozen dataclasses. Nothing in a formula is ever evaluated: a name is a column
name, a call is one of a short allow-list of transforms, and every engine's
formula is generated from the parse (see ``ModelSpec.canonical_formula``), never
passed through from the user.

Grammar (whitespace is free)::

    formula   := response '~' rhs
    response  := variable
    rhs       := ['-'] item (('+' | '-') item)*
    item      := '0' | '1' | product | '(' rlist ('|' | '||') groups ')'
    rlist     := ['-'] ritem (('+' | '-') ritem)*       ritem := '0' | '1' | product
    product   := interact ('*' interact)*
    interact  := variable (':' variable)*
    variable  := name | FUNC '(' name ')'              FUNC in C, log, sqrt, exp, center, scale
    groups    := gpart ('/' gpart)*                    gpart := name (':' name)*
    name      := [A-Za-z_][A-Za-z0-9_]* | `any text without backticks`

Importing this module must not import pymc, bambi or matplotlib.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import combinations

from compare_kit.errors import SpecError

MAX_FORMULA_LENGTH = 2000
MAX_TERMS = 4096  # terms a formula may expand to: ``a*b*...`` of k factors gives 2**k - 1


class Transform(StrEnum):
    """Transforms a formula may apply to a column (the whole allow-list)."""

    LOG = "log"
    SQRT = "sqrt"
    EXP = "exp"
    CENTER = "center"
    SCALE = "scale"


class Pooling(StrEnum):
    """How a model shares information between groups."""

    COMPLETE = "complete"
    NONE = "none"
    PARTIAL = "partial"


ACCEPTED_FUNCTIONS = ("C", *sorted(t.value for t in Transform))
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def quote_name(name: str) -> str:
    """A column name as a formula writes it: bare when plain, else in backticks."""
    return name if _PLAIN_NAME.match(name) else f"`{name}`"


@dataclass(frozen=True)
class Variable:
    """One column, optionally transformed or marked categorical with ``C()``."""

    column: str
    transform: Transform | None = None
    categorical: bool = False

    @property
    def label(self) -> str:
        """The variable as it appears in term names, e.g. ``log(x)`` or ``floor``."""
        if self.transform is not None:
            return f"{self.transform.value}({self.column})"
        return self.column

    def to_formula(self) -> str:
        name = quote_name(self.column)
        if self.categorical:
            return f"C({name})"
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
        parts = ["1" if self.intercept else "0"] + [t.to_formula() for t in self.terms]
        bar = "|" if self.correlated else "||"
        group = ":".join(quote_name(g) for g in self.grouping)
        return f"({' + '.join(parts)} {bar} {group})"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model: response, fixed terms and random terms, plus a label."""

    formula: str
    response: Variable
    intercept: bool
    fixed: tuple[Term, ...]
    random: tuple[RandomTerm, ...] = ()
    label: str = "model"
    description: str = field(default="", compare=False)

    @classmethod
    def from_formula(cls, formula: str, label: str | None = None) -> ModelSpec:
        """Parse an lme4-style formula; raise ``SpecError`` naming the position."""
        return _Parser(formula).parse(label or "model")

    @classmethod
    def named(cls, name: str) -> ModelSpec:
        """One of the tutorial's models by name (see ``CANONICAL_MODELS``)."""
        if name not in CANONICAL_MODELS:
            raise SpecError(
                f"unknown model name {name!r}; the named models are: {', '.join(CANONICAL_MODELS)}"
            )
        formula, description = CANONICAL_MODELS[name]
        spec = cls.from_formula(formula, label=name)
        return ModelSpec(
            formula=spec.formula,
            response=spec.response,
            intercept=spec.intercept,
            fixed=spec.fixed,
            random=spec.random,
            label=name,
            description=description,
        )

    @classmethod
    def from_text(cls, text: str, label: str | None = None) -> ModelSpec:
        """A model name if ``text`` is one, else a formula."""
        if text.strip() in CANONICAL_MODELS and label in (None, text.strip()):
            return cls.named(text.strip())
        return cls.from_formula(text, label=label)

    def with_label(self, label: str) -> ModelSpec:
        return ModelSpec(self.formula, self.response, self.intercept, self.fixed, self.random,
                         label, self.description)

    @property
    def fixed_labels(self) -> tuple[str, ...]:
        return (("(Intercept)",) if self.intercept else ()) + tuple(t.label for t in self.fixed)

    @property
    def variables(self) -> tuple[Variable, ...]:
        """Every variable the model reads, response first: fixed terms', then random terms'."""
        found = [self.response] + [v for t in self.fixed for v in t.variables]
        found += [v for r in self.random for t in r.terms for v in t.variables]
        return tuple(dict.fromkeys(found))

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column the model reads, response first, without repeats."""
        names = [self.response.column]
        names += [v.column for t in self.fixed for v in t.variables]
        for r in self.random:
            names += [v.column for t in r.terms for v in t.variables]
            names += list(r.grouping)
        return tuple(dict.fromkeys(names))

    @property
    def grouping_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g for r in self.random for g in r.grouping))

    def canonical_formula(self) -> str:
        """The formula regenerated from the parse (what engines are built from)."""
        parts = ["1" if self.intercept else "0"] + [t.to_formula() for t in self.fixed]
        parts += [r.to_formula() for r in self.random]
        if self.intercept and len(parts) > 1:
            parts = parts[1:]
        return f"{self.response.to_formula()} ~ {' + '.join(parts)}"

    def __str__(self) -> str:
        return self.canonical_formula()


CANONICAL_MODELS: dict[str, tuple[str, str]] = {
    "pooled": (
        "log_radon ~ floor",
        "Complete pooling: one intercept and one floor effect for every county, "
        "as if all counties were the same.",
    ),
    "unpooled": (
        "log_radon ~ 0 + C(county) + C(county):floor",
        "No pooling: a separate intercept and floor slope for every county, each "
        "estimated from that county's homes alone.",
    ),
    "partial_pooling": (
        "log_radon ~ floor + (1 + floor || county)",
        "Partial pooling (the tutorial's hierarchical model): county intercepts and "
        "slopes drawn from independent population distributions.",
    ),
    "correlated_slopes": (
        "log_radon ~ floor + (1 + floor | county)",
        "Partial pooling with correlated county intercepts and slopes.",
    ),
    "varying_intercept": (
        "log_radon ~ floor + (1 | county)",
        "Partial pooling of the intercept only: counties differ in their level, "
        "share one floor effect.",
    ),
    "group_predictor": (
        "log_radon ~ floor + log_uranium + (1 | county)",
        "Varying intercepts explained in part by the county's soil uranium.",
    ),
}

# ---------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str  # NAME, QNAME, NUMBER, OP, END
    text: str
    pos: int


_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_PATTERN = re.compile(r"[0-9]+(\.[0-9]*)?")
_OPERATORS = ("||", "~", "+", "-", "*", ":", "/", "(", ")", "|")


def _error(formula: str, pos: int, message: str) -> SpecError:
    pointer = " " * pos + "^"
    return SpecError(f"formula error at position {pos + 1}: {message}\n  {formula}\n  {pointer}")


def _tokenize(formula: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(formula)
    while i < n:
        ch = formula[i]
        if ch in " \t":
            i += 1
            continue
        if ch == "`":
            end = formula.find("`", i + 1)
            if end < 0:
                raise _error(formula, i, "a backtick name is not closed; write `column name`")
            name = formula[i + 1 : end]
            if not name.strip():
                raise _error(formula, i, "an empty backtick name; write `column name`")
            if name.startswith("__"):
                raise _error(formula, i, f"names starting with a double underscore ({name!r}) "
                             "are not allowed")
            tokens.append(_Token("QNAME", name, i))
            i = end + 1
            continue
        m = _NAME_PATTERN.match(formula, i)
        if m:
            if m.group().startswith("__"):
                raise _error(formula, i, f"names starting with a double underscore ({m.group()!r}) "
                             "are not allowed")
            tokens.append(_Token("NAME", m.group(), i))
            i = m.end()
            continue
        m = _NUMBER_PATTERN.match(formula, i)
        if m:
            tokens.append(_Token("NUMBER", m.group(), i))
            i = m.end()
            continue
        op = next((o for o in _OPERATORS if formula.startswith(o, i)), None)
        if op:
            tokens.append(_Token("OP", op, i))
            i += len(op)
            continue
        raise _error(formula, i, _bad_character_message(ch))
    tokens.append(_Token("END", "", n))
    return tokens


def _bad_character_message(ch: str) -> str:
    if ch in "'\"":
        return ("quotes are not allowed in formulas; write a column name with spaces or "
                "dots in backticks, like `my column`")
    if ch == ".":
        return ("'.' is not allowed outside backticks (no attribute access); write a "
                "column name with a dot in backticks, like `my.column`")
    if ch in "[]{},;=!<>&^%$@#\\?":
        return (f"the character {ch!r} is not allowed; formulas accept column names, "
                "backtick names, the numbers 0 and 1, and + - * : / | ( ) ~")
    return (f"the character {ch!r} is not allowed; formulas accept column names, "
            "backtick names, the numbers 0 and 1, and + - * : / | ( ) ~")


# ------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, formula: str) -> None:
        if not isinstance(formula, str):
            raise SpecError(f"a formula must be text, got {type(formula).__name__}")
        if len(formula) > MAX_FORMULA_LENGTH:
            raise SpecError(f"the formula is {len(formula)} characters long; at most "
                            f"{MAX_FORMULA_LENGTH} are accepted")
        bad = next((c for c in formula if ord(c) < 32 and c != "\t"), None)
        if bad is not None:
            raise _error(formula, formula.index(bad),
                         "control characters (such as new lines) are not allowed")
        if not formula.strip():
            raise SpecError("the formula is empty; write e.g. 'log_radon ~ floor + (1 | county)'")
        self.formula = formula
        self.tokens = _tokenize(formula)
        self.i = 0
        self.expanded = 0  # terms generated by products so far (checked before expanding)

    # -- token helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _is(self, text: str) -> bool:
        return self.tok.kind == "OP" and self.tok.text == text

    def _take(self, text: str, what: str) -> _Token:
        if not self._is(text):
            raise self._fail(f"expected {what}")
        tok = self.tok
        self.i += 1
        return tok

    def _fail(self, message: str) -> SpecError:
        found = self.tok.text or "the end of the formula"
        return _error(self.formula, self.tok.pos, f"{message}, found {found!r}")

    # -- grammar
    def parse(self, label: str) -> ModelSpec:
        if not any(t.kind == "OP" and t.text == "~" for t in self.tokens):
            raise SpecError("a formula needs a response and '~', e.g. 'log_radon ~ floor + (1 | county)'")
        response = self._variable(allow_categorical=False)
        if self._is(":") or self._is("*") or self._is("+"):
            raise self._fail("the response must be a single column or transform")
        self._take("~", "'~' after the response")
        intercept, fixed, random = self._rhs()
        if self.tok.kind != "END":
            raise self._fail("expected '+', '-' or the end of the formula")
        if not intercept and not fixed and not random:
            raise SpecError("the model has no terms: add '1' for an intercept or a predictor")
        if not intercept and not fixed:
            raise SpecError(f"{self.formula.strip()!r} has no fixed effects (the intercept is removed and there "
                            "are no predictors), and compare_kit fits only models with at least one: keep the "
                            "intercept (write '1 +' instead of '0 +', or leave out '- 1') or add a predictor")
        _check_response_not_predictor(response, fixed, random)
        return ModelSpec(self.formula, response, intercept, fixed, tuple(random), label=label)

    def _rhs(self) -> tuple[bool, tuple[Term, ...], list[RandomTerm]]:
        intercept = True
        terms: list[Term] = []
        random: list[RandomTerm] = []
        sign = "+"
        if self._is("-"):
            sign = "-"
            self.i += 1
        while True:
            if self._is("("):
                if sign == "-":
                    raise self._fail("a random-effect term cannot be removed with '-'")
                random.extend(self._random_term())
            else:
                flag = self._intercept_item()
                if flag is not None:
                    if sign == "-" and flag is False:
                        raise self._fail("'- 0' is not meaningful; write '0 +' or '- 1' to drop the intercept")
                    intercept = flag and sign == "+"
                else:
                    if sign == "-":
                        raise self._fail("only the intercept can be removed ('- 1'); "
                                         "remove other terms by leaving them out")
                    terms.extend(self._product())
            if self._is("+") or self._is("-"):
                sign = self.tok.text
                self.i += 1
                continue
            break
        return intercept, _unique_terms(terms), random

    def _intercept_item(self) -> bool | None:
        """``1`` -> True, ``0`` -> False, anything else -> None (not consumed)."""
        if self.tok.kind != "NUMBER":
            return None
        if self.tok.text not in ("0", "1"):
            raise self._fail("numbers other than 0 and 1 are not terms; "
                             "write 0 or -1 to drop the intercept, 1 to keep it")
        self.i += 1
        return self.tokens[self.i - 1].text == "1"

    def _product(self) -> list[Term]:
        start = self.tok.pos
        factors = [self._interaction()]
        while self._is("*"):
            self.i += 1
            factors.append(self._interaction())
        # a repeated factor adds no term (a*a is a): dropping repeats keeps the terms and their order
        factors = list(_unique_terms(factors))
        k = len(factors)
        self.expanded += 2**k - 1
        if self.expanded > MAX_TERMS:
            size = f"{2**k - 1}" if k <= 32 else f"2^{k} - 1"
            raise _error(self.formula, start,
                         f"the formula expands to more than {MAX_TERMS} terms (this product of {k} factors "
                         f"alone gives {size}); write the interactions you need with ':' (a + b + a:b) "
                         "instead of '*'")
        terms: list[Term] = []
        for size in range(1, len(factors) + 1):
            for combo in combinations(factors, size):
                variables = tuple(dict.fromkeys(v for f in combo for v in f.variables))
                terms.append(Term(variables))
        return terms

    def _interaction(self) -> Term:
        variables = [self._variable()]
        while self._is(":"):
            self.i += 1
            variables.append(self._variable())
        return Term(tuple(dict.fromkeys(variables)))

    def _name(self, what: str) -> str:
        tok = self.tok
        if tok.kind not in ("NAME", "QNAME"):
            raise self._fail(f"expected {what}")
        self.i += 1
        return tok.text

    def _variable(self, allow_categorical: bool = True) -> Variable:
        tok = self.tok
        if tok.kind == "NUMBER":
            raise self._fail("expected a column name (numbers are only 0 or 1 in the predictors)")
        if tok.kind == "NAME" and self.tokens[self.i + 1].text == "(" and self.tokens[self.i + 1].kind == "OP":
            func = tok.text
            if func not in ACCEPTED_FUNCTIONS:
                raise _error(self.formula, tok.pos,
                             f"unknown function {func!r}; accepted functions are "
                             f"{', '.join(ACCEPTED_FUNCTIONS)} (each applied to one column)")
            if func == "C" and not allow_categorical:
                raise _error(self.formula, tok.pos, "the response cannot be categorical (C())")
            self.i += 2
            column = self._name(f"one column name inside {func}(...)")
            self._take(")", f"')' closing {func}(...); functions take one column name")
            if func == "C":
                return Variable(column, categorical=True)
            return Variable(column, transform=Transform(func))
        return Variable(self._name("a column name"))

    def _random_term(self) -> list[RandomTerm]:
        open_tok = self._take("(", "'('")
        intercept = True
        terms: list[Term] = []
        sign = "+"
        if self._is("-"):
            sign = "-"
            self.i += 1
        while True:
            if self._is("("):
                raise self._fail("random-effect terms cannot be nested in parentheses")
            flag = self._intercept_item()
            if flag is not None:
                if sign == "-" and flag is False:
                    raise self._fail("'- 0' is not meaningful; write '0 +' to drop the intercept")
                intercept = False if sign == "-" else flag
            else:
                if sign == "-":
                    raise self._fail("only the intercept can be removed inside a random term ('0 +' or '- 1')")
                terms.extend(self._product())
            if self._is("+") or self._is("-"):
                sign = self.tok.text
                self.i += 1
                continue
            break
        if self._is("|"):
            correlated = True
        elif self._is("||"):
            correlated = False
        else:
            if self.tok.kind == "END" or self._is(")"):
                raise _error(self.formula, open_tok.pos,
                             "parentheses are only for random-effect terms such as "
                             "(1 | group) or (1 + x | group); this one has no '|'")
            raise self._fail("expected '+', '|' or '||' in the random-effect term")
        self.i += 1
        parts = [self._group_part()]
        while self._is("/"):
            self.i += 1
            parts.append(self._group_part())
        self._take(")", "')' closing the random-effect term")
        terms_t = _unique_terms(terms)
        if not intercept and not terms_t:
            raise _error(self.formula, open_tok.pos, "a random-effect term needs an intercept or a predictor")
        for t in terms_t:
            for v in t.variables:
                if v.column in {g for p in parts for g in p}:
                    raise _error(self.formula, open_tok.pos,
                                 f"{v.column!r} is both a predictor and the grouping factor of this term")
        result = []
        for depth in range(len(parts)):
            # lme4 expands a/b into (1 | a) + (1 | b:a): inner levels are named first.
            grouping: tuple[str, ...] = ()
            for part in reversed(parts[: depth + 1]):
                grouping += part
            grouping = tuple(dict.fromkeys(grouping))
            result.append(RandomTerm(intercept, terms_t, grouping, correlated))
        return result

    def _group_part(self) -> tuple[str, ...]:
        if self.tok.kind == "NAME" and self.tokens[self.i + 1].text == "(":
            raise self._fail("a grouping factor must be a column name, not a function call")
        names = [self._name("a grouping column name after '|'")]
        while self._is(":"):
            self.i += 1
            names.append(self._name("a grouping column name after ':'"))
        return tuple(names)


def _unique_terms(terms: list[Term]) -> tuple[Term, ...]:
    seen: dict[frozenset[Variable], Term] = {}
    for t in terms:
        seen.setdefault(t.key, t)
    return tuple(seen.values())


def _check_response_not_predictor(response: Variable, fixed: tuple[Term, ...],
                                  random: list[RandomTerm]) -> None:
    used = {v.column for t in fixed for v in t.variables}
    used |= {v.column for r in random for t in r.terms for v in t.variables}
    used |= {g for r in random for g in r.grouping}
    if response.column in used:
        raise SpecError(f"the response {response.column!r} also appears on the right-hand side; "
                        "a column cannot explain itself")
