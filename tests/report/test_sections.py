"""The report for crossed grouping factors and for factors with thousands of levels: per-factor
sections, summarised per-level tables, a page under 5 MB, and words true for the engines that ran."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compare_kit.report import tables as tb
from compare_kit.report.render import DEMO_LABELS

MANY = 2_000  # students: far above tb.MAX_LEVELS_LISTED, so their tables are summarised
FEW = 30  # instructors: listed in full
PAGE_LIMIT = 5_000_000  # bytes


def crossed_ratings(seed: int = 5) -> pd.DataFrame:
    """Ratings y of FEW instructors d by MANY students s (two or three ratings each, crossed), with a
    service flag; student names are numbers so that natural and string order differ."""
    rng = np.random.default_rng(seed)
    per_student = 2 + (np.arange(MANY) % 2)
    s = np.repeat(np.arange(1, MANY + 1), per_student)
    d = rng.integers(1, FEW + 1, s.size)
    service = rng.integers(0, 2, s.size)
    y = (3 + 0.2 * service + rng.normal(0, 0.5, MANY)[s - 1] + rng.normal(0, 0.4, FEW)[d - 1]
         + rng.normal(0, 1.0, s.size))
    return pd.DataFrame({"s": s.astype(str), "d": [f"d{k}" for k in d], "service": service, "y": y.round(3)})


@pytest.fixture(scope="module")
def crossed_result(tmp_path_factory):
    """A crossed study (pooled and partial pooling) at minimal sampling, without the demonstrations."""
    from compare_kit.cli import _study_from_formula
    from compare_kit.study import run_study

    csv = tmp_path_factory.mktemp("crossed") / "ratings.csv"
    crossed_ratings().to_csv(csv, index=False)
    study = _study_from_formula("y ~ service + (1 | s) + (1 | d)", csv_path=csv)
    study = study.with_settings(draws=100, tune=100, chains=2, cv_folds=2, seed=11)
    return run_study(study, demos=False, workers=1)


@pytest.fixture(scope="module")
def crossed_html(crossed_result) -> str:
    from compare_kit.report.render import render_report

    return render_report(crossed_result, timestamp=False)


# ----------------------------------------------------------------- fast: the tables on synthetic frames


def test_levels_sort_naturally():
    levels = ["10", "2", "S10", "100", "1", "S2", "b", "a"]
    # digit runs as numbers; other text compares as Python strings (capitals first), as the tables did
    assert sorted(levels, key=tb.natural_key) == ["1", "2", "10", "100", "S2", "S10", "a", "b"]


def equivalence_rows(levels: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """Group-effect rows of an equivalence table: per factor, its levels named by number, z from a normal."""
    rng = np.random.default_rng(seed)
    rows = []
    for group, count in levels.items():
        for level in range(1, count + 1):
            z = rng.normal(0, 0.5)
            verdict = "agree" if abs(z) < 0.5 else "differ slightly" if abs(z) < 2 else "differ"
            rows.append({"model": "m", "effect": "ran_vals", "group": group, "level": str(level),
                         "term": "(Intercept)", "freq_estimate": z, "freq_std_error": 0.3, "bayes_estimate": 0.0,
                         "bayes_std_error": 1.0, "difference": z, "z_difference": z, "se_ratio": 0.9,
                         "verdict": verdict, "why": f"reason for {verdict} at level {level}"})
    return pd.DataFrame(rows)


def sizes_of(levels: dict[str, int]) -> dict[str, pd.Series]:
    return {g: pd.Series(np.arange(1, n + 1) % 7 + 1, index=[str(k) for k in range(1, n + 1)])
            for g, n in levels.items()}


def test_tables_list_every_level_up_to_the_limit_and_summarise_above_it():
    levels = {"big": tb.MAX_LEVELS_LISTED + 1, "small": tb.MAX_LEVELS_LISTED}
    out = tb.group_equivalence(equivalence_rows(levels), sizes_of(levels), "t", "cap", seed=1)
    ids = [t.id for t in out]
    assert ids == ["t", "t-summary", "t-legend", "t-chosen"]
    listed = out[0]
    assert len(listed.rows) == tb.MAX_LEVELS_LISTED and "small" in listed.caption
    chosen = out[3]
    factor_col = [c.label for c in chosen.columns].index("factor")
    assert {r[factor_col].text for r in chosen.rows} == {"big"}
    assert len(chosen.rows) < 40 and "equivalence.csv" in chosen.note


def test_summarised_equivalence_names_factor_level_and_n_and_gives_each_reason_once():
    levels = {"s": 2_000}
    frame = equivalence_rows(levels, seed=2)
    out = tb.group_equivalence(frame, sizes_of(levels), "t", "cap", seed=3)
    html = tb.table_html(*out, standalone=False)
    labels = [c.label for c in out[-1].columns]
    col = {name: labels.index(name) for name in ("factor", "level", "n", "z", "shown because")}
    rows = out[-1].rows
    sizes = sizes_of(levels)["s"]
    for r in rows:
        assert r[col["factor"]].text == "s"
        assert r[col["n"]].text == str(sizes[r[col["level"]].text])  # n on every row, from the sizes
    # the 10 largest |z| come first, largest first (an independent computation on the frame)
    top = frame.assign(a=frame["z_difference"].abs()).nlargest(10, "a")["level"].tolist()
    assert [r[col["level"]].text for r in rows[:10]] == top
    assert all(r[col["shown because"]].text.startswith("largest |z|") for r in rows[:10])
    # each verdict class has one reason in the legend; no row carries its own reason
    legend = out[-2]
    assert [r[0].text for r in legend.rows] == [v for v in tb.VERDICTS if (frame["verdict"] == v).any()]
    assert html.count("reason for") == len(legend.rows)
    # counts by verdict add up to the levels
    summary = out[0]
    assert [t.id for t in out] == ["t-summary", "t-legend", "t-chosen"]
    verdict_cols = [i for i, c in enumerate(summary.columns) if c.label in tb.VERDICTS]
    assert sum(int(summary.rows[0][i].text.replace(",", "")) for i in verdict_cols) == 2_000


def test_chosen_rows_are_seeded_and_each_shown_once():
    frame = pd.DataFrame({"group": "g", "level": [str(k) for k in range(500)], "x": np.arange(500.0),
                          "n": np.arange(500) % 9})
    picks = (tb.Pick("largest x", "x", 5), tb.Pick("smallest x", "x", 5, largest=False),
             tb.Pick("smallest group", "n", 3, largest=False))
    a = tb.pick_rows(frame, picks, seed=7)
    assert a["level"].tolist() == tb.pick_rows(frame, picks, seed=7)["level"].tolist()
    assert a["level"].is_unique and len(a) == 5 + 5 + 2 + tb.SAMPLE_ROWS  # level 0 is smallest x and n
    assert a.loc[a["level"] == "0", "shown"].item() == "smallest x; smallest group"
    sample = set(a.loc[a["shown"] == "random sample", "level"])
    other = set(tb.pick_rows(frame, picks, seed=8).query("shown == 'random sample'")["level"])
    # false-failure probability: the two seeds' samples of 10 of the 487 others coincide with
    # probability 1 / C(487, 10) < 1e-20
    assert sample != other


def group_estimates(levels: dict[str, int]) -> pd.DataFrame:
    rows = []
    for engine in ("compare_kit", "bambi"):
        for group, count in levels.items():
            for level in range(1, count + 1):
                rows.append({"engine": engine, "model": "m", "effect": "ran_vals", "group": group,
                             "level": str(level), "term": "(Intercept)", "estimate": level / count,
                             "std_error": 0.1})
    return pd.DataFrame(rows)


def test_group_effects_have_factor_and_n_on_every_row_in_natural_order():
    levels = {"s": 12, "d": 3}
    out = tb.group_effects(group_estimates(levels), "m", sizes_of(levels), "t", "cap")
    assert len(out) == 1
    rows = out[0].rows
    assert [c.label for c in out[0].columns][:3] == ["factor", "level", "n"]
    assert [r[0].text for r in rows] == ["s"] * 12 + ["d"] * 3  # the factors in the order of sizes
    assert [r[1].text for r in rows if r[0].text == "s"] == [str(k) for k in range(1, 13)]
    assert all(r[2].text != tb.DASH for r in rows)


def test_group_effects_of_thousands_of_levels_are_summarised():
    levels = {"s": 3_000, "d": 40}
    out = tb.group_effects(group_estimates(levels), "m", sizes_of(levels), "t", "cap", seed=4)
    assert [t.id for t in out] == ["t", "t-summary", "t-chosen"]
    chosen = out[-1]
    assert all(r[2].text != tb.DASH for r in chosen.rows) and "estimates.csv" in chosen.note
    shown = [r[-1].text for r in chosen.rows]
    assert shown[:5] == ["lowest BLUP"] * 5 and shown[5:10] == ["highest BLUP"] * 5
    assert [r[1].text for r in chosen.rows[5:10]] == ["3000", "2999", "2998", "2997", "2996"]


def shrinkage_rows(count: int) -> pd.DataFrame:
    """A factor's shrinkage rows (the schema of compare.SHRINKAGE_COLUMNS), share rising with the level."""
    share = np.linspace(0.05, 0.95, count)
    return pd.DataFrame({"group": "county", "level": [f"c{k}" for k in range(count)], "n": np.arange(count) % 5 + 1,
                         "term": "(Intercept)", "no_pooling": 1.0, "complete_pooling": 0.0,
                         "partial_freq": 1 - share, "partial_bayes": 1 - share, "shrinkage_freq": share,
                         "shrinkage_bayes": share, "pooling_factor": share, "note": "", "toward": "state s1",
                         "toward_group": "state", "toward_level": "s1", "complete_pooling_bayes": 0.0})


@pytest.mark.parametrize("build", [tb.shrinkage, tb.nested_shrinkage])
def test_shrinkage_of_hundreds_of_levels_shows_the_most_and_least_shrunk(build):
    assert [t.id for t in build(shrinkage_rows(tb.MAX_LEVELS_LISTED), "t", "cap")] == ["t"]
    out = build(shrinkage_rows(400), "t", "cap", seed=2)
    assert [t.id for t in out] == ["t-summary", "t-chosen"]
    chosen = out[1]
    levels = [r[1].text for r in chosen.rows]  # the factor comes first
    assert levels[:5] == ["c399", "c398", "c397", "c396", "c395"]  # most shrunk
    assert levels[5:10] == ["c0", "c1", "c2", "c3", "c4"]  # least shrunk
    assert len(levels) == len(set(levels)) and "shrinkage.csv" in chosen.note


def test_group_list_of_thousands_of_levels_shows_the_largest_smallest_and_a_sample():
    sizes = sizes_of({"s": 2_000})["s"]
    small = tb.group_list(sizes.iloc[:50], "s", "t", "cap")
    assert len(small.rows) == 50
    big = tb.group_list(sizes, "s", "t", "cap", seed=1)
    assert len(big.rows) == 10 + 10 + tb.SAMPLE_ROWS and "estimates.csv" in big.note


def test_demo_table_header_names_factor_and_level():
    frame = pd.DataFrame({"group": ["g"], "level": ["a"], "term": ["(Intercept)"], "blup": [0.1]})
    html = tb.table_html(tb.generic(frame, "t", "", DEMO_LABELS), standalone=False)
    header = html[html.index("<thead>"):html.index("</thead>")]
    assert ">factor<" in header and ">level<" in header and ">group<" not in header


def test_demo_tables_of_thousands_of_levels_show_chosen_rows():
    from compare_kit.report.render import DEMO_FILE, _demo_table

    frame = pd.DataFrame({"group": "s", "level": [str(k) for k in range(2_000)], "term": "(Intercept)",
                          "z_mc": np.linspace(-3, 3, 2_000)})
    shown = _demo_table(frame, "conditional_equivalence", seed=1)
    assert len(shown.rows) == 10 + tb.SAMPLE_ROWS
    assert DEMO_FILE.format("conditional_equivalence") in shown.note
    assert len(_demo_table(frame.head(tb.MAX_LEVELS_LISTED), "x", seed=1).rows) == tb.MAX_LEVELS_LISTED


def test_engine_words_name_the_engine_that_fitted():
    from compare_kit.engines.frequentist import fit_frequentist
    from compare_kit.report.render import frequentist_engine_words, statsmodels_words
    from compare_kit.spec import ModelSpec

    data = crossed_ratings().head(600)
    crossed = fit_frequentist(ModelSpec.from_formula("y ~ service + (1 | s) + (1 | d)"), data, mixedlm=False)
    assert crossed.engine == "compare_kit"
    words = statsmodels_words(crossed)
    assert "MixedLM by" not in words and "compare_kit's own engine" in words and "REML" in words
    assert "(correlated)" not in words and "groups s with random [(Intercept)]" in words
    assert frequentist_engine_words(crossed.engine) == "compare_kit's own engine"
    single = fit_frequentist(ModelSpec.from_formula("y ~ service + (1 | d)"), data)
    assert single.engine == "statsmodels"
    assert statsmodels_words(single).startswith("MixedLM by REML") and "(correlated)" not in statsmodels_words(single)
    slopes = fit_frequentist(ModelSpec.from_formula("y ~ service + (1 + service | d)"), data)
    assert "(correlated)" in statsmodels_words(slopes)


# ----------------------------------------------------------------- slow: a crossed study's page


def section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}">')
    return html[start:html.index("</section>", start)]


@pytest.mark.slow
def test_crossed_page_describes_every_factor(crossed_html):
    html = crossed_html
    data = section(html, "data")
    for group, count in (("s", MANY), ("d", FEW)):
        assert f'id="tbl-groups-{group}"' in data and f'id="tbl-group-sizes-{group}"' in data
        assert f"{count:,} {group} groups" in data
    assert "2 crossed grouping factors" in data
    assert "No model in this study has" not in html
    results = section(html, "results")
    assert 'id="tbl-groups-partial_pooling"' in results  # d, listed in full
    assert 'id="tbl-groups-partial_pooling-chosen"' in results and "crossed factors (s, d)" in results
    shrink = section(html, "shrinkage")
    for group in ("s", "d"):
        assert f'id="shrinkage-{group}"' in shrink and f"{group} levels: median shrinkage" in shrink
    assert 'id="tbl-shrinkage-s-chosen"' in shrink and 'id="tbl-shrinkage-d"' in shrink
    assert "other factors' effects removed" in shrink


@pytest.mark.slow
def test_crossed_group_effects_have_n_on_every_row(crossed_result):
    design = crossed_result.fits["partial_pooling"][0].design
    sizes = {g: design.group_sizes(g) for g in ("s", "d")}
    out = tb.group_effects(crossed_result.estimates, "partial_pooling", sizes, "t", "cap", seed=1)
    listed, chosen = out[0], out[-1]
    assert len(listed.rows) == FEW and {r[0].text for r in listed.rows} == {"d"}
    assert [r[1].text for r in listed.rows] == [f"d{k}" for k in range(1, FEW + 1)]  # d2 before d10
    for r in (*listed.rows, *chosen.rows):
        assert r[2].text == str(sizes[r[0].text][r[1].text])


@pytest.mark.slow
def test_crossed_page_words_are_true_for_what_ran(crossed_result, crossed_html):
    html = crossed_html
    assert crossed_result.fits["partial_pooling"][0].engine == "compare_kit"
    assert "fitted by statsmodels (pooled) or compare_kit&#39;s own engine (partial_pooling), and each by Bambi" in html
    assert "each fitted by statsmodels and by" not in html
    models = section(html, "models")
    assert "MixedLM by" not in models and "(correlated)" not in models
    assert "statsmodels and compare_kit&#39;s own engine estimates" in section(html, "results")
    assert "Frequentist fits (statsmodels and compare_kit&#39;s own engine)" in section(html, "health")
    assert "no-pooling model" not in section(html, "predictive")  # the study has none


@pytest.mark.slow
def test_crossed_figures_are_placed_per_factor(crossed_result, monkeypatch):
    from compare_kit.report import figures as figs
    from compare_kit.report.render import render_report

    wanted = {"fig-forest": "results", "fig-ppc": "predictive", "fig-rank": "health",
              "fig-caterpillar-s": "results", "fig-caterpillar-d": "results",
              "fig-shrinkage-size-s": "shrinkage", "fig-shrinkage-size-d": "shrinkage"}
    fake = {k: figs.ReportFigure(k, k, "caption", "<svg></svg>") for k in wanted}
    monkeypatch.setattr(figs, "build_figures", lambda result: (fake, []))
    html = render_report(crossed_result, timestamp=False)
    for key, where in wanted.items():
        assert f'id="{key}"' in section(html, where), key
    shrink = section(html, "shrinkage")
    assert shrink.index('id="shrinkage-s"') < shrink.index('id="fig-shrinkage-size-s"') < shrink.index(
        'id="shrinkage-d"') < shrink.index('id="fig-shrinkage-size-d"')


@pytest.mark.slow
def test_page_of_thousands_of_levels_stays_small(crossed_html):
    import re

    size = len(crossed_html.encode("utf-8"))
    assert size < PAGE_LIMIT, size
    # without figures the tables are all: none grows with the levels (2,000 students, ~30 rows shown)
    tables = re.findall(r"<table id=.*?</table>", crossed_html, re.S)
    assert max(len(t) for t in tables) < 40_000
    assert crossed_html.count("<tr>") < 600


def test_shares_outside_0_to_1_are_explained_by_their_cause():
    inside = shrinkage_rows(20)
    assert tb.shares_outside_words(inside) == ""
    own = np.linspace(-2, 2, 20)  # one level's own estimate (index 10: 0.105) lies near the population's 0
    near = inside.assign(no_pooling=own, partial_freq=0.9 * own, partial_bayes=0.9 * own,
                         shrinkage_freq=0.1, shrinkage_bayes=0.1)
    near.loc[10, ["partial_bayes", "shrinkage_bayes"]] = [0.14, -0.33]  # Monte Carlo error over a small distance
    words = tb.shares_outside_words(near)
    assert words.startswith("1 share in this table lies outside 0 to 1 (0 frequentist, 1 Bayesian)")
    assert "For 1 row the group's own estimate lies close to the population value" in words
    assert "Monte Carlo error" in words and "pulled together" not in words
    slopes = pd.concat([inside, inside.assign(term="Days", shrinkage_freq=1.31)], ignore_index=True)
    words = tb.shares_outside_words(slopes)
    assert words.startswith("20 shares in this table lie outside 0 to 1 (20 frequentist, 0 Bayesian)")
    assert "pulled together" in words and "Monte Carlo" not in words


def test_a_glmm_pages_wording_never_alters_the_users_own_text():
    from compare_kit.family import Family
    from compare_kit.report.family_words import FamilyWords, glmm_text

    words = FamilyWords(Family.BERNOULLI, "log-odds", "odds ratio", "probability")
    page = "<td>BLUP</td><td>site BLUP-7</td>"
    assert glmm_text(page, None) == page  # a Gaussian page keeps its words
    assert glmm_text(page, words) == "<td>conditional mode</td><td>site conditional mode-7</td>"
    assert glmm_text(page, words, ["BLUP-7"]) == page  # a level named BLUP-7 stays as the data say
