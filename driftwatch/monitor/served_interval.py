"""The champion's served, labelled periods from history, as a :class:`ServedCalibration`.

Each tick, history's rows that the current champion served and whose labels have arrived are
cut into contiguous periods of the batch's length (``quality.estimate.served.period``, else the
batch's span as a horizon takes it), ending where the batch begins: the newest period is the
one just before the batch, the way production sends data. A period counts once it has
``quality.min_labelled_rows`` labelled rows; each is estimated as the batch is (the champion's
estimator on its stored features and predictions) and scored realised on the same rows, and the
newest ``3 x max_periods`` fit the calibration (:mod:`driftwatch.model.served_calibration`:
the newest ``max_periods`` give the conformal factor, all of them its online correction).

Rows are served by one champion only: a new champion starts from its holdout's interval, and
the periods it serves calibrate it from then on. A period's estimate is cached in the process
(per estimator object, then per plan, champion, period and labelled count): a tick estimates
only the periods whose labels changed since the last one. The periods are cut on a grid of
whole hours (whole minutes below an hour), so batches whose first row falls at another minute
each tick still meet their periods in the cache.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

import numpy as np
import pandas as pd

from driftwatch.engine.blocks import span_of
from driftwatch.model.estimators import target
from driftwatch.model.quality import score_predictions
from driftwatch.model.served_calibration import TRACKED
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import PREDICTED, SERVED_BY

log = logging.getLogger("driftwatch.monitor")

# estimator -> {(plan, champion, metric, level, period start, length, labelled rows) ->
# (estimate, low, high, realised)}. Keyed on the estimator object itself, weakly: an entry goes
# with its estimator (an id() could be reused by the next one); a lock, since several models
# tick in threads of one process. Each estimator's entries are bounded (cleared past this: a
# daemon serving one champion with hourly periods holds a few hundred).
_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple, tuple[float, float, float, float]]] = (
    weakref.WeakKeyDictionary()
)
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 5_000


def period_length(plan: Plan, batch_times: pd.Series) -> pd.Timedelta:
    """``quality.estimate.served.period``, else the batch's span (:func:`span_of`)."""
    configured = plan.settings.quality.estimate.served.period
    if configured:
        return pd.Timedelta(configured)
    return span_of(batch_times)


def read_days(plan: Plan, length: pd.Timedelta) -> float:
    """How many days of history the served periods need: the calibration's replay of
    ``3 x max_periods`` of them, half ``max_periods`` more for periods whose labels are still
    on their way, and a day."""
    periods = (TRACKED + 0.5) * plan.settings.quality.estimate.served.max_periods
    return periods * (length / pd.Timedelta(days=1)) + 1.0


def grid_start(batch_times: pd.Series, length: pd.Timedelta) -> pd.Timestamp:
    """Where the served periods end: the batch's first row, down to the whole hour (the whole
    minute for periods under an hour), so the periods stay the same from tick to tick."""
    return batch_times.min().floor("1h" if length >= pd.Timedelta(hours=1) else "1min")


def served_periods(
    plan: Plan, rows: pd.DataFrame, champion: str, start: pd.Timestamp, length: pd.Timedelta
) -> list[tuple[int, pd.Timestamp, pd.DataFrame]]:
    """The champion's labelled served rows before ``start``, cut into periods of ``length``
    ending at ``start``, each [begin, begin + length): (periods back from ``start``, 0 the
    newest; its begin; its labelled rows), oldest first; only periods with at least
    ``quality.min_labelled_rows`` labelled rows, the newest ``3 x max_periods`` of them (what
    the calibration replays)."""
    s = plan.settings
    spec, opts = s.model, s.quality.estimate.served
    ts = spec.timestamp
    needed = {ts, SERVED_BY, PREDICTED, spec.target}
    if rows.empty or not ts or not needed <= set(rows.columns):
        return []
    mine = rows[
        (rows[SERVED_BY].astype(str) == str(champion))
        & rows[spec.target].notna()
        & rows[PREDICTED].notna()
        & (rows[ts] < start)
    ]
    if mine.empty:
        return []
    # A row at begin + length belongs to the next period: -((t - start) // length) - 1 puts
    # start - length in period 0 (not 1, as (start - t) // length would).
    back = -((mine[ts] - start) // length).astype(int) - 1
    out = []
    for b, group in sorted(mine.groupby(back.to_numpy()), key=lambda kv: -kv[0]):
        if len(group) >= s.quality.min_labelled_rows:
            out.append((int(b), start - (int(b) + 1) * length, group))
    return out[-TRACKED * opts.max_periods :]


def fit_served_calibration(
    plan: Plan,
    estimator: Any,
    model: Any,
    rows: pd.DataFrame | None,
    champion: str,
    batch_times: pd.Series,
) -> Any | None:
    """The champion's :class:`ServedCalibration` from history ``rows`` (None when it is off or
    there is nothing to place in time: no estimator, no timestamp, no batch time)."""
    from driftwatch.model.served_calibration import ServedCalibration
    from driftwatch.monitor.estimated import estimate_rows

    s = plan.settings
    opts = s.quality.estimate.served
    if not opts.enabled or estimator is None or rows is None or not len(batch_times.dropna()):
        return None
    length = period_length(plan, batch_times)
    start = grid_start(batch_times, length)
    spec, metric, level = s.model, plan.metric, s.quality.estimate.level
    values, positions = [], []
    periods = served_periods(plan, rows, champion, start, length)
    # How late labels come, in periods: the newest labelled period is this many before the
    # batch (1: the one just before it). Counted in time: periods of too few labelled rows
    # (night hours) are left out of the list, not out of the clock.
    lag = periods[-1][0] + 1 if periods else 1
    with _CACHE_LOCK:
        cache = _CACHE.setdefault(estimator, {})
    for back, begins, group in periods:
        key = (plan.name, champion, metric, level, begins, length, len(group))
        with _CACHE_LOCK:
            got = cache.get(key)
        if got is None:
            p = group[PREDICTED].to_numpy(dtype=float)
            try:
                est, _ = estimate_rows(plan, estimator, model, group, p)
            except ValueError as exc:  # a period the estimator cannot read: left out, said
                log.warning("served period from %s left out of the calibration: %s", begins, exc)
                continue
            y = target(group, spec).to_numpy(dtype=float)
            real = score_predictions(y, p, spec).get(metric, np.nan)
            got = (est.value, est.low, est.high, float(real))
            with _CACHE_LOCK:
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                cache[key] = got
        values.append(got)
        positions.append(-back)
    a = np.asarray(values, dtype=float).reshape(-1, 4)
    return ServedCalibration(
        level, opts.min_periods, opts.max_periods, narrow_after=opts.narrow_after
    ).fit(metric, a[:, 0], a[:, 1], a[:, 2], a[:, 3], lag=lag, positions=positions)
