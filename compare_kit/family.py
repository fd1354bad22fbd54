"""Outcome families: their names, canonical links, and the reading of a user's family and success level.

A family says what kind of outcome a model has: ``gaussian`` (a measurement, the default),
``bernoulli`` (0/1, or two levels with a stated success), ``binomial`` (successes out of trials,
written ``cbind(successes, failures) ~ ...``) or ``poisson`` (counts). Each has its canonical link.
This module is light (no numpy or pandas): the parser imports it. The outcome's checks against a
table live in ``outcomes``.
"""

from __future__ import annotations

import difflib
from enum import StrEnum

from compare_kit.errors import SpecError

__all__ = ["Family", "Link", "coerce_family", "coerce_success", "family_choices"]


class Link(StrEnum):
    """A link function: the scale on which the fixed and group effects add up."""

    IDENTITY = "identity"
    LOGIT = "logit"
    LOG = "log"


class Family(StrEnum):
    """The outcome's family (lme4's and Bambi's names)."""

    GAUSSIAN = "gaussian"
    BERNOULLI = "bernoulli"
    BINOMIAL = "binomial"
    POISSON = "poisson"

    @property
    def link(self) -> Link:
        """The canonical link: identity, logit, logit, log."""
        return _LINKS[self]

    @property
    def outcome(self) -> str:
        """What the family's outcome is, in a few words (for messages and help)."""
        return _OUTCOMES[self]


_LINKS = {Family.GAUSSIAN: Link.IDENTITY, Family.BERNOULLI: Link.LOGIT, Family.BINOMIAL: Link.LOGIT,
          Family.POISSON: Link.LOG}
_OUTCOMES = {
    Family.GAUSSIAN: "the default: a measurement",
    Family.BERNOULLI: "0/1, or two levels with success= naming the success level",
    Family.BINOMIAL: "successes out of trials: cbind(successes, failures) ~ ...",
    Family.POISSON: "counts; offset(log(exposure)) for unequal exposures",
}
# words people use for a family, each with the family that means it (a hint, not an alias)
_MEANT = {"binary": "bernoulli", "logistic": "bernoulli", "logit": "bernoulli", "bernouilli": "bernoulli",
          "count": "poisson", "counts": "poisson", "log": "poisson", "normal": "gaussian",
          "identity": "gaussian", "proportion": "binomial", "binom": "binomial"}


def family_choices() -> str:
    """The families, one line each, for messages."""
    return "; ".join(f"{f.value} ({f.outcome})" for f in Family)


def coerce_family(value: Family | str | None) -> Family:
    """``value`` as a ``Family`` (None: gaussian); text is read case-insensitively."""
    if value is None:
        return Family.GAUSSIAN
    if isinstance(value, Family):
        return value
    if not isinstance(value, str):
        raise SpecError(f"a family is a name such as \"poisson\", got {type(value).__name__} {value!r}; "
                        f"the families are: {family_choices()}")
    text = value.strip().lower()
    try:
        return Family(text)
    except ValueError:
        pass
    meant = _MEANT.get(text) or next(iter(difflib.get_close_matches(text, [f.value for f in Family], n=1)), None)
    hint = f" (did you mean {meant!r}?)" if meant else ""
    raise SpecError(f"unknown family {value!r}{hint}; the families are: {family_choices()}")


def coerce_success(value: object, family: Family) -> str | None:
    """The success level of a bernoulli outcome as text (None: not given); an error for other families."""
    if value is None:
        return None
    if family is not Family.BERNOULLI:
        raise SpecError(f"success= names the level of a two-level outcome that counts as a success, for "
                        f"family=\"bernoulli\"; this model's family is {family.value!r}: leave success out, "
                        "or give family=\"bernoulli\"")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(f"success must be the text of one level of the outcome, such as \"Y\" or \"1\", got "
                        f"{type(value).__name__} {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise SpecError(f"success must be one level of the outcome, such as \"Y\" or 1, got {value!r}")
        value = int(value)
    text = str(value)
    if not text.strip():
        raise SpecError("success is empty: give the level of the outcome that counts as a success, e.g. "
                        "success=\"Y\"")
    return text
