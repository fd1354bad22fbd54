"""The collapsed sampler beside the standard one: min bulk ESS per second, clock from process start.

Two models, each fitted by ``ck.fit_bayesian(spec, data, draws=1000, chains=4, seed=s, method=m)``
with ``m`` = ``"standard"`` (the group effects sampled with the rest) and ``"collapsed"`` (integrated
out, then drawn from their conditional normal per kept draw), every other option at its default
(nutpie, 1000 tuning steps):

* ``partial_pooling``: radon's ``log_radon ~ floor + (1 + floor || county)`` (919 rows, 85 counties);
* ``scale``: ``bench_scale.py``'s simulated ``y ~ x + z + (1 + x || g)`` (100,000 rows, 2,000 groups).

Every run is a fresh Python process; its wall time runs from just before the process is started to
the end of the fit (interpreter start, imports, data, design, Bambi's model, compile, sampling and
the full tidy summary: what a user's script feels). The minimum bulk ESS is over every parameter
(fixed effects, SDs, residual SD, every group's effects). Each contender first runs once untimed
(``--no-warmup`` skips it), so on-disk compile caches are warm as for any second run; then
``--repeats`` timed runs with seeds 1, 2, ..., the two methods alternating. Medians are reported,
with the range. Usage::

    .venv/bin/python bench/bench_collapsed.py [--repeats 3] [--models partial_pooling,scale]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

METHODS = ("standard", "collapsed")
MODELS = ("partial_pooling", "scale")
NAN = float("nan")
PHASES = ("import", "data", "build", "compile", "tune", "draw", "post_process")


def run_child(model: str, method: str, seed: int, draws: int, t_spawn: float) -> dict[str, object]:
    t0 = time.perf_counter()
    import compare_kit as ck
    import compare_kit.engines.bayesian  # noqa: F401

    t1 = time.perf_counter()
    if model == "scale":
        from bench_scale import FORMULA, make_data

        data, spec = make_data(100_000, 2_000), ck.ModelSpec.from_formula(FORMULA, label="scale")
    else:
        data, spec = ck.load_radon(), ck.ModelSpec.named(model)
    t2 = time.perf_counter()
    fit = ck.fit_bayesian(spec, data, draws=draws, chains=4, seed=seed, method=method)
    wall = time.time() - t_spawn
    t = fit.sampling.timings
    return {"wall": wall, "min_ess_bulk": fit.sampling.min_ess_bulk, "max_rhat": fit.sampling.max_rhat,
            "divergences": fit.sampling.divergences, "n_params": len(fit.diagnostics),
            "compile_cache": fit.compile_cache, "peak_rss_gib": resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "phases": {"import": t1 - t0, "data": t2 - t1, **{k: t[k] for k in PHASES[2:]}}}


def child(model: str, method: str, seed: int, draws: int) -> dict[str, object]:
    t_spawn = time.time()
    proc = subprocess.run([sys.executable, __file__, "--child", model, method, str(seed), str(draws),
                           str(t_spawn)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{model} {method} seed {seed} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(model=model, method=method, seed=seed, ess_per_s=result["min_ess_bulk"] / result["wall"])
    return result


def _median(runs: list[dict[str, object]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def _spread(runs: list[dict[str, object]], key: str, fmt: str) -> str:
    values = [float(r[key]) for r in runs]
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def report(results: dict[tuple[str, str], list[dict[str, object]]], draws: int) -> str:
    lines = [f"4 chains x {draws} draws after 1000 tuning, medians of {len(next(iter(results.values())))} "
             "(range):", "",
             "| model | method | wall from process start (s) | min bulk ESS | min-bulk-ESS/s | "
             "vs standard | max R-hat | divergences | peak RSS (GiB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (model, method), runs in results.items():
        standard = results.get((model, "standard"))
        base = _median(standard, "ess_per_s") if standard else NAN
        lines.append(f"| {model} | {method} | {_spread(runs, 'wall', '.1f')} | "
                     f"{_spread(runs, 'min_ess_bulk', '.0f')} | "
                     f"{_spread(runs, 'ess_per_s', '.1f')} | **{_median(runs, 'ess_per_s') / base:.1f}x** | "
                     f"{max(float(r['max_rhat']) for r in runs):.4f} | "
                     f"{', '.join(str(r['divergences']) for r in runs)} | "
                     f"{_median(runs, 'peak_rss_gib'):.2f} |")
    lines += ["", "Median seconds per phase (import and data are inside the wall time; process start and "
              "interpreter start make up the rest):", "",
              "| model | method | " + " | ".join(PHASES) + " |", "|---|---|" + "---|" * len(PHASES)]
    for (model, method), runs in results.items():
        cells = [f"{statistics.median(float(r['phases'][p]) for r in runs):.2f}" for p in PHASES]
        lines.append(f"| {model} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--child", nargs=5, metavar=("MODEL", "METHOD", "SEED", "DRAWS", "T_SPAWN"))
    args = parser.parse_args()
    if args.child:
        model, method, seed, draws, t_spawn = args.child
        print(json.dumps(run_child(model, method, int(seed), int(draws), float(t_spawn)), default=str))
        return
    results: dict[tuple[str, str], list[dict[str, object]]] = {}
    for model in args.models.split(","):
        if not args.no_warmup:
            for method in METHODS:
                child(model, method, 0, args.draws)
        for seed in range(1, args.repeats + 1):
            order = METHODS if seed % 2 else METHODS[::-1]
            for method in order:
                res = child(model, method, seed, args.draws)
                results.setdefault((model, method), []).append(res)
                print(f"{model} {method} seed {seed}: wall {res['wall']:.1f}s, min bulk ESS "
                      f"{res['min_ess_bulk']:.0f}, {res['ess_per_s']:.1f}/s, R-hat {res['max_rhat']:.4f}, "
                      f"phases {json.dumps({k: round(v, 2) for k, v in res['phases'].items()})}", flush=True)
    ordered = {key: results[key] for key in sorted(results, key=lambda k: (k[0], METHODS.index(k[1])))}
    print(report(ordered, args.draws))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([r for runs in ordered.values() for r in runs], fh, indent=1, default=str)


if __name__ == "__main__":
    main()
