"""Display tables: tidy frames -> rounded, labelled cells -> HTML, without matplotlib or the report.

This is the only place where numbers are rounded and names made readable. A :class:`DisplayTable`
is a frozen value (columns, rows of formatted cells, caption); ``table_html`` renders it with the
jinja2 macro in ``templates/_table.html.j2`` (autoescape on). The report (``compare_kit.report``),
``FitResult._repr_html_`` and ``Comparison._repr_html_`` all go through it; importing this module
loads neither matplotlib nor the report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

import jinja2
import pandas as pd

from compare_kit.labels import parameter_label, term_label, term_text
from compare_kit.results import BayesianFit, EngineName

if TYPE_CHECKING:
    from compare_kit.compare import Comparison
    from compare_kit.results import FitResult

Kind = Literal["text", "num", "int", "verdict", "flag", "code"]
DASH = "—"
LONG_TABLE = 25  # rows above which a table is folded into <details>

_VERDICT_CLASS = {"agree": "ok", "differ slightly": "mild", "differ": "bad", "prior-dominated": "info",
                  "only frequentist": "info", "only Bayesian": "info"}


# ----------------------------------------------------------------- values


@dataclass(frozen=True)
class Column:
    """A displayed column: its header, the kind of values (sets alignment) and an optional tooltip."""

    label: str
    kind: Kind = "text"
    title: str = ""


@dataclass(frozen=True)
class Cell:
    text: str
    css: str = ""  # extra classes, e.g. a verdict badge
    title: str = ""


@dataclass(frozen=True)
class DisplayTable:
    """A table ready to render: rounded, labelled, with a caption and a stable id."""

    id: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""
    note: str = ""
    fold: bool | None = None  # None: fold when longer than LONG_TABLE rows
    group_header: tuple[tuple[str, int], ...] = ()  # optional spanning header: (label, span)

    @property
    def folded(self) -> bool:
        return len(self.rows) > LONG_TABLE if self.fold is None else self.fold


# ------------------------------------------------------------- formatting


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fmt_num(value: Any, digits: int = 3) -> str:
    """A number rounded for display; missing values as a dash."""
    if _missing(value):
        return DASH
    number = float(value)
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if abs(number) >= 1e6:
        return f"{number:.{max(digits - 1, 1)}e}"
    text = f"{number:.{digits}f}"
    return "0." + "0" * digits if text == "-0." + "0" * digits else text


def fmt_int(value: Any) -> str:
    if _missing(value):
        return DASH
    return f"{int(round(float(value))):,}"


def fmt_interval(low: Any, high: Any, digits: int = 3) -> str:
    if _missing(low) or _missing(high):
        return DASH
    return f"[{fmt_num(low, digits)}, {fmt_num(high, digits)}]"


def fmt_level(level: float) -> str:
    """An interval's level as a percentage: ``0.95`` -> ``95%``, ``0.975`` -> ``97.5%``."""
    return f"{100 * float(level):g}%"


def fmt_bool(value: Any, good: bool = True) -> Cell:
    """Yes/no with a badge: green when the value is the good one."""
    if _missing(value):
        return Cell(DASH)
    flag = bool(value)
    return Cell("yes" if flag else "no", "badge ok" if flag == good else "badge bad")


def engine_text(engine: str) -> str:
    """An engine's short display name (``bambi`` -> ``Bambi``); see ``EngineName.label``."""
    return EngineName(engine).label if engine in EngineName._value2member_map_ else engine


def engine_label(engine: str) -> str:
    """An engine's name with its side (``statsmodels`` -> ``frequentist (statsmodels)``)."""
    return EngineName(engine).side_label if engine in EngineName._value2member_map_ else engine


def _num(value: Any, digits: int = 3) -> Cell:
    return Cell(fmt_num(value, digits))


def _text(value: Any) -> Cell:
    return Cell(DASH if _missing(value) or value == "" else str(value))


def verdict_cell(verdict: str, why: str = "") -> Cell:
    return Cell(verdict, f"badge {_VERDICT_CLASS.get(verdict, 'info')}", why)


def table(id: str, columns: Sequence[Column], rows: Iterable[Sequence[Cell]], caption: str = "",
          note: str = "", fold: bool | None = None,
          group_header: Sequence[tuple[str, int]] = ()) -> DisplayTable:
    return DisplayTable(id, tuple(columns), tuple(tuple(r) for r in rows), caption, note, fold,
                        tuple(group_header))


# ------------------------------------------------------------- rendering


class PackageLoader(jinja2.BaseLoader):
    """Templates are package data, read with importlib.resources from ``package``'s ``templates`` folder."""

    def __init__(self, package: str) -> None:
        self.package = package

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        path = resources.files(self.package) / "templates" / template
        if not path.is_file():
            raise jinja2.TemplateNotFound(template)
        return path.read_text(encoding="utf-8"), template, lambda: True


@cache
def environment(*packages: str) -> jinja2.Environment:
    """A jinja2 environment over these packages' templates and compare_kit's own (``_table.html.j2``):
    autoescape always on, undefined names are errors."""
    loader = jinja2.ChoiceLoader([PackageLoader(p) for p in (*packages, "compare_kit")])
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def notebook_css() -> str:
    return (resources.files("compare_kit") / "templates" / "notebook.css").read_text(encoding="utf-8")


def table_html(*tables: DisplayTable, title: str = "", standalone: bool = True) -> str:
    """Tables as an HTML fragment; ``standalone`` adds the small notebook stylesheet."""
    template = environment().get_template("fragment.html.j2")
    return template.render(tables=tables, title=title, css=notebook_css() if standalone else "")


# --------------------------------------------------------- notebook views


def equivalence_summary(summary: pd.DataFrame, id: str, caption: str = "") -> DisplayTable:
    columns = [Column("parameters"), Column("rows", "int"), Column("compared", "int"),
               Column("agree (|z| < 0.5)", "int"), Column("median |z|", "num"), Column("max |z|", "num"),
               Column("correlation", "num", "correlation of the two engines' estimates"),
               Column("median SE ratio", "num", "frequentist SE / posterior SD")]
    names = {"fixed": "fixed effects", "ran_pars": "SDs and correlations", "ran_vals": "group effects"}
    out = [[Cell(names.get(r["effect"], r["effect"])), Cell(fmt_int(r["rows"])), Cell(fmt_int(r["compared"])),
            Cell(fmt_int(r["agree"])), _num(r["median_abs_z"], 2), _num(r["max_abs_z"], 2),
            _num(r["correlation"], 4), _num(r["median_se_ratio"], 2)] for _, r in summary.iterrows()]
    return table(id, columns, out, caption, fold=False)


def equivalence(frame: pd.DataFrame, id: str, caption: str = "", fold: bool | None = None) -> DisplayTable:
    columns = [Column("parameter"), Column("frequentist", "num"), Column("SE", "num"),
               Column("Bayesian", "num"), Column("posterior SD", "num"), Column("difference", "num"),
               Column("z", "num", "difference / posterior SD"), Column("verdict", "verdict"), Column("why")]
    out = []
    for _, r in frame.iterrows():
        label = parameter_label(r["term"], r["group"], r["level"])
        out.append([Cell(label, "", r["term"]), _num(r["freq_estimate"]), _num(r["freq_std_error"]),
                    _num(r["bayes_estimate"]), _num(r["bayes_std_error"]), _num(r["difference"]),
                    _num(r["z_difference"], 2), verdict_cell(r["verdict"], r["why"]),
                    Cell(r["why"], "why")])
    return table(id, columns, out, caption, fold=fold)


def key_values(pairs: Sequence[tuple[str, Any]], id: str, caption: str = "",
               kinds: dict[str, Kind] | None = None) -> DisplayTable:
    """A two-column table of labelled values (text kept as is, numbers rounded)."""
    out = []
    for label, value in pairs:
        if isinstance(value, Cell):
            out.append([Cell(label), value])
        elif isinstance(value, bool):
            out.append([Cell(label), Cell("yes" if value else "no")])
        elif isinstance(value, int):
            out.append([Cell(label), Cell(fmt_int(value))])
        elif isinstance(value, float):
            out.append([Cell(label), _num(value)])
        else:
            out.append([Cell(label), _text(value)])
    return table(id, [Column("item"), Column("value")], out, caption, fold=False)


def fit_result_tables(fit: FitResult, prefix: str = "fit") -> list[DisplayTable]:
    """The main tables of one fit: population-level estimates and, when sampled, its diagnostics."""
    rows = fit.estimates[fit.estimates["effect"].isin(["fixed", "ran_pars"])]
    columns = [Column("parameter"), Column("estimate", "num"),
               Column("SE" if fit.engine.frequentist else "posterior SD", "num"),
               Column(f"{fmt_level(fit.estimates['conf_level'].iloc[0])} interval", "num"), Column("note")]
    out = []
    for _, r in rows.iterrows():
        out.append([Cell(term_text(r["term"], r["group"]), "", r["term"]), _num(r["estimate"]),
                    _num(r["std_error"]), Cell(fmt_interval(r["conf_low"], r["conf_high"])),
                    Cell(r["note"], "why")])
    what = f"{fit.method} estimate" if fit.engine.frequentist else "posterior mean"
    caption = f"{engine_text(fit.engine)} fit of {fit.model}: {fit.spec} ({what}s)"
    tables = [table(f"{prefix}-estimates", columns, out, caption, fold=False)]
    health = [("rows used", fit.data_summary.n_used), ("rows dropped", fit.data_summary.n_dropped)]
    health += [(f"groups: {g}", n) for g, n in sorted(fit.stats.n_groups.items())]
    s = fit.sampling if isinstance(fit, BayesianFit) else None
    if s is None:
        health += [("converged", fit.health.converged), ("at boundary", fit.health.boundary),
                   ("optimizer", fit.health.optimizer)]
        if fit.stats.loglik_method:
            health.append((f"log-likelihood ({fit.stats.loglik_method})", Cell(fmt_num(fit.stats.loglik))))
    else:
        health += [("sampler", f"{s.sampler}: {s.chains} chains × {s.draws} draws, seed {s.seed}"),
                   ("divergences", s.divergences), ("max R-hat", Cell(fmt_num(s.max_rhat))),
                   ("min bulk ESS", Cell(fmt_int(s.min_ess_bulk)))]
    health += [("warning", Cell(w, "badge bad")) for w in fit.health.warnings]
    tables.append(key_values(health, f"{prefix}-health", "Fit health"))
    return tables


def comparison_tables(comparison: Comparison, prefix: str = "cmp") -> list[DisplayTable]:
    """The main tables of a comparison: agreement per effect type and the population-level rows."""
    eq = comparison.equivalence
    main = eq[eq["effect"] != "ran_vals"]
    caption = f"{comparison.model}: statsmodels vs {engine_text(comparison.bayes.engine)}"
    tables = [equivalence_summary(comparison.equivalence_summary, f"{prefix}-summary",
                                  f"Agreement, {caption}"),
              equivalence(main, f"{prefix}-equivalence", f"Population-level parameters, {caption}", fold=False)]
    if comparison.structure_note:
        tables[0] = replace(tables[0], note=comparison.structure_note)
    return tables


__all__ = ["Cell", "Column", "DisplayTable", "comparison_tables", "engine_label", "engine_text",
           "environment", "fit_result_tables", "fmt_int", "fmt_interval", "fmt_level", "fmt_num", "parameter_label",
           "table", "table_html", "term_label", "term_text"]
