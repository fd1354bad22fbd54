"""Study benchmark: the default radon report (all models, both engines) from a fresh process.

Runs ``compare-kit report`` (the command a user runs) in a fresh process and times it
from the outside, with the study's own phase timings read from a second run of the
API in the same conditions. Each case is run with cold compile caches (PyTensor's compile
folder, where its numba cache lives, and compare_kit's compile cache, both pointed
at an empty temporary folder) and warm ones (the user's own folder, after one run has filled it). Usage::

    .venv/bin/python bench/bench_study.py [--draws 1000 2000] [--no-cold]

It prints one line per run: draws, cache state, wall time of the whole command
(import, study, report rendering) and the study's phases.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASES_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import compare_kit as ck
from compare_kit.report.render import render_report
from compare_kit.study import load_study, run_study
t_import = time.perf_counter() - t0
study = load_study().with_settings(draws=int(sys.argv[1]))
result = run_study(study)
t1 = time.perf_counter()
ck.write_report(result, sys.argv[2])
timings = dict(result.timings, render=time.perf_counter() - t1, imports=t_import)
fits = {label: b.sampling.timings for label, (_, b) in result.fits.items()}
print(json.dumps({"timings": timings, "fits": fits}))
"""


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("compare-kit")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "compare_kit.cli"]


def run(draws: int, cold: bool, out: Path) -> dict[str, object]:
    env = dict(os.environ)
    tmp = None
    if cold:
        tmp = tempfile.mkdtemp(prefix="ck_cold_compiledir_")
        env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp}"
        env["COMPARE_KIT_CACHE_DIR"] = str(Path(tmp) / "compare_kit")
    try:
        t0 = time.perf_counter()
        proc = subprocess.run([*cli(), "report", "--draws", str(draws), "--out", str(out / "radon.html"),
                               "--quiet"], env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"compare-kit report failed:\n{proc.stderr[-3000:]}")
        if cold:  # the phases run needs cold caches too
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
        proc = subprocess.run([sys.executable, "-c", PHASES_SCRIPT, str(draws), str(out / "api.html")],
                              env=env, capture_output=True, text=True, check=False, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"the phases run failed:\n{proc.stderr[-3000:]}")
        phases = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"draws": draws, "cold": cold, "wall": wall, **phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-cache runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for draws in args.draws:
            for cold in ([] if args.no_cold else [True]) + [False]:
                res = run(draws, cold, Path(folder))
                t = res["timings"]
                phases = ", ".join(f"{k} {v:.1f}s" for k, v in t.items())
                print(f"4 x {draws} draws, {'cold' if cold else 'warm'} caches: `compare-kit report` "
                      f"{res['wall']:.1f}s wall; API run: {phases}", flush=True)
                for label, ft in res["fits"].items():
                    print(f"    {label}: " + ", ".join(f"{k} {v:.2f}s" for k, v in ft.items()), flush=True)


if __name__ == "__main__":
    main()
