"""The coverage study's HTML page: tables and figures of a ``CoverageResult``.

``render_coverage(result)`` returns one self-contained page (CSS and SVG figures
inline, ``templates/coverage.html.j2``); ``write_coverage_report`` writes it
atomically and, if asked, the CSVs. Built like the study report: jinja2 with
autoescape on (every value from the data is escaped), numbers rounded in display
tables (``tables.py`` helpers), figures drawn from the tidy tables with the
package's style and colours and turned into deterministic SVG. The same result
renders to the same bytes except the ``Generated at`` line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from compare_kit.io import utc_timestamp
from compare_kit.report import plots
from compare_kit.report import tables as tb
from compare_kit.settings import RHAT_LIMIT

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from compare_kit.coverage import CoverageResult

PARAMETER_TEXT = {"(Intercept)": "intercept (a)", "floor": "floor slope (b)",
                  "sd__(Intercept)": "county SD (tau)", "sd__Observation": "residual SD (sigma)"}
ENGINE_TEXT = {"frequentist": "frequentist (statsmodels REML)", "bayesian": "Bayesian (Bambi/nutpie)"}
# one colour and marker per interval method: frequentist blue shades, Bayesian vermillion
METHOD_STYLE = {
    "Wald": (plots.FREQ_COLOR, "o", "-"),
    "profile (REML)": (plots.FREQ_COLOR, "o", "-"),
    "profile (ML, as lme4)": ("#56B4E9", "s", "--"),
    "posterior equal-tailed": (plots.BAYES_COLOR, "D", "-"),
}

CAPTIONS = {
    "coverage": (
        "Share of simulated data sets whose 95% interval contains the true value, by number of groups "
        "(counties), one panel per parameter. Bars are ±2 Monte Carlo standard errors, "
        "2·sqrt(p(1−p)/n); the dashed line is the nominal 95%. Points below the line with their bars "
        "clear of it are intervals that are too narrow (overconfident); above it, too wide. Frequentist "
        "intervals: Wald for the fixed effects, profile likelihood for the SDs; Bayesian: equal-tailed "
        "posterior intervals."),
    "width": (
        "Average width of the 95% intervals, by number of groups, with ±2 Monte Carlo standard errors. "
        "Read it together with the coverage figure: a narrower interval is only better if it still "
        "covers the truth 95% of the time."),
    "rmse": (
        "Root mean squared error of the estimated group effects (county deviations) against the "
        "simulated ones, averaged over data sets, ±2 Monte Carlo standard errors: BLUPs from the "
        "frequentist fit, posterior means from the Bayesian fit. Both shrink toward the population "
        "mean; they differ in how they treat the uncertainty in the county SD."),
}


def _parameter_order(table: pd.DataFrame) -> list[str]:
    return [p for p in PARAMETER_TEXT if p in set(table["parameter"])]


def _dodge(methods: list[str]) -> dict[str, float]:
    n = len(methods)
    return {m: (i - (n - 1) / 2) * 0.035 for i, m in enumerate(methods)}


@plots.styled
def coverage_figure(table: pd.DataFrame, level: float = 0.95, *, value: str = "coverage",
                    se: str = "coverage_mc_se") -> Figure:
    """Coverage (or another column with its MC SE) against the number of groups, a panel per parameter."""
    pars = _parameter_order(table)
    fig = plots.new_figure(2.6 * ((len(pars) + 1) // 2) + 0.6)
    axes = fig.subplots((len(pars) + 1) // 2, 2, squeeze=False, sharex=True)
    groups = sorted(table["n_groups"].unique())
    methods = [m for m in METHOD_STYLE if m in set(table["method"])] + sorted(
        set(table["method"]) - set(METHOD_STYLE))
    offsets = _dodge(methods)
    handles = {}
    for ax, par in zip(axes.flat, pars, strict=False):
        sub = table[table["parameter"] == par]
        for method in methods:
            rows = sub[sub["method"] == method].sort_values("n_groups")
            if rows.empty:
                continue
            color, marker, line = METHOD_STYLE.get(method, ("#4D4D4D", "^", ":"))
            x = np.log(rows["n_groups"].to_numpy(dtype=float)) + offsets[method]
            h = ax.errorbar(np.exp(x), rows[value], yerr=2 * rows[se].fillna(0.0), color=color, marker=marker,
                            linestyle=line, capsize=3, markersize=5, linewidth=1.4)
            handles.setdefault(method, h)
        if value == "coverage":
            ax.axhline(level, color="#1A1A1A", linestyle="--", linewidth=1.0)
            low = float(np.nanmin(sub[value] - 2 * sub[se].fillna(0.0))) if len(sub) else level
            ax.set_ylim(max(0.0, min(low, level - 0.05) - 0.01), 1.005)
            ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
        ax.set_title(PARAMETER_TEXT.get(par, par))
        ax.set_xscale("log")
        ax.set_xticks(groups, [str(g) for g in groups])
        ax.minorticks_off()
    for ax in axes.flat[len(pars):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("number of groups (counties)")
    for ax in axes[:, 0]:
        ax.set_ylabel("coverage of 95% intervals" if value == "coverage" else "mean interval width")
    fig.legend(list(handles.values()), [_method_label(m) for m in handles], loc="outside lower center",
               ncols=min(len(handles), 2))
    return fig


def _method_label(method: str) -> str:
    engine = "Bayesian" if method.startswith("posterior") else "frequentist"
    return f"{engine}: {method}"


@plots.styled
def rmse_figure(group_effects: pd.DataFrame) -> Figure:
    """Mean RMSE of BLUPs and of posterior means against the number of groups."""
    fig = plots.new_figure(3.2, 6.0)
    ax = fig.subplots()
    groups = sorted(group_effects["n_groups"].unique())
    series = (("frequentist", "BLUPs", plots.FREQ_COLOR, "o"),
              ("bayesian", "posterior means", plots.BAYES_COLOR, "D"))
    for i, (engine, label, color, marker) in enumerate(series):
        rows = group_effects[group_effects["engine"] == engine].sort_values("n_groups")
        if rows.empty:
            continue
        x = rows["n_groups"].to_numpy(dtype=float) * np.exp((i - 0.5) * 0.035)
        ax.errorbar(x, rows["mean_rmse"], yerr=2 * rows["mean_rmse_mc_se"].fillna(0.0), color=color,
                    marker=marker, capsize=3, markersize=5, label=label)
    ax.set_xscale("log")
    ax.set_xticks(groups, [str(g) for g in groups])
    ax.minorticks_off()
    ax.set_xlabel("number of groups (counties)")
    ax.set_ylabel("RMSE of the group effects")
    ax.legend(loc="best")
    return fig


# ------------------------------------------------------------------ tables


OFF_NOMINAL_P = 0.05  # a coverage is marked when an exact binomial test rejects the nominal level at this p


def coverage_table(table: pd.DataFrame, id: str, caption: str, level: float = 0.95) -> tb.DisplayTable:
    cols = [tb.Column("groups", "int"), tb.Column("parameter"), tb.Column("engine"), tb.Column("interval"),
            tb.Column("truth", "num"), tb.Column("data sets", "int"),
            tb.Column("coverage", "num", "share of data sets whose interval contains the truth"),
            tb.Column("MC SE", "num", "Monte Carlo standard error of the coverage: sqrt(p(1-p)/n)"),
            tb.Column("mean width", "num"), tb.Column("bias", "num", "mean estimate minus truth"),
            tb.Column("RMSE", "num", "root mean squared error of the point estimate")]
    rows = []
    for r in table.itertuples(index=False):
        p_value = coverage_p_value(r.coverage, r.n_datasets, level)
        off = p_value < OFF_NOMINAL_P
        rows.append((tb.Cell(tb.fmt_int(r.n_groups)),
                     tb.Cell(PARAMETER_TEXT.get(r.parameter, str(r.parameter))),
                     tb.Cell(str(r.engine)), tb.Cell(str(r.method)), tb.Cell(tb.fmt_num(r.truth, 2)),
                     tb.Cell(tb.fmt_int(r.n_datasets)),
                     tb.Cell(tb.fmt_num(r.coverage, 3), "badge mild" if off else "",
                             f"further from {level:.0%} than chance explains (exact binomial test, p = {p_value:.2g})"
                             if off else ""),
                     tb.Cell(tb.fmt_num(r.coverage_mc_se, 3)), tb.Cell(tb.fmt_num(r.mean_width, 3)),
                     tb.Cell(tb.fmt_num(r.bias, 3)), tb.Cell(tb.fmt_num(r.rmse, 3))))
    return tb.table(id, cols, rows, caption, fold=False)


def group_effects_table(frame: pd.DataFrame, id: str, caption: str) -> tb.DisplayTable:
    cols = [tb.Column("groups", "int"), tb.Column("estimator"), tb.Column("data sets", "int"),
            tb.Column("RMSE", "num", "sqrt of the mean over data sets of the mean squared error"),
            tb.Column("mean RMSE", "num"), tb.Column("MC SE", "num"),
            tb.Column("minus BLUP", "num", "paired mean difference of per-data-set RMSEs"),
            tb.Column("MC SE of difference", "num")]
    rows = [(tb.Cell(tb.fmt_int(r.n_groups)), tb.Cell(str(r.estimator)), tb.Cell(tb.fmt_int(r.n_datasets)),
             tb.Cell(tb.fmt_num(r.rmse, 4)), tb.Cell(tb.fmt_num(r.mean_rmse, 4)),
             tb.Cell(tb.fmt_num(r.mean_rmse_mc_se, 4)),
             tb.Cell(tb.DASH if r.engine == "frequentist" else tb.fmt_num(r.difference_vs_blup, 4)),
             tb.Cell(tb.fmt_num(r.difference_mc_se, 4))) for r in frame.itertuples(index=False)]
    return tb.table(id, cols, rows, caption, fold=False)


def health_table(fits: pd.DataFrame, id: str, caption: str) -> tb.DisplayTable:
    cols = [tb.Column("groups", "int"), tb.Column("engine"), tb.Column("data sets", "int"),
            tb.Column("not converged", "int"), tb.Column("at the boundary", "int"),
            tb.Column("with divergences", "int"), tb.Column("max R-hat", "num"),
            tb.Column("min bulk ESS", "num"),
            tb.Column("mean seconds per fit", "num")]
    rows = []
    for (k, engine), f in fits.groupby(["n_groups", "engine"], sort=True):
        rows.append((tb.Cell(tb.fmt_int(k)), tb.Cell(str(engine)), tb.Cell(tb.fmt_int(len(f))),
                     tb.Cell(tb.fmt_int((~f["converged"].astype(bool)).sum())),
                     tb.Cell(tb.fmt_int(f["boundary"].astype(bool).sum())),
                     tb.Cell(tb.fmt_int((f["divergences"] > 0).sum())),
                     tb.Cell(tb.fmt_num(f["max_rhat"].max(), 3)),
                     tb.Cell(tb.fmt_num(f["min_ess_bulk"].min(), 0)),
                     tb.Cell(tb.fmt_num(f["seconds"].mean(), 3))))
    return tb.table(id, cols, rows, caption, fold=False)


def coverage_p_value(coverage: float, datasets: int, nominal: float) -> float:
    """Two-sided exact binomial p-value of ``coverage`` over ``datasets`` against ``nominal``.

    Unlike a distance in Monte Carlo SEs, it stays meaningful when every interval (or none)
    covered, where the estimated MC SE is 0: 12 of 12 at 95% has p = 1.
    """
    from scipy.stats import binomtest

    if not datasets or not np.isfinite(coverage):
        return float("nan")
    return float(binomtest(int(round(coverage * datasets)), int(datasets), nominal).pvalue)


def health_problems(fits: pd.DataFrame) -> list[str]:
    """One sentence per number of groups and engine whose fits were not all healthy (for the top box),
    with the remedy that fits the cause: divergences call for a higher target acceptance, an R-hat
    problem without divergences for longer chains."""
    problems = []
    for (k, engine), f in fits.groupby(["n_groups", "engine"], sort=True):
        n = len(f)
        if engine == "bayesian":
            diverged = int((f["divergences"] > 0).sum())
            high_rhat = int((f["max_rhat"] > RHAT_LIMIT).sum())
            unconverged = int((~f["converged"].astype(bool)).sum())
            if diverged or unconverged:
                causes = []
                if diverged:
                    causes.append(f"{diverged} of {n} had divergent transitions (at most "
                                  f"{int(f['divergences'].max())} per fit)")
                if high_rhat:
                    causes.append(f"{high_rhat} of {n} had R-hat above {RHAT_LIMIT} (max "
                                  f"{f['max_rhat'].max():.3f})")
                remedies = (["a higher --target-accept reduces divergences"] if diverged else []) + (
                    ["more --draws (and --tune) per chain let R-hat settle"] if high_rhat else [])
                problems.append(
                    f"{k} groups, Bayesian: {unconverged} of {n} fits did not converge: {'; '.join(causes)}. "
                    f"Their intervals are counted as they came out; {' and '.join(remedies)}.")
        else:
            boundary = int(f["boundary"].astype(bool).sum())
            if boundary:
                problems.append(f"{k} groups, frequentist: {boundary} of {n} REML fits put the county SD at "
                                "its zero boundary (the profile interval of the SD then starts at 0).")
    return problems


def failures_table(failures: pd.DataFrame, id: str, caption: str) -> tb.DisplayTable:
    cols = [tb.Column("task"), tb.Column("groups", "int"), tb.Column("simulations"),
            tb.Column("attempt", "int"),
            tb.Column("outcome"), tb.Column("error", "code")]
    rows = [(tb.Cell(str(r.task)), tb.Cell(tb.fmt_int(r.n_groups)), tb.Cell(f"{r.first_sim}–{r.last_sim}"),
             tb.Cell(tb.fmt_int(r.attempt)),
             tb.Cell("given up: data sets missing" if r.final else "retried",
                     "badge bad" if r.final else "badge mild"),
             tb.Cell(str(r.error))) for r in failures.itertuples(index=False)]
    return tb.table(id, cols, rows, caption)


def design_table(designs: pd.DataFrame, id: str, caption: str) -> tb.DisplayTable:
    cols = [tb.Column("groups", "int"), tb.Column("homes (rows)", "int"), tb.Column("smallest group", "int"),
            tb.Column("median group", "num"), tb.Column("largest group", "int"),
            tb.Column("share on floor 1", "num")]
    rows = [(tb.Cell(tb.fmt_int(r.n_groups)), tb.Cell(tb.fmt_int(r.rows)), tb.Cell(tb.fmt_int(r.min_size)),
             tb.Cell(tb.fmt_num(r.median_size, 1)), tb.Cell(tb.fmt_int(r.max_size)),
             tb.Cell(tb.fmt_num(r.share_floor_1, 2))) for r in designs.itertuples(index=False)]
    return tb.table(id, cols, rows, caption, fold=False)


# ------------------------------------------------------------------ page


def _figure(fid: str, title: str, caption: str, draw: Callable[[], Any]) -> dict[str, Any]:
    from compare_kit.report.figures import _svg

    return {"id": fid, "title": title, "caption": caption, "svg": Markup(_svg(draw(), fid))}


def render_coverage(result: CoverageResult, *, timestamp: bool = True, command: str = "") -> str:
    """The coverage study as one self-contained HTML page."""
    cfg = result.config
    table = result.table
    figures = []
    if len(table):
        figures.append(_figure("fig-coverage", "Coverage of the 95% intervals", CAPTIONS["coverage"],
                               lambda: coverage_figure(table, cfg.level)))
        figures.append(_figure("fig-width", "Mean width of the 95% intervals", CAPTIONS["width"],
                               lambda: coverage_figure(table, value="mean_width", se="mean_width_mc_se")))
    if len(result.group_effects):
        figures.append(_figure("fig-rmse", "RMSE of BLUPs and posterior means", CAPTIONS["rmse"],
                               lambda: rmse_figure(result.group_effects)))
    if timestamp:
        now = utc_timestamp()
        generated = f"Generated at {now}; the study ran in {result.timings.get('wall', float('nan')):.0f} s"
    else:
        generated = "Generated at (timestamp left out)"
    failures = result.failures
    final = failures[failures["final"].astype(bool)] if len(failures) else failures
    expected = len(cfg.groups) * cfg.sims
    done = result.fits[result.fits["engine"] == "frequentist"]["sim"].size if len(result.fits) else 0
    context = {
        "title": "Coverage study: frequentist and Bayesian intervals on simulated radon data",
        "css": Markup(tb.stylesheet("report.css")),
        "generated": generated,
        "cfg": cfg,
        "truth": cfg.truth,
        "executor": result.executor,
        "expected": expected,
        "done": done,
        "wall": result.timings.get("wall", float("nan")),
        "mean_fit": {e: result.timings.get(f"mean_fit_{e}", float("nan"))
                     for e in ("frequentist", "bayesian")},
        "n_final_failures": len(final),
        "n_failed_attempts": len(result.failures),
        "health_problems": health_problems(result.fits) if len(result.fits) else [],
        "unconverged": int((~result.fits["converged"].astype(bool)).sum()) if len(result.fits) else 0,
        "coverage": coverage_table(table, "tbl-coverage", f"Coverage of the {cfg.level:.0%} intervals, with Monte "
                                   "Carlo standard errors", level=cfg.level),
        "group_effects": group_effects_table(result.group_effects, "tbl-group-effects",
                                             "Group effects: RMSE of BLUPs and of posterior means"),
        "health": health_table(result.fits, "tbl-health", "Health of the fits") if len(result.fits) else None,
        "failures": (failures_table(result.failures, "tbl-failures", "Failed task attempts")
                     if len(result.failures) else None),
        "designs": design_table(result.designs, "tbl-designs", "The designs (real radon counties)"),
        "figures": figures,
        "command": command,
    }
    return tb.environment().get_template("coverage.html.j2").render(**context)


def write_coverage_report(result: CoverageResult, path: str | Path, *, timestamp: bool = True,
                          tables_dir: str | Path | None = None, command: str = "") -> Path:
    """Write the page atomically (and the CSVs into ``tables_dir``); returns the path."""
    from compare_kit.io import check_writable, write_text_atomic

    path = check_writable(path)
    if tables_dir is not None:
        check_writable(Path(tables_dir) / "coverage.csv")
    html = render_coverage(result, timestamp=timestamp, command=command)
    write_text_atomic(path, html)
    if tables_dir is not None:
        result.write_csvs(tables_dir)
    return path


__all__ = ["coverage_figure", "render_coverage", "rmse_figure", "write_coverage_report"]
