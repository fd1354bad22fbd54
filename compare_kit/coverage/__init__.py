"""The coverage study: how often each engine's 95% intervals contain the truth, by number of groups.

``coverage_study(...)`` (also ``compare_kit.coverage_study`` and ``compare-kit coverage``)
simulates data sets from a known radon varying-intercept model, fits both engines to each
and returns a :class:`CoverageResult` (tidy tables, ``write_csvs``);
``compare_kit.report.coverage.write_coverage_report`` renders its HTML page.
Modules: ``config`` (truth, designs, seeds), ``profile`` (profile-likelihood intervals),
``fits`` (one data set, both engines), ``tasks`` / ``worker`` / ``runner`` (execution on
local processes or Dask), ``study`` (the API and the summary tables).
"""

from __future__ import annotations

from compare_kit.coverage.config import CoverageConfig, CoverageError, SamplerConfig, Truth
from compare_kit.coverage.study import TABLE_FILES, CoverageResult, coverage_study

__all__ = ["TABLE_FILES", "CoverageConfig", "CoverageError", "CoverageResult", "SamplerConfig", "Truth",
           "coverage_study"]
