"""The report's tables, built on ``compare_kit.display`` (the one place numbers are rounded)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
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
from compare_kit.wording import count

if TYPE_CHECKING:
    from compare_kit.results import FitResult


def environment():
    """The report's jinja2 environment: its own templates and compare_kit's table macro."""
    return _environment("compare_kit.report")


def stylesheet(name: str = "report.css") -> str:
    from importlib import resources

    return (resources.files("compare_kit.report") / name).read_text(encoding="utf-8")


# ------------------------------------------------- many levels: summaries


MAX_LEVELS_LISTED = 100  # a factor with more levels is summarised in every per-level table (radon: 85 counties)
SAMPLE_ROWS = 10  # levels drawn at random (seeded) beside the chosen ones
VERDICTS = ("agree", "differ slightly", "differ", "prior-dominated", "only frequentist", "only Bayesian")


@dataclass(frozen=True)
class Pick:
    """A rule choosing rows of a summarised table: the ``count`` rows with the largest (or smallest)
    values of ``column``, compared by absolute value when ``absolute``."""

    reason: str
    column: str
    count: int
    largest: bool = True
    absolute: bool = False


SIZE_PICKS = (Pick("smallest group", "n", 3, largest=False), Pick("largest group", "n", 3))
SHRINKAGE_PICKS = (Pick("most shrunk", "shrinkage_freq", 5),
                   Pick("least shrunk", "shrinkage_freq", 5, largest=False), *SIZE_PICKS)


def natural_key(level: object) -> tuple[tuple[int, int, str], ...]:
    """Sort key of a group level: runs of digits compare as numbers ("2" < "10" < "100", "S2" < "S10")."""
    return tuple((0, int(part), "") if part[0] in "0123456789" else (1, 0, part)
                 for part in re.split(r"([0-9]+)", str(level)) if part)


def most_levels(frame: pd.DataFrame) -> int:
    """The most levels any one factor has in ``frame`` (columns ``group`` and ``level``; rows without them)."""
    if "level" not in frame.columns or frame.empty:
        return len(frame)
    group_of = frame["group"] if "group" in frame.columns else pd.Series("", index=frame.index)
    return int(pd.DataFrame({"g": group_of, "l": frame["level"]}).drop_duplicates().groupby("g").size().max())


def by_level(frame: pd.DataFrame, term_first: bool = False, factors: Sequence[str] = ()) -> pd.DataFrame:
    """Rows by factor (column ``group``, if any: ``factors`` first, in that order, then the others in order
    of appearance), then level in natural order and term (or term first)."""
    group_of = frame["group"] if "group" in frame.columns else pd.Series("", index=frame.index)
    factors = {g: i for i, g in enumerate(dict.fromkeys([*factors, *group_of]))}
    terms = ({t: i for i, t in enumerate(dict.fromkeys(frame["term"]))} if "term" in frame.columns
             else {})
    term_of = frame["term"] if "term" in frame.columns else pd.Series("", index=frame.index)
    keys = [(factors[g], terms.get(t, 0), natural_key(lv)) if term_first else
            (factors[g], natural_key(lv), terms.get(t, 0))
            for g, lv, t in zip(group_of, frame["level"], term_of, strict=True)]
    return frame.iloc[sorted(range(len(frame)), key=keys.__getitem__)].reset_index(drop=True)


def with_sizes(frame: pd.DataFrame, sizes: Mapping[str, pd.Series]) -> pd.DataFrame:
    """The frame with ``n``, each row's level size in its factor (``sizes``: per factor, rows per level)."""
    empty = pd.Series(dtype=float)
    n = [sizes.get(g, empty).get(lv, np.nan) for g, lv in zip(frame["group"], frame["level"], strict=True)]
    return frame.assign(n=n)


def split_by_size(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of factors listed in full, and those of factors with more than ``MAX_LEVELS_LISTED`` levels."""
    levels = frame.groupby("group", sort=False)["level"].transform("nunique")
    return frame[levels <= MAX_LEVELS_LISTED], frame[levels > MAX_LEVELS_LISTED]


def pick_rows(frame: pd.DataFrame, picks: Sequence[Pick], seed: int, sample: int = SAMPLE_ROWS) -> pd.DataFrame:
    """The rows each pick chooses, then a seeded random sample of the others, with column ``shown`` saying
    why each is there; a row chosen twice is shown once (both reasons). Ties go to the earlier row."""
    frame = frame.reset_index(drop=True)
    reasons: dict[int, list[str]] = {}
    for pick in picks:
        if pick.column not in frame.columns:
            continue
        values = pd.to_numeric(frame[pick.column], errors="coerce")
        values = (values.abs() if pick.absolute else values).dropna()
        chosen = values.nlargest(pick.count) if pick.largest else values.nsmallest(pick.count)
        for i in chosen.index:
            reasons.setdefault(int(i), []).append(pick.reason)
    rest = [i for i in range(len(frame)) if i not in reasons]
    drawn = np.random.default_rng(seed).choice(len(rest), size=min(sample, len(rest)), replace=False)
    for k in sorted(drawn):
        reasons[rest[k]] = ["random sample"]
    return frame.iloc[list(reasons)].assign(shown=["; ".join(r) for r in reasons.values()])


def chosen_rows(frame: pd.DataFrame, picks: Sequence[Pick], seed: int) -> pd.DataFrame:
    """``pick_rows`` within each factor, factors in order of appearance."""
    return pd.concat([pick_rows(part, picks, seed) for _, part in frame.groupby("group", sort=False)],
                     ignore_index=True)


def listed_caption(caption: str, listed: pd.DataFrame, large: pd.DataFrame) -> str:
    """A complete table's caption, naming its factors when others are summarised apart."""
    return f"{caption}: {', '.join(dict.fromkeys(listed['group']))}" if len(large) else caption


def chosen_table(large: pd.DataFrame, picks: Sequence[Pick], seed: int, columns: Sequence[Column],
                 lines: Callable[[pd.DataFrame], list], id: str, caption: str, csv: str,
                 header: Sequence[tuple[str, int]] = ()) -> DisplayTable:
    """The chosen levels of factors too large to list (``chosen_rows``): ``lines`` of them under
    ``columns``, each with why it is shown, and where every level is (``csv``)."""
    chosen = chosen_rows(large, picks, seed)
    rows = [[*line, Cell(why, "why")] for line, why in zip(lines(chosen), chosen["shown"], strict=True)]
    columns = [*columns, Column("shown because")]
    if not header:  # columns with nothing to show (notes no chosen row has) are left out
        keep = [i for i in range(len(columns)) if any(row[i].text for row in rows)]
        columns, rows = [columns[i] for i in keep], [[row[i] for i in keep] for row in rows]
    return table(f"{id}-chosen", columns, rows, f"{caption}: chosen levels",
                 note=csv_pointer(large, csv), fold=False, group_header=(*header, ("", 1)) if header else ())


def csv_pointer(frame: pd.DataFrame, csv: str) -> str:
    """The sentence under a summarised table: which factors are summarised and where every row is."""
    counts = frame.groupby("group", sort=False)["level"].nunique()
    which = ", ".join(f"{g} ({fmt_int(n)} levels)" for g, n in counts.items())
    return (f"Only chosen levels are shown for factors with more than {MAX_LEVELS_LISTED} levels: {which}. "
            f"Every level is in {csv}, written by compare-kit report --tables-dir DIR "
            "(or compare_kit.write_report(..., tables_dir=DIR)).")


def _correlation(a: pd.Series, b: pd.Series) -> float:
    both = pd.concat([a, b], axis=1).dropna()
    if len(both) < 3 or both.iloc[:, 0].std() == 0 or both.iloc[:, 1].std() == 0:
        return float("nan")
    return float(np.corrcoef(both.iloc[:, 0], both.iloc[:, 1])[0, 1])


# --------------------------------------------------------- table builders


def estimates_side_by_side(estimates: pd.DataFrame, model: str, effects: Sequence[str], id: str,
                           caption: str = "", fold: bool | None = None, ratio: str = "") -> DisplayTable:
    """Fixed effects or variance components of one model: statsmodels beside the Bayesian engine.

    ``ratio`` (a log or logit link: "odds ratio", "rate ratio"): each engine gains a column with the fixed
    effects on the response scale, exp(estimate) with exp of its interval's ends (the intercept's: the
    baseline rate, or the baseline odds with its probability)."""
    rows = estimates[(estimates["model"] == model) & estimates["effect"].isin(effects)]
    frequentist = rows["engine"].isin(FREQUENTIST_ENGINES)
    freq, bayes = rows[frequentist], rows[~frequentist]
    key = ["effect", "group", "level", "term"]
    merged = freq.merge(bayes, on=key, how="outer", suffixes=("_f", "_b"), sort=False)
    order = {e: i for i, e in enumerate(effects)}
    merged = merged.assign(_o=merged["effect"].map(order)).sort_values(["_o"], kind="stable")
    bayes_name = engine_text(bayes["engine"].iloc[0]) if len(bayes) else "Bayesian"
    exp_f = [Column(ratio, "num", "exp(estimate) [exp of the Wald interval]")] if ratio else []
    exp_b = [Column(ratio, "num", "exp(posterior mean) [exp of the posterior interval]")] if ratio else []
    columns = [Column("parameter"), Column("estimate", "num"), Column("SE", "num"),
               Column("95% interval", "num", "Wald interval"), *exp_f,
               Column("posterior mean", "num"), Column("posterior SD", "num"),
               Column("95% interval", "num", "equal-tailed posterior interval"), *exp_b]

    def exp_cell(r: pd.Series, side: str) -> list[Cell]:
        if not ratio:
            return []
        if r["effect"] != "fixed":
            return [Cell("")]
        low, high = r.get(f"conf_low_{side}"), r.get(f"conf_high_{side}")
        estimate = r.get(f"estimate_{side}")
        # the intercept of a logit link: the baseline odds, and the probability people read
        baseline = (f"; probability {fmt_num(1 / (1 + np.exp(-estimate)))}"
                    if ratio == "odds ratio" and r["term"] == "(Intercept)" and pd.notna(estimate) else "")
        with np.errstate(over="ignore"):  # a separated coefficient's far end is shown as ∞
            return [Cell(fmt_num(np.exp(estimate)) + (
                f" [{fmt_num(np.exp(low))}, {fmt_num(np.exp(high))}]" if pd.notna(low) and pd.notna(high) else "")
                + baseline)]

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
            *exp_cell(r, "f"),
            Cell(fmt_num(r.get("estimate_b")), "", note_b if isinstance(note_b, str) else ""),
            _num(r.get("std_error_b")), Cell(fmt_interval(r.get("conf_low_b"), r.get("conf_high_b"))),
            *exp_cell(r, "b"),
        ])
    freq_name = engine_label(freq["engine"].iloc[0]) if len(freq) else "frequentist"
    width = 4 if ratio else 3
    header = (("", 1), (freq_name, width), (f"Bayesian ({bayes_name})", width))
    return table(id, columns, out, caption, fold=fold, group_header=header)


def group_effects(estimates: pd.DataFrame, model: str, sizes: Mapping[str, pd.Series], id: str,
                  caption: str = "", seed: int = 0) -> list[DisplayTable]:
    """Per group level: its factor, rows (``sizes``: per factor, in the formula's order, rows per level)
    and each random coefficient's BLUP ± SE beside the posterior mean ± SD, levels in natural order;
    factors with more than ``MAX_LEVELS_LISTED`` levels summarised (a summary per factor and term, and
    chosen levels)."""
    rows = estimates[(estimates["model"] == model) & (estimates["effect"] == "ran_vals")]
    terms = list(dict.fromkeys(rows["term"]))
    side = rows["engine"].isin(FREQUENTIST_ENGINES).map({True: "f", False: "b"})
    wide = (rows.assign(side=side).set_index(["group", "level", "term", "side"])[["estimate", "std_error"]]
            .unstack(["term", "side"]))
    frame = with_sizes(wide.index.to_frame(index=False), sizes)
    values = []
    for term in terms:
        for s in ("f", "b"):
            for value in ("estimate", "std_error"):
                name = f"{value}_{s}_{term}"
                frame[name] = wide[(value, term, s)].to_numpy() if (value, term, s) in wide.columns else np.nan
                values.append(name)
    frame = by_level(frame, factors=list(sizes))
    columns = [Column("factor"), Column("level"), Column("n", "int")]
    header: list[tuple[str, int]] = [("", 3)]
    for term in terms:
        columns += [Column("BLUP", "num"), Column("SE", "num"), Column("posterior mean", "num"),
                    Column("posterior SD", "num")]
        header.append((f"{term_text(term)} deviation", 4))

    def lines(part: pd.DataFrame) -> list[list[Cell]]:
        return [[Cell(r["group"]), Cell(r["level"]), Cell(fmt_int(r["n"]))] + [_num(r[v]) for v in values]
                for _, r in part.iterrows()]

    listed, large = split_by_size(frame)
    out = [table(id, columns, lines(listed), listed_caption(caption, listed, large), group_header=header)
           ] if len(listed) else []
    if not len(large):
        return out
    summary = []
    for group, part in large.groupby("group", sort=False):
        for term in terms:
            f, b = part[f"estimate_f_{term}"], part[f"estimate_b_{term}"]
            summary.append([Cell(group), Cell(term_text(term)), Cell(fmt_int(len(part))), _num(f.min()),
                            _num(f.max()), _num(f.std()), _num(b.std()), _num(_correlation(f, b))])
    out.append(table(f"{id}-summary", [Column("factor"), Column("term"), Column("levels", "int"),
                                      Column("lowest BLUP", "num"), Column("highest BLUP", "num"),
                                      Column("SD of BLUPs", "num"), Column("SD of posterior means", "num"),
                                      Column("correlation", "num", "BLUPs with posterior means")],
                     summary, f"{caption}: summary per factor", fold=False))
    first = f"estimate_f_{terms[0]}"
    picks = (Pick("lowest BLUP", first, 5, largest=False), Pick("highest BLUP", first, 5), *SIZE_PICKS)
    out.append(chosen_table(large, picks, seed, columns, lines, id, caption, "estimates.csv", header))
    return out


def shrinkage(frame: pd.DataFrame, id: str, caption: str = "", seed: int = 0) -> list[DisplayTable]:
    """Every level's own, pooled and partial-pooling estimates and shrinkage; above ``MAX_LEVELS_LISTED``
    levels of a factor, a summary per factor and term and chosen levels instead."""
    columns = [Column("level"), Column("n", "int"), Column("term"), Column("own estimate", "num"),
               Column("complete pooling", "num"), Column("partial, frequentist", "num"),
               Column("partial, Bayesian", "num"), Column("shrinkage, freq.", "num"),
               Column("shrinkage, Bayes", "num"), Column("pooling factor", "num", "closed form"),
               Column("note")]

    def lines(part: pd.DataFrame) -> list[list[Cell]]:
        return [[Cell(r["level"]), Cell(fmt_int(r["n"])), Cell(term_text(r["term"])), _num(r["no_pooling"]),
                 _num(r["complete_pooling"]), _num(r["partial_freq"]), _num(r["partial_bayes"]),
                 _num(r["shrinkage_freq"], 2), _num(r["shrinkage_bayes"], 2), _num(r["pooling_factor"], 2),
                 Cell(r["note"], "why")] for _, r in part.iterrows()]

    listed, large = split_by_size(frame)
    out = [table(id, columns, lines(listed), listed_caption(caption, listed, large))] if len(listed) else []
    return out + _summarised_shrinkage(large, columns, lines, id, caption, seed)


def shares_outside_words(frame: pd.DataFrame) -> str:
    """Why some shrinkage shares of a model fall outside 0 to 1, in words ("" when none does).

    A share is (own - partial) / (own - pooled). Where a group's own estimate lies near the population
    value (within a tenth of the SD of the own estimates' distances from it) the denominator is small, and
    Monte Carlo error or rounding swings the share; with more than one term per group the terms are pulled
    together, so one can pass the population value or move away from it while the pair moves toward it.
    """
    shares = frame[["shrinkage_freq", "shrinkage_bayes"]].apply(pd.to_numeric, errors="coerce")
    outside = (shares < 0) | (shares > 1)
    if not outside.to_numpy().any():
        return ""
    distance = (pd.to_numeric(frame["no_pooling"], errors="coerce")
                - pd.to_numeric(frame["complete_pooling"], errors="coerce")).abs()
    spread = distance.groupby([frame["group"], frame["term"]]).transform("std")
    near = outside.any(axis=1) & (distance < 0.25 * spread)
    n_f, n_b = int(outside["shrinkage_freq"].sum()), int(outside["shrinkage_bayes"].sum())
    words = (f"{count(n_f + n_b, 'share')} in this table {'lies' if n_f + n_b == 1 else 'lie'} outside 0 to 1 "
             f"({n_f} frequentist, {n_b} Bayesian). A share is (own − partial) / (own − pooled), a ratio of two "
             "differences.")
    if near.any():
        words += (f" For {count(int(near.sum()), 'row')} the group's own estimate lies close to the population "
                  "value (within a quarter of the usual distance), so the denominator is small and a small "
                  "difference gives a share below 0 or above 1.")
    if n_b:
        words += (" A posterior mean is not the frequentist estimate: it averages over the variance components "
                  "and carries Monte Carlo error, and either can carry a Bayesian share a little past 0 or 1.")
    if frame.groupby(["group", "level"])["term"].nunique().max() > 1:
        words += (" Each group's terms (intercept and slope) are pulled together, toward the population's "
                  "values in the metric of their covariance, so one term can move past the population value "
                  "(above 1) or away from it (below 0) while the pair as a whole moves toward it.")
    return words


def _summarised_shrinkage(large: pd.DataFrame, columns: list[Column], lines: Callable[[pd.DataFrame], list],
                          id: str, caption: str, seed: int) -> list[DisplayTable]:
    """Shrinkage rows of factors with too many levels to list: a summary per factor and term, and
    chosen levels (``lines`` of them under ``columns``, a factor column in front)."""
    if not len(large):
        return []
    large = by_level(large)
    summary = []
    for (group, term), part in large.groupby(["group", "term"], sort=False):
        f = part["shrinkage_freq"]
        summary.append([Cell(group), Cell(term_text(term)), Cell(fmt_int(len(part))), _num(f.median(), 2),
                        _num(f.min(), 2), _num(f.max(), 2), _num(part["shrinkage_bayes"].median(), 2),
                        _num((f - part["pooling_factor"]).abs().max(), 3)])
    return [table(f"{id}-summary", [Column("factor"), Column("term"), Column("levels", "int"),
                                    Column("median shrinkage, freq.", "num"), Column("least", "num"),
                                    Column("most", "num"), Column("median shrinkage, Bayes", "num"),
                                    Column("largest |freq. − pooling factor|", "num")],
                  summary, f"{caption}: summary", fold=False),
            chosen_table(large, SHRINKAGE_PICKS, seed, [Column("factor"), *columns],
                         lambda part: [[Cell(g), *line] for g, line in zip(part["group"], lines(part), strict=True)],
                         id, caption, "shrinkage.csv")]


def group_equivalence(frame: pd.DataFrame, sizes: Mapping[str, pd.Series], id: str, caption: str = "",
                      seed: int = 0) -> list[DisplayTable]:
    """The group effects' rows of an equivalence table: every row (as ``equivalence``) for factors of at
    most ``MAX_LEVELS_LISTED`` levels; for larger factors the verdicts counted per factor and term, each
    verdict's reason once (a legend), and chosen levels (the largest |z| first)."""
    frame = by_level(frame, term_first=True, factors=list(sizes))
    listed, large = split_by_size(frame)
    out = [equivalence(listed, id, listed_caption(caption, listed, large), fold=True)] if len(listed) else []
    if not len(large):
        return out
    large = with_sizes(large, sizes)
    verdicts = [v for v in VERDICTS if (large["verdict"] == v).any()]
    summary = []
    for (group, term), part in large.groupby(["group", "term"], sort=False):
        z = part["z_difference"].abs()
        summary.append([Cell(group), Cell(term_text(term)), Cell(fmt_int(len(part)))]
                       + [Cell(fmt_int((part["verdict"] == v).sum())) for v in verdicts]
                       + [_num(z.median(), 2), _num(z.max(), 2),
                          _num(_correlation(part["freq_estimate"], part["bayes_estimate"]))])
    out.append(table(f"{id}-summary", [Column("factor"), Column("term"), Column("levels", "int"),
                                      *[Column(v, "int") for v in verdicts], Column("median |z|", "num"),
                                      Column("max |z|", "num"),
                                      Column("correlation", "num", "frequentist with Bayesian estimates")],
                     summary, f"{caption}: verdicts per factor", fold=False))
    legend = []
    for v in verdicts:
        part = large[large["verdict"] == v]
        typical = part.iloc[int(np.argsort(part["z_difference"].abs().to_numpy(), kind="stable")[len(part) // 2])]
        legend.append([verdict_cell(v), Cell(fmt_int(len(part))),
                       Cell(f"{typical['why']} (for example {typical['group']} {typical['level']}, "
                            f"{term_text(typical['term'])})", "why")])
    out.append(table(f"{id}-legend", [Column("verdict", "verdict"), Column("group effects", "int"),
                                     Column("why")], legend, f"{caption}: why each verdict", fold=False))
    columns = [Column("factor"), Column("level"), Column("n", "int"), Column("term"),
               Column("frequentist", "num"), Column("SE", "num"), Column("Bayesian", "num"),
               Column("posterior SD", "num"), Column("difference", "num"),
               Column("z", "num", "difference / posterior SD"), Column("verdict", "verdict")]

    def lines(part: pd.DataFrame) -> list[list[Cell]]:
        return [[Cell(r["group"]), Cell(r["level"]), Cell(fmt_int(r["n"])), Cell(term_text(r["term"])),
                 _num(r["freq_estimate"]), _num(r["freq_std_error"]), _num(r["bayes_estimate"]),
                 _num(r["bayes_std_error"]), _num(r["difference"]), _num(r["z_difference"], 2),
                 verdict_cell(r["verdict"])] for _, r in part.iterrows()]

    picks = (Pick("largest |z|", "z_difference", 10, absolute=True), *SIZE_PICKS)
    out.append(chosen_table(large, picks, seed, columns, lines, id, caption, "equivalence.csv"))
    return out


def group_list(sizes: pd.Series, group: str, id: str, caption: str = "", seed: int = 0) -> DisplayTable:
    """Every level of a factor and its rows, largest first; above ``MAX_LEVELS_LISTED`` levels the
    largest, the smallest and a random sample."""
    frame = pd.DataFrame({"group": group, "level": sizes.index.astype(str), "n": sizes.to_numpy()})
    if len(frame) <= MAX_LEVELS_LISTED:
        by_size = frame.sort_values("n", ascending=False, kind="stable")
        return generic(pd.DataFrame({group: by_size["level"], "rows": by_size["n"]}), id, caption, fold=True)
    chosen = pick_rows(by_level(frame), (Pick("largest group", "n", 10), Pick("smallest group", "n", 10,
                                                                             largest=False)), seed)
    lines = [[Cell(r["level"]), Cell(fmt_int(r["n"])), Cell(r["shown"], "why")] for _, r in chosen.iterrows()]
    return table(id, [Column(group), Column("rows", "int"), Column("shown because")], lines,
                 f"{caption}: chosen levels", note=csv_pointer(frame, "estimates.csv"), fold=True)


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





def nested_shrinkage(frame: pd.DataFrame, id: str, caption: str = "", fold: bool | None = None,
                     seed: int = 0) -> list[DisplayTable]:
    """Shrinkage rows of a nested model: what each row is pulled toward, and each engine's target; a
    summary and chosen levels above ``MAX_LEVELS_LISTED`` levels."""
    columns = [Column("level"), Column("n", "int"), Column("pulled toward"), Column("own estimate", "num"),
               Column("target, freq.", "num", "the value pulled toward, frequentist: fixed part (+ enclosing BLUPs)"),
               Column("partial, freq.", "num"),
               Column("target, Bayes", "num", "the value pulled toward, Bayesian (population rows: the "
                                              "frequentist fixed effect, as for one-level models)"),
               Column("partial, Bayes", "num"), Column("shrinkage, freq.", "num"),
               Column("shrinkage, Bayes", "num"), Column("pooling factor", "num", "closed form"),
               Column("note")]

    def lines(part: pd.DataFrame) -> list[list[Cell]]:
        return [[Cell(r["level"]), Cell(fmt_int(r["n"])), Cell(r["toward"]), _num(r["no_pooling"]),
                 _num(r["complete_pooling"]), _num(r["partial_freq"]), _num(r["complete_pooling_bayes"]),
                 _num(r["partial_bayes"]), _num(r["shrinkage_freq"], 2), _num(r["shrinkage_bayes"], 2),
                 _num(r["pooling_factor"], 2), Cell(r["note"], "why")] for _, r in part.iterrows()]

    listed, large = split_by_size(frame)
    out = [table(id, columns, lines(listed), listed_caption(caption, listed, large), fold=fold)] if len(listed) else []
    return out + _summarised_shrinkage(large, columns, lines, id, caption, seed)


__all__ = ["DASH", "LONG_TABLE", "Cell", "Column", "DisplayTable", "Kind", "comparison_tables", "engine_label", "engine_text",
           "environment", "fit_result_tables", "fmt_bool", "fmt_int", "fmt_interval", "fmt_num", "key_values",
           "stylesheet", "table", "table_html", "term_label", "term_text", "verdict_cell"]
