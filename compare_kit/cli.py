"""Command line: argv -> options -> public API -> exit code.

Exit codes: 0 success; 2 bad input or a model that cannot be fitted (one
paragraph, no traceback); 1 an internal error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from compare_kit.errors import CompareKitError
from compare_kit.settings import DEFAULT_CHAINS, DEFAULT_DRAWS, DEFAULT_SEED, DEFAULT_TUNE, setting_problem
from compare_kit.wording import count

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_FORMULA = "partial_pooling"
MAX_UNPOOLED_LEVELS = 200  # --formula adds a no-pooling model (a coefficient per level) up to this many levels


class _Bundled:
    """``--srrs2`` given without a folder: the survey files shipped with compare_kit (not a string, so
    argparse does not turn it into a path)."""

    def __repr__(self) -> str:
        return "the bundled survey"


BUNDLED_SURVEY = _Bundled()


class _UsageError(Exception):
    """argparse's complaints, turned into exit code 2 without a traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{message}\n\n{self.format_usage().strip()}")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", choices=["radon"], default="radon",
                        help="the bundled Minnesota radon survey (default)")
    source.add_argument("--csv", type=Path, metavar="PATH", help="a CSV table of your own")
    parser.add_argument("--formula", default=None, metavar="F",
                        help="an lme4-style formula, or a named model: pooled, unpooled, partial_pooling, "
                             "correlated_slopes, varying_intercept, group_predictor "
                             f"(default {DEFAULT_FORMULA} on the radon data; required with --csv)")
    _add_family_options(parser)
    _add_sampler_options(parser, from_study=False)
    parser.add_argument("--quiet", action="store_true", help="print no progress messages")


def _add_family_options(parser: argparse.ArgumentParser) -> None:
    """--family and --success: the outcome's family and a two-level outcome's success level."""
    parser.add_argument("--family", default=None, metavar="NAME",
                        help="the outcome's family: gaussian (the default; a measurement), bernoulli (0/1, "
                             "or two levels with --success), binomial (successes out of trials: the formula's response "
                             "is cbind(successes, failures), e.g. cbind(y, n - y)), poisson (counts; "
                             "offset(log(exposure)) allowed). `fit` fits every family with either engine; "
                             "`report` takes Gaussian models only, for now")
    parser.add_argument("--success", default=None, metavar="LEVEL",
                        help="with --family bernoulli: the level of a two-level outcome that counts as a success "
                             "(coded 1), e.g. --success Y")


_SAMPLER_OPTIONS = (("seed", "random seed", DEFAULT_SEED),
                    ("draws", "posterior draws per chain", DEFAULT_DRAWS),
                    ("tune", "tuning steps per chain", DEFAULT_TUNE),
                    ("chains", "number of chains", DEFAULT_CHAINS))


def _add_sampler_options(parser: argparse.ArgumentParser, from_study: bool) -> None:
    """--seed, --draws, --tune, --chains, checked by the shared rule; a report's default is its study's."""
    for name, what, default in _SAMPLER_OPTIONS:
        parser.add_argument(f"--{name}", type=_setting(name), default=None if from_study else default,
                            help=f"{what} (default: the study's; {default})" if from_study
                            else f"{what} (default {default})")


def _setting(name: str) -> Callable[[str], int]:
    """An argparse type for a shared sampler setting: its range is the engine's and the study file's."""
    def convert(text: str) -> int:
        problem = setting_problem(name, _int(text))
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return int(text)

    convert.__name__ = name  # argparse names the type in its messages
    return convert


def _positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="compare-kit",
                     description="Fit a frequentist mixed model and a Bayesian hierarchical model of the "
                                 "same data from one lme4-style formula, and compare them.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fit = sub.add_parser("fit", help="fit one model with one engine and print its tidy estimates")
    fit.add_argument("--engine", choices=["frequentist", "bayesian"], required=True)
    _add_data_options(fit)
    fit.add_argument("--method", choices=["REML", "ML"], default="REML",
                     help="frequentist estimation method of a Gaussian model (default REML); a GLM or GLMM "
                          "(--family bernoulli, binomial, poisson) is always fitted by maximum likelihood")
    fit.add_argument("--nagq", type=_positive_int, default=1, metavar="N",
                     help="a frequentist GLMM's quadrature: 1 (the default) is the Laplace approximation, N from "
                          "2 to 100 adaptive Gauss-Hermite quadrature with N nodes (glmer's nAGQ; one grouping "
                          "factor with one random intercept)")
    fit.add_argument("--no-mixedlm", action="store_true",
                     help="fit with compare_kit's own engine alone, without statsmodels MixedLM beside it "
                          "(the same optimum, faster)")
    fit.add_argument("--profile", action="store_true",
                     help="give the SDs profile-likelihood intervals, as lme4's confint(method = \"profile\") "
                          "(about ten refits per SD)")
    fit.add_argument("--priors", default="default", help="Bayesian prior preset: default, tutorial, vague")
    fit.add_argument("--sampler", default="nutpie", help="Bayesian sampler: nutpie, pymc, numpyro")
    fit.add_argument("--csv-out", type=Path, metavar="FILE", help="also write the tidy table as CSV")
    report = sub.add_parser(
        "report", help="run a study (default: the tutorial's radon study) and write its HTML report",
        description="Fit every model of a study with both engines, compare them, and write one "
                    "self-contained HTML report. With no options: the tutorial's radon study, written to "
                    "reports/radon.html with its tidy tables in reports/.")
    source = report.add_mutually_exclusive_group()
    source.add_argument("--data", choices=["radon"], default=None,
                        help="the bundled Minnesota radon survey (the default)")
    source.add_argument("--csv", type=Path, metavar="PATH", help="a CSV table of your own (needs --formula)")
    source.add_argument("--study", type=Path, metavar="FILE", help="a study file (TOML): [data] csv = \"table.csv\" (relative to the file; "
                             "or source = \"radon\" / \"srrs2\"), [models.NAME] formula = \"...\" "
                             "(priors = a preset, family = \"poisson\", success = \"Y\") for each model, "
                             "[settings] seed, draws, tune, chains, sampler, "
                             "priors, method, cv_folds, demos, mixedlm, panel_levels; "
                             "see compare_kit/studies/radon.toml")
    report.add_argument("--srrs2", type=Path, metavar="FOLDER", nargs="?", default=None, const=BUNDLED_SURVEY,
                        help="run the packaged three-level study of the full radon survey (homes in counties "
                             "in states, compare_kit/studies/srrs2.toml) on the bundled srrs2.dat and cty.dat, "
                             "or on the copies in FOLDER; with --study, for a study with source = \"srrs2\"")
    report.add_argument("--formula", default=None, metavar="F",
                        help="an lme4-style formula or a named model; the report fits it beside complete "
                             "pooling (and no pooling, for one grouping factor) of the same fixed part")
    _add_family_options(report)
    _add_sampler_options(report, from_study=True)
    report.add_argument("--no-mixedlm", action="store_true",
                        help="frequentist fits by compare_kit's own engine alone, without statsmodels MixedLM "
                             "beside it (the same optimum, faster; a study file's mixedlm = false)")
    report.add_argument("--out", type=Path, metavar="FILE.html", default=None,
                        help="where to write the report (default reports/radon.html for the default study, "
                             "reports/<name>.html otherwise)")
    report.add_argument("--tables-dir", type=Path, metavar="DIR", default=None,
                        help="also write estimates.csv, equivalence.csv, shrinkage.csv, fit_stats.csv and "
                             "diagnostics.csv here (default: reports/ for the default study, none otherwise)")
    report.add_argument("--no-timestamp", action="store_true",
                        help="leave the generation time out (for byte-identical reruns)")
    report.add_argument("--workers", type=_positive_int, default=None,
                        help="processes to use: 2 (the default on 2+ CPUs) runs the cross-validation refits "
                             "and teaching demonstrations in a second process beside the model fits; 1 runs "
                             "everything in one; the tables are the same either way")
    report.add_argument("--quiet", action="store_true", help="print no progress messages")
    _add_coverage_parser(sub)
    return parser


def _groups(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"must list numbers of groups such as 10,30,85, got {text!r}")
    return tuple(_positive_int(p) for p in parts)


def _add_coverage_parser(sub: argparse._SubParsersAction) -> None:
    cov = sub.add_parser(
        "coverage", help="the coverage study: how often each engine's 95%% intervals contain the truth",
        description="Simulate data sets from a known radon varying-intercept model (real county sizes and "
                    "floor values), fit both engines to each, and report how often the 95% Wald/profile "
                    "and posterior intervals contain the truth, their widths, and the RMSE of BLUPs and "
                    "posterior means, by number of groups. Runs on local worker processes, or on a Dask "
                    "cluster with --scheduler; the same seed gives the same tables either way.")
    cov.add_argument("--groups", type=_groups, default=(10, 30, 85), metavar="K,K,...",
                     help="numbers of groups (counties) to simulate (default 10,30,85)")
    cov.add_argument("--sims", type=_positive_int, default=200, help="data sets per number of groups (200)")
    cov.add_argument("--seed", type=_setting("seed"), default=DEFAULT_SEED,
                     help=f"random seed (default {DEFAULT_SEED})")
    cov.add_argument("--workers", type=_positive_int, default=None,
                     help="local worker processes (default: the number of CPUs)")
    cov.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                     help="run on this Dask scheduler's cluster instead of local processes")
    cov.add_argument("--connect-timeout", type=_positive_int, default=10, metavar="SECONDS",
                     help="how long to try reaching --scheduler (default 10)")
    cov.add_argument("--chunk", type=_positive_int, default=10, help="simulations per task (default 10)")
    cov.add_argument("--draws", type=_positive_int, default=1000, help="posterior draws per chain (1000)")
    cov.add_argument("--tune", type=_positive_int, default=1000, help="tuning steps per chain (1000)")
    cov.add_argument("--chains", type=_positive_int, default=4, help="chains per Bayesian fit (4)")
    cov.add_argument("--target-accept", type=float, default=0.8, metavar="P",
                     help="NUTS target acceptance rate (default 0.8, the engine's; higher: fewer divergences)")
    cov.add_argument("--retries", type=_non_negative_int, default=2, help="retries of a failed task (2)")
    cov.add_argument("--out", type=Path, metavar="FILE.html", default=None,
                     help="where to write the HTML page (default reports/coverage.html)")
    cov.add_argument("--tables-dir", type=Path, metavar="DIR", default=None,
                     help="also write coverage.csv, coverage_group_effects.csv, coverage_intervals.csv, "
                          "coverage_fits.csv and coverage_failures.csv here")
    cov.add_argument("--no-timestamp", action="store_true", help="leave the generation time out")
    cov.add_argument("--quiet", action="store_true", help="print no progress messages")


def _cmd_coverage(args: argparse.Namespace) -> int:
    import shlex

    from compare_kit.coverage import CoverageConfig, SamplerConfig, coverage_study
    from compare_kit.coverage.runner import connect
    from compare_kit.io import check_writable
    from compare_kit.report.coverage import write_coverage_report

    say = _say(args)
    config = CoverageConfig(groups=args.groups, sims=args.sims, seed=args.seed, chunk=args.chunk,
                            retries=args.retries,
                            sampler=SamplerConfig(chains=args.chains, draws=args.draws, tune=args.tune,
                                                  target_accept=args.target_accept))
    out = args.out if args.out is not None else Path("reports") / "coverage.html"
    check_writable(out)  # a missing folder is created when the page is written
    if args.tables_dir is not None:
        check_writable(args.tables_dir / "coverage.csv")
    scheduler = None
    client = None
    if args.scheduler is not None:
        client, _ = connect(args.scheduler, timeout=args.connect_timeout)  # unreachable: a CoverageError (exit 2) before any work
        scheduler = client
    try:
        result = coverage_study(config, workers=args.workers, scheduler=scheduler, say=say)
    finally:
        if client is not None:
            client.close()
    argv = ["--groups", ",".join(map(str, args.groups)), "--sims", str(args.sims), "--seed", str(args.seed),
            "--chunk", str(args.chunk), "--draws", str(args.draws), "--tune", str(args.tune),
            "--chains", str(args.chains), "--target-accept", str(args.target_accept)]
    command = shlex.join(["compare-kit", "coverage", *argv])
    write_coverage_report(result, out, timestamp=not args.no_timestamp, tables_dir=args.tables_dir,
                          command=command)
    final = int(result.failures["final"].astype(bool).sum()) if len(result.failures) else 0
    if final:
        print(f"compare-kit: {final} task(s) failed after every retry; their data sets are missing "
              f"(see the failures in {out})", file=sys.stderr)
    say(f"wrote {out}" + (f" and the coverage tables in {args.tables_dir}" if args.tables_dir else "")
        + f" ({result.timings['wall']:.0f} s)")
    return EXIT_OK


def _say(args: argparse.Namespace) -> Callable[[str], None]:
    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)
    return say


def _load(args: argparse.Namespace, spec: object) -> pd.DataFrame:
    import compare_kit as ck

    if args.csv is not None:
        text_columns = list(spec.grouping_columns) + [v.column for t in spec.fixed for v in t.variables
                                                      if v.categorical]
        return ck.load_csv(args.csv, text_columns=text_columns)
    return ck.load_radon()


def _fit_one(args: argparse.Namespace, spec: object, data: pd.DataFrame, engine: str) -> object:
    import compare_kit as ck

    if engine == "frequentist":
        return ck.fit_frequentist(spec, data, method=args.method, mixedlm=not args.no_mixedlm,
                                  progress=_say(args), profile=args.profile, nagq=args.nagq)
    if args.nagq != 1:
        raise _UsageError("--nagq sets the quadrature of the frequentist engine's GLMM fit; use it with --engine "
                          "frequentist")
    return ck.fit_bayesian(spec, data, draws=args.draws, tune=args.tune, chains=args.chains,
                           seed=args.seed, priors=args.priors, sampler=args.sampler,
                           progress=not args.quiet)


def _tell_what_matters(result: object) -> None:
    """Dropped rows, warnings and notes go to stderr even with --quiet: they change how to read the table."""
    if result.data_summary.n_dropped:
        print(f"compare-kit: {result.data_summary.describe()}", file=sys.stderr)
    for message in result.health.warnings:
        print(f"warning: {message}", file=sys.stderr)
    for message in result.health.notes:
        print(f"note: {message}", file=sys.stderr)


def _cmd_fit(args: argparse.Namespace) -> int:
    from compare_kit.io import check_writable, write_csv_atomic
    from compare_kit.spec import ModelSpec

    say = _say(args)
    if args.formula is None and args.csv is not None:
        raise _UsageError("--csv needs --formula: the named models are the radon survey's. Name your table's "
                          "columns, e.g. --formula \"score ~ dose + (1 + dose | subject)\"")
    spec = ModelSpec.from_text(args.formula or DEFAULT_FORMULA, family=args.family, success=args.success)
    if args.csv_out is not None:
        check_writable(args.csv_out)
    data = _load(args, spec)
    say(f"fitting {spec} with the {args.engine} engine on {len(data)} rows ...")
    result = _fit_one(args, spec, data, args.engine)
    _tell_what_matters(result)
    with pd.option_context("display.max_rows", None, "display.width", 160, "display.max_columns", 20):
        print(result.estimates.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    if args.csv_out is not None:
        write_csv_atomic(args.csv_out, result.estimates)
        say(f"wrote {args.csv_out}")
    return EXIT_OK


def _report_study(args: argparse.Namespace) -> tuple[object, str, bool]:
    """The study the options describe, the report's file stem, and whether it is the default study."""
    from compare_kit.study import load_study, srrs2_study_path

    srrs2 = getattr(args, "srrs2", None)
    if args.formula is None and (args.family is not None or args.success is not None):
        raise _UsageError("--family and --success go with --formula; in a study file, write family = \"poisson\" "
                          "(and success = \"Y\") in the model's [models.NAME] table")
    if srrs2 is not None:
        if args.csv is not None or args.data is not None or args.formula is not None:
            raise _UsageError("--srrs2 goes with --study (a study with source = \"srrs2\") or alone (the "
                              "packaged three-level study); not with --csv, --data or --formula")
        path = args.study if args.study is not None else srrs2_study_path()
        folder = None if srrs2 is BUNDLED_SURVEY else srrs2
        return load_study(path).with_data_path(folder), path.stem, False
    if args.study is not None:
        if args.formula is not None:
            raise _UsageError("--formula cannot be combined with --study; put the models in the study file")
        return load_study(args.study), args.study.stem, False
    if args.csv is not None:
        if args.formula is None:
            raise _UsageError("--csv needs --formula, e.g. --formula \"score ~ dose + (1 + dose | subject)\"")
        return (_study_from_formula(args.formula, csv_path=args.csv, say=_say(args), family=args.family,
                                    success=args.success), args.csv.stem, False)
    if args.formula is not None:
        study = _study_from_formula(args.formula, say=_say(args), family=args.family, success=args.success)
        return study, f"radon_{study.models[-1].label}", False
    return load_study(), "radon", True


def _study_from_formula(formula: str, csv_path: Path | None = None,
                        say: Callable[[str], None] = lambda _m: None, family: str | None = None,
                        success: str | None = None) -> object:
    """A study for one formula: the model itself, complete pooling of its fixed part and, for one
    grouping factor with a random intercept and at most ``MAX_UNPOOLED_LEVELS`` levels, no pooling
    (a coefficient per group for each random term); all three share the family and the offset."""
    from compare_kit.spec import CANONICAL_MODELS, ModelSpec, quote_name
    from compare_kit.study import ModelEntry, Study

    named = formula.strip() in CANONICAL_MODELS
    spec = ModelSpec.from_text(formula, family=family, success=success)
    label = formula.strip() if named else ("partial_pooling" if spec.random else "model")
    spec = spec.with_label(label)
    models = []
    fixed = " + ".join(t.to_formula() for t in spec.fixed)
    if spec.random:
        models.append(ModelEntry("pooled", spec.sibling((fixed or "1") if spec.intercept else f"0 + {fixed}",
                                                        "pooled")))
        term = spec.random[0]
        if len(spec.random) == 1 and len(term.grouping) == 1 and term.intercept:
            group = f"C({quote_name(term.grouping[0])})"
            slopes = [t.to_formula() for t in term.terms]
            others = [t.to_formula() for t in spec.fixed if t.to_formula() not in slopes]
            parts = ["0", group, *[f"{group}:{s}" for s in slopes], *others]
            models.append(ModelEntry("unpooled", spec.sibling(" + ".join(parts), "unpooled")))
    models.append(ModelEntry(label, spec))
    source = "csv" if csv_path is not None else "radon"
    if len(models) == 3:
        column = term.grouping[0]
        table = Study("", source, csv_path, tuple(models), primary=label).load_data()
        # a missing column is left to the study's checks, which name it and the columns there are
        levels = table[column].nunique() if column in table.columns else 0
        if levels > MAX_UNPOOLED_LEVELS:
            models.pop(1)
            say(f"no-pooling model left out: {column} has {levels} levels, more than {MAX_UNPOOLED_LEVELS}, "
                "and a coefficient for each would be slow to sample and unreadable in the report "
                "(write a study file to fit it anyway)")
    groups = " and ".join(spec.grouping_columns)
    what = f"{spec.response.label} by {groups}" if groups else spec.response.label
    title = f"{what}: complete, no and partial pooling" if len(models) == 3 else f"{what}: {spec}"
    return Study(title, source, csv_path, tuple(models), primary=label)


def _cmd_report(args: argparse.Namespace) -> int:
    import shlex

    from compare_kit.io import check_writable
    from compare_kit.report.render import TABLE_FILES, write_report

    say = _say(args)
    study, stem, default = _report_study(args)
    study = study.with_settings(seed=args.seed, draws=args.draws, tune=args.tune, chains=args.chains,
                                mixedlm=False if args.no_mixedlm else None)
    out = args.out if args.out is not None else Path("reports") / f"{stem}.html"
    tables_dir = args.tables_dir
    if tables_dir is None and default and args.out is None:
        tables_dir = out.parent
    check_writable(out)  # missing folders are created when the files are written
    if tables_dir is not None:
        check_writable(tables_dir / TABLE_FILES[0])
    say(f"study: {study.title} ({len(study.models)} models x 2 engines, {study.settings.chains} chains x "
        f"{study.settings.draws} draws)")
    command = shlex.join(["compare-kit", "report", *_argv_of(args)])
    from compare_kit.study import run_study

    result = run_study(study, say=say, workers=args.workers)
    write_report(result, out, timestamp=not args.no_timestamp, tables_dir=tables_dir, command=command, say=say)
    tables = len(TABLE_FILES) + len(result.demos.ran())  # write_tables: the tidy tables and each demonstration's
    say(f"wrote {out}" + (f" and {count(tables, 'table')} in {tables_dir}" if tables_dir is not None else ""))
    return EXIT_OK


def _argv_of(args: argparse.Namespace) -> list[str]:
    """The report options as a command line (for the report's reproducibility section)."""
    out: list[str] = []
    for name in ("csv", "study", "srrs2", "formula", "family", "success", "seed", "draws", "tune", "chains",
                 "workers", "out",
                 "tables_dir"):
        value = getattr(args, name, None)
        if value is not None:
            out += [f"--{name.replace('_', '-')}"] + ([] if value is BUNDLED_SURVEY else [str(value)])
    for flag in ("no_mixedlm", "no_timestamp"):
        if getattr(args, flag, False):
            out.append(f"--{flag.replace('_', '-')}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``compare-kit`` command."""
    try:
        args = build_parser().parse_args(argv)
        command = {"fit": _cmd_fit, "report": _cmd_report, "coverage": _cmd_coverage}[args.command]
        return command(args)
    except _UsageError as exc:
        print(f"compare-kit: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CompareKitError as exc:
        print(f"compare-kit: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("compare-kit: interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        print(f"compare-kit: internal error ({type(exc).__name__}: {exc}). This is a bug in compare_kit; "
              "please report it with the command you ran.", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
