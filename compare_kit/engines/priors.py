"""Priors for the Bayesian engine: named presets, per-term overrides, a safe text form.

A prior is a frozen ``Prior`` (distribution name + numeric parameters). Text such
as ``"Normal(0, 100)"`` or ``"HalfCauchy(beta=5)"`` is read by a tiny parser that
accepts only the distribution names below and plain numbers; nothing is
evaluated. ``Priors`` holds a preset and overrides keyed by canonical names:

- a fixed term's label: ``(Intercept)``, ``floor``, ``county``, ``county:floor``
- a group SD: ``sd__floor`` (every grouping factor) or ``sd__floor|county``
- a correlation matrix: ``cor`` or ``cor|county`` (an ``LKJ(eta)`` prior)
- the residual SD: ``sd__Observation``

This module does not import PyMC or Bambi.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from compare_kit.errors import SpecError


class PriorPreset(StrEnum):
    """Named prior sets.

    ``default``: Bambi's weakly informative priors, scaled to the data.
    ``tutorial``: the radon tutorial's: Normal(0, 100) on coefficients,
    HalfCauchy(5) on group SDs and on the residual SD.
    ``vague``: very wide priors (Normal(0, 1000), Uniform(0, 100) on SDs), to show
    the Bayesian answer approaching the frequentist one.
    """

    DEFAULT = "default"
    TUTORIAL = "tutorial"
    VAGUE = "vague"


class Role(StrEnum):
    """What a prior is placed on; each role accepts distributions of the right support."""

    COEFFICIENT = "coefficient"
    SD = "sd"
    CORRELATION = "correlation"


# distribution -> (parameter names in positional order, roles it can serve)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[Role, ...]]] = {
    "Normal": (("mu", "sigma"), (Role.COEFFICIENT,)),
    "StudentT": (("nu", "mu", "sigma"), (Role.COEFFICIENT,)),
    "Cauchy": (("alpha", "beta"), (Role.COEFFICIENT,)),
    "Flat": ((), (Role.COEFFICIENT,)),
    "HalfNormal": (("sigma",), (Role.SD,)),
    "HalfCauchy": (("beta",), (Role.SD,)),
    "HalfStudentT": (("nu", "sigma"), (Role.SD,)),
    "Exponential": (("lam",), (Role.SD,)),
    "Gamma": (("alpha", "beta"), (Role.SD,)),
    "Uniform": (("lower", "upper"), (Role.SD,)),
    "HalfFlat": ((), (Role.SD,)),
    "LKJ": (("eta",), (Role.CORRELATION,)),
}
_POSITIVE = {"sigma", "beta", "nu", "lam", "alpha", "eta"}

ParamValue = float | tuple[float, ...]


@dataclass(frozen=True)
class Prior:
    """One prior: a distribution name and its parameters (numbers, or one per column)."""

    dist: str
    params: tuple[tuple[str, ParamValue], ...] = ()

    @classmethod
    def of(cls, dist: str, **params: float | np.ndarray | tuple[float, ...]) -> Prior:
        """Build and check a prior, e.g. ``Prior.of("Normal", mu=0, sigma=100)``."""
        clean: list[tuple[str, ParamValue]] = []
        for name, value in params.items():
            arr = np.asarray(value, dtype=float)
            clean.append((name, float(arr) if arr.ndim == 0 else tuple(float(v) for v in arr.ravel())))
        prior = cls(dist, tuple(clean))
        prior.check()
        return prior

    @property
    def kwargs(self) -> dict[str, float | np.ndarray]:
        """Parameters as keyword arguments (tuples become arrays)."""
        return {k: (np.asarray(v) if isinstance(v, tuple) else v) for k, v in self.params}

    def check(self, role: Role | None = None) -> None:
        """Raise ``SpecError`` unless the distribution and parameters are accepted."""
        if self.dist not in DISTRIBUTIONS:
            raise SpecError(f"unknown prior distribution {self.dist!r}; accepted: "
                            f"{', '.join(DISTRIBUTIONS)}")
        names, roles = DISTRIBUTIONS[self.dist]
        given = [k for k, _ in self.params]
        if sorted(given) != sorted(names):
            raise SpecError(f"{self.dist} takes the parameters ({', '.join(names) or 'none'}), "
                            f"got ({', '.join(given) or 'none'})")
        for name, value in self.params:
            values = value if isinstance(value, tuple) else (value,)
            if not all(math.isfinite(v) for v in values):
                raise SpecError(f"{self}: parameter {name} must be a finite number")
            if name in _POSITIVE and not all(v > 0 for v in values):
                raise SpecError(f"{self}: parameter {name} must be positive")
        if self.dist == "Uniform":
            kw = self.kwargs
            if np.any(np.asarray(kw["lower"]) < 0) or np.any(np.asarray(kw["upper"]) <= kw["lower"]):
                raise SpecError(f"{self}: a prior on an SD needs 0 <= lower < upper")
        if role is not None and role not in roles:
            accepted = [d for d, (_, rs) in DISTRIBUTIONS.items() if role in rs]
            raise SpecError(f"{self} cannot be a prior on a {_ROLE_TEXT[role]}; accepted: "
                            f"{', '.join(accepted)}")

    def __str__(self) -> str:
        return f"{self.dist}({', '.join(f'{k}={_fmt(v)}' for k, v in self.params)})"


_ROLE_TEXT = {Role.COEFFICIENT: "coefficient (any real value)",
              Role.SD: "standard deviation (positive values)",
              Role.CORRELATION: "correlation matrix"}


def _fmt(value: ParamValue) -> str:
    if isinstance(value, tuple):
        if len(set(value)) == 1:
            return f"{value[0]:.4g}"
        if len(value) <= 4:
            return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
        return f"[{min(value):.4g} .. {max(value):.4g}; one per column]"
    return f"{value:.4g}"


_PRIOR_TEXT = re.compile(r"\s*([A-Za-z]+)\s*\((.*)\)\s*\Z")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")
_KEYWORD = re.compile(r"\s*([A-Za-z_]+)\s*=\s*(.+?)\s*\Z")


def parse_prior(text: str, role: Role | None = None) -> Prior:
    """Read ``"Normal(0, 100)"`` or ``"HalfCauchy(beta=5)"``; only numbers are accepted."""
    if not isinstance(text, str) or len(text) > 200:
        raise SpecError("a prior is written like 'Normal(0, 100)' (at most 200 characters)")
    m = _PRIOR_TEXT.match(text)
    if not m:
        raise SpecError(f"cannot read the prior {text!r}; write e.g. 'Normal(0, 100)' or "
                        "'HalfCauchy(beta=5)'")
    dist, body = m.group(1), m.group(2).strip()
    if dist not in DISTRIBUTIONS:
        raise SpecError(f"unknown prior distribution {dist!r} in {text!r}; accepted: "
                        f"{', '.join(DISTRIBUTIONS)}")
    names = DISTRIBUTIONS[dist][0]
    parts = [p for p in (s.strip() for s in body.split(",")) if p] if body else []
    if len(parts) > len(names):
        raise SpecError(f"{dist} takes {len(names)} parameter(s) ({', '.join(names)}), "
                        f"got {len(parts)} in {text!r}")
    params: dict[str, float] = {}
    for i, part in enumerate(parts):
        kw = _KEYWORD.match(part)
        name, value = (kw.group(1), kw.group(2)) if kw else (names[i], part)
        if name not in names:
            raise SpecError(f"{dist} has no parameter {name!r}; its parameters are {', '.join(names)}")
        if name in params:
            raise SpecError(f"the parameter {name!r} is given twice in {text!r}")
        if not _NUMBER.match(value):
            raise SpecError(f"prior parameters must be plain numbers; {value!r} in {text!r} is not")
        params[name] = float(value)
    missing = [n for n in names if n not in params]
    if missing:
        raise SpecError(f"{dist} needs the parameter(s) {', '.join(missing)} in {text!r}")
    prior = Prior.of(dist, **{n: params[n] for n in names})
    prior.check(role)
    return prior


@dataclass(frozen=True)
class PresetPriors:
    """A preset's fixed choices; ``None`` means "Bambi's data-scaled default"."""

    coefficient: Prior | None
    group_sd: Prior | None
    residual_sd: Prior | None
    correlation: Prior


def preset_priors(preset: PriorPreset) -> PresetPriors:
    """The priors a preset puts on each role."""
    match preset:
        case PriorPreset.DEFAULT:
            return PresetPriors(None, None, None, Prior.of("LKJ", eta=2.0))
        case PriorPreset.TUTORIAL:
            return PresetPriors(Prior.of("Normal", mu=0.0, sigma=100.0), Prior.of("HalfCauchy", beta=5.0),
                                Prior.of("HalfCauchy", beta=5.0), Prior.of("LKJ", eta=1.0))
        case PriorPreset.VAGUE:
            return PresetPriors(Prior.of("Normal", mu=0.0, sigma=1000.0),
                                Prior.of("Uniform", lower=0.0, upper=100.0),
                                Prior.of("Uniform", lower=0.0, upper=100.0), Prior.of("LKJ", eta=1.0))
    raise SpecError(f"unknown prior preset {preset!r}")  # pragma: no cover - enum is closed


@dataclass(frozen=True)
class Priors:
    """A preset plus per-term overrides (canonical keys, see the module docstring)."""

    preset: PriorPreset = PriorPreset.DEFAULT
    overrides: tuple[tuple[str, Prior], ...] = field(default=())

    @classmethod
    def coerce(cls, value: Priors | PriorPreset | str | Mapping[str, Prior | str] | None) -> Priors:
        """Accept a ``Priors``, a preset name, or a mapping of overrides.

        A mapping may carry a ``"preset"`` entry; its other entries are overrides,
        e.g. ``{"preset": "tutorial", "floor": "Normal(0, 1)"}``.
        """
        if value is None:
            return cls()
        if isinstance(value, Priors):
            return value
        if isinstance(value, str):
            return cls(_preset(value))
        if isinstance(value, Mapping):
            entries = dict(value)
            preset = _preset(str(entries.pop("preset", PriorPreset.DEFAULT)))
            overrides = []
            for key, prior in entries.items():
                if not isinstance(key, str):
                    raise SpecError(f"prior keys are term names (text), got {key!r}")
                role = role_of_key(key)
                parsed = parse_prior(prior, role) if isinstance(prior, str) else prior
                if not isinstance(parsed, Prior):
                    raise SpecError(f"the prior for {key!r} must be text like 'Normal(0, 1)' or a Prior")
                parsed.check(role)
                overrides.append((key, parsed))
            return cls(preset, tuple(overrides))
        raise SpecError("priors must be a preset name ('default', 'tutorial', 'vague'), "
                        f"a mapping of term name -> prior, or a Priors object; got {type(value).__name__}")

    def override(self, key: str) -> Prior | None:
        return dict(self.overrides).get(key)


def _preset(name: str) -> PriorPreset:
    try:
        return PriorPreset(name)
    except ValueError:
        raise SpecError(f"unknown prior preset {name!r}; accepted: "
                        f"{', '.join(p.value for p in PriorPreset)}") from None


def role_of_key(key: str) -> Role:
    """The role a canonical prior key refers to."""
    if key == "cor" or key.startswith("cor|"):
        return Role.CORRELATION
    if key.startswith("sd__"):
        return Role.SD
    return Role.COEFFICIENT

