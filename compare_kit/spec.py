"""ModelSpec: compare_kit's own parser for the lme4 formula subset.

A formula is read by a small tokenizer and a recursive-descent parser into
frozen dataclasses. Nothing in a formula is ever evaluated: a name is a column
name, a call is one of a short allow-list of transforms, and every engine's
formula is generated from the parse (see ``ModelSpec.canonical_formula``), never
passed through from the user.

Grammar (whitespace is free; the tokens are ``formula_tokens``')::

    formula   := response '~' rhs
    response  := name | TRANSFORM '(' name ')' | 'cbind' '(' side ',' side ')'    side := name ['-' name]
    rhs       := ['-'] item (('+' | '-') item)*
    item      := '0' | '1' | product | 'offset' '(' arithmetic ')' | '(' rlist ('|' | '||') groups ')'
    rlist     := ['-'] ritem (('+' | '-') ritem)*       ritem := '0' | '1' | product
    product   := interact ('*' interact)*
    interact  := variable (':' variable)*
    variable  := name | 'C' '(' name ')' | TRANSFORM '(' name ')' | 'poly' '(' name ',' INTEGER ')'
               | 'I' '(' arithmetic ')'                 TRANSFORM in log, sqrt, exp, center, scale
    groups    := gpart ('/' gpart)*                    gpart := name (':' name)*
    name      := [A-Za-z_][A-Za-z0-9_]* | `any text without backticks`

``poly(x, k)`` stands for k variables, its orthogonal polynomials of degree 1..k (named as R names
them, ``poly(x, 2)1`` and ``poly(x, 2)2``); in a product or an interaction each of them takes part,
as R's k columns do. The arithmetic of ``I(...)`` is read by ``expressions``.

The family (``family``) is given beside the formula, not in it. ``cbind()`` (binomial only) and
``offset()`` (one per formula, any family) are read by ``family_terms``; a non-Gaussian response is
the column as it is (a 0/1 or two-level column for bernoulli, counts for poisson).

Importing this module must not import pymc, bambi or matplotlib.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import combinations, product

from compare_kit.errors import SpecError
from compare_kit.expressions import ExpressionParser
from compare_kit.expressions import columns_of as expression_columns
from compare_kit.family import Family, coerce_family, coerce_success
from compare_kit.family_terms import CBIND, CBIND_EXAMPLE, OFFSET, Cbind, Offset, is_call, read_cbind, read_offset
from compare_kit.formula_tokens import END, NAME, NUMBER, QNAME, Token, formula_error, quote_name, tokenize
from compare_kit.model_terms import PolyComponent, RandomTerm, Term, Transform, Variable, term_formulas
from compare_kit.named_models import CANONICAL_MODELS

MAX_FORMULA_LENGTH = 2000
MAX_TERMS = 4096  # terms a formula may expand to: ``a*b*...`` of k factors gives 2**k - 1
MAX_POLY_DEGREE = 10  # beyond, orthogonal polynomials of real data lose their accuracy


class Pooling(StrEnum):
    """How a model shares information between groups."""

    COMPLETE = "complete"
    NONE = "none"
    PARTIAL = "partial"


ACCEPTED_FUNCTIONS = ("C", "I", "poly", *sorted(t.value for t in Transform))
__all__ = ["ACCEPTED_FUNCTIONS", "CANONICAL_MODELS", "Cbind", "Family", "ModelSpec", "Offset", "Pooling",
           "PolyComponent", "RandomTerm", "Term", "Transform", "Variable", "quote_name"]


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model: response, fixed terms and random terms, plus a label.

    ``family`` is the outcome's family; for binomial, ``cbind`` holds the successes and failures
    (``response`` is then the successes side). ``offset`` is the formula's ``offset(...)``, if any, and
    ``success`` the level of a bernoulli outcome that counts as 1. ``family_given``: the user named the
    family (a Gaussian model whose outcome looks like counts or 0/1 gets a note only when not).
    """

    formula: str
    response: Variable
    intercept: bool
    fixed: tuple[Term, ...]
    random: tuple[RandomTerm, ...] = ()
    label: str = "model"
    description: str = field(default="", compare=False)
    family: Family = Family.GAUSSIAN
    cbind: Cbind | None = None
    offset: Offset | None = None
    success: str | None = None
    family_given: bool = field(default=False, compare=False)

    @classmethod
    def from_formula(cls, formula: str, label: str | None = None, *, family: Family | str | None = None,
                     success: str | int | None = None) -> ModelSpec:
        """Parse an lme4-style formula; raise ``SpecError`` naming the position.

        ``family``: gaussian (default), bernoulli, binomial (response ``cbind(successes, failures)``)
        or poisson; ``success``: the level of a two-level bernoulli outcome that counts as a success.
        """
        chosen = coerce_family(family)
        return _Parser(formula).parse(label or "model", chosen, coerce_success(success, chosen),
                                      family is not None)

    @classmethod
    def named(cls, name: str) -> ModelSpec:
        """One of the tutorial's models by name (see ``CANONICAL_MODELS``)."""
        if name not in CANONICAL_MODELS:
            raise SpecError(
                f"unknown model name {name!r}; the named models are: {', '.join(CANONICAL_MODELS)}"
            )
        formula, description = CANONICAL_MODELS[name]
        return dataclasses.replace(cls.from_formula(formula, label=name), description=description)

    @classmethod
    def from_text(cls, text: str, label: str | None = None, *, family: Family | str | None = None,
                  success: str | int | None = None) -> ModelSpec:
        """A model name if ``text`` is one, else a formula (``family`` and ``success`` as in ``from_formula``)."""
        name = text.strip() if isinstance(text, str) else text
        if name in CANONICAL_MODELS and label in (None, name):
            chosen = coerce_family(family)
            if chosen is not Family.GAUSSIAN or success is not None:
                raise SpecError(f"{name!r} is a named model of the radon survey, Gaussian in log_radon; for "
                                f"family={chosen.value!r} write its formula, e.g. \"y ~ x + (1 | g)\"")
            return dataclasses.replace(cls.named(name), family_given=family is not None)
        return cls.from_formula(text, label=label, family=family, success=success)

    def with_label(self, label: str) -> ModelSpec:
        return dataclasses.replace(self, label=label)

    def response_formula(self) -> str:
        """The left-hand side as a formula writes it: ``cbind(s, n - s)`` or the response."""
        return self.cbind.to_formula() if self.cbind is not None else self.response.to_formula()

    def sibling(self, rhs: str, label: str) -> ModelSpec:
        """A model with this one's response, family, success level and offset, and the right-hand
        side ``rhs`` (e.g. complete pooling of its fixed part)."""
        offset = f" + {self.offset.to_formula()}" if self.offset is not None else ""
        return ModelSpec.from_formula(f"{self.response_formula()} ~ {rhs}{offset}", label=label,
                                      family=self.family if self.family_given else None,
                                      success=self.success)

    @property
    def fixed_labels(self) -> tuple[str, ...]:
        return (("(Intercept)",) if self.intercept else ()) + tuple(t.label for t in self.fixed)

    @property
    def variables(self) -> tuple[Variable, ...]:
        """Every variable the model reads, response first (the successes of ``cbind()``): fixed terms',
        then random terms'. The failures of ``cbind()`` are in ``outcome_variables``; the offset's
        arithmetic is ``offset.variable``."""
        found = [self.response] + [v for t in self.fixed for v in t.variables]
        found += [v for r in self.random for t in r.terms for v in t.variables]
        return tuple(dict.fromkeys(found))

    @property
    def outcome_variables(self) -> tuple[Variable, ...]:
        """The variables the outcome reads: the response, or both sides of ``cbind()``."""
        if self.cbind is None:
            return (self.response,)
        return (self.cbind.successes.variable, self.cbind.failures.variable)

    @property
    def response_columns(self) -> tuple[str, ...]:
        """The columns the outcome reads: the response, or both sides of ``cbind()``."""
        return self.cbind.columns if self.cbind is not None else self.response.columns

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column the model reads, response first, without repeats."""
        names = list(self.response_columns)
        names += [c for t in self.fixed for v in t.variables for c in v.columns]
        names += list(self.offset.columns) if self.offset is not None else []
        for r in self.random:
            names += [c for t in r.terms for v in t.variables for c in v.columns]
            names += list(r.grouping)
        return tuple(dict.fromkeys(names))

    @property
    def grouping_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g for r in self.random for g in r.grouping))

    def canonical_formula(self) -> str:
        """The formula regenerated from the parse (what engines are built from)."""
        parts = ["1" if self.intercept else "0"] + term_formulas(self.fixed)
        parts += [self.offset.to_formula()] if self.offset is not None else []
        parts += [r.to_formula() for r in self.random]
        if self.intercept and len(parts) > 1:
            parts = parts[1:]
        return f"{self.response_formula()} ~ {' + '.join(parts)}"

    def __str__(self) -> str:
        return self.canonical_formula()


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
            raise formula_error(formula, formula.index(bad),
                         "control characters (such as new lines) are not allowed")
        if not formula.strip():
            raise SpecError("the formula is empty; write e.g. 'log_radon ~ floor + (1 | county)'")
        self.formula = formula
        self.tokens = tokenize(formula)
        self.i = 0
        self.expanded = 0  # terms generated by products so far (checked before expanding)
        self.offset: Offset | None = None

    # -- token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _is(self, text: str) -> bool:
        return self.tok.is_op(text)

    def _take(self, text: str, what: str) -> Token:
        if not self._is(text):
            raise self._fail(f"expected {what}")
        tok = self.tok
        self.i += 1
        return tok

    def _fail(self, message: str) -> SpecError:
        found = self.tok.text or "the end of the formula"
        if self.tok.is_op("^") or self.tok.is_op("**"):
            message += "; '^' and '**' are arithmetic, allowed only inside I(...), e.g. I(x^2)"
        return formula_error(self.formula, self.tok.pos, f"{message}, found {found!r}")

    # -- grammar
    def parse(self, label: str, family: Family = Family.GAUSSIAN, success: str | None = None,
              family_given: bool = False) -> ModelSpec:
        if not any(t.is_op("~") for t in self.tokens):
            raise SpecError("a formula needs a response and '~', e.g. 'log_radon ~ floor + (1 | county)'")
        cbind = self._cbind(family) if is_call(self.tokens, self.i, CBIND) else None
        response = cbind.successes.variable if cbind is not None else self._response(family)
        if self._is(":") or self._is("*") or self._is("+"):
            raise self._fail("the response must be a single column or transform")
        self._take("~", "'~' after the response")
        intercept, fixed, random = self._rhs()
        if self.tok.is_op(","):
            raise self._fail("',' separates arguments only in poly(x, k)")
        if self.tok.kind != END:
            raise self._fail("expected '+', '-' or the end of the formula")
        if not intercept and not fixed and not random and self.offset is None:
            raise SpecError("the model has no terms: add '1' for an intercept or a predictor")
        if not intercept and not fixed:
            raise SpecError(f"{self.formula.strip()!r} has no fixed effects (the intercept is removed and there "
                            "are no predictors), and compare_kit fits only models with at least one: keep the "
                            "intercept (write '1 +' instead of '0 +', or leave out '- 1') or add a predictor")
        if family is Family.BINOMIAL and cbind is None:
            raise SpecError(f"family 'binomial' reads successes out of trials: write the response as "
                            f"{CBIND_EXAMPLE} (for y successes out of n trials: cbind(y, n - y) ~ ...); for a "
                            "0/1 outcome, one trial per row, use family='bernoulli'")
        _check_response_not_predictor(cbind.columns if cbind else response.columns, fixed, random, self.offset)
        return ModelSpec(self.formula, response, intercept, fixed, tuple(random), label=label, family=family,
                         cbind=cbind, offset=self.offset, success=success, family_given=family_given)

    def _cbind(self, family: Family) -> Cbind:
        if family is not Family.BINOMIAL:
            raise formula_error(self.formula, self.tok.pos,
                                f"cbind(successes, failures) is a binomial response, but this model's family "
                                f"is {family.value!r}: give family='binomial' (--family binomial; family = "
                                "\"binomial\" in a study file)")
        cbind, self.i = read_cbind(self.formula, self.tokens, self.i)
        return cbind

    def _offset(self, sign: str) -> None:
        tok = self.tok
        if sign == "-":
            raise self._fail("an offset cannot be removed with '-'; leave it out, or write + offset(...)")
        if self.offset is not None:
            raise formula_error(self.formula, tok.pos, "a formula takes one offset(...); add the parts inside "
                                "one, e.g. offset(log(exposure) + log(area))")
        self.offset, self.i = read_offset(self.formula, self.tokens, self.i)
        if self._is(":") or self._is("*"):
            raise self._fail("offset(...) is a term of its own: it cannot be part of an interaction")

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
            elif is_call(self.tokens, self.i, OFFSET):
                self._offset(sign)
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
                if sign == "+" and self._is("-"):  # R reads '+ -1' as '- 1'
                    sign = "-"
                    self.i += 1
                continue
            break
        return intercept, _unique_terms(terms), random

    def _intercept_item(self) -> bool | None:
        """``1`` -> True, ``0`` -> False, anything else -> None (not consumed)."""
        if self.tok.kind != NUMBER:
            return None
        if self.tok.text not in ("0", "1"):
            raise self._fail("numbers other than 0 and 1 are not terms; "
                             "write 0 or -1 to drop the intercept, 1 to keep it")
        self.i += 1
        return self.tokens[self.i - 1].text == "1"

    def _product(self) -> list[Term]:
        """``a * b``: every interaction of the factors; a factor of several terms (``poly()``) takes part
        with each of them, as R's columns do."""
        start = self.tok.pos
        factors = [self._interaction()]
        while self._is("*"):
            self.i += 1
            factors.append(self._interaction())
        # a repeated factor adds no term (a*a is a): dropping repeats keeps the terms and their order
        unique: dict[tuple[frozenset[Variable], ...], list[Term]] = {}
        for f in factors:
            unique.setdefault(tuple(t.key for t in f), f)
        factors = list(unique.values())
        count = 1
        for f in factors:
            count *= 1 + len(f)
            if count - 1 > MAX_TERMS:
                break
        self.expanded += count - 1
        if self.expanded > MAX_TERMS:
            raise formula_error(self.formula, start,
                                f"the formula expands to more than {MAX_TERMS} terms (this product of "
                                f"{len(factors)} factors alone gives more than {min(count - 1, MAX_TERMS)}); "
                                "write the interactions you need with ':' (a + b + a:b) instead of '*'")
        terms: list[Term] = []
        for size in range(1, len(factors) + 1):
            for combo in combinations(factors, size):
                for parts in product(*combo):
                    terms.append(Term(tuple(dict.fromkeys(v for part in parts for v in part.variables))))
        return terms

    def _interaction(self) -> list[Term]:
        """``a:b``: one term, or one per component when a variable is ``poly()``."""
        choices = [self._variables()]
        while self._is(":"):
            self.i += 1
            choices.append(self._variables())
        return [Term(tuple(dict.fromkeys(combo))) for combo in product(*choices)]

    def _name(self, what: str) -> str:
        tok = self.tok
        if tok.kind not in (NAME, QNAME):
            raise self._fail(f"expected {what}")
        self.i += 1
        return tok.text

    def _is_call(self) -> bool:
        return self.tok.kind == NAME and self.tokens[self.i + 1].is_op("(")

    def _response(self, family: Family) -> Variable:
        tok = self.tok
        if self._is_call() and tok.text in ("C", "poly", "I"):
            what = {"C": "categorical (C())", "poly": "a polynomial basis (poly())",
                    "I": "an expression (I())"}[tok.text]
            raise formula_error(self.formula, tok.pos,
                                f"the response cannot be {what}; it is one column, or log, sqrt, exp, "
                                "center or scale of one (add a computed response to the table as a column)")
        (variable,) = self._variables()
        if family is not Family.GAUSSIAN and variable.transform is not None:
            raise formula_error(self.formula, tok.pos,
                                f"the response of a {family.value} model is its column as it is, not "
                                f"{variable.label}: transforms of the response are for gaussian outcomes (the "
                                f"{family.link.value} link already relates the mean to the predictors)")
        return variable

    def _variables(self) -> list[Variable]:
        """One variable, or the components of ``poly(x, k)``."""
        tok = self.tok
        if tok.kind == NUMBER:
            raise self._fail("expected a column name (numbers are only 0 or 1 in the predictors)")
        if not self._is_call():
            return [Variable(self._name("a column name"))]
        func = tok.text
        if func in (CBIND, OFFSET):
            where = ("the response, left of '~', of a binomial model: cbind(successes, failures) ~ x"
                     if func == CBIND else "a term of its own in the fixed part: y ~ x + offset(log(exposure))")
            raise formula_error(self.formula, tok.pos, f"{func}(...) can only be {where}")
        if func not in ACCEPTED_FUNCTIONS:
            raise formula_error(self.formula, tok.pos,
                                f"unknown function {func!r}; accepted functions are "
                                f"{', '.join(ACCEPTED_FUNCTIONS)} (each applied to one column; "
                                "I(...) takes arithmetic such as I(x^2))")
        self.i += 2
        if func == "I":
            return [self._expression(tok)]
        if self._is_call():
            raise self._fail(f"expected one column name inside {func}(...), not a function call (functions do "
                             "not nest, except inside I(...))")
        column = self._name(f"one column name inside {func}(...)")
        if func == "poly":
            return self._poly(column)
        self._take(")", f"')' closing {func}(...); {func}() takes one column name")
        if func == "C":
            return [Variable(column, categorical=True)]
        return [Variable(column, transform=Transform(func))]

    def _poly(self, column: str) -> list[Variable]:
        self._take(",", "',' and a degree: poly(x, k) takes a column and a degree, e.g. poly(x, 2)")
        tok = self.tok
        if tok.kind != NUMBER or not tok.text.isdigit() or not 1 <= int(tok.text) <= MAX_POLY_DEGREE:
            raise self._fail(f"expected the degree of poly(), a whole number from 1 to {MAX_POLY_DEGREE}")
        self.i += 1
        self._take(")", "')' closing poly(x, k); it takes a column and a degree (for raw powers write "
                   "x + I(x^2))")
        degree = int(tok.text)
        return [Variable(column, poly=PolyComponent(degree, k)) for k in range(1, degree + 1)]

    def _expression(self, call: Token) -> Variable:
        reader = ExpressionParser(self.formula, self.tokens, self.i)
        expression = reader.parse()
        self.i = reader.i
        self._take(")", "an operator (+ - * / ^) or ')' closing I(...)")
        if not expression_columns(expression):
            raise formula_error(self.formula, call.pos,
                                "I(...) must use at least one column: a constant is not a predictor "
                                "(the intercept is already in the model)")
        return Variable(expression.text(), expression=expression)

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
            if self._is(")") and self.tokens[self.i + 1].is_op("^"):
                raise formula_error(self.formula, open_tok.pos,
                                    "R's (a + b)^2 shorthand for interactions is not supported; write the "
                                    "terms out, e.g. a + b + a:b")
            if self.tok.kind == END or self._is(")"):
                raise formula_error(self.formula, open_tok.pos,
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
            raise formula_error(self.formula, open_tok.pos, "a random-effect term needs an intercept or a predictor")
        for t in terms_t:
            for v in t.variables:
                for column in set(v.columns) & {g for p in parts for g in p}:
                    raise formula_error(self.formula, open_tok.pos,
                                        f"{column!r} is both a predictor and the grouping factor of this term")
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
        if self._is_call():
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


def _check_response_not_predictor(response: tuple[str, ...], fixed: tuple[Term, ...],
                                  random: list[RandomTerm], offset: Offset | None) -> None:
    used = {c for t in fixed for v in t.variables for c in v.columns}
    used |= {c for r in random for t in r.terms for v in t.variables for c in v.columns}
    used |= {g for r in random for g in r.grouping}
    used |= set(offset.columns) if offset is not None else set()
    for column in response:
        if column in used:
            raise SpecError(f"the response {column!r} also appears on the right-hand side; "
                            "a column cannot explain itself")
