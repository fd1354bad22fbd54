"""Make the simulated GLMM data sets that make_glmm.R fits with lme4's glmer.

Run from this folder: python make_glmm_data.py (seeded: the same files every time). lme4's own
data sets are not committed; these have their shapes.

* ``herds.csv``: shaped like lme4's cbpp: 15 herds x 4 periods, ``incidence`` cases out of
  ``size`` animals (2 to 34), period effects on the logit scale and a herd SD of about 0.65.
* ``counts.csv``: Poisson counts over two crossed factors, 12 sites x 8 years, two visits per
  pair, a numeric predictor ``x`` whose slope varies by site (correlated with the site's
  intercept), and an exposure (hours observed) for ``offset(log(exposure))``.
* ``binary_crossed.csv``: 0/1 responses of 30 subjects x 20 items, each pair once; a condition
  ``x`` of -0.5 or 0.5.
* ``small_clusters.csv``: binary outcomes in 150 groups of 2 to 5 rows with a large group SD
  (1.5): where Laplace's group SD is known to be biased downward and adaptive quadrature helps.
"""

import numpy as np
import pandas as pd

rng = np.random.default_rng(20260316)


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# herds: cbpp's layout (15 herds, periods 1-4, herd sizes 2 to 34)
herd = rng.normal(0, 0.65, size=15)
period = np.array([0.0, -0.99, -1.13, -1.58])
rows = []
for h in range(15):
    for p in range(4):
        size = int(rng.integers(2, 35))
        incidence = int(rng.binomial(size, expit(-1.4 + period[p] + herd[h])))
        rows.append({"herd": f"h{h + 1:02d}", "period": str(p + 1), "incidence": incidence, "size": size})
pd.DataFrame(rows).to_csv("herds.csv", index=False)

# counts: site x year crossed, two visits each, rate per hour with an exposure offset
site = rng.multivariate_normal(np.zeros(2), [[0.5 ** 2, 0.5 * 0.5 * 0.3], [0.5 * 0.5 * 0.3, 0.3 ** 2]], size=12)
year = rng.normal(0, 0.3, size=8)
rows = []
for s in range(12):
    for t in range(8):
        for _ in range(2):
            x = round(float(rng.normal()), 4)
            exposure = round(float(rng.uniform(0.5, 4.0)), 3)
            rate = np.exp(0.8 + 0.3 * x + site[s, 0] + site[s, 1] * x + year[t])
            rows.append({"count": int(rng.poisson(rate * exposure)), "x": x, "exposure": exposure,
                         "site": f"s{s + 1:02d}", "year": str(2001 + t)})
pd.DataFrame(rows).to_csv("counts.csv", index=False)

# binary, subjects x items: subject and item intercepts
subj = rng.normal(0, 0.8, size=30)
item = rng.normal(0, 0.7, size=20)
rows = []
for i in range(30):
    for j in range(20):
        x = float(rng.choice([-0.5, 0.5]))
        p = expit(0.3 + 0.8 * x + subj[i] + item[j])
        rows.append({"y": int(rng.random() < p), "x": x, "subject": f"s{i + 1:02d}", "item": f"i{j + 1:02d}"})
pd.DataFrame(rows).to_csv("binary_crossed.csv", index=False)

# small clusters of binary rows, large group SD
group = rng.normal(0, 1.5, size=150)
rows = []
for g in range(150):
    for _ in range(int(rng.integers(2, 6))):
        x = round(float(rng.normal()), 4)
        rows.append({"y": int(rng.random() < expit(-0.5 + 0.7 * x + group[g])), "x": x, "cluster": f"g{g + 1:03d}"})
pd.DataFrame(rows).to_csv("small_clusters.csv", index=False)
