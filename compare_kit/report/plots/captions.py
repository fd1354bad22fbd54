"""What each figure shows and what to look at: one caption per plotting function.
"""

from __future__ import annotations


CAPTIONS: dict[str, str] = {
    "county_panels": (
        "Each panel is one group. Dots are the observations (jittered sideways so they do not "
        "overlap); thick lines are the fitted regression lines of each method, thin faint lines are "
        "individual posterior draws and show how uncertain a line is. Look for groups with few or "
        "one-sided observations: their own (no-pooling) line can be extreme, while the "
        "partial-pooling line stays sensible."
    ),
    "shrinkage_arrows": (
        "Each arrow starts at a group's own estimate (no pooling: intercept and slope fitted to that "
        "group alone) and ends at its partial-pooling estimate. The cross marks complete pooling "
        "(one line for everyone). Long arrows mean strong shrinkage, typical of small groups. "
        "Hollow circles are groups whose own slope cannot be estimated (e.g. all observations at one "
        "predictor value): they sit at their own intercept, at the height of the partial-pooling "
        "slope. Compare the two panels: the frequentist and Bayesian arrows should look alike."
    ),
    "shrinkage_vs_size": (
        "How far each group's estimate moved from its own value toward complete pooling (0 = not at "
        "all, 1 = all the way), against the number of observations in the group (log scale). "
        "Small groups should shrink more. Frequentist and Bayesian points should follow the same "
        "trend; the black line, when shown, is the closed-form pooling factor. Values beyond the "
        "axis range are drawn as open triangles at its edge."
    ),
    "caterpillar": (
        "Each row is one group: its estimated deviation from the population value, with a 95% "
        "interval, from the frequentist fit (BLUP ± Wald interval) and the Bayesian fit (posterior "
        "mean and equal-tailed interval). Rows are sorted by the estimate. The two engines should "
        "agree closely; Bayesian intervals are usually a little wider because they also carry the "
        "uncertainty in the variance components."
    ),
    "caterpillar_ranked": (
        "Too many groups to give each a row. One panel per engine: each group is a dot, its estimated "
        "deviation from the population value, on a thin vertical line, its 95% interval (frequentist: BLUP "
        "± Wald interval; Bayesian: posterior mean and equal-tailed interval). Groups are placed by their "
        "rank, sorted by the frequentist estimate, the same order in every panel; the blue line in the "
        "Bayesian panel repeats the frequentist estimates. Only the three lowest and three highest groups "
        "are named. The engines agree when the vermillion dots lie on the blue line; Bayesian intervals "
        "are usually a little wider."
    ),
    "fixed_effects_forest": (
        "Population-level estimates of both engines side by side, with 95% intervals: fixed effects "
        "on the left, standard deviations and correlations of the random effects on the right. "
        "Points without a bar have no interval (statsmodels gives none for variance components)."
    ),
    "posterior_predictive": (
        "The black line is the distribution (kernel density) of the observed response; the faint "
        "lines are the same for data sets replicated from the fitted model. If the model captures "
        "the data, the black line lies within the bundle of faint lines."
    ),
    "count_check": (
        "Grey bars: how many rows have each count. Vermillion: the same counted in data sets replicated from "
        "the fitted model (dot: median over data sets; line: 90% range). If the model captures the data, "
        "every bar's top lies on its line; too many zeros, or a long right tail, show where it does not."
    ),
    "proportion_check": (
        "Grey bars: each group's observed share of successes, groups in order of that share. Vermillion: the "
        "same share in data sets replicated from the fitted model (dot: median; line: 90% range). If the "
        "model captures the spread between groups, the bars' tops lie on the lines; bars beyond the lines at "
        "both ends mean more variation between groups than the model allows."
    ),
    "rank_plot": (
        "Rank plots of the sampler's chains: the draws of all chains are ranked together and each "
        "chain's ranks are counted in bins. If the chains agree, every chain's counts stay flat "
        "inside the grey band (95% range for uniform ranks); a chain that sits high or low in some "
        "region explored a different part of the posterior."
    ),
}
