"""Make the crossed data sets that make_crossed.R fits with lme4 (designs MixedLM cannot fit well).

Run from this folder: python make_crossed_data.py (seeded: the same files every time).

* ``crossed_correlated.csv``: 30 subjects x 20 items, each pair once, a within-both predictor
  ``x``; correlated intercepts and slopes for subjects and for items.
* ``plates.csv``: a Penicillin-like layout: 24 plates x 6 samples, one assay per pair.
* ``three_crossed.csv``: subjects x items x raters, 20 x 15 x 6, each subject-item pair rated by
  two raters.
"""

import numpy as np
import pandas as pd

rng = np.random.default_rng(20261202)


def correlated(n: int, sds: tuple[float, float], rho: float) -> np.ndarray:
    cov = np.array([[sds[0] ** 2, rho * sds[0] * sds[1]], [rho * sds[0] * sds[1], sds[1] ** 2]])
    return rng.multivariate_normal(np.zeros(2), cov, size=n)


subj = correlated(30, (0.6, 0.35), 0.4)
item = correlated(20, (0.5, 0.25), -0.3)
rows = []
for i in range(30):
    for j in range(20):
        x = rng.choice([-0.5, 0.5]) + rng.normal(0, 0.2)
        y = 1.5 + 0.4 * x + subj[i, 0] + subj[i, 1] * x + item[j, 0] + item[j, 1] * x + rng.normal(0, 0.8)
        rows.append({"y": round(y, 6), "x": round(x, 6), "subject": f"s{i:02d}", "item": f"w{j:02d}"})
pd.DataFrame(rows).to_csv("crossed_correlated.csv", index=False)

plate = rng.normal(0, 0.85, size=24)
sample = rng.normal(0, 1.9, size=6)
rows = [{"diameter": round(23.0 + plate[p] + sample[s] + rng.normal(0, 0.55), 6),
         "plate": chr(ord("a") + p), "sample": chr(ord("A") + s)} for p in range(24) for s in range(6)]
pd.DataFrame(rows).to_csv("plates.csv", index=False)

subj3 = rng.normal(0, 0.5, size=20)
item3 = rng.normal(0, 0.4, size=15)
rater = rng.normal(0, 0.3, size=6)
rows = []
for i in range(20):
    for j in range(15):
        for r in rng.choice(6, size=2, replace=False):
            x = rng.normal()
            y = 3.0 + 0.2 * x + subj3[i] + item3[j] + rater[r] + rng.normal(0, 0.7)
            rows.append({"y": round(y, 6), "x": round(x, 6), "subject": f"p{i:02d}", "item": f"i{j:02d}",
                         "rater": f"r{r}"})
pd.DataFrame(rows).to_csv("three_crossed.csv", index=False)
