"""The coverage study's full run: wall time on 2 workers and the coverage table with Monte Carlo SEs.

Runs ``compare-kit coverage`` (through the API, so the phases can be timed) with the
given sizes on local worker processes, writes the HTML page and the CSVs into
``--out-dir``, and prints the wall time, the mean fit time per data set of each
engine, the load average before and after, and the coverage table as Markdown.

    .venv/bin/python bench/bench_coverage.py --sims 300 --groups 10,30,85 --workers 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import compare_kit as ck
from compare_kit.coverage import CoverageConfig, SamplerConfig
from compare_kit.report.coverage import PARAMETER_TEXT, write_coverage_report


def markdown(table) -> str:
    lines = ["| groups | parameter | engine | interval | truth | n | coverage | MC SE | mean width | bias "
             "| RMSE |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        name = PARAMETER_TEXT.get(r.parameter, r.parameter)
        lines.append(f"| {r.n_groups} | {name} | {r.engine} | {r.method} | "
                     f"{r.truth:g} | {r.n_datasets} | {r.coverage:.3f} | {r.coverage_mc_se:.3f} | "
                     f"{r.mean_width:.3f} | {r.bias:+.3f} | {r.rmse:.3f} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sims", type=int, default=300)
    p.add_argument("--groups", default="10,30,85")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chunk", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out-dir", type=Path, default=Path("bench/coverage_out"))
    a = p.parse_args()
    a.out_dir.mkdir(parents=True, exist_ok=True)
    config = CoverageConfig(groups=tuple(int(g) for g in a.groups.split(",")), sims=a.sims, seed=a.seed,
                            chunk=a.chunk, sampler=SamplerConfig(chains=a.chains, draws=a.draws, tune=a.tune))
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    result = ck.coverage_study(config, workers=a.workers, say=lambda m: print(m, file=sys.stderr, flush=True))
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    write_coverage_report(result, a.out_dir / "coverage.html", tables_dir=a.out_dir,
                          command=" ".join(["python", *sys.argv]))
    fits = result.fits
    print(f"wall time: {wall:.1f} s for {len(fits) // 2} data sets x 2 engines on {a.workers} workers "
          f"({result.executor})")
    before = " ".join(f"{v:.2f}" for v in load_before)
    after = " ".join(f"{v:.2f}" for v in load_after)
    print(f"load average (1, 5, 15 min) before: {before}; after: {after}")
    for (k, engine), f in fits.groupby(["n_groups", "engine"]):
        print(f"  {k:>3} groups, {engine:<11}: mean {f['seconds'].mean():.3f} s per data set "
              f"(median {f['seconds'].median():.3f}); not converged {int((~f['converged']).sum())}, "
              f"with divergences {int((f['divergences'] > 0).sum())}, max R-hat {f['max_rhat'].max():.3f}")
    print(f"  model build + compile per worker and design: median "
          f"{result.tasks['build_seconds'][result.tasks['build_seconds'] > 0.5].median():.1f} s")
    print(f"failed attempts: {len(result.failures)}; tasks given up: "
          f"{int(result.failures['final'].sum()) if len(result.failures) else 0}")
    print()
    print(markdown(result.table))
    print()
    print(result.group_effects.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
