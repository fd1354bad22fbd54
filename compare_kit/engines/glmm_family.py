"""The GLMM engine's outcome families: statsmodels' families with R's guards, and the outcome's checks.

``GlmmFamily`` names the family; ``Response`` holds one outcome (0/1, successes out of trials,
counts) with its offset, and gives what PIRLS and the Laplace deviance need: the mean and its
derivative on the linear predictor, the IRLS weights, the deviance residuals and the conditional
log-likelihood. Links, variances, deviance residuals and log-likelihoods are statsmodels'
(``statsmodels.genmod.families``: ``Binomial()`` with its logit link, ``Poisson()`` with its log
link); a binomial outcome is a proportion with the trials as prior weights (statsmodels' ``n``),
as glmer does for ``cbind(successes, failures)``. The inverse links are guarded as R's are
(``binomial()$linkinv`` beyond |eta| = 30, ``poisson()``'s mean at least machine epsilon), so a
run-off linear predictor gives finite deviances.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from statsmodels.genmod import families

from compare_kit.errors import DataError
from compare_kit.wording import count

EPS = float(np.finfo(float).eps)
LOGIT_LIMIT = 30.0  # R's THRESH in logit_linkinv: beyond it the mean is held at eps from 0 or 1
LOG_LIMIT = 700.0  # exp() overflows beyond ~709
ROWS_NAMED = 5  # rows named in an error message


class GlmmFamily(enum.Enum):
    """The outcome's family; each uses its canonical link (logit, logit, log)."""

    BERNOULLI = "bernoulli"
    BINOMIAL = "binomial"
    POISSON = "poisson"

    @property
    def link(self) -> str:
        return "log" if self is GlmmFamily.POISSON else "logit"

    @classmethod
    def of(cls, value: GlmmFamily | str) -> GlmmFamily:
        """``value`` as a family: a ``GlmmFamily`` or its name (``"binomial"``)."""
        if isinstance(value, GlmmFamily):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            names = ", ".join(f.value for f in cls)
            raise DataError(f"unknown GLMM family {value!r}; choose one of {names}") from None


def _rows(mask: np.ndarray) -> str:
    """The first offending rows (0-based positions), in words."""
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:ROWS_NAMED])
    more = f" and {count(len(idx) - ROWS_NAMED, 'more')}" if len(idx) > ROWS_NAMED else ""
    return f"{count(len(idx), 'row')} ({shown}{more})"


def _checked_vector(values: np.ndarray | None, n: int, what: str) -> np.ndarray | None:
    if values is None:
        return None
    out = np.asarray(values, dtype=float).ravel()
    if out.shape != (n,):
        raise DataError(f"{what} must hold one number per row ({n}), got shape {np.shape(values)}")
    if not np.all(np.isfinite(out)):
        raise DataError(f"{what} must be finite; {_rows(~np.isfinite(out))} are not")
    return out


@dataclass(frozen=True, eq=False)
class Response:
    """One outcome with its family: ``y`` (binomial: the proportion), prior weights and offset."""

    family: GlmmFamily
    y: np.ndarray  # 0/1, proportion of successes, or counts
    weights: np.ndarray  # the trials (binomial), else ones
    offset: np.ndarray
    sm: families.Family  # statsmodels' family (a binomial one holds the trials as ``n``)

    @property
    def n(self) -> int:
        return len(self.y)

    @classmethod
    def of(cls, family: GlmmFamily | str, y: np.ndarray, trials: np.ndarray | None = None,
           offset: np.ndarray | None = None) -> Response:
        """Check the outcome against its family and build it; a clear ``DataError`` names bad rows.

        ``y`` holds 0/1 (bernoulli), successes (binomial, with ``trials`` per row) or counts (poisson).
        """
        fam = GlmmFamily.of(family)
        raw = np.asarray(y, dtype=float).ravel()
        n = len(raw)
        if n == 0:
            raise DataError("the outcome has no rows")
        _checked_vector(raw, n, "the outcome")
        off = _checked_vector(offset, n, "the offset")
        off = np.zeros(n) if off is None else off
        whole = raw == np.round(raw)
        if fam is GlmmFamily.BINOMIAL:
            if trials is None:
                raise DataError("a binomial outcome needs its trials: successes out of trials per row "
                                "(cbind(successes, failures) or a trials column)")
            n_trials = _checked_vector(trials, n, "the trials")
            bad = (n_trials < 0) | (n_trials != np.round(n_trials))
            if bad.any():
                raise DataError(f"trials must be whole numbers of at least 0; {_rows(bad)} are not")
            bad = (raw < 0) | ~whole
            if bad.any():
                raise DataError(f"successes must be whole numbers of at least 0; {_rows(bad)} are not")
            if (raw > n_trials).any():
                raise DataError(f"successes cannot exceed trials; {_rows(raw > n_trials)} have more successes "
                                "than trials")
            prop = np.divide(raw, n_trials, out=np.zeros(n), where=n_trials > 0)
            sm = families.Binomial()
            sm.n = n_trials  # statsmodels' binomial deviance and log-likelihood read the trials here
            return cls(fam, prop, n_trials, off, sm)
        if trials is not None:
            raise DataError(f"trials belong to a binomial outcome, not a {fam.value} one")
        if fam is GlmmFamily.BERNOULLI:
            bad = (raw != 0) & (raw != 1)
            if bad.any():
                raise DataError(f"a bernoulli outcome holds 0 and 1 only; {_rows(bad)} hold other values "
                                "(successes out of trials are family binomial)")
            return cls(fam, raw, np.ones(n), off, families.Binomial())
        bad = (raw < 0) | ~whole
        if bad.any():
            raise DataError(f"a poisson outcome holds counts (whole numbers of at least 0); {_rows(bad)} do not")
        return cls(fam, raw, np.ones(n), off, families.Poisson())

    # ------------------------------------------------------------ mean
    def mean(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean ``mu`` and ``d mu / d eta`` at the linear predictor ``eta`` (offset included)."""
        if self.family is GlmmFamily.POISSON:
            mu = np.maximum(np.exp(np.minimum(eta, LOG_LIMIT)), EPS)
            return mu, mu
        clipped = np.clip(eta, -LOGIT_LIMIT, LOGIT_LIMIT)
        mu = self.sm.link.inverse(clipped)
        mu_eta = np.where(np.abs(eta) > LOGIT_LIMIT, EPS, self.sm.link.inverse_deriv(clipped))
        return mu, mu_eta

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """The variance function (one trial for the binomial's proportion)."""
        return self.sm.variance(mu)

    def working(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """IRLS at ``eta``: the weights, the working response (offset removed) and the mean."""
        mu, mu_eta = self.mean(eta)
        weights = self.weights * mu_eta ** 2 / self.variance(mu)
        return weights, eta - self.offset + (self.y - mu) / mu_eta, mu

    def start(self) -> np.ndarray:
        """R's ``mustart`` on the link scale: (n y + 1/2) / (n + 1) for binomials, y + 0.1 for counts."""
        if self.family is GlmmFamily.POISSON:
            return np.log(self.y + 0.1)
        mu = (self.weights * self.y + 0.5) / (self.weights + 1.0)
        return self.sm.link(mu)

    # -------------------------------------------------------- deviance
    def deviance_residuals(self, mu: np.ndarray) -> np.ndarray:
        """Each row's contribution to the deviance (the squared deviance residual)."""
        return self.sm.resid_dev(self.y, mu) ** 2

    def minus_two_loglik(self, mu: np.ndarray) -> float:
        """-2 log p(y | mu), the binomial coefficients included (R's ``family()$aic`` without the 2p)."""
        return float(-2.0 * np.sum(self.sm.loglike_obs(self.y, mu)))

    def pearson(self, mu: np.ndarray) -> np.ndarray:
        """Pearson residuals, (y - mu) / sqrt(V(mu) / weight)."""
        return (self.y - mu) * np.sqrt(self.weights / self.variance(mu))


__all__ = ["GlmmFamily", "Response"]
