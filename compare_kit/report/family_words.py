"""The report's words for a study of a discrete family (bernoulli, binomial, poisson): its link scale,
the response-scale ratio of a fixed effect, the outcome, and the Gaussian words a GLMM page replaces.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compare_kit.family import Family, Link

if TYPE_CHECKING:
    from compare_kit.spec import ModelSpec
    from compare_kit.study import Study, StudyResult

# Gaussian words and what a GLMM page says instead (longest first, so "BLUPs" goes before "BLUP")
GLMM_WORDS = (("BLUPs", "conditional modes"), ("BLUP", "conditional mode"),
              ("; no residual SD)", ")"))  # the Bayesian structure's words; the family line says the scale


@dataclass(frozen=True)
class FamilyWords:
    """How the report speaks of a discrete family's models."""

    family: Family
    scale: str  # the link scale: "log-odds" or "log rate"
    ratio: str  # exp of a fixed effect: "odds ratio" or "rate ratio"
    mean: str  # the response-scale mean: "probability" or "expected count"

    def model_line(self, spec: ModelSpec) -> str:
        """A model's family, link and outcome (bernoulli: the success level) in one sentence."""
        outcome = {Family.BERNOULLI: f"a 0/1 outcome, {spec.response.column} = "
                                     f"{spec.success if spec.success is not None else 1} counted as a success",
                   Family.BINOMIAL: "successes out of trials (the cbind(...) on the left)",
                   Family.POISSON: "a count" + (f", with {spec.offset.label} added to the linear predictor"
                                               if spec.offset is not None else "")}[self.family]
        article = "an" if self.ratio[0] in "aeiou" else "a"
        baseline = "rate" if self.family is Family.POISSON else "odds"
        return (f"Family {self.family.value}, {self.family.link.value} link: {outcome}. Coefficients and group "
                f"SDs are on the {self.scale} scale; exp(coefficient) is {article} {self.ratio} (of the "
                f"intercept: the baseline {baseline}).")


def family_words(study: Study) -> FamilyWords | None:
    """The study's family words (None: a Gaussian study, whose pages keep their words)."""
    from compare_kit.study import study_family

    family = study_family(study)
    if family is Family.GAUSSIAN:
        return None
    if family.link is Link.LOGIT:
        return FamilyWords(family, "log-odds", "odds ratio", "probability")
    return FamilyWords(family, "log rate", "rate ratio", "expected count")


def glmm_text(text: str, words: FamilyWords | None, protected: Iterable[str] = ()) -> str:
    """``text`` with its Gaussian words replaced for a GLMM page (unchanged for a Gaussian one). A word that
    occurs in any of ``protected`` (``user_texts``: the data's names and levels, the title) is left as it is, so
    the user's own text is never altered; the page then keeps that Gaussian word."""
    if words is None:
        return text
    protected = list(protected)
    for gaussian, glmm in GLMM_WORDS:
        if not any(gaussian in t for t in protected):
            text = text.replace(gaussian, glmm)
    return text


def user_texts(result: StudyResult) -> list[str]:
    """The words on a page that come from the user (title, model labels, columns, factors, levels): a GLMM
    page's wording rewrite leaves any word they contain alone (``family_words.glmm_text``)."""
    texts = [result.study.title, *result.fits]
    for freq, _ in result.fits.values():
        texts += [str(c) for c in freq.design.data.columns]
        for block in freq.design.blocks:
            texts += [block.group, *map(str, block.levels)]
    return texts
