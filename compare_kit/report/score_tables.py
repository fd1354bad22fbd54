"""The predictive section's table of a discrete family's scores (``predictive.scores_table`` rows)."""

from __future__ import annotations

import pandas as pd

from compare_kit.report.tables import Cell, Column, DisplayTable, engine_text, fmt_int, fmt_num, table


def discrete_scores(frame: pd.DataFrame, id: str, caption: str = "") -> DisplayTable:
    """``predictive.scores_table`` rows: the log score and, per family, the Brier score (0/1 and binomial
    outcomes) or the mean deviance and RMSE of counts (poisson); each method's best underlined."""
    counts = bool(frame["deviance"].notna().any())
    scores = ([("log score", "log_score", "mean log predictive probability of a row's outcome; higher is better",
                max), ("mean deviance", "deviance", "mean unit Poisson deviance; lower is better", min),
               ("RMSE of counts", "rmse_counts", "lower is better", min)] if counts else
              [("log score", "log_score", "mean log predictive probability of a row's outcome; higher is better",
                max), ("Brier score", "brier", "mean squared gap of observed share and predicted probability; "
                       "lower is better", min)])
    columns = [Column("model"), Column("engine"), Column("method"), Column("rows scored", "int"),
               *[Column(name, "num", hint) for name, _, hint, _ in scores]]
    best = {key: frame.groupby("method")[key].transform(pick) for _, key, _, pick in scores}
    out = [[Cell(r["model"]), Cell(engine_text(r["engine"])), Cell(r["method"]), Cell(fmt_int(r["rows"])),
            *[Cell(fmt_num(r[key]), "best" if r[key] == best[key].loc[i] else "") for _, key, _, _ in scores]]
           for i, r in frame.iterrows()]
    return table(id, columns, out, caption, fold=False)
