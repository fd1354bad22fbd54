"""The tutorial's named models: formulas of the radon survey, each with a sentence saying what it is.

``ModelSpec.named`` and ``ModelSpec.from_text`` read them; the CLI lists their names.
"""

from __future__ import annotations

CANONICAL_MODELS: dict[str, tuple[str, str]] = {
    "pooled": (
        "log_radon ~ floor",
        "Complete pooling: one intercept and one floor effect for every county, "
        "as if all counties were the same.",
    ),
    "unpooled": (
        "log_radon ~ 0 + C(county) + C(county):floor",
        "No pooling: a separate intercept and floor slope for every county, each "
        "estimated from that county's homes alone.",
    ),
    "partial_pooling": (
        "log_radon ~ floor + (1 + floor || county)",
        "Partial pooling (the tutorial's hierarchical model): county intercepts and "
        "slopes drawn from independent population distributions.",
    ),
    "correlated_slopes": (
        "log_radon ~ floor + (1 + floor | county)",
        "Partial pooling with correlated county intercepts and slopes.",
    ),
    "varying_intercept": (
        "log_radon ~ floor + (1 | county)",
        "Partial pooling of the intercept only: counties differ in their level, "
        "share one floor effect.",
    ),
    "group_predictor": (
        "log_radon ~ floor + log_uranium + (1 | county)",
        "Varying intercepts explained in part by the county's soil uranium.",
    ),
}
