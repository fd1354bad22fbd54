"""Report figures: built from tidy tables, deterministic, safe to inline in HTML."""

from __future__ import annotations

import base64
import re
import subprocess
import sys

import matplotlib as mpl
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, StepPatch
from matplotlib.text import Text

from compare_kit.report import plots
from compare_kit.results import make_estimates

EVIL = "<script>alert(1)</script>"
LEVELS = ["A", "B", EVIL, "cost$5"]
NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


# ----------------------------------------------------------------------------- synthetic tables

@pytest.fixture(scope="module")
def estimates() -> pd.DataFrame:
    """Both engines, one model; SDs without intervals for statsmodels; one NaN estimate."""
    rows = []
    for engine, shift in (("statsmodels", 0.0), ("bambi", 0.02)):
        for term, value in (("(Intercept)", 1.5), ("floor", -0.6)):
            rows.append(dict(engine=engine, model="partial_pooling", effect="fixed", term=term,
                             estimate=value + shift, std_error=0.1, conf_low=value + shift - 0.2,
                             conf_high=value + shift + 0.2, conf_level=0.95))
        for term, value in (("sd__(Intercept)", 0.33), ("sd__floor", 0.3), ("cor__(Intercept).floor", -0.4)):
            interval = (np.nan, np.nan) if engine == "statsmodels" else (value - 0.1, value + 0.1)
            rows.append(dict(engine=engine, model="partial_pooling", effect="ran_pars", group="county",
                             term=term, estimate=value + shift, std_error=np.nan if engine == "statsmodels"
                             else 0.05, conf_low=interval[0], conf_high=interval[1], conf_level=0.95))
        rows.append(dict(engine=engine, model="partial_pooling", effect="ran_pars", group="Residual",
                         term="sd__Observation", estimate=np.nan if engine == "statsmodels" else 0.7,
                         std_error=np.nan if engine == "statsmodels" else 0.02,
                         conf_low=np.nan if engine == "statsmodels" else 0.66,
                         conf_high=np.nan if engine == "statsmodels" else 0.74, conf_level=0.95,
                         note="not estimable: test" if engine == "statsmodels" else ""))
        for i, level in enumerate(LEVELS):
            for term in ("(Intercept)", "floor"):
                value = (i - 1.5) * 0.2 + shift
                rows.append(dict(engine=engine, model="partial_pooling", effect="ran_vals", group="county",
                                 level=level, term=term, estimate=value, std_error=0.1,
                                 conf_low=value - 0.2, conf_high=value + 0.2, conf_level=0.95))
    return make_estimates(rows)


@pytest.fixture(scope="module")
def shrinkage() -> pd.DataFrame:
    """Four groups: A and B complete; EVIL has no own slope; 'cost$5' has no own estimate at all."""
    rows = []
    own = {"A": (2.0, -1.5), "B": (0.5, 0.4), EVIL: (1.8, np.nan), "cost$5": (np.nan, np.nan)}
    sizes = {"A": 3, "B": 40, EVIL: 1, "cost$5": 5}
    for level, (a0, b0) in own.items():
        for term, value, pooled in (("(Intercept)", a0, 1.4), ("floor", b0, -0.6)):
            partial = pooled + 0.5 * (value - pooled) if np.isfinite(value) else pooled + 0.05
            share = (value - partial) / (value - pooled) if np.isfinite(value) else np.nan
            rows.append(dict(group="county", level=level, n=sizes[level], term=term, no_pooling=value,
                             complete_pooling=pooled, partial_freq=partial, partial_bayes=partial + 0.01,
                             shrinkage_freq=share, shrinkage_bayes=share,
                             pooling_factor=1 / (1 + sizes[level] * 0.2)))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    """A repeated-measures table with names unlike radon's (score ~ dose | subject)."""
    rng = np.random.default_rng(3)
    subject = np.repeat(["s1", "s2", EVIL], 6)
    dose = np.tile([0.0, 0.5, 1.0, 2.0, 4.0, 8.0], 3)
    return pd.DataFrame({"subject": subject, "dose": dose,
                         "score": 10 + 0.5 * dose + rng.normal(0, 1, dose.size)})


def _svg(fig: Figure) -> str:
    return plots.figure_to_svg(fig)


def _urls(svg: str) -> set[str]:
    return set(re.findall(r"https?://[^\s\"'<>]+", svg))


# ----------------------------------------------------------------------------- output helpers

def test_svg_is_deterministic_inline_and_without_urls(estimates):
    first = _svg(plots.caterpillar(estimates, "county", "(Intercept)"))
    second = _svg(plots.caterpillar(estimates, "county", "(Intercept)"))
    assert first == second
    assert first.startswith("<svg")
    assert _urls(first) <= NAMESPACES
    assert "<metadata" not in first and "matplotlib.org" not in first


def test_png_is_deterministic_and_has_no_software_chunk(estimates):
    first = plots.figure_to_png_base64(plots.fixed_effects_forest(estimates))
    second = plots.figure_to_png_base64(plots.fixed_effects_forest(estimates))
    assert first == second
    raw = base64.b64decode(first)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"Software" not in raw and b"matplotlib" not in raw.lower()


def test_user_text_is_escaped_in_svg(estimates, shrinkage, scores):
    figures = [
        plots.caterpillar(estimates, "county", "floor"),
        plots.county_panels(scores, "score", "dose", "subject", [EVIL, "s1"],
                            pd.DataFrame({"level": [EVIL], "source": ["no pooling"],
                                          "intercept": [10.0], "slope": [0.5]})),
    ]
    for fig in figures:
        svg = _svg(fig)
        assert "<script>" not in svg
        assert "&lt;script&gt;" in svg  # the name is there, as escaped text


def test_dollar_in_a_name_is_not_mathtext(estimates):
    fig = plots.caterpillar(estimates, "county", "floor")
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    assert r"cost\$5" in labels
    _svg(fig)  # would raise a mathtext parse error if '$' were left bare


def test_importing_plots_does_not_start_pyplot():
    code = "import sys, compare_kit.report.plots; print('matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- 1. group panels

def test_county_panels_generic_columns(scores):
    lines = pd.DataFrame({"level": ["s1", "s1", "s2"], "source": ["no pooling", "partial pooling", "bambi"],
                          "intercept": [10.0, 10.1, 9.0], "slope": [0.5, 0.45, np.nan]})
    draws = pd.DataFrame({"level": "s1", "draw": np.arange(300), "source": "partial pooling",
                          "intercept": np.linspace(9.5, 10.5, 300), "slope": 0.5})
    fig = plots.county_panels(scores, "score", "dose", "subject", ["s1", "s2"], lines, draws, max_draws=40)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    first, second = fig.axes
    assert len(first.get_lines()) == 2 and len(second.get_lines()) == 0  # NaN slope: no line
    collections = [c for c in first.collections if isinstance(c, LineCollection)]
    assert [len(c.get_segments()) for c in collections] == [40]
    assert first.get_title().startswith("s1") and "n = 6" in first.get_title()
    assert len(first.collections[-1].get_offsets()) == 6  # every observation drawn


def test_county_panels_radon(radon):
    levels = ["CASS", "CROWWING", "FREEBORN"]
    own = radon[radon["county"].isin(levels)].groupby("county")
    lines = pd.DataFrame({"level": levels, "source": "no pooling",
                          "intercept": own["log_radon"].mean().loc[levels].to_numpy(), "slope": -0.6})
    fig = plots.county_panels(radon, "log_radon", "floor", "county", levels, lines,
                              x_labels={0: "basement", 1: "first floor"})
    assert [ax.get_title().split()[0] for ax in fig.axes] == levels
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["basement", "first floor"]
    default = plots.county_panels(radon, "log_radon", "floor", "county", levels[:1], lines)
    assert [t.get_text() for t in default.axes[0].get_xticklabels()] == ["0", "1"]
    same = [_svg(plots.county_panels(radon, "log_radon", "floor", "county", levels, lines, seed=7))
            for _ in range(2)]
    assert same[0] == same[1]  # seeded jitter


def test_county_panels_unknown_level_is_an_error(radon):
    lines = pd.DataFrame(columns=["level", "source", "intercept", "slope"])
    with pytest.raises(ValueError, match="CROW WING"):
        plots.county_panels(radon, "log_radon", "floor", "county", ["CROW WING"], lines)


# ----------------------------------------------------------------------------- 2-3. shrinkage

def test_shrinkage_arrows_counts(shrinkage):
    fig = plots.shrinkage_arrows(shrinkage)
    assert len(fig.axes) == 2  # frequentist and Bayesian
    for ax in fig.axes:
        arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
        assert len(arrows) == 2  # A and B have both own estimates
        hollow = [c for c in ax.collections if len(c.get_offsets()) and
                  np.all(c.get_facecolors()[:, 3] == 0)]
        assert sum(len(c.get_offsets()) for c in hollow) == 1  # EVIL: no own slope
        notes = " ".join(t.get_text() for t in ax.texts)
        assert "2 arrows, 1 hollow" in notes and "1 group without estimates" in notes


def test_shrinkage_arrows_one_engine_only(shrinkage):
    fig = plots.shrinkage_arrows(shrinkage.assign(partial_bayes=np.nan))
    assert len(fig.axes) == 1 and "frequentist" in fig.axes[0].get_title()


def test_shrinkage_vs_size(shrinkage):
    fig = plots.shrinkage_vs_size(shrinkage)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
        curves = [ln for ln in ax.get_lines() if ln.get_color() == "black"]
        assert len(curves) == 1 and list(curves[0].get_xdata()) == [1, 3, 5, 40]  # sorted by size
    freq_only = plots.shrinkage_vs_size(shrinkage.assign(shrinkage_bayes=np.nan))
    legend = [t.get_text() for t in freq_only.legends[0].get_texts()]
    assert legend == ["frequentist", "closed-form pooling factor"]
    assert "(1 group without an own estimate" in freq_only.axes[0].get_title()  # 'cost$5' only
    for table in (shrinkage.drop(columns="pooling_factor"), shrinkage.assign(pooling_factor=np.nan)):
        without = plots.shrinkage_vs_size(table)
        assert not [ln for ax in without.axes for ln in ax.get_lines() if ln.get_color() == "black"]
        assert "closed-form" not in " ".join(t.get_text() for t in without.legends[0].get_texts())


def _points_by_color(collections, color: str, filled: bool) -> list[tuple[float, float]]:
    """(x, y) of the points drawn in ``color``: filled markers by face colour, open ones by edge colour."""
    rgb = np.array(mcolors.to_rgb(color))
    found = []
    for c in collections:
        faces = c.get_facecolors()
        if filled != bool(len(faces) and np.all(faces[:, 3] > 0)):
            continue
        colors = faces if filled else c.get_edgecolors()
        colors = np.broadcast_to(colors, (len(c.get_offsets()), 4))
        found += [tuple(o) for o, rgba in zip(c.get_offsets(), colors, strict=True)
                  if np.allclose(rgba[:3], rgb)]
    return sorted(found)


def test_shrinkage_vs_size_points_per_engine_are_the_input_rows(shrinkage):
    """Each engine's points (seaborn's hue) are exactly its finite shares, at the dodged group size, in
    the engine's colour; a share beyond the axis is an open triangle at the edge, in the same colour."""
    table = shrinkage.copy()
    beyond = (table["level"] == "A") & (table["term"] == "floor")
    table.loc[beyond, "shrinkage_bayes"] = 1.6
    fig = plots.shrinkage_vs_size(table)
    for ax, term in zip(fig.axes, ["(Intercept)", "floor"], strict=True):
        rows = table[table["term"] == term]
        for column, color, dodge in (("shrinkage_freq", plots.FREQ_COLOR, 0.94),
                                     ("shrinkage_bayes", plots.BAYES_COLOR, 1.06)):
            share = rows[column].to_numpy(dtype=float)
            x = rows["n"].to_numpy(dtype=float) * dodge
            inside = np.isfinite(share) & (share >= -0.25) & (share <= 1.25)
            over = np.isfinite(share) & (share > 1.25)
            assert np.allclose(_points_by_color(ax.collections, color, filled=True),
                               sorted(zip(x[inside], share[inside], strict=True)))
            edge = _points_by_color(ax.collections, color, filled=False)
            assert np.allclose(edge, sorted((xx, 1.25) for xx in x[over])) if over.any() else edge == []
    assert len(_points_by_color(fig.axes[1].collections, plots.BAYES_COLOR, filled=True)) == 1  # A is beyond


def test_styled_uses_seaborns_theme_without_touching_global_rcparams():
    import seaborn as sns

    seen: dict = {}

    @plots.styled
    def probe() -> Figure:
        seen.update(mpl.rcParams)
        return Figure()

    with mpl.rc_context({"axes.edgecolor": "red", "font.size": 7, "axes.grid": False}):  # the caller's own
        before = dict(mpl.rcParams)
        probe()
        assert dict(mpl.rcParams) == before
    theme, context = sns.axes_style("ticks"), sns.plotting_context("paper")
    for key in ("axes.edgecolor", "text.color", "axes.labelcolor", "grid.linestyle"):
        assert seen[key] == theme[key], key
    for key in ("axes.linewidth", "xtick.major.size", "xtick.major.width", "patch.linewidth"):
        assert seen[key] == pytest.approx(context[key]), key
    # the package's own choices on top: the bundled font, today's sizes, a grid, no top/right spines
    assert seen["font.family"] == ["DejaVu Sans"] and seen["font.size"] == 10
    assert seen["axes.grid"] and not seen["axes.spines.top"] and not seen["axes.spines.right"]


def test_shrinkage_radon_stand_in(radon):
    """Real radon sizes: 85 counties, 25 without a first-floor house (no own slope)."""
    grouped = radon.groupby("county")
    own_a = grouped.apply(lambda g: g.loc[g["floor"] == 0, "log_radon"].mean(), include_groups=False)
    own_b = grouped.apply(lambda g: g.loc[g["floor"] == 1, "log_radon"].mean(), include_groups=False) - own_a
    n = grouped.size()
    rows = []
    for term, own, pooled in (("(Intercept)", own_a, 1.33), ("floor", own_b, -0.61)):
        weight = n / (n + 5.0)
        partial = pooled + weight * (own.fillna(pooled) - pooled)
        rows.append(pd.DataFrame({"group": "county", "level": own.index, "n": n.to_numpy(), "term": term,
                                  "no_pooling": own.to_numpy(), "complete_pooling": pooled,
                                  "partial_freq": partial.to_numpy(), "partial_bayes": partial.to_numpy(),
                                  "shrinkage_freq": (1 - weight).where(own.notna()).to_numpy(),
                                  "shrinkage_bayes": (1 - weight).where(own.notna()).to_numpy()}))
    table = pd.concat(rows, ignore_index=True)
    fig = plots.shrinkage_arrows(table)
    both = int((own_a.notna() & own_b.notna()).sum())
    assert both == 60
    for ax in fig.axes:
        assert len([p for p in ax.patches if isinstance(p, FancyArrowPatch)]) == both
    sizes = plots.shrinkage_vs_size(table)
    assert "25 groups without an own estimate" in sizes.axes[1].get_title()


# ----------------------------------------------------------------------------- 4-5. intervals

def test_caterpillar_one_row_per_level(estimates):
    fig = plots.caterpillar(estimates, "county", "(Intercept)")
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    assert len(labels) == len(LEVELS)
    # ticks run bottom to top; sorted by the frequentist estimate, lowest on top
    assert labels[-1] == "A" and labels[0] == r"cost\$5"


def test_caterpillar_many_levels_split_into_columns():
    levels = [f"G{i:02d}" for i in range(85)]
    rows = [dict(engine=engine, model="m", effect="ran_vals", group="g", level=level, term="(Intercept)",
                 estimate=np.sin(i) + (0.01 if engine == "pymc" else 0.0), std_error=0.1,
                 conf_low=np.sin(i) - 0.2, conf_high=np.sin(i) + 0.2, conf_level=0.95, note="")
            for engine in ("statsmodels", "pymc") for i, level in enumerate(levels)]
    fig = plots.caterpillar(make_estimates(rows), "g", "(Intercept)")
    assert len(fig.axes) == 2
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    assert sorted(labels) == levels
    assert fig.get_size_inches()[1] < 12  # stays a page, not a scroll


def test_caterpillar_asks_for_a_model_when_ambiguous(estimates):
    two = pd.concat([estimates, estimates.assign(model="other")], ignore_index=True)
    plots.caterpillar(two, "county", "floor", model="other")
    with pytest.raises(ValueError, match="say which one with model="):
        plots.caterpillar(two, "county", "floor")  # no model name is preferred by its wording


def test_forest_intervals_and_missing_estimates(estimates):
    fig = plots.fixed_effects_forest(estimates)
    fixed, ran = fig.axes
    assert [t.get_text() for t in fixed.get_yticklabels()] == ["floor", "intercept"]
    assert "residual SD" in [t.get_text() for t in ran.get_yticklabels()]
    bars = sum(len(c.get_segments()) for c in ran.collections if isinstance(c, LineCollection))
    assert bars == 4  # only Bayesian ran_pars have intervals
    assert any("not estimable" in t.get_text() for t in ran.texts)


def test_term_labels():
    assert plots.term_label("(Intercept)") == "intercept"
    assert plots.term_label("sd__(Intercept)", "county") == "SD of county intercepts"
    assert plots.term_label("sd__floor", "county") == "SD of county floor slopes"
    assert plots.term_label("cor__(Intercept).floor", "county") == "correlation (county): intercept, floor"
    assert plots.term_label("sd__Observation") == "residual SD"


# ----------------------------------------------------------------------------- 6-7. checks

def test_posterior_predictive(radon):
    rng = np.random.default_rng(0)
    replicated = pd.DataFrame({"draw": np.repeat(np.arange(30), 200), "value": rng.normal(1.2, 0.8, 6000)})
    fig = plots.posterior_predictive(radon["log_radon"], replicated, response_label="log radon", max_draws=20)
    (ax,) = fig.axes
    (bundle,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(bundle.get_segments()) == 20
    assert len([ln for ln in ax.get_lines() if isinstance(ln, Line2D)]) == 1  # the observed curve
    assert ax.get_ylim()[0] == 0
    fig.canvas.draw()  # the legend lies outside the axes, so it never covers a curve
    (legend,) = fig.legends
    assert not legend.get_window_extent().overlaps(ax.get_window_extent())
    assert [t.get_text() for t in legend.get_texts()] == ["observed (n = 919)",
                                                          "replicated data sets (20 draws)"]


def _posterior(chains: int = 3, draws: int = 100) -> xr.DataTree:
    rng = np.random.default_rng(5)
    data = xr.Dataset({"mu": (("chain", "draw"), rng.normal(size=(chains, draws))),
                       "a": (("chain", "draw", "county"), rng.normal(size=(chains, draws, 4)))},
                      coords={"county": ["A", "B", EVIL, "D"]})
    return xr.DataTree.from_dict({"posterior": data})


def test_rank_plot_from_datatree():
    tree = _posterior()
    fig = plots.rank_plot(tree, ["mu", "a"], bins=10)
    assert len(fig.axes) == 5
    assert [ax.get_title() for ax in fig.axes][:2] == ["mu", "a[A]"]
    steps = [p for p in fig.axes[0].patches if isinstance(p, StepPatch)]
    assert len(steps) == 3 and all(int(s.get_data().values.sum()) == 100 for s in steps)
    svg = _svg(fig)
    assert "<script>" not in svg
    assert svg == _svg(plots.rank_plot(tree, ["mu", "a"], bins=10))


def test_rank_plot_caps_panels_and_checks_names():
    tree = _posterior()
    fig = plots.rank_plot(tree["posterior"].to_dataset(), ["mu", "a"], max_panels=2)
    assert len(fig.axes) == 2 and "3 more not shown" in fig.get_suptitle()
    named = plots.rank_plot(tree, ["mu"], labels={"mu": "population mean"})
    assert named.axes[0].get_title() == "population mean"
    with pytest.raises(ValueError, match="sigma"):
        plots.rank_plot(tree, ["sigma"])


# ----------------------------------------------------------------------------- many levels

MANY = 4000  # InstEval's scale: thousands of students
BUDGET = 250_000  # bytes per figure: a page of a dozen figures stays under 5 MB at thousands of levels


def _many_estimates(n: int = MANY) -> pd.DataFrame:
    rng = np.random.default_rng(9)
    value = rng.normal(0, 0.5, n)
    se = rng.uniform(0.1, 0.6, n)
    rows = [dict(engine=engine, model="m", effect="ran_vals", group="s", level=f"S{i:04d}", term="(Intercept)",
                 estimate=value[i] * shrink, std_error=se[i], conf_low=value[i] * shrink - 1.96 * se[i],
                 conf_high=value[i] * shrink + 1.96 * se[i], conf_level=0.95, note="")
            for engine, shrink in (("statsmodels", 1.0), ("pymc", 0.98)) for i in range(n)]
    return make_estimates(rows)


def _many_shrinkage(n: int = MANY) -> pd.DataFrame:
    rng = np.random.default_rng(10)
    size = rng.integers(1, 60, n)
    share = 1.0 / (1.0 + size * 0.3)
    rows = []
    for term, pooled in (("(Intercept)", 1.0), ("x", -0.5)):
        own = pooled + rng.normal(0, 1, n)
        own[:7] = np.nan if term == "x" else own[:7]  # seven groups without an own slope: hollow markers
        partial = np.where(np.isfinite(own), pooled + (1 - share) * (own - pooled), pooled)
        rows.append(pd.DataFrame({"group": "s", "level": [f"S{i:04d}" for i in range(n)], "n": size,
                                  "term": term, "no_pooling": own, "complete_pooling": pooled,
                                  "partial_freq": partial, "partial_bayes": partial + 0.01,
                                  "shrinkage_freq": np.where(np.isfinite(own), share, np.nan),
                                  "shrinkage_bayes": np.where(np.isfinite(own), share, np.nan),
                                  "pooling_factor": share}))
    return pd.concat(rows, ignore_index=True)


def test_caterpillar_of_thousands_is_ranked_small_and_names_only_the_extremes():
    table = _many_estimates()
    fig = plots.caterpillar(table, "s", "(Intercept)")
    assert len(fig.axes) == 2  # one panel per engine, levels ranked along x
    ax = fig.axes[0]
    assert not [t for a in fig.axes for t in a.get_yticklabels() + a.get_xticklabels()
                if t.get_text().startswith("S")]
    freq = table[table["engine"] == "statsmodels"].sort_values("estimate")["level"].tolist()
    named = [t.get_text() for t in ax.texts]
    assert sorted(named) == sorted(freq[:3] + freq[-3:])
    fig.canvas.draw()  # the six labels do not overlap one another
    boxes = [Text.get_window_extent(t) for t in ax.texts]  # the words alone, not their connector lines
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    svg = _svg(fig)
    assert len(svg.encode()) < BUDGET and "<image" in svg  # the lines are one embedded PNG
    assert svg == _svg(plots.caterpillar(table, "s", "(Intercept)"))


def test_caterpillar_stays_a_labelled_row_per_level_up_to_many_levels():
    fig = plots.caterpillar(_many_estimates(plots.MANY_LEVELS), "s", "(Intercept)")
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    assert len(labels) == plots.MANY_LEVELS and "<image" not in _svg(fig)


def test_shrinkage_arrows_of_thousands_draw_a_seeded_sample_and_the_longest():
    table = _many_shrinkage()
    fig = plots.shrinkage_arrows(table, seed=4)
    wanted = plots.ARROW_SAMPLE + plots.ARROW_LONGEST
    for ax in fig.axes:
        arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
        hollow = sum(len(c.get_offsets()) for c in ax.collections
                     if len(c.get_offsets()) and np.all(c.get_facecolors()[:, 3] == 0))
        # the longest 20 are the arrows of the groups farthest from their partial estimate: all with a slope
        assert len(arrows) + hollow == wanted and len(arrows) >= plots.ARROW_LONGEST
    assert fig.get_suptitle() == plots.arrow_sample_note(MANY, 4)
    assert "100 groups picked at random (seed 4)" in fig.get_suptitle()
    svg = _svg(fig)
    assert len(svg.encode()) < BUDGET
    assert svg == _svg(plots.shrinkage_arrows(table, seed=4))
    assert svg != _svg(plots.shrinkage_arrows(table, seed=5))
    assert plots.arrow_sample_note(wanted, 4) == ""  # 120 groups: every one drawn, nothing to say


def test_shrinkage_arrows_sample_keeps_the_longest_arrows():
    table = _many_shrinkage().copy()
    far = (table["level"] == "S3999") & (table["term"] == "(Intercept)")
    table.loc[far, "no_pooling"] = 40.0  # by far the longest arrow; its own estimate lies beyond the view
    fig = plots.shrinkage_arrows(table, seed=4)
    for ax in fig.axes:
        starts = [p._posA_posB[0][0] for p in ax.patches if isinstance(p, FancyArrowPatch)]
        assert 40.0 in starts


def test_shrinkage_vs_size_of_thousands_is_one_image():
    table = _many_shrinkage()
    svg = _svg(plots.shrinkage_vs_size(table))
    assert len(svg.encode()) < BUDGET and "<image" in svg
    assert svg == _svg(plots.shrinkage_vs_size(table))
    fig = plots.shrinkage_vs_size(table)
    curve = [ln for ln in fig.axes[0].get_lines() if ln.get_color() == "black"][0]
    assert len(curve.get_xdata()) == table.loc[table["term"] == "(Intercept)", "n"].nunique()


def test_shrinkage_vs_size_of_balanced_groups_ranks_them_on_a_linear_axis(shrinkage):
    balanced = shrinkage.assign(n=10, pooling_factor=1 / 3)
    assert plots.one_group_size(balanced) == 10 and plots.one_group_size(shrinkage) is None
    fig = plots.shrinkage_vs_size(balanced)
    for ax in fig.axes:
        assert ax.get_xscale() == "linear"  # a log axis of one size is a single point
        assert "10 rows each" in ax.get_xlabel()
        level = [ln for ln in ax.get_lines() if ln.get_color() == "black"]
        assert len(level) == 1 and set(level[0].get_ydata()) == {1 / 3}  # one pooling factor for all
    # the groups are ranked by their frequentist share: x runs 1, 2, 3 over the groups with a share
    freq = _points_by_color(fig.axes[0].collections, plots.FREQ_COLOR, filled=True)
    xs = [x for x, _ in freq]
    assert np.allclose(sorted(xs), np.arange(1, len(xs) + 1) - 0.15)
    assert [y for _, y in sorted(freq)] == sorted(y for _, y in freq)


def _fixed_rows(values: dict[str, tuple[float, float]]) -> pd.DataFrame:
    rows = []
    for engine in ("statsmodels", "bambi"):
        for term, (estimate, half) in values.items():
            rows.append(dict(engine=engine, model="m", effect="fixed", term=term, estimate=estimate,
                             std_error=half / 2, conf_low=estimate - half, conf_high=estimate + half,
                             conf_level=0.95))
        rows.append(dict(engine=engine, model="m", effect="ran_pars", group="Subject", term="sd__(Intercept)",
                         estimate=37.0, std_error=np.nan, conf_low=np.nan, conf_high=np.nan, conf_level=0.95))
    return make_estimates(rows)


def test_forest_gives_each_fixed_effect_its_own_axis_when_scales_differ():
    sleep = _fixed_rows({"(Intercept)": (251.4, 19.1), "Days": (10.5, 1.6)})  # sleepstudy's scales
    assert plots.separate_axes(sleep) == ("fixed",)
    fig = plots.fixed_effects_forest(sleep)
    assert len(fig.axes) == 3  # intercept and Days each on an axis, the SD beside them
    days = next(ax for ax in fig.axes if [t.get_text() for t in ax.get_yticklabels()] == ["Days"])
    low, high = days.get_xlim()
    assert high - low < 10  # Days' interval (8.9 to 12.1) fills its axis instead of 1% of 0-270
    assert "own axis" in fig.axes[0].get_title()
    radon = _fixed_rows({"(Intercept)": (1.46, 0.1), "floor": (-0.69, 0.13)})
    assert plots.separate_axes(radon) == ()
    assert len(plots.fixed_effects_forest(radon).axes) == 2
