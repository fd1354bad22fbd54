"""Write the table make_srrs2.R fits: ck.load_srrs2's homes in all states except the "R5" region.

The table has one row per home and is derived from the bundled data/srrs2.dat, so it is written
to a temporary folder, not to the repository. Run from the repository root:

    .venv/bin/python tests/reference/lme4/make_srrs2_data.py [SRRS2_FOLDER] [OUT_CSV]

SRRS2_FOLDER defaults to the bundled data/ (srrs2.dat and cty.dat), OUT_CSV to
$TMPDIR/compare_kit_srrs2/srrs2_no_r5.csv; the path written is printed.
"""

import sys
import tempfile
from pathlib import Path

import compare_kit as ck

ROOT = Path(__file__).resolve().parents[3]
folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "data"
out = (Path(sys.argv[2]) if len(sys.argv) > 2
       else Path(tempfile.gettempdir()) / "compare_kit_srrs2" / "srrs2_no_r5.csv")
homes = ck.load_srrs2(folder)
table = homes[homes["state"] != "R5"]
out.parent.mkdir(parents=True, exist_ok=True)
# empty cells are R's NA: lmer's na.omit then drops the homes without a floor or a uranium value,
# as compare_kit's design does
table.to_csv(out, index=False, float_format="%.17g")
print(f"{len(table)} homes, {table.groupby('state')['county'].nunique().sum()} counties -> {out}")
