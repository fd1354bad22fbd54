"""The on-disk cache of nutpie's compiled models: a hit gives the same draws as a compile, a bad
entry falls back to compiling, and the folder is chosen by an option or an environment variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import compare_kit as ck
from compare_kit.engines.compile_cache import ENV_VAR, default_cache_dir, resolve_cache_dir

SCRIPT = """
import json, sys
import compare_kit as ck
cache = sys.argv[2] if sys.argv[2] != "off" else False
fit = ck.fit_bayesian(ck.ModelSpec.named(sys.argv[1]), ck.load_radon(), draws=100, tune=100, chains=2,
                      seed=3, compile_cache=cache)
print(json.dumps({"status": fit.compile_cache,
                  "estimates": fit.estimates["estimate"].tolist()}))
"""


DEMO_SCRIPT = """
import json
import compare_kit as ck
from compare_kit import teaching
spec, data = ck.ModelSpec.named("varying_intercept"), ck.load_radon()
reml, ml = ck.fit_frequentist(spec, data, method="REML"), ck.fit_frequentist(spec, data, method="ML")
demo = teaching.prior_flattening(reml, ml, scales=(0.1, 1.0), draws=100, tune=100, chains=2, seed=1)
print(json.dumps({"status": "demo", "estimates": demo.table["posterior_mean"].tolist()}))
"""


def _fresh_process_fit(model: str, cache: str, env: dict[str, str] | None = None) -> dict:
    script = DEMO_SCRIPT if model == "prior_flattening" else SCRIPT
    proc = subprocess.run([sys.executable, "-c", script, model, cache], capture_output=True, text=True,
                          check=True, env={**os.environ, **(env or {})})
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cache_folder_option_and_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "compare_kit"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert resolve_cache_dir(None) == tmp_path / "env"
    assert resolve_cache_dir(True) == tmp_path / "env"
    assert resolve_cache_dir(False) is None
    assert resolve_cache_dir(tmp_path / "given") == tmp_path / "given"


@pytest.mark.slow
@pytest.mark.parametrize("model", ["partial_pooling", "correlated_slopes"])
def test_a_cache_hit_in_a_new_process_gives_the_draws_of_a_cold_compile(tmp_path, model):
    folder = str(tmp_path / "cache")
    cold = _fresh_process_fit(model, "off")
    miss = _fresh_process_fit(model, folder)
    hit = _fresh_process_fit(model, folder)
    assert (cold["status"], miss["status"], hit["status"]) == ("off", "miss", "hit")
    # equal by construction: the same code, seed and data on one machine (one BLAS kernel, no fastmath)
    assert miss["estimates"] == cold["estimates"]
    assert hit["estimates"] == cold["estimates"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["partial_pooling", "prior_flattening"])
def test_a_machines_first_run_gives_the_draws_of_every_later_run(tmp_path, model):
    """Empty PyTensor and compare_kit caches (a new machine, as on a fresh CI runner), then warm ones:
    numba's fastmath made code compiled afresh round differently from code loaded from the cache."""
    folder = str(tmp_path / "cache")
    env = {"PYTENSOR_FLAGS": f"base_compiledir={tmp_path / 'pytensor'}"}
    first = _fresh_process_fit(model, folder, env)
    later = _fresh_process_fit(model, folder, env)
    uncached = _fresh_process_fit(model, "off", env)
    # equal by construction: the same code, seed and data on one machine (one BLAS kernel, no fastmath)
    assert first["estimates"] == later["estimates"] == uncached["estimates"]


@pytest.mark.slow
def test_a_corrupt_entry_is_recompiled_with_the_same_draws(radon, tmp_path):
    spec = ck.ModelSpec.named("pooled")
    options = {"draws": 100, "tune": 100, "chains": 2, "seed": 3}
    first = ck.fit_bayesian(spec, radon, compile_cache=tmp_path, **options)
    entries = list(tmp_path.glob("*.nb[ci]"))
    assert first.compile_cache == "miss" and entries
    for path in entries:
        path.write_bytes(b"not a numba cache entry")
    again = ck.fit_bayesian(spec, radon, compile_cache=tmp_path, **options)
    assert again.compile_cache in ("miss", "hit")
    pd.testing.assert_frame_equal(first.estimates, again.estimates)
    uncached = ck.fit_bayesian(spec, radon, compile_cache=False, **options)
    assert uncached.compile_cache == "off"
    pd.testing.assert_frame_equal(first.estimates, uncached.estimates)


@pytest.mark.slow
def test_an_unwritable_cache_folder_still_fits(radon, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    fit = ck.fit_bayesian(ck.ModelSpec.named("pooled"), radon, draws=50, tune=50, chains=2,
                          compile_cache=Path(blocker) / "sub")
    assert fit.compile_cache.startswith(("uncacheable", "unsaved"))
    assert fit.sampling.sampler == "nutpie"


def test_the_installed_libraries_are_the_ones_the_cache_was_written_for():
    """compile_cache.py uses private parts of numba, nutpie and PyTensor. A new series of any of them
    must fail here, with what to do, rather than risk a wrong draw; the cache itself steps aside."""
    from compare_kit.engines.compile_cache import version_problems

    problems = version_problems()
    assert not problems, (
        f"compile_cache.py was written against other versions: {'; '.join(problems)}. Re-check "
        "_register_locator (numba.core.caching), _cfunc (pytensor.link.numba.cache.CACHED_SRC_FUNCTIONS) "
        "and _compile_cached (nutpie.compile_pymc's private steps) against them, run this file, then "
        "update WRITTEN_FOR and the pins in pyproject.toml")


@pytest.mark.slow
def test_an_unchecked_version_falls_back_to_nutpies_own_compile(radon, tmp_path, monkeypatch):
    from compare_kit.engines import compile_cache

    monkeypatch.setitem(compile_cache.WRITTEN_FOR, "nutpie", (0, 1))
    fit = ck.fit_bayesian(ck.ModelSpec.named("pooled"), radon, draws=50, tune=50, chains=2,
                          compile_cache=tmp_path)
    assert fit.compile_cache.startswith("uncacheable: private internals unchecked for nutpie")
    assert list(tmp_path.iterdir()) == []
