"""Frequentist fit times of the radon models, beside lme4's published-order figures.

    .venv/bin/python bench/bench_frequentist.py [--repeats 15]

Each model is fitted ``repeats`` times after one warm-up, in one process; the
median wall time of ``ck.fit_frequentist`` is reported twice: the full fit (REML
plus the ML refit behind AIC/BIC) and the REML fit alone
(``information_criteria=False``), with the optimizer path the engine took.
"""

from __future__ import annotations

import argparse
import statistics
import time

import compare_kit as ck

MODELS = ("pooled", "unpooled", "varying_intercept", "partial_pooling", "correlated_slopes",
          "group_predictor")
LME4_SECONDS = {"partial_pooling": 0.03, "correlated_slopes": 0.07}  # the figures, these machines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    data = ck.load_radon()
    print("| model | full fit (median s) | REML only (median s) | lme4 (s) | path |")
    print("|---|---|---|---|---|")
    for name in MODELS:
        spec = ck.ModelSpec.named(name)
        fit = ck.fit_frequentist(spec, data)
        full, reml = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            ck.fit_frequentist(spec, data)
            full.append(time.perf_counter() - start)
            start = time.perf_counter()
            ck.fit_frequentist(spec, data, information_criteria=False)
            reml.append(time.perf_counter() - start)
        path = " → ".join(a.split(" (")[0] for a in fit.health.attempts) or fit.health.optimizer
        lme4 = LME4_SECONDS.get(name)
        print(f"| {name} | {statistics.median(full):.3f} | {statistics.median(reml):.3f} | "
              f"{lme4 if lme4 is not None else '—'} | {path} |")


if __name__ == "__main__":
    main()
