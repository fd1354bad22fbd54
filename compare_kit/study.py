"""Running several models through the engines: the tutorial's study and users' own."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import pandas as pd

from compare_kit.results import FitResult
from compare_kit.spec import ModelSpec

EngineChoice = Literal["frequentist", "bayesian"]


def fit_all(specs: Iterable[ModelSpec], data: pd.DataFrame,
            engines: tuple[EngineChoice, ...] = ("frequentist",),
            say: Callable[[str], None] = lambda _message: None,
            **bayes_options: object) -> list[FitResult]:
    """Fit every spec with every engine, in order, reporting progress through ``say``."""
    from compare_kit import fit_bayesian, fit_frequentist

    results: list[FitResult] = []
    for spec in specs:
        for engine in engines:
            say(f"fitting {spec.label} ({spec}) with the {engine} engine ...")
            if engine == "frequentist":
                results.append(fit_frequentist(spec, data))
            else:
                results.append(fit_bayesian(spec, data, **bayes_options))
    return results
