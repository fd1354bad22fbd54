"""Reports of GLMM studies (a 0/1 outcome, counts) in headless Chromium: every section and figure, the
family's words and scores, and no Gaussian or radon wording."""

from __future__ import annotations

import pytest

from tests.report.test_report_browser import _check, _chromium_is_installed, _no_error_in_the_box  # noqa: F401

pytestmark = pytest.mark.slow

GAUSSIAN_WORDS = ("residual SD", "RMSD", "radon", "REML", "BLUP", "GLS")


def _no_gaussian_words(text: str) -> None:
    for word in GAUSSIAN_WORDS:
        assert word.lower() not in text.lower(), word


def test_the_binary_report(binary_run, tmp_path):
    # shrinkage against size, forest, caterpillar, predictive check, rank plots (no panels, no slope)
    result = _check(binary_run, "binary.png", tmp_path, min_svgs=5)
    _no_error_in_the_box(result)
    _no_gaussian_words(result["text"])
    text = result["text"]
    assert "Family bernoulli, logit link: a 0/1 outcome, y = 1 counted as a success" in text
    assert "log-odds scale" in text and "odds ratio" in text
    assert "; probability 0." in text  # the intercept's baseline odds read as a probability
    assert "Brier score" in text and "log score" in text and "mean deviance" not in text
    assert "Posterior predictive check: each cluster's share of successes" in text
    assert "Laplace, adaptive quadrature and MCMC" in text
    assert "group panels" in text and "are left out" in text


def test_the_count_report_from_the_command_line(count_run, tmp_path):
    assert count_run["code"] == 0, count_run["stderr"]
    result = _check(count_run["html"], "counts.png", tmp_path)
    _no_error_in_the_box(result)
    _no_gaussian_words(result["text"])
    text = result["text"]
    assert "Family poisson, log link: a count, with offset(log(exposure))" in text
    assert "log rate scale" in text and "rate ratio" in text
    assert "mean deviance" in text and "RMSE of counts" in text and "Brier score" not in text
    assert "Posterior predictive check: how often each count occurs" in text
