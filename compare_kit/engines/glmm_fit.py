"""The frequentist fit of a non-Gaussian model: a GLM without random terms, a GLMM with them.

* GLM (bernoulli, binomial, poisson; no random term): statsmodels' ``GLM`` by IRLS, a binomial
  outcome as the two columns (successes, failures) so that its log-likelihood holds the binomial
  coefficients, as R's ``glm``'s does; an offset as statsmodels' ``offset``. Engine ``statsmodels``,
  method ``ML``.
* GLMM: compare_kit's own engine (``engines.glmm``, lme4's ``glmer``): the Laplace approximation,
  or adaptive Gauss-Hermite quadrature with ``nagq > 1`` for one scalar random effect. Engine
  ``compare_kit``, method ``Laplace`` or ``AGQ(nagq=N)``. A GLMM has no REML: it is fitted by ML.

Both give the tidy table (Wald z intervals on the link scale; a GLMM's SDs and correlations, no
residual row: these families have no scale parameter; its conditional modes with their conditional
SDs), the likelihood as R's (``logLik(glm(...))``, ``logLik(glmer(...))``) and the health:
separation naming the columns, a singular fit naming the random coefficients, the Pearson
overdispersion ratio as a number (a count or binomial outcome), non-convergence.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import statsmodels.api as sm

from compare_kit.design import Design
from compare_kit.engines.glmm import GlmmSolution, fit_glmm
from compare_kit.engines.glmm_checks import (
    OVERDISPERSED,
    extreme_means,
    health_messages,
    overdispersion_ratio,
    overdispersion_words,
    separated_columns,
)
from compare_kit.engines.glmm_family import GlmmFamily, Response
from compare_kit.engines.lmm import ReTerm
from compare_kit.engines.tidy_rows import aliased_note, effect_uncertainty, fixed_rows, group_rows, ran_pars_rows
from compare_kit.errors import FitError
from compare_kit.family import Family
from compare_kit.results import EngineName, FitStats, FrequentistFit, Health, make_estimates

GLM_METHOD = "ML"


def re_terms(design: Design) -> list[ReTerm]:
    """The design's random terms as the own engines take them (level codes, Z columns, correlated or not)."""
    return [ReTerm(b.codes, len(b.levels), b.z.to_numpy(dtype=float), b.term.correlated) for b in design.blocks]


def glmm_method(nagq: int) -> str:
    """A GLMM fit's ``method``: ``Laplace`` or ``AGQ(nagq=N)``."""
    return "Laplace" if nagq == 1 else f"AGQ(nagq={nagq})"


def fit_generalized(design: Design, conf_level: float, nagq: int = 1) -> FrequentistFit:
    """Fit a bernoulli, binomial or poisson ``design``: a GLM without random terms, else a GLMM."""
    if not design.blocks:
        if nagq != 1:
            raise FitError(f"nagq={nagq!r} sets the quadrature over a GLMM's random effects; this model has no "
                           "random term (a GLM, whose likelihood is exact): leave nagq out")
        return _fit_glm(design, conf_level)
    return _fit_glmm(design, conf_level, nagq)


def _response(design: Design) -> Response:
    return Response.of(GlmmFamily(design.family.value), design.y, design.trials, design.offset)


def _overdispersion_note(ratio: float | None, family: GlmmFamily) -> tuple[str, ...]:
    """The ratio as a note when it is no warning (at most ``OVERDISPERSED``; above, the warnings say it)."""
    return (overdispersion_words(ratio, family),) if ratio is not None and np.isfinite(ratio) \
        and ratio <= OVERDISPERSED else ()


# ------------------------------------------------------------------------- GLM


def _fit_glm(design: Design, conf_level: float) -> FrequentistFit:
    start = time.perf_counter()
    response = _response(design)
    x = design.x_estimable.to_numpy(dtype=float)
    norms = np.linalg.norm(x, axis=0)
    norms[norms == 0] = 1.0  # IRLS on unit-length columns, then back on the columns' scale (as OLS)
    endog = (np.column_stack([design.y, design.trials - design.y]) if design.family is Family.BINOMIAL
             else design.y)
    family = sm.families.Poisson() if design.family is Family.POISSON else sm.families.Binomial()
    names = list(design.x_estimable.columns)
    separated = [names[j] for j in separated_columns(x, response)]
    with warnings.catch_warnings(record=True) as caught:  # separation and convergence: checked, and named
        warnings.simplefilter("always")
        try:
            with np.errstate(all="ignore"):
                res = sm.GLM(endog, x / norms, family=family, offset=design.offset).fit()
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            raise _glm_failed(design, separated, f"statsmodels: {exc}") from None
    beta, se = np.asarray(res.params) / norms, np.asarray(res.bse) / norms
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(se))):
        raise _glm_failed(design, separated, "its coefficients or standard errors are not finite numbers")
    mu = response.mean(x @ beta + response.offset)[0]
    over = overdispersion_ratio(response, mu, x.shape[1])
    converged = bool(res.converged)
    messages = health_messages(converged=converged, gradient=float("nan"), boundary=(), separated=separated,
                               extreme=extreme_means(response.family, mu), overdispersion=over,
                               family=response.family, rx_fallback=False)
    loglik, df, n = float(res.llf), x.shape[1], design.n
    stats = FitStats(nobs=n, n_groups={c: int(design.data[c].nunique()) for c in sorted(design.categorical)},
                     loglik=loglik, loglik_method="ML", aic=-2 * loglik + 2 * df, bic=-2 * loglik + np.log(n) * df,
                     ic_note="R's logLik(glm(...)): the binomial coefficients and Poisson factorials included",
                     df=df)
    attempts = (f"IRLS (statsmodels GLM): logLik {loglik:.6f}, {int(res.fit_history['iteration'])} iterations"
                + ("" if converged else ", not converged"),)
    attempts += tuple(dict.fromkeys(f"statsmodels warned: {w.message}" for w in caught))
    health = Health(converged=converged, boundary=False, optimizer="IRLS (statsmodels GLM)", attempts=attempts,
                    warnings=design.warnings + messages,
                    notes=aliased_note(design) + design.notes + _overdispersion_note(over, response.family))
    estimates = make_estimates(fixed_rows(design, beta, se, conf_level))
    return FrequentistFit(EngineName.STATSMODELS, design.spec, GLM_METHOD, estimates, stats, health, design.summary,
                          design=design, seconds=time.perf_counter() - start)


def _glm_failed(design: Design, separated: list[str], what: str) -> FitError:
    """IRLS broke down: say why it usually does, naming the separated columns when there are some."""
    why = (f"the estimates of {', '.join(separated)} run off to infinity (separation: some combination of them "
           "predicts every outcome in the rows it touches, e.g. only zero counts or only failures); leave a "
           "column out, or merge the levels that separate" if separated else
           "the columns may be nearly collinear or on very different scales, or the offset extreme; center or "
           "rescale the numeric predictors")
    return FitError(f"the GLM {design.spec.formula!r} could not be fitted ({what}): {why}")


# ------------------------------------------------------------------------ GLMM


def _fit_glmm(design: Design, conf_level: float, nagq: int) -> FrequentistFit:
    start = time.perf_counter()
    x = design.x_estimable.to_numpy(dtype=float)
    sol = fit_glmm(re_terms(design), x, design.y, GlmmFamily(design.family.value), trials=design.trials,
                   offset=design.offset, nagq=nagq)
    blocks, names = design.blocks, list(design.x_estimable.columns)

    def coefficient(t: int, a: int) -> str:
        return f"the SD of {blocks[t].z.columns[a]} across {blocks[t].group}"

    boundary_terms = {(blocks[t].group, blocks[t].z.columns[a]): coefficient(t, a) for t, a in sol.health.boundary}
    row_level = [b.group for b in blocks if len(b.levels) == design.n]
    messages = sol.health.describe(lambda j: names[j], coefficient, overdispersion=not row_level)
    over_note = (_overdispersion_note(sol.health.overdispersion, sol.family) if not row_level else
                 (f"no Pearson overdispersion ratio: the observation-level effect of {row_level[0]!r} models the "
                  "extra spread (the conditional Pearson residuals would understate it)",))
    method = glmm_method(nagq)
    rows = (fixed_rows(design, sol.beta, sol.se_beta, conf_level)
            + ran_pars_rows(design, sol.covariances, conf_level, boundary_terms)
            + group_rows(design, effect_uncertainty(sol.b, sol.cond_var, sol.pev, sol.cov_b_beta, len(sol.beta)),
                         sol.beta, sol.cov_beta_given_theta, conf_level, boundary_terms))
    for r in rows:
        r["engine"] = str(EngineName.COMPARE_KIT)
    health = Health(converged=sol.health.converged, boundary=bool(boundary_terms),
                    optimizer="compare_kit (PIRLS; glmer's two stages, SLSQP, bounded theta)",
                    attempts=(f"{method} (compare_kit): logLik {sol.loglik:.6f}, {sol.evaluations} evaluations, "
                              f"lme4's scaled gradient {sol.health.scaled_gradient:.2g}; fixed-effect covariance: "
                              f"{sol.health.vcov_method.value}",),
                    warnings=design.warnings + messages,
                    notes=design.notes + over_note,
                    boundary_terms=tuple(boundary_terms))
    return FrequentistFit(EngineName.COMPARE_KIT, design.spec, method, make_estimates(rows), _glmm_stats(design, sol),
                          health, design.summary, design=design, seconds=time.perf_counter() - start, glmm=sol)


def _glmm_stats(design: Design, sol: GlmmSolution) -> FitStats:
    if sol.nagq == 1:
        note = "the Laplace approximation of the marginal likelihood (glmer's logLik)"
    else:
        note = (f"adaptive Gauss-Hermite quadrature, {sol.nagq} nodes; it includes the saturated model's "
                f"log-likelihood ({sol.saturated_loglik:.4f}), which glmer's nAGQ > 1 logLik leaves out (glmer's: "
                f"{sol.glmer_loglik:.4f}), so it compares with the Laplace fit's and a GLM's")
    return FitStats(nobs=design.n, n_groups={b.group: len(b.levels) for b in design.blocks}, loglik=sol.loglik,
                    loglik_method="ML", aic=sol.aic, bic=sol.bic, ic_note=note, df=sol.df)


__all__ = ["GLM_METHOD", "fit_generalized", "glmm_method", "re_terms"]
