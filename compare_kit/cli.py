"""Command line: argv -> options -> public API -> exit code.

Exit codes: 0 success; 2 bad input or a model that cannot be fitted (one
paragraph, no traceback); 1 an internal error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from compare_kit.errors import CompareKitError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_FORMULA = "partial_pooling"


class _UsageError(Exception):
    """argparse's complaints, turned into exit code 2 without a traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{message}\n\n{self.format_usage().strip()}")


@dataclass(frozen=True)
class DataChoice:
    """Where the table comes from: the bundled radon data or a user's CSV."""

    csv: Path | None


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", choices=["radon"], default="radon",
                        help="the bundled Minnesota radon survey (default)")
    source.add_argument("--csv", type=Path, metavar="PATH", help="a CSV table of your own")
    parser.add_argument("--formula", default=DEFAULT_FORMULA, metavar="F",
                        help="an lme4-style formula, or a named model: pooled, unpooled, partial_pooling, "
                             "correlated_slopes, varying_intercept, group_predictor "
                             f"(default {DEFAULT_FORMULA})")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--draws", type=_positive_int, default=1000, help="posterior draws per chain")
    parser.add_argument("--tune", type=_non_negative_int, default=1000, help="tuning steps per chain")
    parser.add_argument("--chains", type=_positive_int, default=4, help="number of chains")
    parser.add_argument("--quiet", action="store_true", help="print no progress messages")


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
                     help="frequentist estimation method (default REML)")
    fit.add_argument("--priors", default="default", help="Bayesian prior preset: default, tutorial, vague")
    fit.add_argument("--sampler", default="nutpie", help="Bayesian sampler: nutpie, pymc, numpyro")
    fit.add_argument("--csv-out", type=Path, metavar="FILE", help="also write the tidy table as CSV")
    report = sub.add_parser("report", help="run the radon study (or a formula on your table) and write "
                                           "its tables")
    _add_data_options(report)
    report.add_argument("--tables-dir", type=Path, metavar="DIR", default=Path("reports"),
                        help="where to write estimates.csv and fit_stats.csv (default reports/)")
    return parser


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
        return ck.fit_frequentist(spec, data, method=args.method)
    return ck.fit_bayesian(spec, data, draws=args.draws, tune=args.tune, chains=args.chains,
                           seed=args.seed, priors=args.priors, sampler=args.sampler,
                           progress=not args.quiet)


def _cmd_fit(args: argparse.Namespace) -> int:
    from compare_kit.io import check_writable, write_csv_atomic
    from compare_kit.spec import ModelSpec

    say = _say(args)
    spec = ModelSpec.from_text(args.formula)
    if args.csv_out is not None:
        check_writable(args.csv_out)
    data = _load(args, spec)
    say(f"fitting {spec} with the {args.engine} engine on {len(data)} rows ...")
    result = _fit_one(args, spec, data, args.engine)
    for message in result.health.warnings:
        say(f"warning: {message}")
    with pd.option_context("display.max_rows", None, "display.width", 160, "display.max_columns", 20):
        print(result.estimates.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    if args.csv_out is not None:
        write_csv_atomic(args.csv_out, result.estimates)
        say(f"wrote {args.csv_out}")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from compare_kit.io import check_writable, write_csv_atomic
    from compare_kit.spec import CANONICAL_MODELS, ModelSpec
    from compare_kit.study import fit_all

    say = _say(args)
    tables_dir = args.tables_dir
    if not tables_dir.is_dir():
        raise CompareKitError(f"the tables folder {str(tables_dir)!r} does not exist; create it or pass "
                              "--tables-dir with an existing folder")
    check_writable(tables_dir / "estimates.csv")
    if args.csv is None and args.formula == DEFAULT_FORMULA:
        specs = [ModelSpec.named(name) for name in CANONICAL_MODELS]
    else:
        specs = [ModelSpec.from_text(args.formula)]
    data = _load(args, specs[0])
    results = fit_all(specs, data, engines=("frequentist",), say=say)
    estimates = pd.concat([r.estimates for r in results], ignore_index=True)
    fit_stats = pd.concat([r.fit_stats for r in results], ignore_index=True)
    write_csv_atomic(tables_dir / "estimates.csv", estimates)
    write_csv_atomic(tables_dir / "fit_stats.csv", fit_stats)
    say(f"wrote {tables_dir / 'estimates.csv'} and {tables_dir / 'fit_stats.csv'} "
        f"({len(results)} frequentist fits). The Bayesian side and the HTML report are not built yet.")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(fit_stats[["model", "method", "nobs", "loglik", "aic", "bic", "converged", "boundary"]]
              .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``compare-kit`` command."""
    try:
        args = build_parser().parse_args(argv)
        command = {"fit": _cmd_fit, "report": _cmd_report}[args.command]
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
