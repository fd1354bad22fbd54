"""Figures for the comparison report, drawn from tidy tables.

Every function here takes pandas DataFrames in the schemas of docs/design.md (or, for
``rank_plot``, the posterior draws as an xarray/arviz DataTree), never a fitted
model, and returns a :class:`matplotlib.figure.Figure`. Figures are created
directly (not through ``pyplot``), so nothing here touches the interactive
backend or global figure registry; ``figure_to_svg`` and ``figure_to_png_base64``
turn a figure into deterministic text for a self-contained HTML page.

seaborn draws with the libraries' own strengths: its ``ticks`` theme and ``paper``
context are the package style (``style.package_style``, applied as an rc context),
and the shrinkage-against-size points are a seaborn scatterplot with hue = engine.
Figures seaborn does not help with (arrows, given intervals, seeded jitter, LineCollection
bundles, rank histograms) are hand-written matplotlib, and their docstrings say why.
seaborn is imported when a figure is drawn, not when this package is (it loads pyplot).

Colours are the Okabe-Ito colour-blind-safe palette, used the same way in every
figure: frequentist (statsmodels) blue, Bayesian (Bambi/PyMC) vermillion, the
groups' own "no pooling" estimates green, complete pooling dark grey.

Each plotting function has a caption in ``CAPTIONS`` (keyed by function name)
that tells the reader what to look at. The modules: ``style`` (palette, settings,
labels, output), ``captions``, ``groups`` (group panels and shrinkage), ``estimates``
(caterpillar and forest) and ``checks`` (predictive check and rank plots).
"""

from compare_kit.display import term_label
from compare_kit.report.plots.captions import CAPTIONS
from compare_kit.report.plots.checks import posterior_predictive, rank_plot
from compare_kit.report.plots.discrete import count_check, proportion_check
from compare_kit.report.plots.estimates import caterpillar, fixed_effects_forest, separate_axes
from compare_kit.report.plots.groups import (
    ARROW_LONGEST,
    ARROW_SAMPLE,
    arrow_sample_note,
    county_panels,
    level_shrinkage,
    nested_shrinkage,
    one_group_size,
    shrinkage_arrows,
    shrinkage_vs_size,
)
from compare_kit.report.plots.style import (
    BAYES_COLOR,
    COMPLETE_POOLING_COLOR,
    DATA_COLOR,
    FREQ_COLOR,
    MANY_LEVELS,
    NO_POOLING_COLOR,
    RASTER_DPI,
    Source,
    engine_color,
    engine_label,
    figure_to_png_base64,
    figure_to_svg,
    new_figure,
    source_colors,
    styled,
)

__all__ = [
    "ARROW_LONGEST", "ARROW_SAMPLE", "MANY_LEVELS", "RASTER_DPI", "arrow_sample_note", "BAYES_COLOR", "CAPTIONS", "COMPLETE_POOLING_COLOR", "DATA_COLOR", "FREQ_COLOR",
    "NO_POOLING_COLOR", "caterpillar", "count_check", "proportion_check", "county_panels", "engine_color", "engine_label",
    "figure_to_png_base64", "figure_to_svg", "fixed_effects_forest", "level_shrinkage", "nested_shrinkage",
    "new_figure", "one_group_size", "posterior_predictive", "rank_plot", "separate_axes", "shrinkage_arrows", "shrinkage_vs_size",
    "Source", "source_colors", "styled", "term_label",
]
