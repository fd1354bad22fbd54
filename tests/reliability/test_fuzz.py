"""Fuzzing (issue "Fuzzing"): random formulas and random small tables through the parser, the CSV
loader and the frequentist engine. Nothing may escape but compare_kit's own errors or a result.

Properties
----------
* ``test_parser_grammar`` / ``test_parser_raw_text`` / ``test_parser_long``: ``ModelSpec.from_formula``
  returns a spec or raises ``SpecError``, within a time limit; an accepted spec's canonical formula
  (``str(spec)``) parses back to the same spec, reads only columns named in the text, and is a fixed
  point. The grammar's formulas come with a family (and at times a success level): binomial ones
  mostly with a ``cbind(successes, failures)`` response, any with ``offset(...)`` terms, each
  sometimes broken.
* ``test_load_csv``: ``load_csv`` returns a table or raises ``DataError``; a table it returns holds
  exactly the cells of the file (numbers equal to the text, text kept as written, NA where promised).
* ``test_family_designs``: small tables for a family (made to fit it, then spoilt in a few cells, or
  drawn from the odd kinds): ``build_design`` gives outcome arrays aligned with the rows that fit the
  family (0/1, counts, successes within trials, a finite offset), or raises a ``CompareKitError``; a
  design that builds is refused by today's engine with the family's error, never fitted as Gaussian.
* ``test_fit_frequentist``: small odd tables (NaN, inf, 1e308, unicode labels, odd dtypes, single rows,
  constant and all-missing columns, duplicate names), given directly or through a CSV file, with a few
  formulas valid for their columns: ``fit_frequentist`` returns a fit whose estimates are finite or
  explicitly marked (a note), or raises a ``CompareKitError``.

Warnings are recorded, not turned into errors (pyproject's ``filterwarnings = ["error"]`` would
otherwise make every library notice an escape): a warning raised at a line of compare_kit itself
fails the test; warnings from libraries are counted as hypothesis events.

Running
-------
The CI slice is derandomized (the same examples on every run, no example database) and sized to
run in well under a minute. A long run raises the number of examples and explores fresh ones::

    COMPARE_KIT_FUZZ_EXAMPLES=8000 COMPARE_KIT_FUZZ_FIT_EXAMPLES=4000 .venv/bin/python -m pytest -q \
        -p no:cacheprovider tests/reliability/test_fuzz.py --hypothesis-show-statistics

``COMPARE_KIT_FUZZ_EXAMPLES=N`` runs N examples of each parser and loader property (N // 4 of
the long formulas) and N // 10 fits (``COMPARE_KIT_FUZZ_FIT_EXAMPLES`` overrides the latter); with
either set, examples are random (``--hypothesis-seed=S`` repeats a run).
``--hypothesis-show-statistics`` prints each property's example count and events (the CI slice:
400 + 400 + 100 formulas, 250 CSV files, 150 fits, 300 family designs, about 30 s on two busy cores).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import signal
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

import compare_kit as ck
from compare_kit import spec as spec_module
from compare_kit.data import MISSING_TOKENS
from compare_kit.design import INTERCEPT
from compare_kit.errors import CompareKitError, SpecError
from compare_kit.outcomes import FitSide, check_fit_available
from compare_kit.results import Effect, FrequentistFit, validate_estimates
from compare_kit.spec import Family, ModelSpec, quote_name

# ------------------------------------------------------------------------------------------ settings

_LONG = os.environ.get("COMPARE_KIT_FUZZ_EXAMPLES")
_LONG_FITS = os.environ.get("COMPARE_KIT_FUZZ_FIT_EXAMPLES")
LONG_RUN = bool(_LONG or _LONG_FITS)
PARSER_EXAMPLES = int(_LONG) if _LONG else 400
LOADER_EXAMPLES = int(_LONG) if _LONG else 250
FIT_EXAMPLES = int(_LONG_FITS) if _LONG_FITS else (max(int(_LONG) // 10, 1) if _LONG else 150)
PARSE_SECONDS = 5.0  # a formula is at most 2000 characters: parsing it is a matter of milliseconds
FIT_SECONDS = 60.0  # a table of at most 16 rows


def _settings(examples: int) -> settings:
    # derandomize: the CI slice tries the same examples on every run; database=None: nothing is
    # written to .hypothesis/ and no example from an earlier run is replayed; deadline=None: a fit's
    # time varies with the machine's load (each call has its own generous time limit instead).
    return settings(max_examples=examples, derandomize=not LONG_RUN, database=None, deadline=None,
                    print_blob=True)


PACKAGE_DIR = str(Path(ck.__file__).resolve().parent)


# ----------------------------------------------------------------------------- compare_kit frames


def _compare_kit_frame(tb: Any) -> str:
    """The innermost frame of a traceback that lies in compare_kit, as ``module.py:function``."""
    where = "outside compare_kit"
    for frame, _ in traceback.walk_tb(tb):
        path = frame.f_code.co_filename
        if path.startswith(PACKAGE_DIR):
            where = f"{os.path.relpath(path, PACKAGE_DIR)}:{frame.f_code.co_name}"
    return where


def _function_at(path: str, line: int) -> str:
    """The name of the function (or method) that holds ``line`` of the file at ``path``."""
    source = Path(path).read_text(encoding="utf-8").splitlines()[: line]
    for text in reversed(source):
        m = re.match(r"\s*(?:async\s+)?def\s+(\w+)", text)
        if m:
            return m.group(1)
    return "<module>"


# --------------------------------------------------------------------------------- running a call


class TimeLimit(Exception):
    """A call took longer than its limit (raised from a SIGALRM handler)."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def interrupt(_signum: int, _frame: Any) -> None:
        raise TimeLimit(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    value: Any = None
    error: CompareKitError | None = None


def run_guarded(call: Callable[[], Any], allowed: type[CompareKitError], seconds: float,
                what: str) -> Outcome:
    """Run ``call``: its value, or the allowed compare_kit error; anything else fails the test.

    Warnings are recorded; one raised at a line of compare_kit fails the test, the others are
    counted as events.
    """
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with _time_limit(seconds):
                outcome = Outcome(value=call())
        except allowed as exc:
            outcome = Outcome(error=exc)
        except TimeLimit as exc:
            raise AssertionError(f"{what} {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - the point of the test
            where = _compare_kit_frame(exc.__traceback__)
            raise AssertionError(f"{what}: {type(exc).__name__} escaped (innermost compare_kit frame "
                                 f"{where}): {exc}") from exc
    elapsed = time.perf_counter() - start
    assert elapsed < seconds, f"{what} took {elapsed:.1f} s (limit {seconds:g} s)"
    for w in caught:
        if w.filename.startswith(PACKAGE_DIR):
            where = f"{os.path.relpath(w.filename, PACKAGE_DIR)}:{_function_at(w.filename, w.lineno)}"
            raise AssertionError(f"{what}: compare_kit itself warned at {where} (line {w.lineno}): "
                                 f"{w.category.__name__}: {w.message}")
        event(f"library warning escaped {what}: {w.category.__name__} at {Path(w.filename).name}:{w.lineno}: "
              f"{str(w.message)[:60]}")
    if outcome.error is not None:
        message = str(outcome.error)
        assert message.strip(), f"{what} raised {type(outcome.error).__name__} without a message"
        event(f"{what}: {type(outcome.error).__name__}")
    return outcome


# ------------------------------------------------------------------------------ formula strategies

PLAIN_NAMES = ["y", "x", "z", "g", "h", "floor", "county", "log_radon", "C", "log", "exp", "scale", "_a",
               "a1", "x_2", "Y", "X"]
QUOTED_NAMES = ["`my col`", "`my.col`", "`Zürich`", "`日本語`", "`1`", "`0`", "`x y`", "`a:b`", "`(1|g)`",
                "`x.__class__`", "`eval(x)`", "`__import__('os')`", "``", "` `", "`unclosed", "`\t`", "`~`",
                "`a|b`", "`é`", "`<script>alert(1)</script>`", "`\u200b`", "`NA`", "`x `", "` x`"]
INJECTIONS = [
    "__import__('os')", "__import__(\"os\").system('id')", "x.__class__", "x.__class__.__bases__",
    "eval(x)", "eval('1+1')", "exec(x)", "os.system('ls')", "lambda: 0", "[x for x in ()]", "{x}",
    "x; import os", "x if y else z", "getattr(x, 'y')", "I(x**2)", "Q('x')", "x[0]", "x()", "print(x)",
    "open('/etc/passwd')", "${x}", "%(x)s", "{0}", "\\x41", "x == 1", "not x", "x and y", "breakpoint()",
    "globals()", "__builtins__", "__x", "x.y", "...", "C(x).__class__", "log(__import__)", "`x`.y",
    "C(`__import__('os')`)", "f'{x}'", "x @ y", "x ** 2", "-x", "+x", "~x", "x ~ y ~ z",
    "cbind(__import__('os'), x)", "offset(__import__('os'))", "offset(eval(x))", "cbind(x.y, z)",
    "offset(`__class__`)", "offset(x)[0]", "cbind(exec, x)",
]
FAMILIES = [None, None, "gaussian", "bernoulli", "binomial", "binomial", "binomial", "poisson", "Poisson"]
ODD_FAMILIES = ["gamma", "", "binary", "BINOMIAL ", "poisson()", "__import__('os')", "logit"]
ODD_CBIND = ["cbind()", "cbind(x)", "cbind(x, y, z)", "cbind(log(x), y)", "cbind(x - y - z, w)", "cbind(x y)",
             "cbind(x, x - x)", "cbind(1, x)", "cbind(x, n - x", "cbind(x + y, z)", "cbind((x), y)",
             "cbind(C(x), y)", "cbind(x, -y)", "cbind(`x`, `n` - `x`)"]
ODD_OFFSETS = ["offset()", "offset(1)", "offset(x, y)", "offset(C(x))", "offset((1 | g))", "offset(x",
               "offset(poly(x, 2))", "offset(x) * z", "z:offset(x)", "- offset(x)", "offset(offset(x))",
               "(offset(x) | g)", "offset(x) + offset(z)"]
ACCEPTED_FUNCS = ["C", "log", "sqrt", "exp", "center", "scale"]
UNKNOWN_FUNCS = ["eval", "exec", "__import__", "i", "Poly", "log10", "abs", "Q", "c", "LOG", "open",
                 "print", "lambda", "scale ", "C ", "ns", "factor", "offset", "Log", "ℓog"]
NUMBERS = ["0", "1", "-1", "2", "0.5", "1.0", "01", "00", "1e308", "1e999", "99999999999999999999999",
           "-0", "+1", "1.", "0x10", "1_0", "١", "½", "∞", "nan", "inf", "0" * 50, "1" * 300]
OPERATORS = ["+", "-", "*", ":", "/", "|", "||", "~", "(", ")", "|||", "**", "^", "%in%", ",", "=", "==",
             ".", "$", "@", "!", "&", "<-", "`", "'", '"', "\\", "#", ";", "[", "]", "{", "}"]
SPACES = ["", " ", " ", " ", "  ", "\t", "\u00a0", "\n", "\u3000", "\u200b", "\r", "\x00", "\ufeff"]
ODD_CHARS = OPERATORS + ["é", "ß", "日", "\u0301", "\U0001f4c8", "\x7f", "\u202e", "İ", "ﬁ", "Ⅻ", "\x1b"]

GOOD_QUOTED = ["`my col`", "`my.col`", "`Zürich`", "`日本語`", "`1`", "`x y`", "`a:b`", "`(1|g)`", "`NA`",
               "`x.__class__`", "`eval(x)`", "`é`", "`<script>alert(1)</script>`", "` x`", "`\t`"]
GOOD_SPACES = ["", " ", " ", " ", "  ", "\t"]
regex_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
odd_names = st.one_of(st.sampled_from(QUOTED_NAMES), st.sampled_from(INJECTIONS),
                      st.text(max_size=5).map(lambda s: f"`{s}`"))


@st.composite
def grammar_formulas(draw: st.DrawFn, family: str | None = None) -> str:
    """A formula built from the grammar; each piece is, at a drawn rate, a slightly broken variant.
    A binomial ``family`` gets a ``cbind()`` response (a plain one when broken), any family an
    occasional ``offset(...)``."""
    rate = draw(st.sampled_from([0, 0, 0, 0, 0, 0, 1, 3, 10, 30]))  # percent of pieces drawn broken

    def odd() -> bool:
        return rate > 0 and draw(st.integers(0, 99)) < rate

    def space() -> str:
        return draw(st.sampled_from(SPACES if odd() else GOOD_SPACES))

    def name() -> str:
        if odd():
            return draw(odd_names)
        return draw(st.sampled_from(PLAIN_NAMES) | st.sampled_from(GOOD_QUOTED) | regex_names)

    def arithmetic(depth: int = 0) -> str:
        """The inside of I(...): numbers, names, + - * / ^ **, unary minus, log/sqrt/exp, parentheses."""
        if odd():
            return draw(st.sampled_from(["", "x +", "+x", "x ^", "abs(x)", "center(x)", "x ==1", "1e999 * x",
                                         "(x", "x)", "x, 2", "--" * 20 + "x", "(" * 40 + "x" + ")" * 40,
                                         "__import__('os')", "x.y", "3", "2 * 3", "I(x)", "poly(x, 2)"]))
        kind = draw(st.integers(0, 6 if depth < 3 else 1))
        if kind == 0:
            return name()
        if kind == 1:
            return draw(st.sampled_from(["2", "0.5", "1e3", ".25", "10", "1E-2"])) + space() + "*" + space() + name()
        if kind == 2:
            return f"{draw(st.sampled_from(['log', 'sqrt', 'exp']))}({space()}{arithmetic(depth + 1)}{space()})"
        if kind == 3:
            return f"({space()}{arithmetic(depth + 1)}{space()})"
        if kind == 4:
            return f"-{space()}{arithmetic(depth + 1)}"
        op = draw(st.sampled_from(["+", "-", "*", "/", "^", "**"]))
        return f"{arithmetic(depth + 1)}{space()}{op}{space()}{arithmetic(depth + 1)}"

    def variable(categorical: bool = True) -> str:
        if odd():
            func = draw(st.sampled_from(UNKNOWN_FUNCS + ACCEPTED_FUNCS))
            arg = draw(st.sampled_from(["", "{n}, {n}", "{n}", "C({n})", "log({n})", "({n})", "1", "-{n}",
                                        "{n}, 0", "{n}, 11", "{n}, 2.5", "{n}, 2, 3", "{n},", "{n} ^ 2"]))
            return f"{func}{space()}({arg.format(n=name())})"
        kind = draw(st.integers(0, 7))
        if kind == 0:
            funcs = ACCEPTED_FUNCS if categorical else ACCEPTED_FUNCS[1:]
            return f"{draw(st.sampled_from(funcs))}({space()}{name()}{space()})"
        if kind == 1 and categorical:
            return f"poly({space()}{name()}{space()},{space()}{draw(st.integers(1, 10))}{space()})"
        if kind == 2 and categorical:
            return f"I({space()}{arithmetic()}{space()})"
        return name()

    def joined(part: Callable[[], str], seps: list[str], odd_seps: list[str], most: int) -> str:
        out = part()
        for _ in range(draw(st.integers(0, most - 1))):
            sep = draw(st.sampled_from(odd_seps if odd() else seps))
            out += space() + sep + space() + part()
        return out

    def interaction() -> str:
        return joined(variable, [":"], ["::", ".", "^", "%in%", "$"], 3)

    def product() -> str:
        return joined(interaction, ["*", "*", ":"], ["**", "/", "%in%", "*:"], 2)

    def intercept() -> str:
        return draw(st.sampled_from(NUMBERS if odd() else ["0", "1", "1"]))

    def random_item() -> str:
        return intercept() if draw(st.integers(0, 2)) == 0 else product()

    def random_term() -> str:
        body = joined(random_item, ["+", "+", "- 1 +"], ["*", "~", ",", "++", "|", "-"], 3)
        bar = draw(st.sampled_from(["|||", "", "/", "~", "| |", "(|"] if odd() else ["|", "|", "||"]))
        if odd():
            groups = draw(st.sampled_from(["(1 | g)", "", "1", "0", "g +", "g | h", "log(g)", "C(g)", "g/"]))
        else:
            groups = joined(name, ["/", ":", "/"], ["|", "+", "*", "//", "(g)"], 3)
        close = draw(st.sampled_from(["", "))", ") )", "]"])) if odd() else ")"
        return f"({space()}{body}{space()}{bar}{space()}{groups}{space()}{close}"

    def item() -> str:
        if odd():
            return draw(st.sampled_from(INJECTIONS + ODD_OFFSETS))
        kind = draw(st.integers(0, 6))
        if kind == 6:
            return f"offset({space()}{arithmetic()}{space()})"
        return intercept() if kind == 0 else product() if kind <= 3 else random_term()

    def count_column() -> str:
        return name() if draw(st.booleans()) else f"{name()}{space()}-{space()}{name()}"

    def cbind() -> str:
        return f"cbind({space()}{count_column()}{space()},{space()}{count_column()}{space()})"

    rhs = joined(item, ["+", "+", "- 1 +"], ["*", ":", "/", "|", "~", "", ",", "++", "+-", "-"], 4)
    if not odd() and draw(st.integers(0, 5)) == 0:
        rhs = draw(st.sampled_from(["-1 + ", "- 1 +", "0 + ", "1 + "])) + rhs
    binomial = str(family).strip().lower() == "binomial"
    if odd():
        response = draw(st.sampled_from(INJECTIONS + ODD_CBIND + ["", "C(y)", "1", "(1 | g)", "offset(y)"]))
    else:
        gaussian = family is None or str(family).strip().lower() == "gaussian"
        plain = name() if not gaussian and draw(st.integers(0, 9)) > 0 else variable(categorical=False)
        response = cbind() if binomial != (draw(st.integers(0, 19)) == 0) else plain
    tilde = draw(st.sampled_from(["", "~~", "=", "~ ~", "<-", "∼"])) if odd() else "~"
    text = f"{space()}{response}{space()}{tilde}{space()}{rhs}{space()}"
    if rate and draw(st.integers(0, 3)) == 0:
        text = draw(mutated(text))
    return text


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """``text`` slightly broken: a character deleted, inserted or replaced, a cut, a stray bracket."""
    for _ in range(draw(st.integers(1, 2))):
        if not text:
            break
        i = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["delete", "insert", "replace", "cut", "paren", "double"]))
        char = draw(st.sampled_from(ODD_CHARS) | st.characters())
        if how == "delete":
            text = text[:i] + text[i + 1:]
        elif how == "insert":
            text = text[:i] + char + text[i:]
        elif how == "replace":
            text = text[:i] + char + text[i + 1:]
        elif how == "cut":
            text = text[:i]
        elif how == "paren":
            text = text[:i] + draw(st.sampled_from(["(", ")", "(1 | ", "`"])) + text[i:]
        else:
            text = text[:i] + text[max(i - 5, 0):i] + text[i:]
    return text


FORMULA_ALPHABET = "yxgzh~+-*:/|() 01`\t_.'\"Clogsqrtexpcenterscalecbindoffset,[]{}\\é日"
raw_formulas = st.one_of(
    st.text(),
    st.text(alphabet=FORMULA_ALPHABET),
    st.text(alphabet=FORMULA_ALPHABET, min_size=5, max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30).map(lambda s: f"y ~ {s}"),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30).map(lambda s: f"y ~ x + ({s} | g)"),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30).map(lambda s: f"y ~ x + offset({s})"),
)


@st.composite
def long_formulas(draw: st.DrawFn) -> str:
    """Up to and just beyond the 2000-character limit: many terms, factors, levels or parentheses."""
    count = draw(st.integers(1, 1100))
    names_ = [f"a{i}" for i in range(count)] if draw(st.booleans()) else ["a"] * count
    kind = draw(st.sampled_from(["product", "sum", "interaction", "nesting", "parens", "plus", "random",
                                 "backtick"]))
    if kind == "product":
        text = "y ~ " + "*".join(names_)
    elif kind == "sum":
        text = "y ~ " + " + ".join(names_)
    elif kind == "interaction":
        text = "y ~ " + ":".join(names_)
    elif kind == "nesting":
        text = "y ~ (1 | " + "/".join(names_) + ")"
    elif kind == "parens":
        text = "y ~ " + "(" * count + "x" + ")" * draw(st.integers(0, count))
    elif kind == "plus":
        text = "y ~ x " + "+ " * count + "z"
    elif kind == "random":
        text = "y ~ " + " + ".join(f"(1 + x | {n})" for n in names_)
    else:
        text = "y ~ `" + "é" * count + "`"
    return text[: draw(st.integers(1, 2100))] if draw(st.booleans()) else text


# --------------------------------------------------------------------------------- parser checks


@contextmanager
def _length_limit(limit: int) -> Iterator[None]:
    saved = spec_module.MAX_FORMULA_LENGTH
    spec_module.MAX_FORMULA_LENGTH = limit
    try:
        yield
    finally:
        spec_module.MAX_FORMULA_LENGTH = saved


def _same_model(a: ModelSpec, b: ModelSpec) -> bool:
    return ((a.response, a.intercept, a.fixed, a.random, a.family, a.cbind, a.offset, a.success)
            == (b.response, b.intercept, b.fixed, b.random, b.family, b.cbind, b.offset, b.success))


def check_parse(text: str, family: str | None = None, success: str | None = None) -> None:
    outcome = run_guarded(lambda: ModelSpec.from_formula(text, family=family, success=success), SpecError,
                          PARSE_SECONDS, "from_formula")
    if outcome.error is not None:
        assert isinstance(outcome.error, SpecError)
        return
    spec = outcome.value
    event("formula accepted")
    assert isinstance(spec, ModelSpec)
    assert spec.formula == text
    assert (spec.cbind is not None) == (spec.family is Family.BINOMIAL), "cbind() is the binomial response only"
    event(f"accepted: {spec.family.value}" + (" with an offset" if spec.offset is not None else ""))
    for column in spec.columns:
        assert column in text, f"the spec reads column {column!r}, which the formula does not name"
        assert not column.startswith("__"), column
    canonical = str(spec)
    note(f"canonical: {canonical!r}")
    assert canonical == spec.canonical_formula()
    with _length_limit(max(len(canonical), spec_module.MAX_FORMULA_LENGTH)):
        # the canonical form of a valid formula may be longer than a user's formula may be
        again = run_guarded(lambda: ModelSpec.from_formula(canonical, family=spec.family, success=spec.success),
                            SpecError, PARSE_SECONDS, "from_formula(canonical)")
    assert again.error is None, f"the canonical form {canonical!r} of {text!r} does not parse: {again.error}"
    assert _same_model(again.value, spec), f"{canonical!r} parses to a different model than {text!r}"
    assert str(again.value) == canonical


@st.composite
def family_formulas(draw: st.DrawFn) -> tuple[str, str | None, str | None]:
    """A grammar formula with the family it is given and, at times, a success level (a broken family,
    or a success level where it does not belong, now and then)."""
    family = draw(st.sampled_from(ODD_FAMILIES if draw(st.integers(0, 19)) == 0 else FAMILIES))
    success = draw(st.sampled_from([None, None, None, "Y", "1", "", " "]))
    if family != "bernoulli" and draw(st.integers(0, 19)) > 0:
        success = None
    return draw(grammar_formulas(family)), family, success


@given(family_formulas())
@_settings(PARSER_EXAMPLES)
def test_parser_grammar(case: tuple[str, str | None, str | None]) -> None:
    """Formulas built from the grammar, valid and slightly broken, with a family, parse or raise SpecError."""
    text, family, success = case
    note(f"family={family!r}, success={success!r}")
    check_parse(text, family, success)


@given(raw_formulas)
@_settings(PARSER_EXAMPLES)
def test_parser_raw_text(text: str) -> None:
    """Any text parses or raises SpecError."""
    check_parse(text)


@given(long_formulas())
@_settings(max(PARSER_EXAMPLES // 4, 50))
def test_parser_long(text: str) -> None:
    """Long formulas (up to the length limit) parse quickly or raise SpecError."""
    check_parse(text)


# -------------------------------------------------------------------------------- CSV strategies

SPECIAL_CELLS = [
    "", " ", "NA", "nan", "NaN", "None", "null", "NULL", "N/A", ".", "inf", "-inf", "Inf", "+inf",
    "Infinity", "-Infinity", "infinity", "1e308", "-1e308", "1e309", "1.7976931348623157e308", "5e-324",
    "99999999999999999999", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
    "1e19", "1e300", "007", "0", "-0", "+3", ".5", "5.", "1_000", "١٢", "0x1F", "1e", "e5", "  3 ", "\t4",
    "½", "²", "Ⅻ", "<script>alert(1)</script>", "=cmd|' /C calc'!A0", "\U0001f4c8", "Zürich", "ß", "İ",
    "a,b", "a;b", "a\tb", 'say "hi"', "line\nbreak", "cr\rcell", "\x00", "\ufeff", "\u2028", "\x0c",
    "1,5", "TRUE", "false", "1.0", "2", "3", "-2.5", "1e-5", "0.0", "00", "+0", "- 1",
]
HEADER_NAMES = ["y", "x", "g", "h", "county", "log_radon", "my col", "my.col", "Zürich", "日本語", " y ",
                "NA", "1", "", " ", "\ufeffy", "<b>x</b>", "a,b", "a;b", "a\tb", '"q"', "x\ny", "\x1c"]

cells = st.one_of(
    st.sampled_from(SPECIAL_CELLS), st.sampled_from(SPECIAL_CELLS),
    st.integers(-(2**70), 2**70).map(str), st.integers(-5, 5).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.floats(-1e3, 1e3).map(str),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=6),
)
GOOD_HEADERS = ["y", "x", "g", "h", "county", "log_radon", "my col", "my.col", "Zürich", "日本語", " y ", "NA",
                "1", "<b>x</b>"]
header_names = st.one_of(*[st.sampled_from(GOOD_HEADERS)] * 6, st.sampled_from(HEADER_NAMES),
                         st.text(alphabet=st.characters(codec="utf-8"), max_size=5))


@dataclass(frozen=True)
class CsvCase:
    raw: bytes
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    text_columns: tuple[str, ...]
    exact: bool  # the file is well formed: the loaded table must hold exactly ``header`` and ``rows``


_BREAKS = re.compile(r"[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


@st.composite
def csv_cases(draw: st.DrawFn) -> CsvCase:
    ncols = draw(st.integers(1, 4))
    header = draw(st.lists(header_names, min_size=ncols, max_size=ncols))
    nrows = draw(st.sampled_from([0, 1, 1, 2, 3, 4, 5, 6, 8]))
    column_cells = [draw(st.one_of(cells, st.sampled_from(["1", "2.5", "-3", "", "NA", "1e308"]),
                                   st.sampled_from(["a", "b", "NA", "007", "Zürich", ""])))
                    for _ in range(ncols)]
    # each column mostly of one kind (so numeric columns happen), sometimes of any cell
    rows = [[draw(st.sampled_from([column_cells[j], column_cells[j]]) | cells) for j in range(ncols)]
            for _ in range(nrows)]
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    terminator = draw(st.sampled_from(["\n", "\n", "\r\n", "\r\n", "\r"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=terminator, quoting=quoting)
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    exact = True
    if draw(st.booleans()):
        text = "\ufeff" + text
    blank = draw(st.sampled_from(["", "", "\n", "\n\n", " \n", terminator * 2, "\t\n"]))
    text = text + blank if draw(st.booleans()) else text.replace(terminator, terminator + blank, 1)
    damage = draw(st.sampled_from(["none"] * 12 + ["ragged", "cut", "junk", "quote"]))
    if damage != "none":
        exact = False
        if damage == "ragged":
            text += delimiter.join(["1"] * (ncols + 1)) + terminator
        elif damage == "cut":
            text = text[: draw(st.integers(0, len(text)))]
        elif damage == "junk":
            i = draw(st.integers(0, len(text)))
            text = text[:i] + draw(st.sampled_from(ODD_CHARS + ['"', '""', "\x00", "\ufeff"])) + text[i:]
        else:
            text = '"' + text
    encoding = draw(st.sampled_from(["utf-8"] * 12 + ["utf-16", "latin-1", "cp1252"]))
    raw = text.encode(encoding, errors="replace")
    if encoding != "utf-8":
        exact = False
    text_cols = tuple(draw(st.lists(st.sampled_from(header), max_size=2)))
    # the loader reads the header from the first line and detects the delimiter in it; the
    # property holds the table to the written cells when that is unambiguous
    names_ok = (all(h.strip() and not _BREAKS.search(h) and not set(h) & set(',;\t"') for h in header)
                and not header[0].startswith("\ufeff"))  # a first name's BOM is the file's BOM
    stripped = [h.strip() for h in header]
    exact = exact and names_ok and len(set(stripped)) == len(stripped) and (ncols > 1 or delimiter == ",")
    return CsvCase(raw, tuple(header), tuple(tuple(r) for r in rows), text_cols, exact)


_LEADING_ZERO = re.compile(r"[+-]?0\d")
_SCRATCH: list[Path] = []


def _scratch(factory: Any) -> Path:
    """One folder for the whole run: each example overwrites its file."""
    if not _SCRATCH:
        _SCRATCH.append(factory.mktemp("fuzz"))
    return _SCRATCH[0]


def check_table(case: CsvCase, frame: pd.DataFrame) -> None:
    """The loaded table holds the written cells: numbers as written, text as written, NA as promised."""
    header = [h.strip() for h in case.header]
    assert list(frame.columns) == header
    rows = [[c.strip() for c in r] for r in case.rows if any(c.strip() for c in r)]
    assert len(frame) == len(rows), f"{len(rows)} data rows were written, {len(frame)} loaded"
    for j, name in enumerate(header):
        series = frame[name]
        written = [r[j] for r in rows]
        if pd.api.types.is_numeric_dtype(series):
            assert name not in case.text_columns, f"{name!r} was asked to stay text but is numeric"
            present = [c for c in written if c not in MISSING_TOKENS]
            assert not any(_LEADING_ZERO.match(c) for c in present), f"{name!r}: leading zeros became numbers"
            for cell, value in zip(written, series.tolist(), strict=True):
                if cell in MISSING_TOKENS:
                    assert math.isnan(value), f"{name!r}: missing cell {cell!r} loaded as {value!r}"
                else:
                    assert float(cell) == value, \
                        f"{name!r}: the cell {cell!r} loaded as {value!r} ({series.dtype})"
        else:
            for cell, value in zip(written, series.tolist(), strict=True):
                expected = cell if cell != "" else None
                assert value == expected, f"{name!r}: the text cell {cell!r} loaded as {value!r}"


@given(case=csv_cases())
@_settings(LOADER_EXAMPLES)
def test_load_csv(case: CsvCase, tmp_path_factory: Any) -> None:
    """A CSV file loads into exactly its cells, or raises DataError."""
    path = _scratch(tmp_path_factory) / "table.csv"
    path.write_bytes(case.raw)
    outcome = run_guarded(lambda: ck.load_csv(path, text_columns=case.text_columns), ck.DataError, 30.0,
                          "load_csv")
    if outcome.value is None:
        return
    frame = outcome.value
    event("table loaded")
    assert isinstance(frame, pd.DataFrame)
    if case.exact:
        check_table(case, frame)


# ------------------------------------------------------------------------------ table strategies

LABELS = ["a", "b", "c", "a", "b", "NA", "", "Zürich", "日本", "<b>x</b>", "007", "7", " a", "None",
          "\U0001f4c8", "a\nb", "İ", "ß", "ss", "1.0", "1"]
SPECIAL_FLOATS = [1e308, -1e308, 5e-324, 0.0, -0.0, math.nan, math.inf, -math.inf, 1e-300, 1e15, 2.0**53]
ROLE_NAMES = ["y", "x", "g", "h", "log_radon", "floor", "county", "C", "log", "_u", "my col", "my.col",
              "Zürich", "日本語", "<b>x</b>", "1", "0", "NA", "a:b", "(1|g)", "x.__class__", "eval(x)",
              "Intercept", "(Intercept)", "sd__Observation", "Residual", "Observation", "a b ", "é", "ga",
              "gb", "xa", "g1"]


def _quotable(name: str) -> bool:
    try:
        spec = ModelSpec.from_formula(f"{quote_name(name)} ~ 1")
    except SpecError:
        return False
    return spec.response.column == name


name_chars = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="`")
role_names = st.one_of(st.sampled_from(ROLE_NAMES),
                       st.text(name_chars, min_size=1, max_size=5)).filter(_quotable)

KINDS = {
    "normal": st.floats(-100, 100, allow_nan=False),
    "small_int": st.integers(0, 3),
    "groups": st.sampled_from(["a", "b", "c", "d", "e"]),
    "labels": st.sampled_from(LABELS),
    "labels_none": st.sampled_from(LABELS) | st.none(),
    "floats": st.floats() | st.sampled_from(SPECIAL_FLOATS),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "huge_int": st.integers(2**63, 2**80),
    "mixed": st.one_of(st.text(max_size=3), st.floats(), st.integers(-3, 3), st.none(), st.booleans(),
                       st.builds(Decimal, st.integers(-5, 5)), st.just(b"x"), st.just((1, 2))),
    "bool": st.booleans(),
}


@st.composite
def columns(draw: st.DrawFn, n: int, kinds: list[str]) -> Any:
    kind = draw(st.sampled_from(kinds))
    if kind in ("seeded_normal", "seeded_groups"):  # varied values hypothesis rarely draws by itself
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        if kind == "seeded_groups":
            return list(rng.choice(["a", "b", "c", "d", "e", "f"][: draw(st.integers(2, 6))], size=n))
        return list(np.round(rng.normal(draw(st.sampled_from([0, 10, -5])), 2.0, size=n),
                             draw(st.sampled_from([0, 1, 3, 10]))))
    if kind in KINDS:
        return draw(st.lists(KINDS[kind], min_size=n, max_size=n))
    if kind == "constant":
        return [draw(st.floats(-5, 5) | st.sampled_from(LABELS))] * n
    if kind == "missing":
        return [draw(st.sampled_from([None, math.nan, pd.NA, pd.NaT]))] * n
    if kind == "categorical":
        values = draw(st.lists(st.sampled_from(LABELS[:5]) | st.none(), min_size=n, max_size=n))
        return pd.Categorical(values, categories=sorted(set(LABELS[:5]) | {"unused"}))
    if kind == "nullable_int":
        return pd.array(draw(st.lists(st.integers(-5, 5) | st.none(), min_size=n, max_size=n)), dtype="Int64")
    if kind == "nullable_float":
        return pd.array(draw(st.lists(st.floats(-5, 5) | st.none(), min_size=n, max_size=n)), dtype="Float64")
    if kind == "string":
        return pd.array(draw(st.lists(st.sampled_from(LABELS) | st.none(), min_size=n, max_size=n)),
                        dtype="string")
    if kind == "datetime":
        return pd.to_datetime(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), unit="D")
    if kind == "timedelta":
        return pd.to_timedelta(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), unit="D")
    if kind == "complex":
        return np.array(draw(st.lists(st.complex_numbers(max_magnitude=10), min_size=n, max_size=n)),
                        dtype=complex)
    raise AssertionError(kind)  # pragma: no cover


ODD_KINDS = ["floats", "int64", "huge_int", "mixed", "bool", "constant", "missing", "categorical",
             "nullable_int", "nullable_float", "string", "datetime", "timedelta", "complex"]
Y_KINDS = ["seeded_normal"] * 20 + ["normal"] * 6 + ["small_int"] * 2 + ODD_KINDS + ["labels"]
X_KINDS = ["seeded_normal"] * 8 + ["normal"] * 4 + ["small_int"] * 8 + ODD_KINDS + ["labels"]
G_KINDS = ["seeded_groups"] * 16 + ["groups"] * 4 + ["labels"] * 4 + ["small_int"] * 4 + ["labels_none"] * 2 \
    + ODD_KINDS

FIT_FORMULAS = [
    "{y} ~ {x}", "{y} ~ {x} + (1 | {g})", "{y} ~ {x} + (1 | {g})", "{y} ~ {x} + (1 + {x} | {g})",
    "{y} ~ 1 + (1 + {x} | {g})", "{y} ~ C({g})", "{y} ~ 0 + {x}",
    "{y} ~ {x} + ({x} || {g})", "{y} ~ {x} + (1 | {g}/{h})", "{y} ~ (1 | {g}:{h})", "{y} ~ {x} * C({g})",
    "log({y}) ~ scale({x}) + (1 | {g})", "sqrt({y}) ~ center({x})", "exp({y}) ~ {x}", "{y} ~ 1",
    "{y} ~ (0 + {x} | {g})", "{y} ~ {x} + (1 | {g}) + (1 | {h})", "{y} ~ C({g}) + C({g}):{x}",
    "{y} ~ {x} + {g}", "{y} ~ log({x}) + (1 | {g})", "{y} ~ poly({x}, 2) + (1 | {g})",
    "{y} ~ poly({x}, 3) * C({g})", "{y} ~ I({x}^2) + (1 + I(-{x}) | {g})", "{y} ~ I({x} / ({x} - 1)) + (1 | {g})",
    "{y} ~ {x} + I(log({x}) * exp({x}))",
]


@dataclass(frozen=True)
class FitCase:
    frame: pd.DataFrame | None  # None: the table comes from ``csv`` through load_csv
    csv: str
    formula: str
    method: str
    mixedlm: bool


def _csv_cell(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


@st.composite
def fit_cases(draw: st.DrawFn) -> FitCase:
    n = draw(st.sampled_from([0, 1, 2, 3, 5, 8, 10, 12, 14, 16, 16, 16, 16]))
    y, x, g, h = draw(st.lists(role_names, min_size=4, max_size=4, unique=True))
    data = {y: draw(columns(n, Y_KINDS)), x: draw(columns(n, X_KINDS)), g: draw(columns(n, G_KINDS)),
            h: draw(columns(n, G_KINDS))}
    frame = pd.DataFrame(data)
    index = draw(st.sampled_from(["default"] * 6 + ["reversed", "duplicated", "text"]))
    if index == "reversed":
        frame.index = frame.index[::-1]
    elif index == "duplicated":
        frame.index = [0] * n
    elif index == "text":
        frame.index = [f"r{i}" for i in range(n)]
    layout = draw(st.sampled_from(["plain"] * 8 + ["duplicate column", "number label", "extra column"]))
    if layout == "duplicate column":
        frame = pd.concat([frame, frame[[draw(st.sampled_from([y, x, g, h]))]]], axis=1)
    elif layout == "number label":
        role = draw(st.sampled_from([y, x, g, h]))
        if role.isascii() and role.isdigit():
            frame = frame.rename(columns={role: int(role)})
    elif layout == "extra column":
        frame["extra"] = draw(columns(n, ODD_KINDS))
    formula = draw(st.sampled_from(FIT_FORMULAS)).format(y=quote_name(y), x=quote_name(x), g=quote_name(g),
                                                         h=quote_name(h))
    via_csv = layout == "plain" and draw(st.integers(0, 3)) == 0
    text = ""
    if via_csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(frame.columns)
        rows = frame.astype(object).itertuples(index=False)
        writer.writerows([[_csv_cell(v) for v in row] for row in rows])
        text = buffer.getvalue()
    return FitCase(None if via_csv else frame, text, formula, draw(st.sampled_from(["REML", "ML"])),
                   draw(st.booleans()))


# ----------------------------------------------------------------------------------- fit checks

ESTIMATED = {Effect.FIXED.value, Effect.RAN_VALS.value, Effect.RAN_COEFS.value}


def check_fit(fit: Any, spec: ModelSpec) -> None:
    """A fit's numbers are finite, or marked with a note saying why they are not."""
    assert isinstance(fit, FrequentistFit)
    est = fit.estimates
    validate_estimates(est)
    assert len(est), "a fit without estimates"
    for row in est.itertuples(index=False):
        label = f"{row.effect} {row.group} {row.level} {row.term}: {row.estimate}, se {row.std_error} " \
                f"[{row.conf_low}, {row.conf_high}] note {row.note!r}"
        for value in (row.estimate, row.std_error, row.conf_low, row.conf_high):
            assert not math.isinf(value), f"an infinite number in the estimates: {label}"
        if math.isnan(row.estimate):
            assert row.note, f"an empty estimate without a note: {label}"
            continue
        if row.effect in ESTIMATED and not row.note:
            assert all(math.isfinite(v) for v in (row.std_error, row.conf_low, row.conf_high)), \
                f"an estimate without its uncertainty and without a note: {label}"
            assert row.std_error >= 0 and row.conf_low <= row.estimate <= row.conf_high, label
        if row.effect == Effect.RAN_PARS.value and row.term.startswith("sd__"):
            assert row.estimate >= 0, label
        if row.effect == Effect.RAN_PARS.value and row.term.startswith("cor__"):
            assert -1 - 1e-9 <= row.estimate <= 1 + 1e-9, label
    stats = fit.stats
    assert stats.nobs == fit.design.n == fit.data_summary.n_used
    assert not math.isnan(stats.loglik), "loglik is NaN"
    if "not computed" not in stats.ic_note:
        assert not math.isnan(stats.aic) and not math.isnan(stats.bic), f"AIC/BIC NaN ({stats.ic_note})"
    if not math.isfinite(stats.loglik):
        event("fit: infinite loglik")
    if not fit.health.converged:
        assert fit.health.warnings, "a fit that did not converge says nothing about it"
    check_columns(fit, spec)


def _n_levels(series: pd.Series) -> int:
    if isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_numeric_dtype(series):
        return int(series.nunique())
    return int(series.astype(str).nunique())


def _expected_width(terms: tuple[Any, ...], intercept: bool, data: pd.DataFrame,
                    categorical: frozenset[str]) -> int:
    """The number of columns R's coding rule gives: a factor gets all its indicators when the term
    without it is absent from the model (the intercept is the empty term), else one fewer."""
    keys = {frozenset(t.variables) for t in terms} | ({frozenset()} if intercept else set())
    width = int(intercept)
    for term in terms:
        n = 1
        for var in term.variables:
            if var.as_is and var.column in categorical:  # poly(), I() and transforms are numbers
                levels = _n_levels(data[var.column])
                n *= levels if frozenset(term.variables) - {var} not in keys else levels - 1
        width += n
    return width


def check_columns(fit: Any, spec: ModelSpec) -> None:
    """Every term has its own columns: none is lost to another with the same name."""
    design = fit.design
    fixed_rows = int((fit.estimates["effect"] == Effect.FIXED.value).sum())
    problems = []
    expected = _expected_width(spec.fixed, spec.intercept, design.data, design.categorical)
    if fixed_rows != expected:
        problems.append(f"{fixed_rows} fixed coefficients for {expected} columns of {spec.fixed_labels}")
    if spec.intercept and not (design.x[INTERCEPT] == 1).all():
        problems.append(f"the {INTERCEPT} column is not all ones")
    for block in design.blocks:
        expected = _expected_width(block.term.terms, block.term.intercept, design.data, design.categorical)
        if block.z.shape[1] != expected:
            problems.append(f"{block.z.shape[1]} random coefficients for {expected} columns of "
                            f"{block.term.term_labels} | {block.group}")
    assert not problems, "; ".join(problems)


def _load_for(spec: ModelSpec, path: Path) -> pd.DataFrame:
    """What the CLI does: grouping and C() columns stay text."""
    text = list(spec.grouping_columns) + [v.column for t in spec.fixed for v in t.variables if v.categorical]
    return ck.load_csv(path, text_columns=text)


@given(case=fit_cases())
@_settings(FIT_EXAMPLES)
def test_fit_frequentist(case: FitCase, tmp_path_factory: Any) -> None:
    """fit_frequentist on odd small tables returns a clean fit or raises a CompareKitError."""
    spec = ModelSpec.from_formula(case.formula)
    frame = case.frame
    if frame is None:
        path = _scratch(tmp_path_factory) / "fit.csv"
        path.write_text(case.csv, encoding="utf-8")
        loaded = run_guarded(lambda: _load_for(spec, path), ck.DataError, 30.0, "load_csv")
        if loaded.value is None:
            return
        frame = loaded.value
    outcome = run_guarded(lambda: ck.fit_frequentist(spec, frame, method=case.method, mixedlm=case.mixedlm),
                          CompareKitError, FIT_SECONDS, "fit_frequentist")
    if outcome.value is None:
        return
    fit = outcome.value
    event(f"fitted: {fit.method}")
    complex_read = [c for c in spec.columns if c in frame.columns and frame[c].dtype.kind == "c"
                    and c not in fit.design.categorical and np.any(np.imag(frame[c].to_numpy()) != 0)]
    assert not complex_read, f"complex column(s) {complex_read} were fitted as their real parts"
    check_fit(fit, spec)


# ------------------------------------------------------------------------------ families' designs

FAMILY_FORMULAS = [
    ("{y} ~ {x} + (1 | {g})", "poisson"), ("{y} ~ {x} + offset(log({h})) + (1 | {g})", "poisson"),
    ("{y} ~ {x} + offset({h})", "poisson"), ("{y} ~ {x}", "bernoulli"), ("{y} ~ {x} + (1 | {g})", "bernoulli"),
    ("cbind({y}, {h} - {y}) ~ {x} + (1 | {g})", "binomial"), ("cbind({y}, {h}) ~ {x}", "binomial"),
    ("cbind({h} - {y}, {y}) ~ {x} + (1 | {g})", "binomial"), ("{y} ~ {x} + offset({h}) + (1 | {g})", None),
    ("{y} ~ {x} + (1 | {g})", None),
]
COUNT_KINDS = ["small_int"] * 12 + ["seeded_groups"] * 2 + ["labels"] * 2 + Y_KINDS


@dataclass(frozen=True)
class FamilyCase:
    frame: pd.DataFrame
    formula: str
    family: str | None
    success: str | None


ODD_CELLS = [-1, 0.5, math.nan, "x", 1e308, -0.0, 2, 0, None, True, "Y"]


@st.composite
def family_cases(draw: st.DrawFn) -> FamilyCase:
    """Half the tables are made to fit the family (counts, 0/1 or Y/N, successes within trials, positive
    exposures), then a few cells are spoilt; the other half are drawn from the odd kinds."""
    n = draw(st.sampled_from([0, 1, 3, 5, 8, 12, 16, 16, 16, 16]))
    y, x, g, h = draw(st.lists(role_names, min_size=4, max_size=4, unique=True))
    template, family = draw(st.sampled_from(FAMILY_FORMULAS))
    success = draw(st.sampled_from([None, "Y", "1", "a"])) if family == "bernoulli" else None
    if draw(st.booleans()):
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        counts = rng.poisson(draw(st.sampled_from([1.0, 3.0, 10.0])), n)
        outcome: Any = counts
        if family == "bernoulli" and draw(st.booleans()):
            outcome = rng.integers(0, 2, n)
            success = draw(st.sampled_from([None, None, "1", "0", "7"]))
        elif family == "bernoulli":
            outcome = rng.choice(["Y", "N"], n)
            success = draw(st.sampled_from(["Y", "Y", "N", "a", None]))
        extra = counts + rng.integers(0, 4, n) if "cbind" in template else rng.uniform(0.2, 5.0, n)
        frame = pd.DataFrame({y: outcome, x: rng.normal(size=n), g: rng.choice(["a", "b", "c", "d"], n), h: extra})
        for _ in range(draw(st.integers(0, 2)) if n else 0):
            column = draw(st.sampled_from([y, y, h, x]))
            frame[column] = frame[column].astype(object)
            frame.loc[draw(st.integers(0, n - 1)), column] = draw(st.sampled_from(ODD_CELLS))
            if draw(st.booleans()):  # numbers again where they all are (as a CSV would load them)
                frame[column] = _numbers_if_possible(frame[column])
    else:
        frame = pd.DataFrame({y: draw(columns(n, COUNT_KINDS)), x: draw(columns(n, X_KINDS)),
                              g: draw(columns(n, G_KINDS)), h: draw(columns(n, COUNT_KINDS + ["normal"] * 4))})
    formula = template.format(y=quote_name(y), x=quote_name(x), g=quote_name(g), h=quote_name(h))
    return FamilyCase(frame, formula, family, success)


def _numbers_if_possible(series: pd.Series) -> pd.Series:
    try:
        return pd.to_numeric(series)
    except (ValueError, TypeError):
        return series


def check_family_design(design: Any, spec: ModelSpec, n_input: int) -> None:
    """The outcome arrays are aligned with the rows and fit the family."""
    n = design.n
    assert len(design.y) == len(design.x) == len(design.rows) == n == design.summary.n_used
    assert np.all(np.diff(design.rows) > 0) and (n == 0 or 0 <= design.rows[0] <= design.rows[-1] < n_input)
    assert (design.offset is None) == (spec.offset is None)
    if design.offset is not None:
        assert design.offset.shape == (n,) and np.all(np.isfinite(design.offset))
    assert (design.trials is None) == (spec.family is not Family.BINOMIAL)
    y = design.y
    assert np.all(np.isfinite(y))
    if spec.family is Family.BERNOULLI:
        assert set(np.unique(y).tolist()) == {0.0, 1.0}
    elif spec.family is Family.POISSON:
        assert np.all(y >= 0) and np.all(y == np.round(y)) and np.any(y > 0)
    elif spec.family is Family.BINOMIAL:
        trials = design.trials
        assert np.all(trials > 0) and np.all((y >= 0) & (y <= trials)) and np.all(y == np.round(y))
        assert np.all(trials == np.round(trials)) and np.any(y > 0) and np.any(y < trials)


@given(case=family_cases())
@_settings(2 * FIT_EXAMPLES)  # a design is built in milliseconds
def test_family_designs(case: FamilyCase) -> None:
    """Odd small tables with a family: ``build_design`` gives arrays that fit the family, aligned with the
    rows, or raises a ``CompareKitError``; a non-Gaussian design that builds is fitted by the frequentist
    engine as its family (a valid tidy table, no residual row) or refused with a ``CompareKitError``, and
    refused by a study (the report is Gaussian-only for now); a Gaussian one with an offset is refused by
    both."""
    from compare_kit.design import build_design

    spec = ModelSpec.from_formula(case.formula, family=case.family, success=case.success)
    outcome = run_guarded(lambda: build_design(spec, case.frame), CompareKitError, FIT_SECONDS, "build_design")
    if outcome.value is None:
        return
    event(f"design built: {spec.family.value}" + (" with an offset" if spec.offset is not None else ""))
    check_family_design(outcome.value, spec, len(case.frame))
    if spec.family is Family.GAUSSIAN and spec.offset is None:
        return
    fitted = run_guarded(lambda: ck.fit_frequentist(spec, case.frame), CompareKitError, FIT_SECONDS,
                         "fit_frequentist")
    if spec.family is Family.GAUSSIAN:
        assert isinstance(fitted.error, SpecError) and "not available yet" in str(fitted.error), fitted
    elif fitted.value is not None:
        fit = fitted.value
        event(f"fitted: {spec.family.value} {fit.method}")
        validate_estimates(fit.estimates)
        assert fit.spec.family is spec.family and fit.method in ("ML", "Laplace")
        pars = fit.table(Effect.RAN_PARS)
        assert "Residual" not in set(pars["group"]) and fit.stats.loglik_method == "ML"
        assert fit.fitted().shape == (fit.design.n,)
    # a study's refusal of a Gaussian model with an offset (before any fit;
    # fit_bayesian itself is not run here: importing PyMC would change the recursion limit under Hypothesis)
    refused = run_guarded(lambda: check_fit_available(spec, FitSide.STUDY), CompareKitError, FIT_SECONDS,
                          "check_fit_available")
    if spec.family is Family.GAUSSIAN and spec.offset is not None:
        assert isinstance(refused.error, SpecError) and "not available yet" in str(refused.error), refused
    else:
        assert refused.error is None, refused
