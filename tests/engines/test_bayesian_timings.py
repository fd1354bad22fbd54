"""The Bayesian fit's phase timings: sampling is split into tuning and drawing (nutpie)."""

from __future__ import annotations

import math

import pytest

import compare_kit as ck


@pytest.mark.slow
def test_sampling_time_is_split_into_tune_and_draw(radon):
    fit = ck.fit_bayesian(ck.ModelSpec.named("pooled"), radon, draws=200, tune=200, chains=2)
    t = fit.sampling.timings
    assert {"build", "compile", "sample", "tune", "draw", "post_process"} <= t.keys()
    assert 0 <= t["tune"] <= t["sample"]  # measured at 20 ms resolution per chain
    assert math.isclose(t["tune"] + t["draw"], t["sample"])
    assert "tune" in fit.sampling.describe()


@pytest.mark.slow
def test_a_progress_function_is_told_the_iterations_done(radon, monkeypatch):
    import compare_kit.engines.lmm as lmm

    monkeypatch.setattr(lmm, "PROGRESS_SECONDS", 0.0)  # every nutpie callback (20 ms) says a line
    said: list[str] = []
    ck.fit_bayesian(ck.ModelSpec.named("pooled"), radon, draws=300, tune=300, chains=2, progress=said.append)
    assert said, "no progress line during sampling"
    assert all("of 1200 iterations of 2 chains" in line for line in said)
