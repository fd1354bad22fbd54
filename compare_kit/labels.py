"""Readable names of canonical parameters: one wording for tables, figures and the samplers' flags.

Plain functions of strings, so that the engines (the samplers' health flags) and the display
layer (tables, figures) name a parameter the same way.
"""

from __future__ import annotations

from compare_kit.results import RESIDUAL_GROUP


def _coef(name: str) -> str:
    return "intercept" if name == "(Intercept)" else name


def term_label(term: str, group: str = "") -> str:
    """Plain-language label for a canonical term name.

    ``sd__(Intercept)`` of group ``county`` -> ``SD of county intercepts``;
    ``cor__(Intercept).floor`` -> ``correlation: intercept, floor``;
    ``sd__Observation`` -> ``residual SD``. A coefficient with a group is a group's
    own coefficient (a group effect): ``(Intercept)`` of ``county`` -> ``county intercept``,
    ``floor`` of ``county`` -> ``county floor slope``; without a group, the fixed
    effect: ``intercept``, ``floor``.
    """
    if term == "sd__Observation":
        return "residual SD"
    if term.startswith("sd__"):
        inner = term[4:]
        what = "intercepts" if inner == "(Intercept)" else f"{inner} slopes"
        return f"SD of {group} {what}" if group else f"SD of {what}"
    if term.startswith("cor__"):
        body = term[5:]
        if body.startswith("(Intercept)."):
            first, second = "(Intercept)", body[len("(Intercept)."):]
        else:
            first, _, second = body.partition(".")
        where = f" ({group})" if group else ""
        return f"correlation{where}: {_coef(first)}, {_coef(second)}"
    if not group:
        return _coef(term)
    return f"{group} intercept" if term == "(Intercept)" else f"{group} {term} slope"


def term_text(term: str, group: str = "") -> str:
    """Readable name of a canonical term (shared with the figures' labels); the residual has no group."""
    if group in ("", RESIDUAL_GROUP):
        return term_label(term)
    return term_label(term, group)


def parameter_label(term: str, group: str = "", level: str = "") -> str:
    """A tidy row's readable name: ``term_text`` and, for a group's row, its level in brackets.

    ``(Intercept)`` of county ``AITKIN`` -> ``county intercept [AITKIN]``; the grouping factor
    is named, so the rows of crossed factors (students ``s`` and instructors ``d``, both
    with a level ``1``) stay apart: ``s intercept [1]``, ``d intercept [1]``.
    """
    label = term_text(term, group)
    return f"{label} [{level}]" if level else label
