"""Sampler benchmark: compare_kit's default vs Bambi's default, on the radon partial-pooling model.

Measures, side by side in one run, the minimum bulk ESS over the model's
parameters per second of wall time from model build to posterior summary:

* compare_kit: ``ck.fit_bayesian(spec, data, seed=s)`` with every default (nutpie,
  4 chains x 2000 draws after 1000 tuning steps); the wall time covers design,
  Bambi model, compile, sampling and the full tidy summary with diagnostics.
  Also shown, for transparency: the same with ``draws=1000`` (``compare_kit@1000``).
* Bambi: ``bmb.Model("log_radon ~ floor + (1 + floor | county)", data).fit(random_seed=s)``
  with Bambi's defaults (``inference_method="pymc"``: PyMC's NUTS, 2 chains x 1000
  draws after 1000 tuning steps on this 2-core machine), then ``arviz.summary``.

Both fit the same model (Bambi's ``(1 + floor | county)`` is uncorrelated, i.e.
lme4's ``(1 + floor || county)``) with the same default priors. The parameters
compared are the same set on both sides: fixed effects, group SDs, residual SD
and every county's intercept and slope deviation.

Each contender runs in a fresh Python process (neither inherits the other's
compiled code; library imports and data loading happen before the clock starts),
``--repeats`` times, alternating, with seeds 1, 2, ...; the median of each is
reported. Usage::

    .venv/bin/python bench/bench_sampler.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

FORMULA = "log_radon ~ floor + (1 + floor | county)"


def run_compare_kit(seed: int, draws: int | None = None) -> dict[str, object]:
    import bambi  # noqa: F401  (imported before the clock, as for Bambi's run)

    import compare_kit as ck
    import compare_kit.engines.bayesian  # noqa: F401

    data = ck.load_radon()
    spec = ck.ModelSpec.named("partial_pooling")
    t0 = time.perf_counter()
    options = {} if draws is None else {"draws": draws}
    fit = ck.fit_bayesian(spec, data, seed=seed, **options)
    wall = time.perf_counter() - t0
    params = fit.diagnostics  # one row per parameter
    info = fit.sampling
    name = "compare_kit" if draws is None else f"compare_kit@{draws}"
    return {"contender": name, "seed": seed, "wall": wall,
            "min_ess_bulk": float(params["ess_bulk"].min()), "n_params": len(params),
            "sampler": info.sampler, "chains": info.chains, "draws": info.draws, "tune": info.tune,
            "divergences": info.divergences, "phases": info.timings}


def run_bambi(seed: int) -> dict[str, object]:
    import arviz as az
    import bambi as bmb
    import numpy as np

    import compare_kit as ck

    data = ck.load_radon()
    t0 = time.perf_counter()
    model = bmb.Model(FORMULA, data)
    idata = model.fit(random_seed=seed)
    summary = az.summary(idata)
    wall = time.perf_counter() - t0
    posterior = idata["posterior"]
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    return {"contender": "bambi", "seed": seed, "wall": wall,
            "min_ess_bulk": float(np.nanmin(summary["ess_bulk"].astype(float))), "n_params": len(summary),
            "sampler": posterior.attrs.get("inference_library", "unknown"), "chains": chains,
            "draws": draws, "tune": 1000,
            "divergences": int(idata["sample_stats"]["diverging"].sum())}


CONTENDERS = ("compare_kit", "bambi", "compare_kit@1000")


def child(contender: str, seed: int) -> dict[str, object]:
    proc = subprocess.run([sys.executable, __file__, "--child", contender, "--seed", str(seed)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{contender} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=CONTENDERS)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.child:
        if args.child == "bambi":
            result = run_bambi(args.seed)
        else:
            result = run_compare_kit(args.seed, int(args.child.split("@")[1]) if "@" in args.child else None)
        print(json.dumps(result))
        return
    results: dict[str, list[dict[str, object]]] = {c: [] for c in CONTENDERS}
    for r in range(args.repeats):
        for contender in CONTENDERS[::-1] if r % 2 else CONTENDERS:
            res = child(contender, seed=r + 1)
            res["ess_per_s"] = res["min_ess_bulk"] / res["wall"]
            results[contender].append(res)
            print(f"{contender:12s} seed {res['seed']}: {res['sampler']} {res['chains']}x{res['draws']}, "
                  f"wall {res['wall']:.2f}s, min bulk ESS {res['min_ess_bulk']:.0f} over "
                  f"{res['n_params']} params, {res['divergences']} divergences, "
                  f"{res['ess_per_s']:.1f} ESS/s"
                  + (f"  phases {({k: round(v, 2) for k, v in res['phases'].items()})}"
                     if "phases" in res else ""), flush=True)
    print()
    for contender, runs in results.items():
        med = statistics.median(r["ess_per_s"] for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        ess = statistics.median(r["min_ess_bulk"] for r in runs)
        ratio = med / statistics.median(r["ess_per_s"] for r in results["bambi"])
        print(f"{contender:17s} median: wall {wall:5.2f}s, min bulk ESS {ess:5.0f}, "
              f"{med:6.1f} min-bulk-ESS/s, {ratio:.2f}x Bambi's default")


if __name__ == "__main__":
    main()
