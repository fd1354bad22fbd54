"""Scale benchmark: 100,000 rows in 2,000 groups, random intercepts and slopes, both engines.

The data are generated here, seeded: group sizes vary (1 to 99 rows, mean 50), a
binary and a continuous predictor, correlated group intercepts and slopes (SDs 0.5
and 0.3, correlation 0.4 on the binary predictor ``x``), residual SD 1. The model
``y ~ x + z + (1 + x || g)`` is fitted by each engine in its own fresh Python
process with its defaults (statsmodels REML; compare_kit's Bayesian default: nutpie,
4 chains x 2000 draws after 1000 tuning steps), and the wall time, each phase and
the process's peak resident memory (``ru_maxrss``) are printed. Usage::

    .venv/bin/python bench/bench_scale.py [--rows 100000] [--groups 2000] [--draws 2000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

FORMULA = "y ~ x + z + (1 + x || g)"


def make_data(rows: int, groups: int, seed: int = 20261124):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.02, 1.98, groups)
    codes = np.sort(rng.choice(groups, size=rows, p=weights / weights.sum()))
    cov = np.array([[0.25, 0.4 * 0.5 * 0.3], [0.4 * 0.5 * 0.3, 0.09]])
    u = rng.multivariate_normal([0, 0], cov, size=groups)
    x = rng.integers(0, 2, rows).astype(float)
    z = rng.normal(size=rows)
    y = 1.0 + u[codes, 0] + (0.5 + u[codes, 1]) * x - 0.3 * z + rng.normal(size=rows)
    return pd.DataFrame({"y": y, "x": x, "z": z, "g": [f"G{c:04d}" for c in codes]})


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run(engine: str, rows: int, groups: int, draws: int) -> dict[str, object]:
    t0 = time.perf_counter()
    import compare_kit as ck

    if engine == "bayesian":
        import compare_kit.engines.bayesian  # noqa: F401
    t_import = time.perf_counter() - t0
    data = make_data(rows, groups)
    spec = ck.ModelSpec.from_formula(FORMULA, label="scale")
    base = peak_mib()
    t0 = time.perf_counter()
    if engine == "frequentist":
        fit = ck.fit_frequentist(spec, data)
        phases: dict[str, float] = {}
        extra = {"converged": bool(fit.health.converged), "warnings": list(fit.health.warnings)}
    else:
        fit = ck.fit_bayesian(spec, data, draws=draws)
        phases = dict(fit.sampling.timings)
        extra = {"min_ess_bulk": fit.sampling.min_ess_bulk, "max_rhat": fit.sampling.max_rhat,
                 "divergences": fit.sampling.divergences, "warnings": list(fit.health.warnings)}
    wall = time.perf_counter() - t0
    pars = fit.table("ran_pars")[["group", "term", "estimate"]].to_dict("records")
    return {"engine": engine, "rows": rows, "groups": groups, "import": t_import, "wall": wall,
            "phases": phases, "peak_rss_mib": peak_mib(), "rss_before_fit_mib": base, "ran_pars": pars,
            **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--engines", default="frequentist,bayesian")
    parser.add_argument("--child", choices=("frequentist", "bayesian"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.child, args.rows, args.groups, args.draws), default=str))
        return
    for engine in args.engines.split(","):
        cmd = [sys.executable, __file__, "--child", engine, "--rows", str(args.rows), "--groups",
               str(args.groups), "--draws", str(args.draws)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        total = time.perf_counter() - t0
        if proc.returncode != 0:
            print(f"{engine}: FAILED after {total:.0f}s\n{proc.stderr[-3000:]}", flush=True)
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in res["phases"].items())
        print(f"{engine}: fit wall {res['wall']:.1f}s (process {total:.1f}s, import {res['import']:.1f}s), "
              f"peak RSS {res['peak_rss_mib'] / 1024:.2f} GiB (before the fit "
              f"{res['rss_before_fit_mib'] / 1024:.2f} GiB)" + (f"; phases: {phases}" if phases else ""),
              flush=True)
        print("  " + json.dumps({k: v for k, v in res.items() if k not in ("phases",)}, default=str), flush=True)


if __name__ == "__main__":
    main()
