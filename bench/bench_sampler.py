"""Sampler benchmark: compare_kit's default against what a user would run instead, side by side.

One command times every phase and reports, for the radon ``partial_pooling`` model
(``log_radon ~ floor + (1 + floor || county)``; Bambi's ``(1 + floor | county)`` is the
same uncorrelated model with the same default priors), the minimum bulk ESS over the
model's parameters per second of wall time, for four contenders:

* ``compare_kit``: ``ck.fit_bayesian(spec, data, seed=s)``, every option at its default
  (nutpie, 4 chains x 2000 draws after 1000 tuning steps); the wall time covers
  design, Bambi model, compile, sampling and the full tidy summary (estimates,
  ran_coefs, R-hat, bulk and tail ESS of every parameter).
* ``bambi``: ``bmb.Model(FORMULA, data).fit(random_seed=s)`` with Bambi's defaults
  (PyMC's NUTS; 2 chains x 1000 draws after 1000 tuning steps on 2 cores), then
  ``arviz.summary``.
* ``bambi_nutpie``: the same with ``inference_method="nutpie"``.
* ``bambi_numpyro``: the same with ``inference_method="numpyro"``.

The parameters compared are the same set everywhere: fixed effects, group SDs,
residual SD and every county's intercept and slope deviation.

Every run is a fresh Python process (no contender inherits another's compiled
code; on-disk compile caches are as the previous runs left them, i.e. warm after
the first repeat), ``--repeats`` times with seeds 1, 2, ..., the order of the
contenders rotating; medians are reported. Phases per run: import (the libraries,
in that process), build (model and design), compile, tune, draw, post-process
(summary with diagnostics). Where a library does not report a phase separately,
the time is shown in the phase that contains it. Usage::

    .venv/bin/python bench/bench_sampler.py --repeats 3 [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

FORMULA = "log_radon ~ floor + (1 + floor | county)"
CONTENDERS = ("compare_kit", "bambi", "bambi_nutpie", "bambi_numpyro")
PHASES = ("import", "build", "compile", "tune", "draw", "post_process")
NAN = float("nan")


def run_compare_kit(seed: int) -> dict[str, object]:
    t0 = time.perf_counter()
    import bambi  # noqa: F401  (the libraries are imported before the clock, as for Bambi's runs)
    import nutpie  # noqa: F401

    import compare_kit as ck
    import compare_kit.engines.bayesian  # noqa: F401

    t_import = time.perf_counter() - t0
    data = ck.load_radon()
    spec = ck.ModelSpec.named("partial_pooling")
    t0 = time.perf_counter()
    fit = ck.fit_bayesian(spec, data, seed=seed)
    wall = time.perf_counter() - t0
    t = fit.sampling.timings
    info = fit.sampling
    return {"wall": wall, "min_ess_bulk": float(fit.diagnostics["ess_bulk"].min()),
            "n_params": len(fit.diagnostics), "sampler": info.sampler, "chains": info.chains,
            "draws": info.draws, "divergences": info.divergences,
            "phases": {"import": t_import, "build": t["build"], "compile": t["compile"], "tune": t["tune"],
                       "draw": t["draw"], "post_process": t["post_process"]}}


def run_bambi(seed: int, method: str) -> dict[str, object]:
    t0 = time.perf_counter()
    import arviz as az
    import bambi as bmb
    import numpy as np

    if method == "nutpie":
        import nutpie  # noqa: F401
    elif method == "numpyro":
        import jax  # noqa: F401
        import numpyro  # noqa: F401
    import compare_kit as ck

    t_import = time.perf_counter() - t0
    data = ck.load_radon()
    t0 = time.perf_counter()
    model = bmb.Model(FORMULA, data)
    model.build()
    t1 = time.perf_counter()
    options = {} if method == "pymc" else {"inference_method": method}
    idata = model.fit(random_seed=seed, **options)
    t2 = time.perf_counter()
    summary = az.summary(idata)
    t3 = time.perf_counter()
    posterior = idata["posterior"]
    # PyMC's own NUTS records the time spent sampling (tuning + drawing) apart from compiling
    sampling = float(posterior.attrs.get("sampling_time", NAN))
    fit_time = t2 - t1
    phases = {"import": t_import, "build": t1 - t0,
              "compile": fit_time - sampling if sampling == sampling else NAN,
              "tune": NAN, "draw": sampling if sampling == sampling else fit_time,
              "post_process": t3 - t2}
    return {"wall": t3 - t0, "min_ess_bulk": float(np.nanmin(summary["ess_bulk"].astype(float))),
            "n_params": len(summary), "sampler": posterior.attrs.get("inference_library", method),
            "chains": posterior.sizes["chain"], "draws": posterior.sizes["draw"],
            "divergences": int(idata["sample_stats"]["diverging"].sum()), "phases": phases,
            "phase_note": "" if sampling == sampling else "compile+tune+draw all in 'draw'"}


def run_child(contender: str, seed: int) -> dict[str, object]:
    match contender:
        case "compare_kit":
            return run_compare_kit(seed)
        case "bambi":
            return run_bambi(seed, "pymc")
        case "bambi_nutpie":
            return run_bambi(seed, "nutpie")
        case "bambi_numpyro":
            return run_bambi(seed, "numpyro")
    raise SystemExit(f"unknown contender {contender}")


def child(contender: str, seed: int) -> dict[str, object]:
    proc = subprocess.run([sys.executable, __file__, "--child", contender, "--seed", str(seed)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{contender} run failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(contender=contender, seed=seed, ess_per_s=result["min_ess_bulk"] / result["wall"])
    return result


def _median(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return statistics.median(finite) if finite else NAN


def _fmt(v: float) -> str:
    return "n/a" if v != v else f"{v:.2f}"


def report(results: dict[str, list[dict[str, object]]]) -> str:
    base = _median([r["ess_per_s"] for r in results["bambi"]])
    lines = ["| contender | sampler | chains x draws | median wall (s) | median min bulk ESS | "
             "min-bulk-ESS/s | vs Bambi default | divergences |",
             "|---|---|---|---|---|---|---|---|"]
    for name, runs in results.items():
        rate = _median([r["ess_per_s"] for r in runs])
        lines.append(f"| {name} | {runs[0]['sampler']} | {runs[0]['chains']} x {runs[0]['draws']} | "
                     f"{_median([r['wall'] for r in runs]):.2f} | "
                     f"{_median([r['min_ess_bulk'] for r in runs]):.0f} | {rate:.1f} | "
                     f"**{rate / base:.2f}x** | {', '.join(str(r['divergences']) for r in runs)} |")
    lines += ["", "Median seconds per phase (import is outside the wall time above):", "",
              "| contender | " + " | ".join(PHASES) + " |", "|---|" + "---|" * len(PHASES)]
    for name, runs in results.items():
        cells = [_fmt(_median([r["phases"][p] for r in runs])) for p in PHASES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ratios = []
    for i, ck_run in enumerate(results["compare_kit"]):
        ratios.append(ck_run["ess_per_s"] / results["bambi"][i]["ess_per_s"])
    lines += ["", "Per seed, compare_kit / Bambi default: " + ", ".join(f"{r:.1f}x" for r in ratios)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help="comma-separated subset of " + ", ".join(CONTENDERS))
    parser.add_argument("--json", help="also write every run to this file")
    parser.add_argument("--child", choices=CONTENDERS)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, args.seed), default=lambda v: None if v != v else v))
        return
    chosen = [c for c in args.contenders.split(",") if c]
    if "bambi" not in chosen or "compare_kit" not in chosen:
        raise SystemExit("the contenders must include compare_kit and bambi (the ratio's baseline)")
    results: dict[str, list[dict[str, object]]] = {c: [] for c in chosen}
    for r in range(args.repeats):
        order = chosen[r % len(chosen):] + chosen[:r % len(chosen)]
        for contender in order:
            res = child(contender, seed=r + 1)
            res["phases"] = {k: (NAN if v is None else v) for k, v in res["phases"].items()}
            results[contender].append(res)
            phases = ", ".join(f"{k} {_fmt(v)}" for k, v in res["phases"].items())
            print(f"{contender:14s} seed {res['seed']}: {res['sampler']} {res['chains']}x{res['draws']}, "
                  f"wall {res['wall']:.2f}s, min bulk ESS {res['min_ess_bulk']:.0f} over {res['n_params']} "
                  f"params, {res['divergences']} divergences, {res['ess_per_s']:.1f} ESS/s [{phases}]",
                  flush=True)
    for runs in results.values():  # keep the per-seed pairing for the ratio list
        runs.sort(key=lambda res: res["seed"])
    print()
    print(report(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=lambda v: None if isinstance(v, float) and math.isnan(v)
                      else v)


if __name__ == "__main__":
    main()
