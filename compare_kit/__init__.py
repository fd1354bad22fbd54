"""compare_kit: a frequentist mixed model and a Bayesian hierarchical model of the
same data, side by side, from one lme4-style formula.

Heavy engines (statsmodels, PyMC, Bambi) load only when a fit is asked for, so
``import compare_kit`` and ``compare_kit.spec`` stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from compare_kit.data import load_csv, load_radon
from compare_kit.errors import CompareKitError, DataError, FitError, IncomparableError, SpecError
from compare_kit.spec import CANONICAL_MODELS, ModelSpec

if TYPE_CHECKING:
    from pathlib import Path

    from compare_kit.results import FitResult

__all__ = [
    "CANONICAL_MODELS", "CompareKitError", "DataError", "FitError", "IncomparableError",
    "ModelSpec", "SpecError", "fit_bayesian", "fit_frequentist", "load_csv", "load_radon", "write_report",
]
__version__ = "0.1.0"


def fit_frequentist(spec: ModelSpec, data: Any, method: str = "REML", **options: Any) -> FitResult:
    """Fit ``spec`` with statsmodels (OLS, or MixedLM by REML or ML)."""
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
