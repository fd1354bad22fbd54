"""compare_kit's frequentist engine beside lme4, side by side in one run: wall time, peak memory, logLik.

    .venv/bin/python bench/bench_lme4.py [--cases radon,sleepstudy,...] [--repeats 7] [--out FILE.md]

Every case runs in fresh processes, one for compare_kit and one for R's lme4 (when ``Rscript``
is on the PATH); each process reads its table, fits once to warm up (small cases), then times
``repeats`` fits and reports the median wall time of the fit call and its peak resident memory
(VmHWM). compare_kit is timed twice: its own engine alone, fitting what ``lmer`` fits (the REML fit:
``mixedlm=False, information_criteria=False``), and the default fit (statsmodels MixedLM beside it
where MixedLM can fit the model, and the ML refit behind AIC and BIC); the MixedLM cross-check's own
seconds are shown beside it. lme4's data sets
(sleepstudy, Penicillin, InstEval) are written from the installed R package into a temporary
folder at run time; none is committed. The subjects x items table is simulated here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

# name -> (table, formula (the same text for compare_kit and lme4), text columns)
CASES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "radon varying_intercept": ("radon", "log_radon ~ floor + (1 | county)", ("county",)),
    "radon partial_pooling": ("radon", "log_radon ~ floor + (1 + floor || county)", ("county",)),
    "radon correlated_slopes": ("radon", "log_radon ~ floor + (1 + floor | county)", ("county",)),
    "radon group_predictor": ("radon", "log_radon ~ floor + log_uranium + (1 | county)", ("county",)),
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", ("Subject",)),
    "Penicillin": ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", ("plate", "sample")),
    "subjects x items (crossed correlated slopes)": (
        "subjects_items", "y ~ x + (1 + x | subject) + (1 + x | item)", ("subject", "item")),
    "InstEval 5k": ("insteval_5000", "y ~ service + (1 | s) + (1 | d)", ("s", "d", "dept", "service")),
    "InstEval 20k": ("insteval_20000", "y ~ service + (1 | s) + (1 | d)", ("s", "d", "dept", "service")),
    "InstEval": ("insteval", "y ~ service + (1 | s) + (1 | d)", ("s", "d", "dept", "service")),
    "InstEval + dept": ("insteval", "y ~ service + (1 | s) + (1 | d) + (1 | dept)",
                        ("s", "d", "dept", "service")),
}
LARGE = {"InstEval 20k", "InstEval", "InstEval + dept"}

PYTHON_RUNNER = r"""
import json, statistics, sys, time
import compare_kit as ck
path, formula, text, repeats = sys.argv[1], sys.argv[2], tuple(sys.argv[3].split(",")), int(sys.argv[4])
data = ck.load_csv(path, text_columns=text)
spec = ck.ModelSpec.from_formula(formula)
out = {}
for label, mixed, ic in (("own", False, False), ("default", True, True)):
    times = []
    for _ in range(repeats + (1 if repeats > 1 else 0)):
        start = time.perf_counter()
        fit = ck.fit_frequentist(spec, data, mixedlm=mixed, information_criteria=ic)
        times.append(time.perf_counter() - start)
    times = times[1:] if repeats > 1 else times
    sds = fit.table("ran_pars")
    out[label] = {"seconds": statistics.median(times), "engine": str(fit.engine), "loglik": fit.stats.loglik,
                  "sds": dict(zip(sds["group"] + "/" + sds["term"], sds["estimate"])),
                  "engine_seconds": dict(fit.mixed.engine_seconds)}
status = open("/proc/self/status").read()
out["peak_mb"] = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps(out))
"""

R_RUNNER = r"""
suppressMessages(library(lme4))
args <- commandArgs(TRUE)
d <- read.csv(args[1], colClasses = "character")
for (col in names(d)) if (!(col %in% strsplit(args[3], ",")[[1]])) d[[col]] <- as.numeric(d[[col]])
f <- as.formula(args[2]); repeats <- as.integer(args[4])
if (repeats > 1) m <- lmer(f, d)
times <- sapply(seq_len(repeats), function(i) system.time(m <<- lmer(f, d))[["elapsed"]])
hwm <- grep("^VmHWM", readLines("/proc/self/status"), value = TRUE)
cat(sprintf('{"seconds": %.6f, "loglik": %.8f, "peak_mb": %.1f}\n', median(times), as.numeric(logLik(m)),
            as.numeric(gsub("[^0-9]", "", hwm)) / 1024))
"""

R_EXPORT = r"""
suppressMessages(library(lme4))
out <- commandArgs(TRUE)[1]
write.csv(sleepstudy, file.path(out, "sleepstudy.csv"), row.names = FALSE)
write.csv(Penicillin, file.path(out, "penicillin.csv"), row.names = FALSE)
write.csv(InstEval, file.path(out, "insteval.csv"), row.names = FALSE)
"""


def _tables(folder: Path, names: set[str]) -> dict[str, Path]:
    """Write every table the chosen cases need into ``folder``."""
    paths = {"radon": ROOT / "data" / "radon_mn.csv"}
    if names & {"sleepstudy", "penicillin"} or any(n.startswith("insteval") for n in names):
        if shutil.which("Rscript") is None:
            raise SystemExit("lme4's data sets come from R: install Debian's r-base and r-cran-lme4")
        subprocess.run(["Rscript", "-e", R_EXPORT, str(folder)], check=True, capture_output=True)
        paths["sleepstudy"] = folder / "sleepstudy.csv"
        paths["penicillin"] = folder / "penicillin.csv"
        insteval = pd.read_csv(folder / "insteval.csv")
        paths["insteval"] = folder / "insteval.csv"
        for n in (5000, 20000):
            paths[f"insteval_{n}"] = folder / f"insteval_{n}.csv"
            insteval.iloc[:n].to_csv(paths[f"insteval_{n}"], index=False)
    if "subjects_items" in names:
        paths["subjects_items"] = folder / "subjects_items.csv"
        _simulate_subjects_items().to_csv(paths["subjects_items"], index=False)
    return paths


def _simulate_subjects_items(subjects: int = 200, items: int = 100, seed: int = 1) -> pd.DataFrame:
    """Every subject sees every item once: 20,000 rows, correlated intercepts and slopes on both."""
    rng = np.random.default_rng(seed)

    def effects(n: int, sds: tuple[float, float], rho: float) -> np.ndarray:
        cov = np.array([[sds[0] ** 2, rho * sds[0] * sds[1]], [rho * sds[0] * sds[1], sds[1] ** 2]])
        return rng.multivariate_normal(np.zeros(2), cov, size=n)

    s, i = effects(subjects, (0.6, 0.3), 0.3), effects(items, (0.4, 0.2), -0.4)
    subj, item = np.repeat(np.arange(subjects), items), np.tile(np.arange(items), subjects)
    x = rng.choice([-0.5, 0.5], size=len(subj))
    y = 1.0 + 0.3 * x + s[subj, 0] + s[subj, 1] * x + i[item, 0] + i[item, 1] * x + rng.normal(0, 0.9, len(x))
    return pd.DataFrame({"y": y.round(6), "x": x, "subject": [f"s{k}" for k in subj],
                         "item": [f"i{k}" for k in item]})


def _run(cmd: list[str]) -> dict:
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        return {"error": (res.stderr or res.stdout).strip().splitlines()[-1:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--repeats", type=int, default=7, help="timed fits per small case (large: 1)")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args()
    chosen = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; choose from: {', '.join(CASES)}")
    have_r = shutil.which("Rscript") is not None
    lines = ["| case | rows | compare_kit engine (s) | lme4 (s) | engine / lme4 | default fit (s), engine | "
             "of which MixedLM (s) | peak MB: compare_kit / lme4 | logLik compare_kit - lme4 |",
             "|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        tables = _tables(Path(tmp), {CASES[c][0] for c in chosen})
        for name in chosen:
            table, formula, text = CASES[name]
            path = tables[table]
            rows = sum(1 for _ in open(path)) - 1
            repeats = 1 if name in LARGE else args.repeats
            ours = _run([sys.executable, "-c", PYTHON_RUNNER, str(path), formula, ",".join(text), str(repeats)])
            theirs = (_run(["Rscript", "-e", R_RUNNER, str(path), formula, ",".join(text), str(repeats)])
                      if have_r else {"error": ["Rscript not found"]})
            lines.append(_row(name, rows, ours, theirs))
            print(lines[-1], flush=True)
    text_out = "\n".join(lines)
    print("\n" + text_out)
    if args.out:
        args.out.write_text(text_out + "\n")


def _row(name: str, rows: int, ours: dict, theirs: dict) -> str:
    if "error" in ours:
        return f"| {name} | {rows:,} | failed: {' '.join(ours['error'])} | | | | | | |"
    own, default = ours["own"], ours["default"]
    r_sec = theirs.get("seconds")
    ratio = f"{own['seconds'] / r_sec:.2f}" if r_sec else "—"
    r_text = f"{r_sec:.3f}" if r_sec else " ".join(theirs.get("error", []))
    d_loglik = f"{own['loglik'] - theirs['loglik']:.1e}" if "loglik" in theirs else "—"
    r_mb = f"{theirs['peak_mb']:.0f}" if "peak_mb" in theirs else "—"
    mixedlm = default["engine_seconds"].get("statsmodels")
    mixedlm_text = f"{mixedlm:.3f}" if mixedlm is not None else "not used"
    return (f"| {name} | {rows:,} | {own['seconds']:.3f} | {r_text} | {ratio} | {default['seconds']:.3f}, "
            f"{default['engine']} | {mixedlm_text} | {ours['peak_mb']:.0f} / {r_mb} | {d_loglik} |")


if __name__ == "__main__":
    main()
