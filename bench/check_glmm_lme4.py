"""compare_kit's GLMM engine beside lme4's glmer on lme4's own data: estimates, logLik and time, side by side.

    .venv/bin/python bench/check_glmm_lme4.py [--repeats 5]

lme4's data sets are written from the installed R package into a temporary folder at run time
(none is committed): ``cbpp`` (``cbind(incidence, size - incidence) ~ period + (1 | herd)``,
Laplace and nAGQ = 25) and ``grouseticks`` (``TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX)
+ (1 | LOCATION)``, Poisson with an observation-level effect, Laplace). Each side fits every case
``repeats`` times after one warm-up fit and reports the median wall time of the fit call:
``compare_kit.engines.glmm.fit_glmm`` on the design code's arrays, and ``glmer`` in one R process.
lme4 leaves the saturated model's log-likelihood out of its nAGQ > 1 logLik; it is added to
lme4's value here so the two compare. Standard errors: both sides use the finite-difference
Hessian (glmer's default); glmer's is computed on a deviance converged to 1e-7 only, so a
difference of up to ~1% there is glmer's noise (tests/reference/lme4/README.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> (table, lme4 formula, compare_kit's Gaussian spec of the same right-hand side, family,
#          trials column, nAGQ, text columns). compare_kit's design code refuses a grouping factor with one
# row per level (a Gaussian model cannot tell it from the residual), so grouseticks' observation-level
# effect, (1 | INDEX), is added to its arrays by hand (OBSERVATION_LEVEL).
CASES = {
    "cbpp Laplace": ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                     "incidence ~ period + (1 | herd)", "binomial", "size", 1, ("herd", "period")),
    "cbpp nAGQ=25": ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                     "incidence ~ period + (1 | herd)", "binomial", "size", 25, ("herd", "period")),
    "grouseticks Laplace": ("grouseticks", "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
                            "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", "poisson",
                            None, 1, ("BROOD", "INDEX", "LOCATION", "YEAR")),
}
OBSERVATION_LEVEL = {"grouseticks Laplace": ("INDEX", 1)}  # name -> (factor, its position among the terms)

R_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(TRUE); out <- args[1]; repeats <- as.integer(args[2])
write.csv(cbpp, file.path(out, "cbpp.csv"), row.names = FALSE)
write.csv(grouseticks, file.path(out, "grouseticks.csv"), row.names = FALSE)
cases <- jsonlite::fromJSON(args[3])
res <- list()
for (name in names(cases)) {
  cs <- cases[[name]]
  d <- read.csv(file.path(out, paste0(cs$table, ".csv")), colClasses = "character")
  for (col in names(d)) if (!(col %in% cs$text)) d[[col]] <- as.numeric(d[[col]])
  fam <- get(cs$family)
  f <- as.formula(cs$formula)
  m <- glmer(f, data = d, family = fam, nAGQ = cs$nagq)
  tight <- glmer(f, data = d, family = fam, nAGQ = cs$nagq, control = glmerControl(tolPwrss = 1e-12))
  times <- sapply(seq_len(repeats), function(i) system.time(m <<- glmer(f, data = d, family = fam, nAGQ = cs$nagq))[["elapsed"]])
  vc <- as.data.frame(VarCorr(m))
  res[[name]] <- list(seconds = median(times), beta = unname(fixef(m)), se = unname(sqrt(diag(as.matrix(vcov(m))))),
                      se_tight = unname(sqrt(diag(as.matrix(vcov(tight))))), terms = names(fixef(m)), sd_groups = vc$grp, sds = vc$sdcor, loglik = as.numeric(logLik(m)),
                      deviance = deviance(m), warnings = paste(m@optinfo$conv$lme4$messages, collapse = " | "))
}
cat(jsonlite::toJSON(res, digits = NA, auto_unbox = TRUE))
"""


def _ours(name: str, case: tuple, folder: Path, repeats: int) -> dict:
    import compare_kit as ck
    from compare_kit.design import build_design
    from compare_kit.engines.glmm import fit_glmm
    from compare_kit.engines.lmm import ReTerm

    table, _, spec_text, family, trials, nagq, text = case
    data = ck.load_csv(folder / f"{table}.csv", text_columns=text)
    design = build_design(ck.ModelSpec.from_formula(spec_text), data)
    terms = [ReTerm(b.codes, len(b.levels), b.z.to_numpy(dtype=float), b.term.correlated) for b in design.blocks]
    groups = [b.group for b in design.blocks]
    if name in OBSERVATION_LEVEL:
        factor, position = OBSERVATION_LEVEL[name]
        terms.insert(position, ReTerm(np.arange(design.n), design.n, np.ones((design.n, 1)), False))
        groups.insert(position, factor)
    x = design.x_estimable.to_numpy(dtype=float)
    kwargs = {"trials": data[trials].to_numpy(dtype=float)} if trials else {}
    fit_glmm(terms, x, design.y, family, nagq=nagq, **kwargs)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sol = fit_glmm(terms, x, design.y, family, nagq=nagq, **kwargs)
        times.append(time.perf_counter() - start)
    saturated = 0.0
    if nagq > 1 and trials:
        n = kwargs["trials"]
        saturated = float(stats.binom.logpmf(design.y, n, np.divide(design.y, n, out=np.zeros(len(n)), where=n > 0)).sum())
    return {"seconds": statistics.median(times), "beta": sol.beta, "se": sol.se_beta, "terms": list(design.x_estimable),
            "sd_groups": groups, "sds": np.concatenate(sol.sds), "loglik": sol.loglik,
            "saturated": saturated, "deviance": sol.deviance, "health": sol.health}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per case and side")
    args = parser.parse_args()
    if shutil.which("Rscript") is None:
        raise SystemExit("lme4's data sets and glmer come from R: install Debian's r-base and r-cran-lme4")
    spec = {name: {"table": c[0], "formula": c[1], "family": c[3], "nagq": c[5], "text": list(c[6])}
            for name, c in CASES.items()}
    summary = ["| case | max rel. diff fixed effects | max rel. diff SDs | logLik compare_kit - lme4 | "
               "max rel. diff SEs (glmer default; PIRLS to 1e-12) | compare_kit (s) | glmer (s) |",
               "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run(["Rscript", "-e", R_SCRIPT, tmp, str(args.repeats), json.dumps(spec)],
                             capture_output=True, text=True, check=True)
        lme4 = json.loads(res.stdout.strip().splitlines()[-1])
        for name, case in CASES.items():
            ours, theirs = _ours(name, case, Path(tmp), args.repeats), dict(lme4[name])
            for key in ("beta", "se", "se_tight", "terms", "sd_groups", "sds"):  # jsonlite unboxes one-element vectors
                theirs[key] = list(np.atleast_1d(theirs[key]))
            assert ours["terms"] == theirs["terms"], (ours["terms"], theirs["terms"])
            order = [ours["sd_groups"].index(g) for g in theirs["sd_groups"]]
            sds = ours["sds"][order]
            theirs_loglik = theirs["loglik"] + ours["saturated"]
            print(f"\n{name}: glmer warnings: {theirs['warnings'] or 'none'}; compare_kit health: "
                  f"{'; '.join(ours['health'].messages) or 'no messages'}")
            print(f"  {'parameter':<22} {'compare_kit':>14} {'lme4':>14} {'rel. diff':>10}")
            for term, a, b in zip(ours["terms"], ours["beta"], theirs["beta"], strict=True):
                print(f"  {term:<22} {a:>14.8f} {b:>14.8f} {abs(a - b) / abs(b):>10.1e}")
            for term, a, b, c in zip(ours["terms"], ours["se"], theirs["se"], theirs["se_tight"], strict=True):
                print(f"  {'SE ' + term:<22} {a:>14.8f} {b:>14.8f} {abs(a - b) / abs(b):>10.1e}   "
                      f"glmer, PIRLS to 1e-12: {c:.8f} ({abs(a - c) / abs(c):.1e})")
            for group, a, b in zip(theirs["sd_groups"], sds, theirs["sds"], strict=True):
                print(f"  {'SD ' + group:<22} {a:>14.8f} {b:>14.8f} {abs(a - b) / abs(b):>10.1e}")
            print(f"  {'logLik':<22} {ours['loglik']:>14.6f} {theirs_loglik:>14.6f} "
                  f"{ours['loglik'] - theirs_loglik:>10.1e} (absolute)")
            print(f"  {'deviance':<22} {ours['deviance']:>14.6f} {theirs['deviance']:>14.6f}")
            summary.append(f"| {name} | {_rel(ours['beta'], theirs['beta']):.1e} | {_rel(sds, theirs['sds']):.1e} | "
                           f"{ours['loglik'] - theirs_loglik:.1e} | {_rel(ours['se'], theirs['se']):.1e}; "
                           f"{_rel(ours['se'], theirs['se_tight']):.1e} | "
                           f"{ours['seconds']:.3f} | {theirs['seconds']:.3f} |")
    print("\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
