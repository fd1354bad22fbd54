"""compare_kit: a frequentist mixed model and a Bayesian hierarchical model of the
same data, side by side, from one lme4-style formula.

Heavy engines (statsmodels, PyMC, Bambi) load only when a fit is asked for, so
``import compare_kit`` and ``compare_kit.spec`` stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# compare() shares its name with its module: importing it here, eagerly, keeps ``ck.compare`` the
# function even after ``import compare_kit.compare`` (the module is then already loaded).
from compare_kit.compare import compare
from compare_kit.data import load_csv, load_radon
from compare_kit.errors import CompareKitError, DataError, FitError, IncomparableError, SpecError
from compare_kit.spec import CANONICAL_MODELS, ModelSpec

if TYPE_CHECKING:
    from pathlib import Path

    from compare_kit.coverage import CoverageResult
    from compare_kit.results import FitResult
    from compare_kit.study import Study, StudyResult

__all__ = [
    "CANONICAL_MODELS", "CompareKitError", "DataError", "FitError", "IncomparableError",
    "ModelSpec", "SpecError", "compare", "coverage_study", "fit_bayesian", "fit_frequentist", "load_csv",
    "load_radon", "load_srrs2", "load_study", "run_study", "write_report",
]
__version__ = "0.1.0"


def fit_frequentist(spec: ModelSpec, data: Any, method: str = "REML", **options: Any) -> FitResult:
    """Fit ``spec`` by maximum likelihood (or REML): OLS, a mixed model (compare_kit's engine beside statsmodels
    MixedLM), a GLM (statsmodels) or a GLMM (compare_kit's engine; ``nagq=N`` for adaptive quadrature).
    ``engines.frequentist.fit_frequentist`` lists the options."""
    from compare_kit.engines.frequentist import fit_frequentist as _fit

    return _fit(spec, data, method=method, **options)


def fit_bayesian(spec: ModelSpec, data: Any, **options: Any) -> FitResult:
    """Fit ``spec`` with Bambi on PyMC (PyMC directly for correlated group effects)."""
    from compare_kit.engines.bayesian import fit_bayesian as _fit

    return _fit(spec, data, **options)


def write_report(result_or_study: Any, path: str | Path, *, timestamp: bool = True, **options: Any) -> Path:
    """Write the self-contained HTML report of a StudyResult (or of a Study, which is run first)."""
    from compare_kit.report.render import write_report as _write

    return _write(result_or_study, path, timestamp=timestamp, **options)


def load_srrs2(path: str | Path | None = None, cty_path: str | Path | None = None) -> Any:
    """The full radon survey: the bundled srrs2.dat and cty.dat, or a copy (see compare_kit.srrs2.load_srrs2)."""
    from compare_kit.srrs2 import load_srrs2 as _load

    return _load(path, cty_path)


def load_study(path: str | Path | None = None) -> Study:
    """Read a study file (TOML); without a path, the packaged radon study."""
    from compare_kit.study import load_study as _load

    return _load(path)


def run_study(study: Study, **options: Any) -> StudyResult:
    """Fit every model of a study with both engines, compare them, run the checks and demonstrations."""
    from compare_kit.study import run_study as _run

    return _run(study, **options)


def coverage_study(config: Any = None, **options: Any) -> CoverageResult:
    """Simulate data sets from a known radon varying-intercept model, fit both engines to each and report
    how often their 95% intervals contain the truth, by number of groups (``compare_kit.coverage``)."""
    from compare_kit.coverage import coverage_study as _run

    return _run(config, **options)
