"""The sampler settings every entry point shares: defaults, allowed ranges and convergence limits.

The engine, the study file, the command line and the coverage study all check their numbers with
``setting_problem``, so that a value one of them accepts is a value the others accept too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# the defaults of fit_bayesian, of a study's [settings] and of the command line
DEFAULT_DRAWS = 2000
DEFAULT_TUNE = 1000
DEFAULT_CHAINS = 4
DEFAULT_SEED = 1

# each whole-number setting's allowed range, both ends included
RANGES: dict[str, tuple[int, int]] = {
    "draws": (1, 1_000_000),
    "tune": (1, 1_000_000),
    "chains": (1, 64),
    "seed": (0, 2**32 - 1),
    "cv_folds": (2, 1_000),
}

# convergence limits: a quantity is flagged when its R-hat is above, or its ESS below, these
RHAT_LIMIT = 1.01
ESS_LIMIT = 400


def setting_problem(name: str, value: Any, low: int | None = None) -> str | None:
    """What is wrong with ``value`` for the whole-number setting ``name`` (None: nothing).

    ``low`` raises the lower end for a caller that needs more (the coverage study's draws, say).
    """
    start, end = RANGES[name]
    start = start if low is None else max(start, low)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not start <= value <= end:
        return f"must be a whole number from {start} to {end}, got {value!r}"
    return None
