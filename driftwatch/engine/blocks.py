"""Drift thresholds calibrated on *time blocks* of the reference: quiet means what production
looks like.

Why: production batches are contiguous hours and days. Rows of one block share their context
(one weather reading per airport-hour, one ``hour`` value per hour, delays that cluster by day),
so a quiet block differs from the reference far more than a batch of random rows of the same
size does, and thresholds calibrated on random-row resamples alarm on nearly every quiet hour
and day. Here the null distribution comes from the reference's own time blocks of the batch's
span: each block is scored against the reference with every calendar day it touches removed
(hours of one day share weather, so removing only the block would make the null too narrow).

Statistics ("components"), every one counted in the dataset alarm, thresholds set jointly:
  numerical   ``wasserstein`` (W1 / reference std), ``ks`` (Kolmogorov-Smirnov D: robust to
              heavy tails, catches a location shift that storm days hide from W1), ``missing``
              (share of nulls: a broken feed), ``novel`` (share of values outside the
              reference's range or off its lattice: a rescaled column), ``modal`` (share of
              the most frequent value: a frozen column);
  categorical ``jensenshannon``, ``missing``, ``novel`` (a recoding), ``modal``;
  cross       ``resid`` (RMS of the standardised residual of a numerical column regressed
              linearly on the other numerical columns, only where they explain it, R^2 >=
              ``min_r2``): a unit change that keeps a plausible marginal (°C on a cold day)
              still breaks the column's relation to the others.
An undefined statistic (W1 of an all-null column) is NaN and never alarms; ``missing`` covers it.

Thresholds: with enough independent blocks (counted in calendar days, the unit that carries
the dependence) the empirical joint rule of :mod:`driftwatch.engine.calibration` applies. With
fewer (two months of reference hold ~30 days) a 1% quantile cannot be estimated, and the stated
conservative rule is used instead: per component a one-sided parametric prediction bound at
rate/m (Bonferroni over the m live components), never below the largest quiet block; the
calibration says which rule it used and what rate its blocks could support.

Written by hand: no maintained library calibrates block-bootstrap thresholds for a joint
drift alarm (NannyML uses fixed sigma bands per chunk, Evidently fixed thresholds), and the
vectorised count-matrix form is what makes one fit take well under a second.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftwatch.engine.calibration import allowed_alarms
from driftwatch.engine.drift import ColumnDrift, DriftResult

# How a statistic's block-to-block spread is modelled by the conservative rule.
KIND = {
    "wasserstein": "dist",
    "resid": "dist",
    "ks": "share",
    "modal": "share",
    "missing": "count",
    "novel": "count",
    "jensenshannon": "js",
}
NUMERICAL_STATS = ("wasserstein", "ks", "missing", "novel", "modal")
CATEGORICAL_STATS = ("jensenshannon", "missing", "novel", "modal")
# The statistic a pinned (user-set) column threshold applies to.
PRIMARY = {"numerical": "wasserstein", "categorical": "jensenshannon"}
# Part of every cache key of block thresholds: an upgraded driftwatch never reuses old ones.
BLOCKS_FORMAT = 3
# The spans a batch's own time span is rounded up to when no horizon is configured.
SPANS = ("1h", "6h", "1D", "7D")


def span_of(timestamps: pd.Series) -> pd.Timedelta:
    """The smallest of :data:`SPANS` that holds the batch's time range."""
    t = pd.Series(timestamps).dropna()
    width = (t.max() - t.min()) if len(t) else pd.Timedelta(0)
    for s in SPANS:
        if width < pd.Timedelta(s):
            return pd.Timedelta(s)
    return pd.Timedelta(SPANS[-1])


def span_label(span: pd.Timedelta) -> str:
    hours = span / pd.Timedelta("1h")
    if hours < 24 or hours % 24:
        return f"{hours:g}h"
    return f"{hours / 24:g}d"


# -- reference profile and the statistics of one batch ---------------------------------------


@dataclass
class BlockColumn:
    name: str
    kind: str  # "numerical" | "categorical"
    values: np.ndarray  # sorted distinct non-null reference values
    counts: np.ndarray  # their reference counts
    n_missing: int
    step: float = 0.0  # numerical: the reference's lattice step (0: none, continuous values)
    # numerical: how far a new day may pass the reference's range before its values count as
    # novel (see record_margins); (0, 0) without timestamps
    margins: tuple[float, float] = (0.0, 0.0)

    def novel(self, values: np.ndarray) -> np.ndarray:
        """Numerical values that count as novel: beyond the reference's range by more than a
        record margin, or inside it but off its lattice (a rescaled column: miles x 1.609).
        An unseen value *on* the lattice inside the range (0.29 in of rain where the
        reference had 0.28 and 0.31) is ordinary sparsity, not a new kind of value: counting
        it made rain and fog days of sparse columns (precip, visib) alarm."""
        lo, hi = self.values[0], self.values[-1]
        out = (values < lo - self.margins[0]) | (values > hi + self.margins[1])
        if self.step > 0:
            k = (values - lo) / self.step
            out |= np.abs(k - np.round(k)) > 1e-6 * np.maximum(1.0, np.abs(k))
        return out

    def encode(self, s: pd.Series) -> np.ndarray:
        """Integer codes into ``values``; -1 = null, -2 = a value the reference never had."""
        if self.kind == "numerical":
            arr = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
            null = ~np.isfinite(arr)
            pos = np.searchsorted(self.values, np.where(null, 0.0, arr))
            pos = np.minimum(pos, max(len(self.values) - 1, 0))
            hit = (self.values[pos] == arr) if len(self.values) else np.zeros(len(arr), bool)
        else:
            null = s.isna().to_numpy()
            pos = pd.Index(self.values).get_indexer(_as_text(s).where(~null, None))
            hit = pos >= 0
        return np.where(null, -1, np.where(hit, pos, -2)).astype(np.int64)


@dataclass
class Regression:
    """A numerical column as a linear function of the others (mean-imputed, with intercept)."""

    target: str
    predictors: list[str]
    beta: np.ndarray
    resid_sd: float
    r2: float


@dataclass
class BlockProfile:
    columns: dict[str, BlockColumn]
    means: dict[str, float]
    regressions: list[Regression]
    n_rows: int = 0

    @property
    def components(self) -> list[str]:
        out = []
        for c in self.columns.values():
            stats = NUMERICAL_STATS if c.kind == "numerical" else CATEGORICAL_STATS
            out += [f"{c.name}:{s}" for s in stats]
        return out + [f"{r.target}:resid" for r in self.regressions]


def _as_text(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))


def _numbers(s: pd.Series) -> np.ndarray:
    arr = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    return np.where(np.isfinite(arr), arr, np.nan)


def _design(frame: pd.DataFrame, cols: list[str], means: dict[str, float]) -> np.ndarray:
    x = np.column_stack([_numbers(frame[c]) for c in cols]) if cols else np.empty((len(frame), 0))
    for j, c in enumerate(cols):
        x[np.isnan(x[:, j]), j] = means[c]
    return np.column_stack([np.ones(len(frame)), x])


def record_margins(values: np.ndarray, days: np.ndarray) -> tuple[float, float]:
    """How far past the reference's range a new day can go without being a new kind of value:
    (median daily minimum - overall minimum, overall maximum - median daily maximum).

    Why: a stationary series sets a new record on about one day in n + 1, so with a month of
    reference ~3% of quiet days had values outside the bare range (a cold snap's dew point),
    and their share of "novel" values raised the alarm. A new day is taken to be able to pass
    the most extreme reference day by as much as that day passed a typical day. A column with
    a hard bound reached every day (``distance``'s longest route, ``hour``'s first and last
    departure) gets no margin, so miles sent as kilometres still leave its range."""
    ok = ~np.isnan(values)
    if not ok.any():
        return 0.0, 0.0
    frame = pd.DataFrame({"v": values[ok], "d": days[ok]}).groupby("d")["v"]
    lows, highs = frame.min().to_numpy(), frame.max().to_numpy()
    return (
        float(np.median(lows) - lows.min()),
        float(highs.max() - np.median(highs)),
    )


def fit_profile(
    reference: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    min_r2: float = 0.5,
    timestamps: pd.Series | None = None,
) -> BlockProfile:
    """The reference as the block statistics need it. ``timestamps`` (local time, one per row):
    numerical ranges get record margins (:func:`record_margins`); without them, none."""
    days = None
    if timestamps is not None:
        days = pd.Series(timestamps).dt.floor("D").to_numpy()
    cols = {}
    for name in [*numerical, *categorical]:
        kind = "numerical" if name in numerical else "categorical"
        margins = (0.0, 0.0)
        if kind == "numerical":
            arr = _numbers(reference[name])
            null = np.isnan(arr)
            vals, cnt = np.unique(arr[~null], return_counts=True)
            step = _lattice_step(vals)
            if days is not None:
                margins = record_margins(arr, days)
        else:
            text = _as_text(reference[name])
            null = text.isna().to_numpy()
            vals, cnt = np.unique(text[~null].to_numpy(dtype=str), return_counts=True)
            vals = vals.astype(object)
            step = 0.0
        cols[name] = BlockColumn(name, kind, vals, cnt, int(null.sum()), step, margins)
    means = {c: float(np.nanmean(_numbers(reference[c]))) for c in numerical}
    regressions = []
    for t in numerical:
        predictors = [c for c in numerical if c != t]
        y = _numbers(reference[t])
        ok = ~np.isnan(y)
        if not predictors or ok.sum() < 10 * (len(predictors) + 1):
            continue
        x = _design(reference.loc[ok], predictors, means)
        beta, *_ = np.linalg.lstsq(x, y[ok], rcond=None)
        r = y[ok] - x @ beta
        r2 = 1 - r.var() / max(y[ok].var(), 1e-12)
        if r2 >= min_r2:
            regressions.append(
                Regression(t, predictors, beta, float(max(r.std(), 1e-9)), float(r2))
            )
    return BlockProfile(cols, means, regressions, len(reference))


def _local(ts: pd.Series) -> pd.Series:
    """Wall-clock times without a zone: blocks and days are cut on the local clock."""
    return ts.dt.tz_localize(None) if getattr(ts.dt, "tz", None) is not None else ts


def _lattice_step(values: np.ndarray) -> float:
    """The grid the reference's values lie on (0.01 for rain in inches, 1 for miles), found as
    the greatest common divisor of their differences at the fewest decimals (up to 6) that
    write them exactly; 0 when there is none (continuous values)."""
    if len(values) < 3:
        return 0.0
    for decimals in range(7):
        scaled = values * 10**decimals
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * np.maximum(1.0, np.abs(scaled))):
            ints = np.round(scaled).astype(np.int64)
            g = int(np.gcd.reduce(np.diff(ints)))
            return g / 10**decimals if g > 0 else 0.0
    return 0.0


def _merged_counts(
    values: np.ndarray, ref_counts: np.ndarray, batch_values: np.ndarray, batch_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid = np.union1d(values, batch_values)
    rc = np.zeros(len(grid))
    rc[np.searchsorted(grid, values)] = ref_counts
    cc = np.zeros(len(grid))
    cc[np.searchsorted(grid, batch_values)] = batch_counts
    return grid, rc, cc


def _numerical_stats(c: BlockColumn, batch: pd.Series) -> list[float]:
    arr = _numbers(batch)
    null = np.isnan(arr)
    missing = float(null.mean()) if len(arr) else np.nan
    x = arr[~null]
    if len(x) == 0 or len(c.values) == 0:
        return [np.nan, np.nan, missing, np.nan, np.nan]
    bv, bc = np.unique(x, return_counts=True)
    grid, rc, cc = _merged_counts(c.values.astype(float), c.counts, bv, bc)
    nr = rc.sum()
    fr, fc = np.cumsum(rc) / nr, np.cumsum(cc) / len(x)
    mean = rc @ grid / nr
    std = math.sqrt(max(rc @ (grid - mean) ** 2 / nr, 0.0))
    gap = np.abs(fc - fr)
    w1 = float(gap[:-1] @ np.diff(grid)) / max(std, 0.001)
    novel = float(cc[(rc == 0) & c.novel(grid)].sum() / len(x))
    return [w1, float(gap.max()), missing, novel, float(bc.max() / len(x))]


def _categorical_stats(c: BlockColumn, batch: pd.Series) -> list[float]:
    from scipy.special import rel_entr

    text = _as_text(batch)
    null = text.isna().to_numpy()
    missing = float(null.mean()) if len(text) else np.nan
    x = text[~null].to_numpy(dtype=str)
    if len(x) == 0 or len(c.values) == 0:
        return [np.nan, missing, np.nan, np.nan]
    bv, bc = np.unique(x, return_counts=True)
    _, rc, cc = _merged_counts(c.values.astype(str), c.counts, bv, bc)
    p, q = rc / rc.sum(), cc / cc.sum()
    m = (p + q) / 2
    js = math.sqrt(max((rel_entr(p, m).sum() + rel_entr(q, m).sum()) / 2, 0.0))
    return [js, missing, float(cc[rc == 0].sum() / len(x)), float(bc.max() / len(x))]


def block_statistics(profile: BlockProfile, batch: pd.DataFrame) -> np.ndarray:
    """Every component's statistic for one batch against the whole reference (order =
    ``profile.components``)."""
    out: list[float] = []
    for c in profile.columns.values():
        stats = _numerical_stats if c.kind == "numerical" else _categorical_stats
        out += stats(c, batch[c.name])
    for r in profile.regressions:
        y = _numbers(batch[r.target])
        ok = ~np.isnan(y)
        if ok.sum() == 0:
            out.append(np.nan)
            continue
        res = y[ok] - _design(batch.loc[ok], r.predictors, profile.means) @ r.beta
        out.append(float(np.sqrt(np.mean(res**2)) / r.resid_sd))
    return np.asarray(out, dtype=float)


# -- thresholds from a null matrix (blocks x components) --------------------------------------


def min_blocks_for_empirical(rate: float, confidence: float) -> int:
    """Fewest independent blocks for which the empirical joint rule exists at all."""
    return math.ceil(math.log(1 - confidence) / math.log(1 - rate))


def _exceed(null: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(null > thresholds, nan=0).astype(bool)


def empirical_thresholds(
    null: np.ndarray, rate: float, confidence: float
) -> tuple[np.ndarray, int]:
    """One common per-component order statistic, the least extreme whose in-sample any-component
    alarm count stays within the binomial tolerance bound (as the row-resampling calibrator)."""
    n = null.shape[0]
    r = allowed_alarms(n, rate, confidence)
    srt = np.sort(np.where(np.isnan(null), -np.inf, null), axis=0)
    for k in range(max(n - 2 - max(r, 0), 0), n):
        thr = srt[k]
        alarms = int(_exceed(null, thr).any(axis=1).sum())
        if alarms <= r:
            return thr, alarms
    return srt[-1], 0


def _share_bound(x: np.ndarray, level: float, n_eff: int) -> float:
    """Upper (1 - level) quantile of a Beta fitted by moments to a share in [0, 1], the variance
    inflated by (1 + 1/n_eff) for the estimated mean. Beta, not logit-normal: shares pile up at
    0 and a logit-normal's spread then puts the bound at 1 (an all-null column undetectable)."""
    from scipy import stats

    mu, var = float(x.mean()), float(x.var(ddof=1)) * (1 + 1 / n_eff)
    if var <= 0 or mu <= 0 or mu >= 1:
        return float(x.max())
    var = min(var, mu * (1 - mu) * 0.999)
    k = mu * (1 - mu) / var - 1
    return float(stats.beta.ppf(1 - level, mu * k, (1 - mu) * k))


def _count_floor(
    x: np.ndarray, level: float, n_eff: int, rows: float, hours: float | None = None
) -> float:
    """Rare-event floor for missing / novel shares: the share of a ``rows``-row batch that a
    Poisson count at the upper (rule-of-three) null rate exceeds with probability <= level.
    Without it a share that was 0 in every quiet block gets threshold 0, and one unseen value
    (a carrier that flew twice in two months) raises the alarm.

    ``hours`` (blocks longer than an hour): the first occurrence of a never-seen event is also
    allowed in whole hours, the rule-of-three count of them. Feeds fail by the hour (one
    weather reading per airport-hour, a pipeline's hourly file), so the nulls of a short gap
    are one event, not a hundred; counted in rows, a one-hour gap flagged the six-hour and
    day horizons, which the hourly tick re-judges for the next 6 and 24 ticks (one gap, a day
    of alarms). The 1h horizon catches the gap hour itself."""
    from scipy import stats

    lam = float(np.mean(x)) * rows + 3.0 / n_eff
    floor = float(stats.poisson.ppf(1 - level, lam)) / max(rows, 1.0)
    if hours is not None and hours > 1:
        floor = max(floor, float(stats.poisson.ppf(1 - level, 3.0 / n_eff)) / hours)
    return floor


def _to_line(x: np.ndarray, kind: str) -> np.ndarray:
    """The scale a statistic's upper tail is modelled on. Unbounded distances (W1, resid) vary
    multiplicatively from day to day: log. Statistics bounded in [0, 1] (KS, modal, JS): raw,
    because a multiplicative extrapolation from small medians is far too heavy (a log-normal
    put a KS bound at 1.38, which KS can never reach)."""
    return np.log(np.maximum(x, 1e-9)) if kind == "dist" else np.asarray(x, dtype=float)


def _from_line(z: float, kind: str) -> float:
    if kind == "dist":
        return float(math.exp(min(z, 700.0)))
    return float(min(z, math.sqrt(math.log(2)) if kind == "js" else 1.0))


def _upper_half_bound(z: np.ndarray, level: float, n_eff: int) -> float:
    """One-sided prediction bound fitted to the upper half of the null only:
    median + t(n_eff // 2 df, 1 - level) * s_up * sqrt(1 + 1/n_eff), where s_up is the root
    mean square distance above the median of the blocks above it.

    For a normal null s_up estimates the ordinary sd, so nothing changes; for the right-skewed
    nulls of real data (most days dry, a few rain days; most days ordinary, a few odd weather
    days) the whole-sample spread is pulled down by the bunched-up lower half and understates
    the tail, s_up does not. Only about half of the independent days inform s_up, hence
    n_eff // 2 degrees of freedom: the honest uncertainty of a tail scale, not a tuned factor."""
    from scipy import stats

    z = z[np.isfinite(z)]
    med = float(np.median(z))
    above = z[z > med] - med
    s_up = math.sqrt(float(np.mean(above**2))) if len(above) else 0.0
    q = float(stats.t.ppf(1 - level, max(n_eff // 2, 1)))
    return med + q * s_up * math.sqrt(1 + 1 / n_eff)


def conservative_thresholds(
    null: np.ndarray,
    kinds: list[str],
    rate: float,
    n_eff: int | None = None,
    rows: float = 1.0,
    hours: float | None = None,
    touches: np.ndarray | None = None,
    incident_days: int = 0,
    missing: list[bool] | None = None,
) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Too few independent blocks for an empirical quantile: per component a parametric upper
    prediction bound at rate/m (Bonferroni over the m live components), never below the largest
    quiet block. ``n_eff``: independent units (calendar days) behind the blocks.

    Distances and bounded statistics get the upper-half bound (:func:`_upper_half_bound`);
    the missing / novel shares, mostly exact zeros where a tail scale means nothing, a Beta
    fitted by moments plus a Poisson rare-event floor (``rows`` per block, ``hours`` of span:
    :func:`_count_floor`). For the missing shares (``missing``: which components those are) up
    to ``incident_days`` days of the reference may be set aside as broken feeds
    (:func:`_reference_incidents`; ``touches``: blocks x days, which days each block covers).
    Returns the thresholds and, per component index, the days set aside."""
    n, m_all = null.shape
    n_eff = n if n_eff is None else max(min(n_eff, n), 2)
    thr = np.full(m_all, np.inf)
    set_aside: dict[int, list[int]] = {}
    live = [
        j for j in range(m_all) if np.isfinite(null[:, j]).sum() >= 3 and np.nanstd(null[:, j]) > 0
    ]
    level = rate / max(len(live), 1)

    def count_bound(x: np.ndarray) -> float:
        """``x``: a component's finite quiet values (all, or those left by set-aside days);
        live as above when it has >= 3 values that vary."""
        floor = _count_floor(x, level, n_eff, rows, hours)
        if len(x) < 3 or float(np.std(x)) == 0:
            return max(float(x.max()), floor)
        return max(_share_bound(x, level, n_eff), float(x.max()), floor)

    for j in range(m_all):
        ok = np.isfinite(null[:, j])
        x = null[:, j][ok]
        if len(x) == 0:
            continue
        if kinds[j] == "count":
            thr[j] = count_bound(x)
            if touches is not None and incident_days > 0 and missing and missing[j]:
                found = _reference_incidents(x, touches[ok], incident_days, count_bound)
                if found is not None:
                    set_aside[j], thr[j] = found
            continue
        if j not in live:
            thr[j] = float(x.max())
            continue
        bound = _from_line(_upper_half_bound(_to_line(x, kinds[j]), level, n_eff), kinds[j])
        thr[j] = max(bound, float(x.max()))
    return thr, set_aside


def _reference_incidents(
    x: np.ndarray, touches: np.ndarray, cap: int, bound: Callable[[np.ndarray], float]
) -> tuple[list[int], float] | None:
    """Days of the reference on which a column's feed was broken: not quiet.

    Why: a reference can hold a broken feed (in flights 2013 the weather is missing for all of
    31 December). Taken as quiet, that day puts the missing-share threshold at 1, and an
    all-null column can never alarm again. As in Phase I of statistical process control,
    out-of-control points are removed before the limits are set: the k worst days (k = 1 ..
    ``cap``) are set aside when each of them looks like a feed that went off and on again:
    blocks where the column is entirely null, every other block of the day within the bound
    fitted without those days. A ramp of partly-null blocks (a blizzard cancelling more and
    more flights, ``dep_delay`` null for each) is the world, not a feed, and stays quiet. When
    more than ``cap`` days look like that, the pattern is normal for the column (pressure is
    all-null in ~6% of 2013's hours) and nothing is set aside. Returns (days, threshold)."""
    per_day = np.where(touches, x[:, None], -np.inf).max(axis=0)
    order = [d for d in np.argsort(-per_day, kind="stable") if np.isfinite(per_day[d])]
    for k in range(1, min(cap, len(order) - 1) + 1):
        removed = order[:k]
        keep = ~touches[:, removed].any(axis=1)
        if keep.sum() < 3:
            return None
        b = bound(x[keep])

        def feed_off(d: int, b: float = b) -> bool:
            on_day = x[touches[:, d]]
            return per_day[d] >= 1 - 1e-9 and bool(np.all((on_day >= 1 - 1e-9) | (on_day <= b)))

        if b < 1 - 1e-9 and all(feed_off(d) for d in removed):
            return [int(d) for d in removed], b
    return None


# -- the calibrator ----------------------------------------------------------------------------


@dataclass
class BlockThresholds:
    """What a block calibration learned, with what it rests on (for the report and the file)."""

    span: pd.Timedelta
    components: list[str]
    thresholds: np.ndarray
    null_median: np.ndarray
    null_p99: np.ndarray
    n_blocks: int
    n_days: int
    rule: str  # "empirical" | "conservative"
    rate: float
    supported_rate: float  # the lowest rate the blocks could show empirically
    in_sample_alarms: int
    median_rows: float
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


class BlockCalibrator:
    """``fit(reference, timestamps, span)``: per-component thresholds from leave-day-out blocks.

    Blocks are windows of ``span`` starting every ``stride`` (1 h below a day, else a day),
    within a calendar day when ``span`` is at most a day; blocks with fewer than ``min_rows``
    rows are dropped. ``pinned`` maps a column to a user threshold on its primary statistic
    (W1 or Jensen-Shannon). Learned state: ``profile_``, ``null_``, ``thresholds_``.
    """

    def __init__(
        self,
        numerical: list[str],
        categorical: list[str],
        rate: float = 0.01,
        confidence: float = 0.95,
        min_rows: int = 20,
        stride: str | None = None,
        min_r2: float = 0.5,
        rule: str = "auto",
        pinned: dict[str, float] | None = None,
        counts: list[str] | None = None,
        incident_share: float = 0.05,
    ) -> None:
        self.numerical = list(numerical)
        self.categorical = list(categorical)
        self.rate = rate
        self.confidence = confidence
        self.min_rows = min_rows
        self.stride = stride
        self.min_r2 = min_r2
        self.rule = rule
        self.pinned = dict(pinned or {})
        # Columns whose components raise the alarm (None: all); the rest are report-only.
        self.counts = counts
        # At most this share of the reference's days may be set aside as broken feeds for the
        # missing shares (conservative rule; see _reference_incidents).
        self.incident_share = incident_share

    def fit(
        self, reference: pd.DataFrame, timestamps: pd.Series, span: str | pd.Timedelta
    ) -> BlockCalibrator:
        started = time.perf_counter()
        span = pd.Timedelta(span)
        ts = pd.Series(timestamps).reset_index(drop=True)
        self.profile_ = fit_profile(
            reference.reset_index(drop=True),
            self.numerical,
            self.categorical,
            self.min_r2,
            _local(ts),
        )
        comps = self.profile_.components
        null = self._block_null(reference.reset_index(drop=True), ts, span)
        self.null_ = null
        notes: list[str] = []
        n = null.shape[0]
        need = min_blocks_for_empirical(self.rate, self.confidence)
        rule = self.rule
        if rule == "auto":  # decided on independent units (days), not on same-day blocks
            rule = "empirical" if self.n_days_ >= need else "conservative"
        thr = np.full(len(comps), np.inf)
        counting = np.array([self._counts(c) for c in comps], dtype=bool)
        if not counting.any():
            counting[:] = True
        pinned_idx = {
            comps.index(f"{col}:{PRIMARY[self.profile_.columns[col].kind]}"): t
            for col, t in self.pinned.items()
            if col in self.profile_.columns
        }
        free = np.array([j not in pinned_idx for j in range(len(comps))], dtype=bool)
        if n < 3:
            notes.append(
                f"only {n} blocks of {span_label(span)} with >= {self.min_rows} rows in the"
                " reference: nothing can be calibrated for this span; it cannot alarm"
            )
        elif rule == "empirical":
            thr[free] = empirical_thresholds(null[:, free], self.rate, self.confidence)[0]
            # A share that was 0 in every quiet block would alarm on one null or one unseen
            # value: the same rare-event floor as the conservative rule.
            level = self.rate / max(int(free.sum()), 1)
            for j, name in enumerate(comps):
                x = null[:, j][np.isfinite(null[:, j])]
                if free[j] and KIND[name.split(":")[1]] == "count" and len(x):
                    floor = _count_floor(
                        x, level, self.n_days_, self.median_rows_, span / pd.Timedelta("1h")
                    )
                    thr[j] = max(thr[j], floor)
        else:
            free_names = [c for c, f in zip(comps, free, strict=True) if f]
            thr[free], set_aside = conservative_thresholds(
                null[:, free],
                [KIND[c.split(":")[1]] for c in free_names],
                self.rate,
                self.n_days_,
                rows=self.median_rows_,
                hours=span / pd.Timedelta("1h"),
                touches=self.touches_,
                incident_days=int(self.incident_share * self.n_days_),
                missing=[c.endswith(":missing") for c in free_names],
            )
            for j, days in set_aside.items():
                when = ", ".join(str((self.day0_ + pd.Timedelta(days=d)).date()) for d in days)
                notes.append(
                    f"{free_names[j].split(':')[0]} was entirely null in the reference on"
                    f" {when}: a broken feed, not quiet; left out of its missing-share threshold"
                )
            notes.append(
                f"{self.n_days_} days of reference behind the {span_label(span)} blocks: too"
                f" few to estimate a {self.rate:g} false-alarm rate from them (that needs"
                f" {need} days); thresholds use the conservative rule (a prediction bound per"
                f" statistic at rate/{int(free.sum())}, never below the largest quiet block)"
            )
        for j, t in pinned_idx.items():
            thr[j] = t
        # Frozen-column detector: only the gap between the largest quiet modal share and 1
        # matters; alarm past its midpoint, or sampling noise of another batch size fires it.
        for j, name in enumerate(comps):
            if name.endswith(":modal") and np.isfinite(null[:, j]).any() and free[j]:
                thr[j] = max(thr[j], (np.nanmax(null[:, j]) + 1) / 2)
        notes += _blind_spots(comps, thr, null, counting, span)
        alarms = int(_exceed(null[:, counting], thr[counting]).any(axis=1).sum()) if n else 0
        finite = np.where(np.isfinite(null), null, np.nan)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are expected
            med = np.nanmedian(finite, axis=0) if n else np.full(len(comps), np.nan)
            p99 = np.nanquantile(finite, 0.99, axis=0) if n else np.full(len(comps), np.nan)
        self.thresholds_ = BlockThresholds(
            span=span,
            components=comps,
            thresholds=thr,
            null_median=med,
            null_p99=p99,
            n_blocks=n,
            n_days=self.n_days_,
            rule=rule,
            rate=self.rate,
            supported_rate=1 - (1 - self.confidence) ** (1 / max(self.n_days_, 1)),
            in_sample_alarms=alarms,
            median_rows=self.median_rows_,
            seconds=round(time.perf_counter() - started, 3),
            warnings=notes,
        )
        return self

    def _counts(self, component: str) -> bool:
        return self.counts is None or component.split(":")[0] in self.counts

    # -- the leave-day-out null, vectorised over blocks from count matrices ----------------------
    def _block_null(self, ref: pd.DataFrame, ts: pd.Series, span: pd.Timedelta) -> np.ndarray:
        local = _local(ts)
        day0 = local.min().normalize()
        day = ((local - day0) // pd.Timedelta("1D")).to_numpy().astype(np.int64)
        n_days = int(day.max()) + 1
        self.day0_ = day0
        one_day = pd.Timedelta("1D")
        if self.stride is not None:
            stride = pd.Timedelta(self.stride)
        else:
            stride = pd.Timedelta("1h") if span < one_day else one_day
        if span <= one_day:
            per_day = int(one_day / stride)
            width = max(int(span / stride), 1)
            tick = day * per_day + ((local - local.dt.normalize()) // stride).to_numpy().astype(
                np.int64
            )
            starts = [(d, k) for d in range(n_days) for k in range(per_day - width + 1)]
            w_lo = np.array([d * per_day + k for d, k in starts], dtype=np.int64)
            w_hi = w_lo + width
            w_days = [[d] for d, _ in starts]
            n_ticks = n_days * per_day
        else:
            width = max(int(span / one_day), 1)
            tick = day
            w_lo = np.arange(0, max(n_days - width + 1, 0), dtype=np.int64)
            w_hi = w_lo + width
            w_days = [list(range(a, a + width)) for a in w_lo]
            n_ticks = n_days
        exclude = np.zeros((len(w_lo), n_days))
        for i, ds in enumerate(w_days):
            exclude[i, ds] = 1.0
        rows_per_tick = np.bincount(tick, minlength=n_ticks)
        cum_rows = np.concatenate([[0], np.cumsum(rows_per_tick)])
        block_rows = cum_rows[w_hi] - cum_rows[w_lo]
        keep = block_rows >= self.min_rows
        w_lo, w_hi, exclude = w_lo[keep], w_hi[keep], exclude[keep]
        self.median_rows_ = float(np.median(block_rows[keep])) if keep.any() else 1.0
        self.n_days_ = int((exclude.sum(0) > 0).sum())
        self.touches_ = exclude > 0
        cols = []
        for c in self.profile_.columns.values():
            codes = c.encode(ref[c.name])
            v = len(c.values)
            code = np.where(codes < 0, v, codes)  # v = missing
            per_tick = np.zeros((n_ticks, v + 1))
            np.add.at(per_tick, (tick, code), 1.0)
            cum = np.vstack([np.zeros((1, v + 1)), np.cumsum(per_tick, axis=0)])
            block = cum[w_hi] - cum[w_lo]
            per_day_counts = np.zeros((n_days, v + 1))
            np.add.at(per_day_counts, (day, code), 1.0)
            rest = per_tick.sum(axis=0)[None, :] - exclude @ per_day_counts
            cols.append(_stats_from_counts(c, block, rest))
        for r in self.profile_.regressions:
            cols.append(
                self._resid_null(ref, r, tick, day, n_ticks, n_days, w_lo, w_hi, exclude)[:, None]
            )
        return np.hstack(cols) if cols else np.empty((len(w_lo), 0))

    def _resid_null(
        self,
        ref: pd.DataFrame,
        r: Regression,
        tick: np.ndarray,
        day: np.ndarray,
        n_ticks: int,
        n_days: int,
        w_lo: np.ndarray,
        w_hi: np.ndarray,
        exclude: np.ndarray,
    ) -> np.ndarray:
        """RMS residual of each block under the regression refitted on reference-minus-days.
        Sums of squares decompose, so per-tick Gram matrices suffice."""
        y = _numbers(ref[r.target])
        ok = ~np.isnan(y)
        x = _design(ref, r.predictors, self.profile_.means)
        z = np.column_stack([x, np.where(ok, y, 0.0)]) * ok[:, None]
        p = z.shape[1]
        outer = (z[:, :, None] * z[:, None, :]).reshape(len(z), -1)
        g_tick = np.zeros((n_ticks, p * p))
        np.add.at(g_tick, tick, outer)
        g_day = np.zeros((n_days, p * p))
        np.add.at(g_day, day, outer)
        cum = np.vstack([np.zeros((1, p * p)), np.cumsum(g_tick, 0)])
        g_block = (cum[w_hi] - cum[w_lo]).reshape(-1, p, p)
        g_rest = (g_tick.sum(0)[None, :] - exclude @ g_day).reshape(-1, p, p)
        k = p - 1
        beta = np.linalg.solve(g_rest[:, :k, :k] + 1e-9 * np.eye(k), g_rest[:, :k, k][..., None])[
            ..., 0
        ]

        def sse(g: np.ndarray) -> np.ndarray:
            return (
                g[:, k, k]
                - 2 * np.einsum("wi,wi->w", beta, g[:, :k, k])
                + np.einsum("wi,wij,wj->w", beta, g[:, :k, :k], beta)
            )

        sd = np.sqrt(np.maximum(sse(g_rest) / np.maximum(g_rest[:, 0, 0], 1), 1e-18))
        n_block = g_block[:, 0, 0]
        out = np.sqrt(np.maximum(sse(g_block), 0) / np.maximum(n_block, 1)) / sd
        out[n_block == 0] = np.nan
        return out


def _blind_spots(
    comps: list[str], thr: np.ndarray, null: np.ndarray, counting: np.ndarray, span: pd.Timedelta
) -> list[str]:
    """Data-quality statistics (missing, novel, modal shares) whose threshold is at the most
    they can ever reach (1): they cannot alarm. Said out loud (one line per span), because an
    all-null column that cannot raise the alarm is a silent blind spot. Most are natural (one
    ``hour`` value per hourly block, ``precip`` 0 on dry days); a ``missing`` one means a broken
    feed of that column goes unseen at this span. (A distance at its maximum, KS = 1 for one
    weather reading per hour, is left alone: W1 still sees how far the values moved.)"""
    found: dict[str, list[str]] = {"missing": [], "novel": [], "modal": []}
    for j, name in enumerate(comps):
        col, stat = name.split(":")
        if stat in found and counting[j] and np.isfinite(thr[j]) and thr[j] >= 1 - 1e-9:
            x = null[:, j][np.isfinite(null[:, j])]
            seen = float(np.mean(x >= 1 - 1e-9)) if len(x) else 0.0
            found[stat].append(f"{col} ({100 * seen:.1f}% of quiet blocks)")
    what = {
        "missing": "all-null",
        "novel": "only unseen values",
        "modal": "frozen at one value",
    }
    parts = [f"{what[k]}: {', '.join(v)}" for k, v in found.items() if v]
    if not parts:
        return []
    return [
        f"blind spots at {span_label(span)}, where the reference's own quiet blocks already"
        f" reach the extreme, so these cannot raise the alarm: {'; '.join(parts)}"
    ]


def _stats_from_counts(c: BlockColumn, block: np.ndarray, rest: np.ndarray) -> np.ndarray:
    from scipy.special import rel_entr

    n_all = block.sum(1)
    missing = block[:, -1] / np.maximum(n_all, 1)
    block, rest = block[:, :-1], rest[:, :-1]
    nb, nr = block.sum(1), rest.sum(1)
    empty = nb == 0
    nbs = np.maximum(nb, 1)[:, None]
    if c.kind == "numerical" and block.shape[1]:
        # Beyond the rest's range by more than the record margins (every reference value is
        # on the lattice): see BlockColumn.novel. The margins come from the whole reference.
        seen = rest > 0
        v = c.values.astype(float)
        lo = v[np.where(seen.any(1), seen.argmax(1), 0)][:, None] - c.margins[0]
        hi = v[block.shape[1] - 1 - seen[:, ::-1].argmax(1)][:, None] + c.margins[1]
        lo[~seen.any(1)] = np.inf  # nothing left to compare with: every value is novel
        novel = (block * ((v[None, :] < lo) | (v[None, :] > hi))).sum(1) / nbs[:, 0]
    else:
        novel = (block * (rest == 0)).sum(1) / nbs[:, 0]
    modal = (block.max(1) if block.shape[1] else np.zeros(len(block))) / nbs[:, 0]
    if c.kind == "numerical":
        v = c.values.astype(float)
        fb, fr = np.cumsum(block, 1) / nbs, np.cumsum(rest, 1) / np.maximum(nr, 1)[:, None]
        gap = np.abs(fb - fr)
        mean = (rest @ v) / np.maximum(nr, 1)
        var = (rest @ (v**2)) / np.maximum(nr, 1) - mean**2
        std = np.sqrt(np.maximum(var, 0))
        w1 = (gap[:, :-1] @ np.diff(v)) / np.maximum(std, 0.001)
        ks = gap.max(1) if gap.shape[1] else np.zeros(len(gap))
        out = np.column_stack([w1, ks, missing, novel, modal])
        out[empty, 0:2] = np.nan
        out[empty, 3:] = np.nan
    else:
        p, q = rest / np.maximum(nr, 1)[:, None], block / nbs
        m = (p + q) / 2
        js = np.sqrt(np.maximum((rel_entr(p, m).sum(1) + rel_entr(q, m).sum(1)) / 2, 0))
        out = np.column_stack([js, missing, novel, modal])
        out[empty, 0] = np.nan
        out[empty, 2:] = np.nan
    return out


# -- checking a batch --------------------------------------------------------------------------


class BlockDetector:
    """Judge a batch against block-calibrated thresholds; the same result type as every rule.

    One :class:`~driftwatch.engine.drift.ColumnDrift` per column: its most severe statistic
    (score / threshold) is shown, and every statistic past its threshold is named in the note.
    ``counting``: the columns that raise the dataset alarm (None: all).
    """

    def __init__(
        self,
        profile: BlockProfile,
        thresholds: BlockThresholds,
        counting: list[str] | None = None,
        fingerprint: str = "",
        reference_rows: int = 0,
    ) -> None:
        self.profile = profile
        self.thresholds = thresholds
        self.counting = counting
        self.fingerprint = fingerprint
        self.reference_rows = reference_rows

    def check(self, current: pd.DataFrame, source: str = "current batch") -> DriftResult:
        t = self.thresholds
        stats = (
            block_statistics(self.profile, current)
            if len(current)
            else np.full(len(t.components), np.nan)
        )
        counts = {}
        for col in self.profile.columns:
            values = current[col] if col in current.columns else pd.Series(dtype=float)
            counts[col] = (len(values), int(values.isna().sum()))
        return self._result(stats, counts, len(current))

    def check_summary(self, summary: Any, source: str = "current batch") -> DriftResult:
        """The check of a batch's rows summarised per time block and merged (a
        :class:`~driftwatch.engine.block_summaries.BlockSummary` on the lattices of
        ``block_lattices(self.profile)``): the same statistics, thresholds and result as
        :meth:`check`, computed from counts (see block_summaries.py for which are exact)."""
        from driftwatch.engine.block_summaries import block_statistics_summary, reference_summaries

        t = self.thresholds
        if summary is None or summary.rows == 0:
            stats = np.full(len(t.components), np.nan)
            counts = {col: (0, 0) for col in self.profile.columns}
            return self._result(stats, counts, 0)
        lattices = {
            c: s.edges for c, s in summary.columns.items() if s.edges is not None and s.edges.size
        }
        refs = reference_summaries(self.profile, lattices)
        stats = block_statistics_summary(self.profile, summary, refs)
        counts = {c: (s.rows, s.missing) for c, s in summary.columns.items()}
        return self._result(stats, counts, summary.rows)

    def _result(
        self, stats: np.ndarray, counts: dict[str, tuple[int, int]], rows: int
    ) -> DriftResult:
        """The verdict from every component's statistic; ``counts``: per column (rows, nulls)."""
        t = self.thresholds
        by_column: dict[str, list[int]] = {c: [] for c in self.profile.columns}
        for j, name in enumerate(t.components):
            by_column[name.split(":")[0]].append(j)
        columns = []
        report_only = [c for c in self.profile.columns if not self._counts(c)]
        for col, idx in by_column.items():
            columns.append(self._column(col, idx, stats, *counts.get(col, (0, 0))))
        counted = [c for c in columns if c.column not in report_only]
        tested = [c for c in counted if c.status != "insufficient_data"]
        n_drifted = sum(1 for c in tested if c.drifted)
        alarm = n_drifted > 0
        share = n_drifted / len(tested) if tested else 0.0
        label = span_label(t.span)
        return DriftResult(
            columns=columns,
            drift_share=0.5,
            n_tested=len(tested),
            n_drifted=n_drifted,
            share=share,
            dataset_drift=alarm,
            rows_current=rows,
            rows_reference=self.reference_rows,
            reference_fingerprint=self.fingerprint,
            method="calibrated",
            alpha=t.rate,
            report_only=report_only,
            description=(
                f"{n_drifted}/{len(tested)} columns drifted (time-block thresholds for {label},"
                f" {t.rule} rule, false alarms {t.rate:.2g})"
            ),
            span=label,
        )

    def _counts(self, column: str) -> bool:
        return self.counting is None or column in self.counting

    def _column(
        self, col: str, idx: list[int], stats: np.ndarray, n_rows: int, n_null: int
    ) -> ColumnDrift:
        t = self.thresholds
        kind = self.profile.columns[col].kind
        finite = [j for j in idx if np.isfinite(stats[j])]
        base = {
            "column": col,
            "kind": kind,
            "rows_reference": int(self.profile.columns[col].counts.sum()),
            "rows_current": n_rows - n_null,
            "dropped_current": n_null,
        }
        if not n_rows or not finite:
            return ColumnDrift.not_judged("no rows to judge", **base)

        def severity(j: int) -> float:
            thr = t.thresholds[j]
            if not np.isfinite(thr):
                return 0.0
            return float(stats[j] / thr) if thr > 0 else (np.inf if stats[j] > 0 else 0.0)

        past = [j for j in finite if stats[j] > t.thresholds[j]]
        shown = max(past or finite, key=severity)
        notes = [
            f"{t.components[j].split(':')[1]} {stats[j]:.3g} > {t.thresholds[j]:.3g}"
            for j in sorted(past, key=severity, reverse=True)
            if j != shown
        ]
        if not self._counts(col):
            notes.insert(0, "report only")
        return ColumnDrift(
            **base,
            test=t.components[shown].split(":")[1],
            statistic=float(stats[shown]),
            p_value=None,
            score=float(stats[shown]),
            threshold=float(t.thresholds[shown]),
            drifted=bool(past),
            status="drift" if past else "ok",
            note="; ".join(notes),
        )


def thresholds_to_dict(t: BlockThresholds) -> dict:
    """Plain data (YAML-safe) for the calibration file and the cache."""
    return {
        "span": span_label(t.span),
        "rule": t.rule,
        "rate": t.rate,
        "supported_rate": round(t.supported_rate, 6),
        "blocks": t.n_blocks,
        "days": t.n_days,
        "in_sample_alarms": t.in_sample_alarms,
        "median_rows": t.median_rows,
        "seconds": t.seconds,
        "warnings": list(t.warnings),
        "components": {
            name: {
                "threshold": float(t.thresholds[j]),
                "null_median": _plain(t.null_median[j]),
                "null_p99": _plain(t.null_p99[j]),
            }
            for j, name in enumerate(t.components)
        },
    }


def thresholds_from_dict(d: dict) -> BlockThresholds:
    comps = list(d["components"])
    col = [d["components"][c] for c in comps]

    def arr(key: str) -> np.ndarray:
        return np.array([np.nan if c[key] is None else float(c[key]) for c in col])

    return BlockThresholds(
        span=pd.Timedelta(d["span"]),
        components=comps,
        thresholds=arr("threshold"),
        null_median=arr("null_median"),
        null_p99=arr("null_p99"),
        n_blocks=int(d["blocks"]),
        n_days=int(d["days"]),
        rule=str(d["rule"]),
        rate=float(d["rate"]),
        supported_rate=float(d["supported_rate"]),
        in_sample_alarms=int(d["in_sample_alarms"]),
        median_rows=float(d["median_rows"]),
        seconds=float(d.get("seconds", 0.0)),
        warnings=list(d.get("warnings", [])),
    )


def _plain(v: float) -> float | None:
    return None if not np.isfinite(v) else round(float(v), 6)
