"""Realised performance over time: the champion's metric per period of *prediction* time, from
history, as late labels fill in.

A flight predicted on Monday whose ``air_time`` arrives on Tuesday counts for Monday: the
period's value moves as its labels arrive, and the count of labelled rows says how complete
it is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftwatch.model.estimators import target
from driftwatch.model.quality import score_predictions
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import PREDICTED, SERVED_BY


def realised(rows: pd.DataFrame, plan: Plan, freq: str = "D") -> pd.DataFrame:
    """One row per period (local calendar, ``model.timezone``): rows predicted, how many have
    their label, the metric of the predictions made then (by whichever champion served them),
    and the champions."""
    spec, metric = plan.settings.model, plan.metric
    columns = ["period", "rows", "labelled", metric, "champions"]
    if rows.empty or PREDICTED not in rows.columns or not spec.timestamp:
        return pd.DataFrame(columns=columns)
    served = rows[rows[PREDICTED].notna()]
    local = plan.local_times(served)
    out = []
    for period, g in served.groupby(local.dt.to_period(freq), sort=True):
        lab = g[g[spec.target].notna()]
        scores = score_predictions(
            target(lab, spec).to_numpy(dtype=float), lab[PREDICTED].to_numpy(dtype=float), spec
        )
        champions = ",".join(sorted(g[SERVED_BY].dropna().astype(str).unique()))
        out.append((str(period), len(g), len(lab), scores.get(metric, np.nan), champions))
    return pd.DataFrame(out, columns=columns)
