"""The report's tables, built on ``compare_kit.display`` (the one place numbers are rounded)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from compare_kit.display import (
    DASH,
    LONG_TABLE,
    Cell,
    Column,
    DisplayTable,
    Kind,
    _missing,
    _num,
    _text,
    comparison_tables,
    engine_label,
    engine_text,
    equivalence,
    equivalence_summary,
    fit_result_tables,
    fmt_bool,
    fmt_int,
    fmt_interval,
    fmt_num,
    key_values,
    table,
    table_html,
    term_label,
    term_text,
    verdict_cell,
)
from compare_kit.display import environment as _environment
from compare_kit.results import FREQUENTIST_ENGINES, BayesianFit
from compare_kit.settings import ESS_LIMIT, RHAT_LIMIT

if TYPE_CHECKING:
    from compare_kit.results import FitResult


def environment():
    """The report's jinja2 environment: its own templates and compare_kit's table macro."""
    return _environment("compare_kit.report")


def stylesheet(name: str = "report.css") -> str:
    from importlib import resources

    return (resources.files("compare_kit.report") / name).read_text(encoding="utf-8")


# --------------------------------------------------------- table builders


def estimates_side_by_side(estimates: pd.DataFrame, model: str, effects: Sequence[str], id: str,
                           caption: str = "", fold: bool | None = None) -> DisplayTable:
    """Fixed effects or variance components of one model: statsmodels beside the Bayesian engine."""
    rows = estimates[(estimates["model"] == model) & estimates["effect"].isin(effects)]
    frequentist = rows["engine"].isin(FREQUENTIST_ENGINES)
    freq, bayes = rows[frequentist], rows[~frequentist]
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
    freq_name = engine_label(freq["engine"].iloc[0]) if len(freq) else "frequentist"
    header = (("", 1), (freq_name, 3), (f"Bayesian ({bayes_name})", 3))
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
    freq_engine = next((e for e in rows["engine"].unique() if e in FREQUENTIST_ENGINES), "")
    bayes_engine = next((e for e in rows["engine"].unique() if e not in FREQUENTIST_ENGINES), "")
    out = []
    for group in groups:
        levels = sorted(rows.loc[rows["group"] == group, "level"].unique())
        for level in levels:
            n = sizes.get(level) if sizes is not None and len(groups) == 1 else None
            line = [Cell(group), Cell(level), Cell(fmt_int(n))]
            for term in terms:
                for engine in (freq_engine, bayes_engine):
                    for value in ("estimate", "std_error"):
                        line.append(_num(wide.get((value, engine, term), pd.Series(dtype=float))
                                         .get((group, level))))
            out.append(line)
    return table(id, columns, out, caption, group_header=header)


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
        s = f.sampling if isinstance(f, BayesianFit) else None
        if s is None:
            continue
        out.append([Cell(f.model), Cell(engine_text(f.engine)), Cell(s.sampler),
                    Cell(f"{s.chains} × {fmt_int(s.draws)} (+{fmt_int(s.tune)})"),
                    Cell(fmt_int(s.divergences), "badge bad" if s.divergences else ""),
                    Cell(fmt_int(s.tree_depth_saturation), "badge bad" if s.tree_depth_saturation else ""),
                    Cell(fmt_num(s.max_rhat, 3), "badge bad" if s.max_rhat > RHAT_LIMIT else ""),
                    Cell(fmt_int(s.min_ess_bulk), "badge bad" if s.min_ess_bulk < ESS_LIMIT else ""),
                    Cell(fmt_int(s.min_ess_tail), "badge bad" if s.min_ess_tail < ESS_LIMIT else ""), _status(f)])
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
                    Cell(fmt_num(r["rhat"], 3), "badge bad" if r["rhat"] > RHAT_LIMIT else ""),
                    Cell(fmt_int(r["ess_bulk"]), "badge bad" if r["ess_bulk"] < ESS_LIMIT else ""),
                    Cell(fmt_int(r["ess_tail"]), "badge bad" if r["ess_tail"] < ESS_LIMIT else "")])
    return table(id, columns, out, caption, fold=False)





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


__all__ = ["DASH", "LONG_TABLE", "Cell", "Column", "DisplayTable", "Kind", "comparison_tables", "engine_label", "engine_text",
           "environment", "fit_result_tables", "fmt_bool", "fmt_int", "fmt_interval", "fmt_num", "key_values",
           "stylesheet", "table", "table_html", "term_label", "term_text", "verdict_cell"]
