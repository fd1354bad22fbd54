"""Predictive checks and predictions for both engines.

* ``in_sample_rmsd``: the tutorial's root-mean-square deviation of predictions
  from the data (Bayesian: per posterior draw, then averaged; frequentist: the
  fitted values, fixed part plus BLUPs).
* ``cross_validated_rmse``: Gelman's classic comparison of complete, no and
  partial pooling by K-fold cross-validation of homes (statsmodels refits each
  fold), beside the Bayesian leave-one-out prediction error from PSIS-LOO.
* ``loo_table``: PSIS-LOO of the Bayesian fits with AIC and BIC (ML) of the
  frequentist fits in one table.
* ``in_sample_scores`` and ``cross_validated_scores``: the same checks for a
  bernoulli, binomial or poisson model, scored as the family asks
  (``DiscreteScores``: log score, Brier score, Poisson deviance, RMSE of counts).
* ``predict_new``: a new row in an existing group and in a new group, from both
  engines, with predictive intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from compare_kit.design import Design, build_design
from compare_kit.errors import CompareKitError, FitError
from compare_kit.family import Family
from compare_kit.new_rows import NewRows, new_rows
from compare_kit.outcomes import require_gaussian
from compare_kit.results import CHUNK_BYTES, BayesianFit, FitResult, FrequentistFit
from compare_kit.spec import ModelSpec

_NEW_GROUP = "(new group)"  # the level a new row of a group the fit never saw carries

# ------------------------------------------------------------ draw helpers


def posterior_mu(bayes: BayesianFit) -> np.ndarray:
    """Per draw, the model's mean for every row: (chain, draw, row)."""
    return bayes.mu


def log_likelihood(bayes: BayesianFit) -> np.ndarray:
    """Pointwise Normal log-likelihood per draw: (chain, draw, row)."""
    return bayes.log_likelihood


# ----------------------------------------------------------- in-sample RMSD


def in_sample_rmsd(freq: FitResult | None = None, bayes: FitResult | None = None) -> pd.DataFrame:
    """The tutorial's check: how closely each model's predictions recreate the data."""
    rows = []
    if freq is not None:
        require_gaussian(freq.spec, "the in-sample RMSD")
        y = freq.design.y
        rows.append({"model": freq.model, "engine": str(freq.engine),
                     "rmsd": float(np.sqrt(np.mean((y - freq.fitted()) ** 2))),
                     "how": "fitted values (fixed part + BLUPs)"})
    if bayes is not None:
        y = bayes.design.y
        step = max(1, CHUNK_BYTES // (8 * len(y)))  # draws at a time: never the full (chain, draw, n) means
        chunks = [np.arange(start, min(start + step, bayes.n_draws)) for start in range(0, bayes.n_draws, step)]
        per_draw = np.concatenate([np.sqrt(np.mean((y - bayes.mu_at(draws)) ** 2, axis=1)) for draws in chunks])
        rows.append({"model": bayes.model, "engine": str(bayes.engine), "rmsd": float(per_draw.mean()),
                     "how": "mean over posterior draws of the RMSD of each draw's predictions"})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------- LOO


def loo_predictions(bayes: BayesianFit) -> np.ndarray:
    """Each row's posterior mean prediction with that row left out (PSIS-LOO)."""
    return bayes.loo.predictions


def loo_summary(bayes: BayesianFit) -> dict[str, float]:
    """PSIS-LOO: expected log predictive density, its SE, effective parameters, bad Pareto k."""
    loo, pred, caught = bayes.loo.elpd, bayes.loo.predictions, bayes.loo.warnings
    k = np.asarray(loo.pareto_k).ravel()
    y = bayes.design.y
    return {"elpd_loo": float(loo.elpd), "elpd_loo_se": float(loo.se), "p_loo": float(loo.p),
            "looic": float(-2 * loo.elpd), "pareto_k_above_0.7": int((k > 0.7).sum()),
            "loo_rmse": float(np.sqrt(np.mean((y - pred) ** 2))),
            "warnings": " | ".join(caught)}


def loo_table(pairs: list[tuple[FitResult, FitResult]]) -> pd.DataFrame:
    """Per model: PSIS-LOO (Bayesian) beside AIC and BIC (ML, frequentist)."""
    rows = []
    for freq, bayes in pairs:
        loo = loo_summary(bayes)
        rows.append({"model": freq.model, "aic": freq.stats.aic, "bic": freq.stats.bic,
                     "ml_loglik_note": freq.stats.ic_note or "ML fit",
                     "elpd_loo": loo["elpd_loo"], "elpd_loo_se": loo["elpd_loo_se"], "p_loo": loo["p_loo"],
                     "looic": loo["looic"], "pareto_k_above_0.7": loo["pareto_k_above_0.7"]})
    table = pd.DataFrame(rows)
    table["delta_aic"] = table["aic"] - table["aic"].min()
    table["delta_looic"] = table["looic"] - table["looic"].min()
    return table


# --------------------------------------------------------- cross-validation


def _fold_predictions(spec: ModelSpec, train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Predict held-out rows from a fit on the others (NaN where the model cannot predict), and the
    engine that fitted it."""
    from compare_kit.engines.frequentist import fit_frequentist

    fit = fit_frequentist(spec, train, information_criteria=False)
    return fit.predict(test).to_numpy(), str(fit.engine)


@dataclass(frozen=True, eq=False)
class KFoldPredictions:
    """Held-out frequentist predictions of every model for every row (NaN where it cannot predict)."""

    folds: int
    n_rows: int
    y: np.ndarray
    predictions: dict[str, np.ndarray]  # model label -> per-row prediction
    engines: dict[str, str]  # model label -> the frequentist engine of its refits


def _cv_rows(specs: list[ModelSpec], data: pd.DataFrame) -> pd.DataFrame:
    columns = list(dict.fromkeys(c for spec in specs for c in spec.columns))
    return data.dropna(subset=columns).reset_index(drop=True)


def cv_folds(n: int, folds: int, seed: int) -> np.ndarray:
    """Each row's fold (0 .. folds - 1): a seeded permutation of the rows, dealt round the folds."""
    return np.random.default_rng(seed).permutation(n) % folds


def kfold_predictions(specs: list[ModelSpec], data: pd.DataFrame, folds: int = 10,
                      seed: int = 1) -> KFoldPredictions:
    """The frequentist half of ``cross_validated_rmse``: K refits of every model (no Bayesian input,
    so it can run beside the Bayesian fits, e.g. in another process)."""
    for spec in specs:
        require_gaussian(spec, "cross-validated RMSE")
    data = _cv_rows(specs, data)
    fold_of = cv_folds(len(data), folds, seed)
    preds = {spec.label: np.full(len(data), np.nan) for spec in specs}
    engines: dict[str, str] = {}
    for k in range(folds):
        train, test = data[fold_of != k], data[fold_of == k]
        for spec in specs:
            preds[spec.label][fold_of == k], engines[spec.label] = _fold_predictions(spec, train, test)
    return KFoldPredictions(folds, len(data), build_design(specs[0], data).y, preds, engines)


def cv_table(kfold: KFoldPredictions, bayes_fits: list[FitResult] = ()) -> pd.DataFrame:
    """The cross-validation table from K-fold predictions, with PSIS-LOO rows of Bayesian fits."""
    folds, y, preds = kfold.folds, kfold.y, kfold.predictions
    usable = np.all([np.isfinite(p) for p in preds.values()], axis=0)
    rows = [{"model": label, "engine": kfold.engines[label], "method": f"{folds}-fold cross-validation",
             "rmse": float(np.sqrt(np.mean((y[usable] - p[usable]) ** 2))), "rows": int(usable.sum()),
             "rows_left_out": int((~usable).sum())} for label, p in preds.items()]
    for bayes in bayes_fits:
        if bayes.design.n != kfold.n_rows:
            raise CompareKitError(f"the Bayesian fit of {bayes.model} used {bayes.design.n} rows, the "
                                  f"cross-validation {kfold.n_rows}; fit it to the same rows")
        p = loo_predictions(bayes)
        rows.append({"model": bayes.model, "engine": str(bayes.engine), "method": "PSIS leave-one-out",
                     "rmse": float(np.sqrt(np.mean((y[usable] - p[usable]) ** 2))), "rows": int(usable.sum()),
                     "rows_left_out": int((~usable).sum())})
    return pd.DataFrame(rows)


def cross_validated_rmse(specs: list[ModelSpec], data: pd.DataFrame, folds: int = 10,
                         seed: int = 1, bayes_fits: list[FitResult] = ()) -> pd.DataFrame:
    """Out-of-sample RMSE of every model, on the rows every model can predict.

    statsmodels: K-fold cross-validation (each fold refitted). Bayesian fits
    (optional, fitted to the same rows): PSIS leave-one-out predictions, which
    need no refits. A no-pooling model cannot predict a row whose group has no
    training rows, or whose group's slope is not estimable from the training
    rows; such rows are left out for every model, so that all RMSEs are over the
    same rows.
    """
    for bayes in bayes_fits:  # fail before the refits, not after
        n = len(_cv_rows(specs, data))
        if bayes.design.n != n:
            raise CompareKitError(f"the Bayesian fit of {bayes.model} used {bayes.design.n} rows, the "
                                  f"cross-validation {n}; fit it to the same rows")
    return cv_table(kfold_predictions(specs, data, folds, seed), bayes_fits)


# ------------------------------------------------ scores of discrete outcomes


@dataclass(frozen=True)
class DiscreteScores:
    """Predictive scores of a bernoulli, binomial or poisson model on ``rows`` rows (higher log score,
    lower Brier score, deviance and RMSE are better; NaN where the family has no such score).

    ``log_score``: the mean over rows of the log predictive probability of the row's outcome (the
    frequentist fit: the family's log pmf at the fitted or held-out mean; the Bayesian fit: log of the
    posterior mean of the pmf, the log pointwise predictive density, or PSIS-LOO's elpd_i).
    ``brier``: bernoulli and binomial, the mean over rows of (y / trials - p)^2, the observed proportion
    less the predicted probability (a row weighs the same whatever its trials). ``deviance``: poisson,
    the mean unit deviance 2 (y log(y / m) - (y - m)) at the predicted mean m. ``rmse_counts``: poisson,
    the root mean squared difference of counts and predicted means.
    """

    model: str
    engine: str
    method: str
    rows: int
    log_score: float
    brier: float
    deviance: float
    rmse_counts: float


def _family_of(spec: ModelSpec, what: str) -> Family:
    if spec.family is Family.GAUSSIAN:
        raise FitError(f"{what}: for bernoulli, binomial and poisson models; {spec.label!r} is Gaussian, whose "
                       "checks are in_sample_rmsd and cross_validated_rmse")
    return spec.family


def _log_pmf(family: Family, y: np.ndarray, trials: np.ndarray | None, mean: np.ndarray) -> np.ndarray:
    """The family's log pmf of ``y`` at ``mean`` (a probability per trial, or an expected count)."""
    from scipy import stats

    if family is Family.POISSON:
        return stats.poisson.logpmf(y, mean)
    return stats.binom.logpmf(y, np.ones_like(y) if trials is None else trials, mean)


def _scores(model: str, engine: str, method: str, family: Family, y: np.ndarray, trials: np.ndarray | None,
            mean: np.ndarray, log_density: np.ndarray) -> DiscreteScores:
    """Scores from per-row predicted means (probability per trial, or expected count) and log densities."""
    brier = deviance = rmse = np.nan
    if family is Family.POISSON:
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(y > 0, y * np.log(y / mean), 0.0)
        deviance = float(np.mean(2 * (term - (y - mean))))
        rmse = float(np.sqrt(np.mean((y - mean) ** 2)))
    else:
        share = y if trials is None else y / trials
        brier = float(np.mean((share - mean) ** 2))
    return DiscreteScores(model, engine, method, len(y), float(np.mean(log_density)), brier, deviance, rmse)


def _per_trial(design: Design, expected: np.ndarray) -> np.ndarray:
    """A Bayesian mean (the outcome's expectation: expected successes for binomial) per trial."""
    return expected / design.trials if design.trials is not None else expected


def in_sample_scores(freq: FitResult | None = None, bayes: FitResult | None = None) -> list[DiscreteScores]:
    """How well each fit predicts the rows it was fitted to, scored for a discrete outcome.

    Frequentist: the fitted means (fixed part plus conditional modes). Bayesian: the log pointwise
    predictive density (log of the posterior mean of each row's pmf) and the posterior mean of the mean.
    """
    from scipy.special import logsumexp

    out = []
    if freq is not None:
        family = _family_of(freq.spec, "in_sample_scores")
        d = freq.design
        mean = freq.fitted()
        out.append(_scores(freq.model, str(freq.engine), "fitted values (fixed part + conditional modes)",
                           family, d.y, d.trials, mean, _log_pmf(family, d.y, d.trials, mean)))
    if bayes is not None:
        from compare_kit.engines.posterior import pointwise_chunks

        family = _family_of(bayes.spec, "in_sample_scores")
        if not isinstance(bayes, BayesianFit) or bayes.draws is None:
            raise CompareKitError("in_sample_scores needs a Bayesian fit that carries its draws (fit_bayesian's)")
        d = bayes.design
        lppd, expected = np.empty(d.n), np.empty(d.n)
        for rows, mu, log_lik in pointwise_chunks(bayes.draws, d):  # (draws, rows) chunks, never all rows
            lppd[rows] = logsumexp(log_lik, axis=0) - np.log(log_lik.shape[0])
            expected[rows] = mu.mean(axis=0)
        mean = _per_trial(d, expected)
        out.append(_scores(bayes.model, str(bayes.engine), "posterior predictive (mean over draws)", family,
                           d.y, d.trials, mean, lppd))
    return out


def cross_validated_scores(spec: ModelSpec, data: pd.DataFrame, folds: int = 10, seed: int = 1,
                           bayes: FitResult | None = None) -> list[DiscreteScores]:
    """Out-of-sample scores of a discrete-outcome model: K-fold refits of the frequentist fit, on the folds
    ``cv_folds`` deals (``kfold_predictions``'s), and PSIS-LOO of a Bayesian fit to the same rows.

    A held-out row is predicted at the training fit's conditional modes (a level absent from the
    training rows at the population, effect 0) with its offset; its log score is the family's log pmf
    there. Rows the training fit cannot predict are left out of every row of the result.
    """
    from compare_kit.engines.frequentist import fit_frequentist

    family = _family_of(spec, "cross_validated_scores")
    data = _cv_rows([spec], data)
    design = build_design(spec, data)
    if bayes is not None and bayes.design.n != design.n:
        raise CompareKitError(f"the Bayesian fit of {bayes.model} used {bayes.design.n} rows, the "
                              f"cross-validation {design.n}; fit it to the same rows")
    fold_of = cv_folds(len(data), folds, seed)
    mean = np.full(design.n, np.nan)
    engine = ""
    for k in range(folds):
        fit = fit_frequentist(spec, data[fold_of != k])
        mean[fold_of == k] = fit.predict(data[fold_of == k]).to_numpy()
        engine = str(fit.engine)
    ok = np.isfinite(mean)
    y, trials = design.y[ok], None if design.trials is None else design.trials[ok]
    out = [_scores(spec.label, engine, f"{folds}-fold cross-validation", family, y, trials, mean[ok],
                   _log_pmf(family, y, trials, mean[ok]))]
    if bayes is not None:
        loo = bayes.loo
        out.append(_scores(bayes.model, str(bayes.engine), "PSIS leave-one-out", family, y, trials,
                           _per_trial(design, loo.predictions)[ok], loo.elpd.elpd_i[ok]))
    return out


def scores_table(scores: list[DiscreteScores]) -> pd.DataFrame:
    """The scores as one table, a row per fit and method."""
    from dataclasses import asdict

    return pd.DataFrame([asdict(s) for s in scores])


# -------------------------------------------------------------- prediction


@dataclass(frozen=True)
class NewRow:
    """Predictor values for a new row, and the group it belongs to (None: a new group)."""

    values: dict[str, float]
    level: str | None = None


def predict_new(freq: FitResult, bayes: FitResult, rows: list[NewRow], conf_level: float = 0.95,
                seed: int = 1) -> pd.DataFrame:
    """Predictive mean and interval for new rows, from both engines."""
    from scipy.stats import norm

    require_gaussian(freq.spec, "predict_new")
    design = freq.design
    if len(design.blocks) != 1:
        raise CompareKitError("predict_new handles models with one grouping factor")
    block = design.blocks[0]
    if not isinstance(freq, FrequentistFit) or freq.mixed is None:
        raise CompareKitError("predict_new needs a frequentist mixed-model fit")
    sol = freq.mixed.solution
    rel = freq.mixed.relative_covariances[0]
    sigma2 = freq.mixed.scale
    est_cols = list(design.x_estimable.columns)
    coefs = list(block.z.columns)
    draws = bayes.draws
    bblock = draws.blocks[0]
    rng = np.random.default_rng(seed)
    z_q = norm.ppf(0.5 + conf_level / 2)
    lo_q, hi_q = (1 - conf_level) / 2, 1 - (1 - conf_level) / 2
    new = _new_rows_of(design, rows)
    out = []
    for i, row in enumerate(rows):
        x = new.x[est_cols].to_numpy()[i]
        z = new.z[0][coefs].to_numpy()[i]
        mean = float(x @ sol.beta)
        var = float(x @ sol.cov_beta @ x)
        if row.level is not None:
            if row.level not in block.levels:
                raise CompareKitError(f"{row.level!r} is not a level of {block.group!r}")
            j = block.levels.index(row.level)
            mean += float(z @ sol.b[0][j])
            pev = sol.pev[0][j]
            cross = sol.cov_b_beta[0][j]
            var += float(z @ pev @ z + 2 * z @ cross @ x)
        else:
            var += float(z @ (rel * sigma2) @ z)
        sd = np.sqrt(var + sigma2)
        out.append({"engine": str(freq.engine), "group": block.group, "level": row.level or "(new group)",
                    **{f"x_{k}": v for k, v in row.values.items()}, "estimate": mean,
                    "conf_low": mean - z_q * sd, "conf_high": mean + z_q * sd, "conf_level": conf_level})
        # Bayesian: draws of the mean, then a new residual per draw
        xb = new.x[list(draws.fixed_names)].to_numpy()[i]
        mu = np.einsum("cdp,p->cd", draws.fixed, xb)
        zb = new.z[0][list(bblock.coefs)].to_numpy()[i]
        if row.level is not None:
            mu = mu + np.einsum("cdk,k->cd", bblock.vals[:, :, bblock.levels.index(row.level), :], zb)
        else:
            mu = mu + _new_group_effect(bblock, zb, rng)
        y_new = mu + rng.normal(size=mu.shape) * draws.residual
        out.append({"engine": str(bayes.engine), "group": block.group, "level": row.level or "(new group)",
                    **{f"x_{k}": v for k, v in row.values.items()}, "estimate": float(y_new.mean()),
                    "conf_low": float(np.quantile(y_new, lo_q)), "conf_high": float(np.quantile(y_new, hi_q)),
                    "conf_level": conf_level})
    return pd.DataFrame(out)


def _new_rows_of(design: Design, rows: list[NewRow]) -> NewRows:
    """The new rows in the fitted design's terms (its centring, scaling and levels)."""
    spec = design.spec
    grouping = design.blocks[0].term.grouping
    needed = [c for c in spec.columns if c != spec.response.column and c not in grouping]
    records = []
    for row in rows:
        absent = [c for c in needed if c not in row.values]
        if absent:
            raise CompareKitError(f"a value for {absent[0]!r} is needed to predict; give it in the new row")
        labels = row.level.split(":") if row.level is not None else [_NEW_GROUP] * len(grouping)
        records.append({**row.values, **dict(zip(grouping, labels, strict=True))})
    new = new_rows(design, pd.DataFrame(records))
    if not new.usable.all():
        raise CompareKitError("a new row holds a level of a categorical predictor that the fit never saw")
    return new


def _new_group_effect(block, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per draw, a new group's effect z'b with b ~ N(0, Sigma_draw)."""
    sd = block.sd  # (chain, draw, k)
    k = sd.shape[-1]
    cor = block.cor if block.cor is not None else np.broadcast_to(np.eye(k), sd.shape[:2] + (k, k))
    cov = cor * sd[..., :, None] * sd[..., None, :]
    var = np.einsum("k,cdkl,l->cd", z, cov, z)
    return rng.normal(size=var.shape) * np.sqrt(np.clip(var, 0, None))
