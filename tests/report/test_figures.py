"""The report's figures of a study whose model has crossed grouping factors (``(1 | s) + (1 | d)``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compare_kit.report import figures, plots
from tests.report.conftest import LECTURERS, STUDENTS, crossed_ratings

CROSSED_IDS = {"fig-forest", "fig-ppc", "fig-rank", "fig-caterpillar-s", "fig-caterpillar-d",
               "fig-shrinkage-size-s", "fig-shrinkage-size-d"}


@pytest.fixture(scope="module")
def crossed_result(tmp_path_factory):
    from compare_kit.cli import _study_from_formula
    from compare_kit.study import run_study

    csv = tmp_path_factory.mktemp("crossed") / "ratings.csv"
    crossed_ratings().to_csv(csv, index=False)
    study = _study_from_formula("y ~ service + (1 | s) + (1 | d)", csv_path=csv)
    study = study.with_settings(draws=150, tune=150, chains=2, cv_folds=2, demos=False, mixedlm=False)
    return run_study(study, demos=False, workers=1)


@pytest.mark.slow
def test_crossed_study_gets_every_figure_named_for_its_factor(crossed_result):
    roles = figures.model_roles(crossed_result)
    assert roles.hierarchical is None and roles.crossed == "partial_pooling"
    assert set(roles.crossed_groups) == {"s", "d"}
    built, problems = figures.build_figures(crossed_result)
    assert problems == []
    assert set(built) == CROSSED_IDS
    for group, other in (("s", "d"), ("d", "s")):
        cat = built[f"fig-caterpillar-{group}"]
        size = built[f"fig-shrinkage-size-{group}"]
        assert f"each {group}:" in cat.title and f"each {group} " in size.title
        for fig in (cat, size):  # the caption says which factor, and what it is crossed with
            assert f"the {group} effects" in fig.caption or f"each {group} of" in fig.caption
            assert f"its {other} effects" in fig.caption
    # 120 students: ranked, too many to name; 25 lecturers: one labelled row each
    assert built["fig-caterpillar-s"].caption.startswith(plots.CAPTIONS["caterpillar_ranked"])
    assert built["fig-caterpillar-d"].caption.startswith(plots.CAPTIONS["caterpillar"])
    assert "120 levels" in built["fig-caterpillar-s"].caption


@pytest.mark.slow
def test_crossed_rank_plots_cover_every_sd_and_levels_of_each_factor(crossed_result, monkeypatch):
    seen: dict = {}
    drawn = plots.rank_plot

    def spy(posterior, var_names, **kwargs):
        seen.update(kwargs["labels"])
        return drawn(posterior, var_names, **kwargs)

    monkeypatch.setattr(figures.plots, "rank_plot", spy)
    roles = figures.model_roles(crossed_result)
    built, problems = figures.build_figures(crossed_result)
    assert problems == [] and "fig-rank" in built
    labels = set(seen.values())
    assert {"intercept", "service", "SD of s intercepts", "SD of d intercepts", "residual SD"} <= labels
    design = crossed_result.fits[roles.crossed][0].design
    for group in ("s", "d"):
        sizes = design.group_sizes(group)
        smallest = min(sizes.index, key=lambda lv: (sizes[lv], lv))
        largest = max(sizes.index, key=lambda lv: (sizes[lv], lv))
        assert {f"{group} {smallest}: intercept", f"{group} {largest}: intercept"} <= labels


@pytest.mark.slow
def test_crossed_figures_are_deterministic(crossed_result):
    first, _ = figures.build_figures(crossed_result)
    second, _ = figures.build_figures(crossed_result)
    assert {k: f.svg for k, f in first.items()} == {k: f.svg for k, f in second.items()}


def test_group_slug_makes_an_id():
    assert figures.group_slug("stud.id") == "stud-id"
    assert figures.group_slug("s") == "s"
