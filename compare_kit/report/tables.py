"""Display tables: tidy frames -> rounded, labelled cells -> HTML (one renderer for the report and notebooks).

This is the only place where numbers are rounded. A :class:`DisplayTable` is a
frozen value (columns, rows of formatted cells, caption); ``table_html`` renders
it with the jinja2 macro in ``templates/table.html.j2`` (autoescape on), and the
report, ``FitResult._repr_html_`` and ``Comparison._repr_html_`` all go through it.
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

if TYPE_CHECKING:
    from compare_kit.compare import Comparison
    from compare_kit.results import FitResult

Kind = Literal["text", "num", "int", "verdict", "flag", "code"]
DASH = "—"
LONG_TABLE = 25  # rows above which a table is folded into <details>

_ENGINE_NAMES = {"statsmodels": "statsmodels", "bambi": "Bambi", "pymc": "PyMC"}
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


def fmt_bool(value: Any, good: bool = True) -> Cell:
    """Yes/no with a badge: green when the value is the good one."""
    if _missing(value):
        return Cell(DASH)
    flag = bool(value)
    return Cell("yes" if flag else "no", "badge ok" if flag == good else "badge bad")


def term_text(term: str, group: str = "") -> str:
    """Readable name of a canonical term (shared with the figures' labels)."""
    from compare_kit.report.plots import term_label

    if group in ("", "Residual"):
        return term_label(term)
    return term_label(term, group)


def engine_text(engine: str) -> str:
    return _ENGINE_NAMES.get(engine, engine)


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


class _Loader(jinja2.BaseLoader):
    """Templates are package data, read with importlib.resources."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        path = resources.files("compare_kit.report") / "templates" / template
        if not path.is_file():
            raise jinja2.TemplateNotFound(template)
        return path.read_text(encoding="utf-8"), template, lambda: True


@cache
def environment() -> jinja2.Environment:
    """The one jinja2 environment: autoescape always on, undefined names are errors."""
    env = jinja2.Environment(loader=_Loader(), autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env


def stylesheet(name: str = "report.css") -> str:
    return (resources.files("compare_kit.report") / name).read_text(encoding="utf-8")


def table_html(*tables: DisplayTable, title: str = "", standalone: bool = True) -> str:
    """Tables as an HTML fragment; ``standalone`` adds the small notebook stylesheet."""
    template = environment().get_template("fragment.html.j2")
    return template.render(tables=tables, title=title,
                           css=stylesheet("notebook.css") if standalone else "")


# --------------------------------------------------------- table builders


def estimates_side_by_side(estimates: pd.DataFrame, model: str, effects: Sequence[str], id: str,
                           caption: str = "", fold: bool | None = None) -> DisplayTable:
    """Fixed effects or variance components of one model: statsmodels beside the Bayesian engine."""
    rows = estimates[(estimates["model"] == model) & estimates["effect"].isin(effects)]
    freq = rows[rows["engine"] == "statsmodels"]
    bayes = rows[rows["engine"] != "statsmodels"]
    key = ["effect", "group", "level", "term"]
    merged = freq.merge(bayes, on=key, how="outer", suffixes=("_f", "_b"), sort=False)
    order = {e: i for i, e in enumerate(effects)}
    merged = merged.assign(_o=merged["effect"].map(order)).sort_values(["_o"], kind="stable")
    bayes_name = engine_text(bayes["engine"].iloc[0]) if len(bayes) else "Bayesian"
    columns = [Column("parameter"), Column("estimate", "num"), Column("SE", "num"),
               Column("95% interval", "num", "Wald interval"),
               Column("posterior mean", "num"), Column("posterior SD", "num"),
               Column("95% interval", "num", "equal-tailed posterior interval")]
    out = []
    for _, r in merged.iterrows():
        label = term_text(r["term"], r["group"])
        if r["level"]:
            label = f"{label} [{r['level']}]"
        note_f = r.get("note_f", "")
        note_b = r.get("note_b", "")
        out.append([
            Cell(label, "", r["term"]),
            Cell(fmt_num(r.get("estimate_f")), "", note_f if isinstance(note_f, str) else ""),
            _num(r.get("std_error_f")), Cell(fmt_interval(r.get("conf_low_f"), r.get("conf_high_f"))),
            Cell(fmt_num(r.get("estimate_b")), "", note_b if isinstance(note_b, str) else ""),
            _num(r.get("std_error_b")), Cell(fmt_interval(r.get("conf_low_b"), r.get("conf_high_b"))),
        ])
    header = (("", 1), ("frequentist (statsmodels)", 3), (f"Bayesian ({bayes_name})", 3))
    return table(id, columns, out, caption, fold=fold, group_header=header)


def group_effects(estimates: pd.DataFrame, model: str, sizes: pd.Series | None, id: str,
                  caption: str = "") -> DisplayTable:
    """Per group level: each random coefficient's BLUP ± SE beside the posterior mean ± SD."""
    rows = estimates[(estimates["model"] == model) & (estimates["effect"] == "ran_vals")]
    terms = list(dict.fromkeys(rows["term"]))
    groups = list(dict.fromkeys(rows["group"]))
    columns = [Column("group"), Column("level"), Column("n", "int")]
    header = [("", 3)]
    for term in terms:
        columns += [Column("BLUP", "num"), Column("SE", "num"), Column("posterior mean", "num"),
                    Column("posterior SD", "num")]
        header.append((f"{term_text(term)} deviation", 4))
    wide = rows.pivot_table(index=["group", "level"], columns=["engine", "term"],
                            values=["estimate", "std_error"], aggfunc="first")
    bayes_engine = next((e for e in rows["engine"].unique() if e != "statsmodels"), "")
    out = []
    for group in groups:
        levels = sorted(rows.loc[rows["group"] == group, "level"].unique())
        for level in levels:
            n = sizes.get(level) if sizes is not None and len(groups) == 1 else None
            line = [Cell(group), Cell(level), Cell(fmt_int(n))]
            for term in terms:
                for engine in ("statsmodels", bayes_engine):
                    for value in ("estimate", "std_error"):
                        line.append(_num(wide.get((value, engine, term), pd.Series(dtype=float))
                                         .get((group, level))))
            out.append(line)
    return table(id, columns, out, caption, group_header=header)


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
        label = term_text(r["term"], r["group"])
        if r["level"]:
            label = f"{label} [{r['level']}]"
        out.append([Cell(label, "", r["term"]), _num(r["freq_estimate"]), _num(r["freq_std_error"]),
                    _num(r["bayes_estimate"]), _num(r["bayes_std_error"]), _num(r["difference"]),
                    _num(r["z_difference"], 2), verdict_cell(r["verdict"], r["why"]),
                    Cell(r["why"], "why")])
    return table(id, columns, out, caption, fold=fold)


def shrinkage(frame: pd.DataFrame, id: str, caption: str = "") -> DisplayTable:
    columns = [Column("level"), Column("n", "int"), Column("term"), Column("own estimate", "num"),
               Column("complete pooling", "num"), Column("partial, frequentist", "num"),
               Column("partial, Bayesian", "num"), Column("shrinkage, freq.", "num"),
               Column("shrinkage, Bayes", "num"), Column("pooling factor", "num", "closed form"),
               Column("note")]
    out = [[Cell(r["level"]), Cell(fmt_int(r["n"])), Cell(term_text(r["term"])), _num(r["no_pooling"]),
            _num(r["complete_pooling"]), _num(r["partial_freq"]), _num(r["partial_bayes"]),
            _num(r["shrinkage_freq"], 2), _num(r["shrinkage_bayes"], 2), _num(r["pooling_factor"], 2),
            Cell(r["note"], "why")] for _, r in frame.iterrows()]
    return table(id, columns, out, caption)


def rmsd(frame: pd.DataFrame, id: str, caption: str = "") -> DisplayTable:
    columns = [Column("model"), Column("engine"), Column("RMSD", "num"), Column("how")]
    out = [[Cell(r["model"]), Cell(engine_text(r["engine"])), _num(r["rmsd"]), Cell(r["how"], "why")]
           for _, r in frame.iterrows()]
    return table(id, columns, out, caption, fold=False)


def cross_validation(frame: pd.DataFrame, id: str, caption: str = "") -> DisplayTable:
    columns = [Column("model"), Column("engine"), Column("method"), Column("RMSE", "num"),
               Column("rows scored", "int"), Column("rows left out", "int")]
    best = frame.groupby("method")["rmse"].transform("min")
    out = [[Cell(r["model"]), Cell(engine_text(r["engine"])), Cell(r["method"]),
            Cell(fmt_num(r["rmse"]), "best" if r["rmse"] == b else ""), Cell(fmt_int(r["rows"])),
            Cell(fmt_int(r["rows_left_out"]))] for (_, r), b in zip(frame.iterrows(), best, strict=True)]
    return table(id, columns, out, caption, fold=False)


def information_criteria(frame: pd.DataFrame, id: str, caption: str = "") -> DisplayTable:
    columns = [Column("model"), Column("AIC", "num"), Column("ΔAIC", "num"), Column("BIC", "num"),
               Column("elpd LOO", "num"), Column("SE", "num"), Column("p LOO", "num", "effective parameters"),
               Column("LOOIC", "num"), Column("ΔLOOIC", "num"),
               Column("Pareto k > 0.7", "int", "rows whose LOO estimate is unreliable"),
               Column("AIC/BIC from")]
    out = [[Cell(r["model"]), _num(r["aic"], 1), Cell(fmt_num(r["delta_aic"], 1), "best" if r["delta_aic"] == 0 else ""),
            _num(r["bic"], 1), _num(r["elpd_loo"], 1), _num(r["elpd_loo_se"], 1), _num(r["p_loo"], 1),
            _num(r["looic"], 1), Cell(fmt_num(r["delta_looic"], 1), "best" if r["delta_looic"] == 0 else ""),
            Cell(fmt_int(r["pareto_k_above_0.7"]), "badge bad" if r["pareto_k_above_0.7"] else ""),
            Cell(r["ml_loglik_note"], "why")] for _, r in frame.iterrows()]
    return table(id, columns, out, caption, fold=False)


def generic(frame: pd.DataFrame, id: str, caption: str = "", labels: dict[str, str] | None = None,
            digits: dict[str, int] | None = None, fold: bool | None = None) -> DisplayTable:
    """Any small frame: numbers right-aligned and rounded (3 digits unless ``digits`` says otherwise)."""
    labels = labels or {}
    digits = digits or {}
    columns, kinds = [], []
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_bool_dtype(series):
            kind: Kind = "flag"
        elif pd.api.types.is_integer_dtype(series):
            kind = "int"
        elif pd.api.types.is_numeric_dtype(series):
            kind = "num"
        else:
            kind = "text"
        kinds.append(kind)
        columns.append(Column(labels.get(name, name.replace("_", " ")), kind))
    out = []
    for _, r in frame.iterrows():
        line = []
        for name, kind in zip(frame.columns, kinds, strict=True):
            value = r[name]
            if kind == "flag":
                line.append(Cell("yes" if value else "no"))
            elif kind == "int":
                line.append(Cell(fmt_int(value)))
            elif kind == "num":
                line.append(_num(value, digits.get(name, 3)))
            else:
                line.append(_text(value))
        out.append(line)
    return table(id, columns, out, caption, fold=fold)


def _status(fit: FitResult) -> Cell:
    problems = list(fit.health.warnings)
    return Cell("check" if problems else "ok", "badge bad" if problems else "badge ok", " | ".join(problems))


def frequentist_health(fits: Sequence[FitResult], id: str, caption: str = "") -> DisplayTable:
    """One row per statsmodels fit: convergence, boundary, the optimizer that succeeded."""
    columns = [Column("model"), Column("method"), Column("converged", "flag"), Column("at boundary", "flag"),
               Column("optimizer"), Column("log-likelihood", "num"), Column("status", "verdict")]
    out = [[Cell(f.model), Cell(f.method), fmt_bool(f.health.converged), fmt_bool(f.health.boundary, good=False),
            Cell(f.health.optimizer, "", " | ".join(f.health.attempts)),
            Cell(f"{fmt_num(f.stats.loglik, 2)} ({f.stats.loglik_method})" if f.stats.loglik_method else
                 fmt_num(f.stats.loglik, 2)), _status(f)] for f in fits]
    return table(id, columns, out, caption, fold=False)


def bayesian_health(fits: Sequence[FitResult], id: str, caption: str = "") -> DisplayTable:
    """One row per sampled fit: the sampler that ran, divergences, worst R-hat and ESS."""
    columns = [Column("model"), Column("engine"), Column("sampler"),
               Column("chains × draws", "int", "draws per chain after tuning (tuning steps in brackets)"),
               Column("divergences", "int"), Column("tree depth hits", "int"), Column("max R-hat", "num"),
               Column("min bulk ESS", "int"), Column("min tail ESS", "int"), Column("status", "verdict")]
    out = []
    for f in fits:
        s = f.sampling
        if s is None:
            continue
        out.append([Cell(f.model), Cell(engine_text(f.engine)), Cell(s.sampler),
                    Cell(f"{s.chains} × {fmt_int(s.draws)} (+{fmt_int(s.tune)})"),
                    Cell(fmt_int(s.divergences), "badge bad" if s.divergences else ""),
                    Cell(fmt_int(s.tree_depth_saturation), "badge bad" if s.tree_depth_saturation else ""),
                    Cell(fmt_num(s.max_rhat, 3), "badge bad" if s.max_rhat > 1.01 else ""),
                    Cell(fmt_int(s.min_ess_bulk), "badge bad" if s.min_ess_bulk < 400 else ""),
                    Cell(fmt_int(s.min_ess_tail), "badge bad" if s.min_ess_tail < 400 else ""), _status(f)])
    return table(id, columns, out, caption, fold=False)


def worst_diagnostics(diagnostics: pd.DataFrame, id: str, caption: str = "", rows: int = 12) -> DisplayTable:
    """The parameters with the highest R-hat and lowest ESS, across all Bayesian fits."""
    d = diagnostics.dropna(subset=["rhat"]).copy()
    d = d.sort_values(["rhat", "ess_bulk", "model", "term", "level"], ascending=[False, True, True, True, True],
                      kind="stable").head(rows)
    columns = [Column("model"), Column("engine"), Column("parameter"), Column("R-hat", "num"),
               Column("bulk ESS", "int"), Column("tail ESS", "int")]
    out = []
    for _, r in d.iterrows():
        label = term_text(r["term"], r["group"]) + (f" [{r['level']}]" if r["level"] else "")
        out.append([Cell(r["model"]), Cell(engine_text(r["engine"])), Cell(label, "", r["term"]),
                    Cell(fmt_num(r["rhat"], 3), "badge bad" if r["rhat"] > 1.01 else ""),
                    Cell(fmt_int(r["ess_bulk"]), "badge bad" if r["ess_bulk"] < 400 else ""),
                    Cell(fmt_int(r["ess_tail"]), "badge bad" if r["ess_tail"] < 400 else "")])
    return table(id, columns, out, caption, fold=False)


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


# ------------------------------------------------------- notebook views


def fit_result_tables(fit: FitResult, prefix: str = "fit") -> list[DisplayTable]:
    """The main tables of one fit: population-level estimates and, when sampled, its diagnostics."""
    rows = fit.estimates[fit.estimates["effect"].isin(["fixed", "ran_pars"])]
    columns = [Column("parameter"), Column("estimate", "num"),
               Column("SE" if fit.sampling is None else "posterior SD", "num"),
               Column("95% interval", "num"), Column("note")]
    out = []
    for _, r in rows.iterrows():
        out.append([Cell(term_text(r["term"], r["group"]), "", r["term"]), _num(r["estimate"]),
                    _num(r["std_error"]), Cell(fmt_interval(r["conf_low"], r["conf_high"])),
                    Cell(r["note"], "why")])
    what = "posterior mean" if fit.sampling is not None else f"{fit.method} estimate"
    caption = f"{engine_text(fit.engine)} fit of {fit.model}: {fit.spec} ({what}s)"
    tables = [table(f"{prefix}-estimates", columns, out, caption, fold=False)]
    health = [("rows used", fit.data_summary.n_used), ("rows dropped", fit.data_summary.n_dropped)]
    health += [(f"groups: {g}", n) for g, n in sorted(fit.stats.n_groups.items())]
    if fit.sampling is None:
        health += [("converged", fit.health.converged), ("at boundary", fit.health.boundary),
                   ("optimizer", fit.health.optimizer)]
    else:
        s = fit.sampling
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


__all__ = ["Cell", "Column", "DisplayTable", "comparison_tables", "environment", "fit_result_tables",
           "fmt_int", "fmt_interval", "fmt_num", "table_html"]


def nested_shrinkage(frame: pd.DataFrame, id: str, caption: str = "", fold: bool | None = None) -> DisplayTable:
    """Shrinkage rows of a nested model: what each row is pulled toward, and each engine's target."""
    columns = [Column("level"), Column("n", "int"), Column("pulled toward"), Column("own estimate", "num"),
               Column("target, freq.", "num", "the value pulled toward, frequentist: fixed part (+ enclosing BLUPs)"),
               Column("partial, freq.", "num"),
               Column("target, Bayes", "num", "the value pulled toward, Bayesian (population rows: the "
                                              "frequentist fixed effect, as for one-level models)"),
               Column("partial, Bayes", "num"), Column("shrinkage, freq.", "num"),
               Column("shrinkage, Bayes", "num"), Column("pooling factor", "num", "closed form"),
               Column("note")]
    out = [[Cell(r["level"]), Cell(fmt_int(r["n"])), Cell(r["toward"]), _num(r["no_pooling"]),
            _num(r["complete_pooling"]), _num(r["partial_freq"]), _num(r["complete_pooling_bayes"]),
            _num(r["partial_bayes"]), _num(r["shrinkage_freq"], 2), _num(r["shrinkage_bayes"], 2),
            _num(r["pooling_factor"], 2), Cell(r["note"], "why")] for _, r in frame.iterrows()]
    return table(id, columns, out, caption, fold=fold)
