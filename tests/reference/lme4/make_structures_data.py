"""Make the small nested and crossed data sets that make_structures.R fits with lme4.

Run from this folder: python make_structures_data.py (seeded: the same files every time).
"""

import numpy as np
import pandas as pd

rng = np.random.default_rng(20261124)
rows = []
for s in range(12):
    school_eff = rng.normal(0, 0.8)
    school_slope = rng.normal(0, 0.3)
    for c in range(4):
        class_eff = rng.normal(0, 0.5)
        for _ in range(6):
            x = rng.normal()
            y = 1.0 + 0.5 * x + school_eff + school_slope * x + class_eff + rng.normal(0, 1.0)
            rows.append({"y": round(y, 6), "x": round(x, 6), "school": f"S{s:02d}", "class": f"c{c}"})
pd.DataFrame(rows).to_csv("nested.csv", index=False)

rows = []
subj = rng.normal(0, 0.7, size=15)
subj_slope = rng.normal(0, 0.4, size=15)
item = rng.normal(0, 0.5, size=10)
for i in range(15):
    for j in range(10):
        x = rng.normal()
        y = 2.0 - 0.3 * x + subj[i] + subj_slope[i] * x + item[j] + rng.normal(0, 0.6)
        rows.append({"y": round(y, 6), "x": round(x, 6), "subject": f"p{i:02d}", "item": f"i{j}"})
pd.DataFrame(rows).to_csv("crossed.csv", index=False)
