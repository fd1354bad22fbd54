"""The report in headless Chromium: no console errors, every figure drawn, every section there, no script.

Set CK_SCREENSHOT_DIR to keep the full-page screenshots (radon.png, generic.png, crossed.png, two_models.png).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compare_kit.report.render import SECTIONS
from tests.report.chromium import Browser, chromium_path
from tests.report.conftest import XSS

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _chromium_is_installed() -> None:
    """The browser checks are part of the suite: without chromium they fail, saying how to install it."""
    if chromium_path() is None:
        pytest.fail("Debian's chromium is needed for the report's browser tests: run 'bash scripts/dev test' "
                    "as root, or 'sudo apt-get install -y chromium'")

CHECKS = """(() => {
  const svgs = [...document.querySelectorAll('svg')].filter(s => !s.parentElement.closest('svg'));
  const imgs = [...document.images];
  return {
    scripts: document.querySelectorAll('script').length,
    svgs: svgs.length,
    emptySvgs: svgs.filter(s => { const r = s.getBoundingClientRect(); return !(r.width > 0 && r.height > 0); }).length,
    imgs: imgs.length,
    brokenImgs: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length,
    sections: [...document.querySelectorAll('main > section[id], #status')].map(s => s.id),
    tocTargets: [...document.querySelectorAll('nav.toc a')].map(a => a.getAttribute('href'))
      .filter(h => !document.querySelector(h)).length,
    text: document.body.innerText,
  };
})()"""


def _check(html_path: Path, shot_name: str, tmp_path: Path, min_svgs: int = 7) -> dict:
    with Browser(chromium_path()) as browser:
        browser.open(html_path)
        result = browser.evaluate(CHECKS)
        errors = browser.errors()
        folder = Path(os.environ.get("CK_SCREENSHOT_DIR", tmp_path))
        shot = browser.screenshot(folder / shot_name)
    assert errors == []
    assert result["scripts"] == 0
    assert result["svgs"] >= min_svgs and result["emptySvgs"] == 0
    assert result["brokenImgs"] == 0
    assert result["sections"] == ["status", *[s.id for s in SECTIONS]]
    assert result["tocTargets"] == 0
    assert shot.stat().st_size > 100_000
    return result


def test_radon_report_in_chromium(radon_html, tmp_path):
    path = tmp_path / "radon.html"
    path.write_text(radon_html, encoding="utf-8")
    result = _check(path, "radon.png", tmp_path)
    _no_error_in_the_box(result)
    assert "CASS" in result["text"] and "Do the engines agree?" in result["text"]


def test_generic_report_shows_an_injected_name_as_text(generic_run, tmp_path):
    result = _check(generic_run["html"], "generic.png", tmp_path)
    _no_error_in_the_box(result)
    assert XSS in result["text"]  # shown as text, and the DOM gained no script element
    assert "radon" not in result["text"].lower()


def _no_error_in_the_box(result: dict) -> None:
    """No figure failed, so the status box shows no error (a figure that does not apply is left out with a
    line saying why, not reported as a failure)."""
    assert "Figure not drawn" not in result["text"]


def test_crossed_report_in_chromium(crossed_run, tmp_path):
    result = _check(crossed_run, "crossed.png", tmp_path)
    _no_error_in_the_box(result)
    text = result["text"]
    assert "Shrinkage of the s levels" in text and "Shrinkage of the d levels" in text
    # the demonstrations say which model and which data each fitted
    assert "Model: y ~ service + (1 | s) + (1 | d), as fitted in this study" in text
    assert "Model: y ~ service + (1 | s)" in text and "constructed data set" in text


def test_two_model_report_in_chromium(two_model_run, tmp_path):
    result = _check(two_model_run, "two_models.png", tmp_path)
    _no_error_in_the_box(result)
    text = result["text"]
    assert "Drawn for the slopes model, the first with a random slope." in text  # the arrows
    assert "slopes: every group's own, pooled and partial-pooling estimates" in text  # its shrinkage table
    assert "no no-pooling model was fitted" in text  # the group panels say where their green line comes from
