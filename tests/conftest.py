"""Shared fixtures: the bundled radon data and the lme4 reference tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import compare_kit as ck

REFERENCE = Path(__file__).parent / "reference"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# lme4 reference model names -> compare_kit formulas (make_reference.R has the lme4 side)
LME4_MODELS = {
    "varying_intercept": "log_radon ~ floor + (1 | county)",
    "varying_intercept_slope": "log_radon ~ floor + (1 + floor | county)",
    "uncorrelated_intercept_slope": "log_radon ~ floor + (1 + floor || county)",
    "intercept_only": "log_radon ~ 1 + (1 | county)",
    "group_predictor": "log_radon ~ floor + log_uranium + (1 | county)",
}


@pytest.fixture(scope="session")
def radon() -> pd.DataFrame:
    return ck.load_radon()


def lme4_table(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "lme4" / name, keep_default_na=False, na_values=["NA"])
