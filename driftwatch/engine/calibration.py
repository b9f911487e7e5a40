"""Calibrated drift thresholds: "alarm on at most 1% of quiet hours", kept by construction.

A fixed threshold means a different false-alarm rate at every batch size and column (a distance
of 0.1 is noise at 100 rows and a huge shift at 100,000), and ten columns tested at 5% each
alarm far more often than 5%. Instead we *measure* the null distribution: split the reference
in two random halves, fit the detector's reference side on one half, draw batches of the
configured size from the other half (so no row is scored against itself), and record every
column's statistic. The per-column thresholds are then set together, at one common per-column
tail level, so that the share of resampled batches with *any* column past its threshold (the
dataset-level alarm) stays within the target. Working on the maximum over columns accounts for
the number of columns and for their correlation, which Bonferroni ignores. Each column's tail is
modelled (tails.py) so the thresholds are smooth quantiles inside the data, not the noisy
sample maximum a per-column level of about rate / columns would otherwise land on; their
bootstrap standard errors go into the calibration file.

Two deliberate safety margins, both conservative: the allowed number of in-sample alarms is a
binomial tolerance bound (the rate holds with ``confidence``, not just on average), and a half
reference is noisier than the whole one the monitor uses.

Written by hand because no maintained library calibrates drift thresholds this way (NannyML
uses fixed sigma bands on chunk statistics; Evidently uses fixed thresholds). The Wasserstein and
Jensen-Shannon statistics are computed here in a vectorised form over the reference's distinct
values (thousands of batches in seconds); the tests check they equal the monitor's functions.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftwatch.engine.drift import DriftDetector, _prepare
from driftwatch.engine.rules import ColumnRule
from driftwatch.engine.stattests import ColumnSample, StatTest
from driftwatch.engine.tails import Tail, fit_tail
from driftwatch.files import atomic_write_bytes

# 2: tail-model thresholds, their standard errors, untestable columns (threshold null + reason).
CALIBRATION_FORMAT = 2


@dataclass
class ColumnThreshold:
    test: str
    # None: the column cannot be judged at this batch size (``reason`` says why); never inf.
    threshold: float | None
    pinned: bool = False
    # The resampled null statistic, for the reader: its median and its 99th percentile.
    null_median: float | None = None
    null_p99: float | None = None
    # The threshold's own standard error (a bootstrap of the resampled batches): how much it
    # would move if calibrated again with another random_state.
    threshold_se: float | None = None
    # The share of resampled batches in which the column had drift.min_rows usable values.
    tested_share: float | None = None
    reason: str = ""


@dataclass
class Calibration:
    """Thresholds plus where they came from; the provenance decides whether they still apply."""

    columns: dict[str, ColumnThreshold]
    batch_rows: int
    false_alarm_rate: float
    confidence: float
    batches: int
    allowed_alarms: int
    in_sample_alarms: int
    reference_sha256: str
    reference_rows: int
    key: str
    # The common per-column tail level the thresholds sit at (see _fit_levels).
    level: float | None = None
    created: str = ""
    seconds: float = 0.0
    reference_path: str = ""
    warnings: list[str] = field(default_factory=list)
    format: int = CALIBRATION_FORMAT

    def tests(self) -> dict[str, ColumnRule]:
        """The detector's per-column rules; a column without a threshold is judged
        "insufficient data" with the calibration's reason."""
        return {
            c: ColumnRule(test=t.test, threshold=t.threshold, pinned=t.pinned, reason=t.reason)
            for c, t in self.columns.items()
        }

    def to_yaml(self) -> str:
        import yaml

        head = (
            "# Drift thresholds calibrated by `driftwatch calibrate` (see driftwatch/calibration.py)."
            "\n# A batch of batch_rows rows drawn from the reference raises a dataset alarm with"
            "\n# probability <= false_alarm_rate (with the stated confidence). Set `pinned: true`"
            "\n# on a column to keep its threshold when recalibrating; the rest is regenerated.\n"
        )
        body = asdict(self)
        return head + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)

    def save(self, path: Path) -> Path:
        return atomic_write_bytes(path, self.to_yaml().encode())

    @classmethod
    def load(cls, path: Path) -> Calibration:
        import yaml

        try:
            raw = yaml.safe_load(path.read_text()) or {}
            if raw.get("format") != CALIBRATION_FORMAT:
                raise ValueError(f"not a calibration of format {CALIBRATION_FORMAT}")
            raw["columns"] = {c: ColumnThreshold(**v) for c, v in raw["columns"].items()}
            return cls(**raw)
        except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: unreadable calibration file: {exc}") from exc

    def pins(self) -> dict[str, tuple[str, float]]:
        return {
            c: (t.test, t.threshold)
            for c, t in self.columns.items()
            if t.pinned and t.threshold is not None
        }


def allowed_alarms(batches: int, rate: float, confidence: float) -> int:
    """Most in-sample alarms r such that P(Binomial(batches, rate) <= r) <= 1 - confidence.

    If the true alarm probability were above ``rate``, seeing r or fewer alarms in ``batches``
    draws would happen with probability under 1 - confidence: a one-sided tolerance bound.
    Returns -1 when even 0 alarms cannot give that confidence (too few batches).
    """
    from scipy import stats

    r = int(stats.binom.ppf(1 - confidence, batches, rate))
    while r >= 0 and stats.binom.cdf(r, batches, rate) > 1 - confidence:
        r -= 1
    return r


# Batch sizes are calibrated exactly below this, and in steps of 2 ** (1 / 8) above it.
EXACT_BELOW = 64


def size_bucket(rows: int, cap: int | None = None) -> int:
    """The batch size thresholds are calibrated for: exact below 64 rows, else rounded down to
    a step of 2 ** (1/8) (at most 8.3% fewer rows, so thresholds at most ~4% above the exact
    size's: a null distance shrinks like 1 / sqrt(rows)), and at most ``cap``. Rounding down
    errs on the quiet side: a smaller batch has a wider null distribution. Above the cap the
    cap's thresholds are used (quiet side again; at that size the shifts the README measures
    are caught anyway), which bounds a calibration's cost whatever the batch size."""
    if rows < EXACT_BELOW:
        out = max(rows, 1)
    else:  # the largest int(2 ** (k / 8)) <= rows (idempotent: a bucket is its own bucket)
        k = math.floor(8 * math.log2(rows))
        while int(2 ** ((k + 1) / 8)) <= rows:
            k += 1
        out = max(EXACT_BELOW, int(2 ** (k / 8)))
    return min(out, size_bucket(cap)) if cap else out  # the cap snapped to a bucket too


@dataclass
class _Column:
    """One reference column as integer codes into its sorted distinct values."""

    name: str
    test: StatTest
    threshold: float | None  # pinned
    codes: np.ndarray  # -1: missing / non-finite
    values: np.ndarray  # distinct values (sorted for numbers), as the detector sees them
    kind: str


class ThresholdCalibrator:
    """``fit(reference)`` estimates per-column thresholds for ``detector``'s columns and tests.

    Pinned thresholds (the detector's ``tests`` with a threshold) are kept and counted in the
    dataset-level alarm; the others are set. Learned state: ``thresholds_``, ``null_``
    (batches x columns statistics), ``allowed_alarms_``, ``in_sample_alarms_``.
    """

    def __init__(
        self,
        detector: DriftDetector,
        batch_rows: int,
        false_alarm_rate: float = 0.01,
        batches: int = 4000,
        confidence: float = 0.95,
        random_state: int = 0,
        splits: int = 1000,
    ) -> None:
        self.detector = detector
        self.batch_rows = batch_rows
        self.false_alarm_rate = false_alarm_rate
        self.batches = batches
        self.confidence = confidence
        self.random_state = random_state
        self.splits = splits

    # -- resampling ------------------------------------------------------------------------
    def _columns(self, reference: pd.DataFrame) -> list[_Column]:
        out = []
        for name, kind in self.detector.kinds_for(reference).items():
            values = _prepare(reference[name], kind, name, "reference")
            full, _ = ColumnSample.from_series(values, kind)
            if full.n == 0:
                raise ValueError(f"reference column {name!r} has no usable values")
            test = self.detector.choose_test(name, full, full)
            pinned = self.detector.threshold_of(name)
            if kind == "numerical":
                arr = np.asarray(values, dtype=np.float64)
                uniq = full.unique_values().astype(np.float64)
                codes = np.full(arr.size, -1, dtype=np.int64)
                ok = np.isfinite(arr)
                codes[ok] = np.searchsorted(uniq, arr[ok])
            else:
                cat = pd.Categorical(values)
                uniq = np.asarray(cat.categories, dtype=object)
                codes = np.asarray(cat.codes, dtype=np.int64)
            out.append(_Column(name, test, pinned, codes, uniq, kind))
        return out

    def fit(self, reference: pd.DataFrame) -> ThresholdCalibrator:
        if len(reference) < 2 * max(self.detector.min_rows, 10):
            raise ValueError(
                f"reference has {len(reference)} rows: too few to calibrate thresholds"
            )
        rng = np.random.default_rng(self.random_state)
        cols = self._columns(reference)
        n = len(reference)
        null = np.full((self.batches, len(cols)), np.nan)
        # A fresh split every 10 batches (split-to-split noise was half of the thresholds'
        # spread at 20 splits), at most 10 million split rows in all (a bounded cost on a big
        # reference, whose halves differ little from one split to the next anyway).
        splits = max(1, min(self.splits, self.batches // 10, 10_000_000 // max(n, 1)))
        bounds = np.linspace(0, self.batches, splits + 1).astype(int)
        # Every column's codes side by side: a resampled row is one memory read for all of
        # them (one read per column was most of the time on a 1M-row reference).
        wide = max(c.values.size for c in cols) >= 2**31
        table = np.stack([c.codes for c in cols], axis=1).astype(np.int64 if wide else np.int32)
        for s in range(splits):
            perm = rng.permutation(n)
            fit_rows, held_out = perm[: n // 2], perm[n // 2 :]
            # A few batches at a time: batches x rows x columns codes stay under ~64 MB.
            chunk = max(1, 16_000_000 // (self.batch_rows * len(cols)))
            for lo in range(bounds[s], bounds[s + 1], chunk):
                hi = min(lo + chunk, bounds[s + 1])
                picks = held_out[rng.integers(0, held_out.size, size=(hi - lo, self.batch_rows))]
                drawn = table[picks]  # batches x rows x columns
                for j, col in enumerate(cols):
                    null[lo:hi, j] = _null_scores(
                        col, fit_rows, picks, self.detector.min_rows, drawn[:, :, j]
                    )
        self.columns_ = [c.name for c in cols]
        self.tests_ = {c.name: c.test.name for c in cols}
        self.null_ = null
        self._set_thresholds(cols, null)
        return self

    # -- thresholds --------------------------------------------------------------------------
    def _set_thresholds(self, cols: list[_Column], null: np.ndarray) -> None:
        flip = np.array([c.test.score == "p_value" for c in cols], dtype=bool)
        self.warnings_: list[str] = []
        allowed = allowed_alarms(null.shape[0], self.false_alarm_rate, self.confidence)
        if allowed < 0:
            self.warnings_.append(
                f"{null.shape[0]} resampled batches cannot show a {self.false_alarm_rate:g}"
                f" false-alarm rate with {self.confidence:.0%} confidence; thresholds are set"
                " above every resampled batch (raise drift.calibration.batches)"
            )
            allowed = 0
        fitted = _fit_levels(cols, null, flip, self._counting(cols), allowed, self.min_tested())
        level, thresholds, alarms = fitted
        if fitted.pinned_alarms > allowed:
            self.warnings_.append(
                f"pinned thresholds alone alarm on {fitted.pinned_alarms / null.shape[0]:.1%} of"
                f" resampled quiet batches, above the {self.false_alarm_rate:g} target"
            )
        # The thresholds' own uncertainty: the same fit on batches resampled with replacement.
        rng = np.random.default_rng(self.random_state + 1)
        boot = []
        for _ in range(BOOTSTRAP):
            pick = rng.integers(0, null.shape[0], null.shape[0])
            boot.append(
                _fit_levels(
                    cols, null[pick], flip, self._counting(cols), allowed, self.min_tested()
                ).thresholds
            )
        self.thresholds_: dict[str, ColumnThreshold] = {}
        for j, c in enumerate(cols):
            finite = null[:, j][np.isfinite(null[:, j])]
            med = float(np.median(finite)) if finite.size else None
            p99 = float(np.quantile(finite, 0.01 if flip[j] else 0.99)) if finite.size else None
            tested = finite.size / null.shape[0]
            if c.threshold is not None:
                self.thresholds_[c.name] = ColumnThreshold(
                    c.test.name, c.threshold, True, med, p99, tested_share=round(tested, 4)
                )
                continue
            t = thresholds[j]
            if t is None:
                reason = (
                    f"at {self.batch_rows} rows per batch only {finite.size} of"
                    f" {null.shape[0]} resampled batches had {self.detector.min_rows}"
                    " (drift.min_rows) usable values in this column: too few to estimate its"
                    " threshold"
                )
                self.warnings_.append(f"column {c.name!r}: {reason}; it is not judged")
                self.thresholds_[c.name] = ColumnThreshold(
                    c.test.name, None, False, med, p99, reason=reason, tested_share=round(tested, 4)
                )
                continue
            spread = [b[j] for b in boot if b[j] is not None]
            se = float(np.std(spread, ddof=1)) if len(spread) > 1 else None
            self.thresholds_[c.name] = ColumnThreshold(
                c.test.name,
                float(t),
                False,
                med,
                p99,
                threshold_se=None if se is None else float(f"{se:.4g}"),
                tested_share=round(tested, 4),
            )
        self.level_ = level
        self.allowed_alarms_ = allowed
        self.in_sample_alarms_ = alarms

    def min_tested(self) -> int:
        """Fewest resampled batches in which a column must be testable for a threshold."""
        return max(MIN_TESTED, int(0.1 * self.batches))

    def _counting(self, cols: list[_Column]) -> np.ndarray:
        # Report-only columns get thresholds at the same per-column level but raise no alarm.
        counts = np.array([c.name not in self.detector.report_only for c in cols], dtype=bool)
        if not counts.any():  # all report-only: their level is set as if they counted
            counts[:] = True
        return counts


# Bootstrap replicates of the threshold fit (closed-form tails: milliseconds each).
BOOTSTRAP = 100
# A column needs a threshold estimated from at least this many batches in which it was tested.
MIN_TESTED = 100


@dataclass
class _Levels:
    level: float
    thresholds: list[float | None]  # the test's own scale; None: too rarely testable
    alarms: int
    pinned_alarms: int

    def __iter__(self):  # level, thresholds, alarms = fitted
        return iter((self.level, self.thresholds, self.alarms))


def _fit_levels(
    cols: list[_Column],
    null: np.ndarray,
    flip: np.ndarray,
    counts: np.ndarray,
    allowed: int,
    min_tested: int,
) -> _Levels:
    """One common per-column tail level q for the free columns, the one at which the
    resampled batches with any counting column past its threshold (or a pinned one past its
    pin) are expected to number ``allowed``; each threshold is its column's smooth ``1 - q``
    quantile.

    Why a tail model: with m columns the per-column level is about rate / m, at or beyond the
    largest resampled value, and a threshold at the sample maximum is noisy (see tails.py).
    Every batch is scored by its smallest tail probability over the columns, so the dataset
    level still comes from the batches themselves (their correlation included) and is read
    well inside the sample."""
    # Severity, larger = more drift: p-values as -log p (unbounded, so a tail can be fitted).
    with np.errstate(divide="ignore"):
        sev = np.where(flip, -np.log(np.maximum(null, 1e-300)), null)
    b = sev.shape[0]
    pinned = np.array([c.threshold is not None for c in cols], dtype=bool)
    pinned_alarm = np.zeros(b, dtype=bool)
    for j in np.flatnonzero(pinned & counts):
        pin = -np.log(cols[j].threshold) if flip[j] else cols[j].threshold
        pinned_alarm |= np.isfinite(sev[:, j]) & (sev[:, j] >= pin)
    tails: dict[int, Tail] = {}
    for j in np.flatnonzero(~pinned):
        finite = sev[:, j][np.isfinite(sev[:, j])]
        if finite.size >= min_tested:
            tails[j] = fit_tail(finite)
    # Each batch's smallest tail probability over the free counting columns it was tested on.
    p = np.ones(b)
    for j, tail in tails.items():
        if counts[j]:
            p = np.minimum(p, tail.sf(sev[:, j]))
    room = allowed - int(pinned_alarm.sum())
    free_p = np.sort(p[~pinned_alarm])
    # The level at which `room` batches are expected to alarm. For rare alarms the count of
    # batches with p <= q grows linearly in q, so it is read off the K-th smallest p (K well
    # inside the sample, a 16% relative error at K = 40) instead of the room-th (5th of 1,000:
    # 45%), which made the thresholds, and the detection, move with random_state.
    k = min(max(40, 4 * (room + 1)), free_p.size // 2)
    if room <= 0 or free_p.size == 0:
        level = free_p[0] / 2 if free_p.size else 1e-12
    elif room >= k:  # enough batches: the rank itself is stable
        level = float(np.sqrt(max(free_p[room - 1], 1e-300) * free_p[room]))
    else:
        level = room * float(free_p[k - 1]) / k
    level = float(max(min(level, 1.0), 1e-300))
    thresholds: list[float | None] = [None] * len(cols)
    alarm = pinned_alarm.copy()
    for j, tail in tails.items():
        t = tail.isf(level)
        thresholds[j] = float(np.exp(-t)) if flip[j] else t
        if counts[j]:
            alarm |= np.isfinite(sev[:, j]) & (sev[:, j] >= t)
    return _Levels(level, thresholds, int(alarm.sum()), int(pinned_alarm.sum()))


def _null_scores(
    col: _Column,
    fit_rows: np.ndarray,
    picks: np.ndarray,
    min_rows: int,
    drawn: np.ndarray | None = None,
) -> np.ndarray:
    """The column's statistic for each resampled batch (rows of ``picks``) against ``fit_rows``;
    ``drawn``: the column's codes at ``picks``, when already gathered."""
    all_codes = col.codes[picks] if drawn is None else drawn.astype(np.int64)
    size = col.values.size
    fit_codes = col.codes[fit_rows]
    ref_counts = np.bincount(fit_codes[fit_codes >= 0], minlength=size)
    out = np.full(picks.shape[0], np.nan)
    if col.test.name == "wasserstein" and col.kind == "numerical" and size > 2 * picks.shape[1]:
        # Many distinct values (a continuous column of a big reference): from the batch's
        # sorted values, O(rows) per batch instead of O(distinct values).
        step = max(1, 4_000_000 // max(picks.shape[1], 1))
        for lo in range(0, picks.shape[0], step):
            codes = all_codes[lo : lo + step]
            scores = _wasserstein_codes(col.values, ref_counts, codes)
            scores[(codes >= 0).sum(axis=1) < max(min_rows, 1)] = np.nan
            out[lo : lo + step] = scores
        return out
    # Batches are counted a few at a time: a count matrix is batches x distinct values.
    step = max(1, min(picks.shape[0], 4_000_000 // max(size, picks.shape[1])))
    for lo in range(0, picks.shape[0], step):
        codes = all_codes[lo : lo + step]
        valid = codes >= 0
        n_cur = valid.sum(axis=1)
        offsets = (np.arange(codes.shape[0]) * size)[:, None]
        cur_counts = np.bincount((codes + offsets)[valid], minlength=codes.shape[0] * size).reshape(
            codes.shape[0], size
        )
        name = col.test.name
        if name == "wasserstein" and col.kind == "numerical":
            scores = _wasserstein_counts(col.values, ref_counts, cur_counts, n_cur)
        elif name == "jensenshannon" and (col.kind == "categorical" or size <= 20):
            scores = _jensenshannon_counts(ref_counts, cur_counts, n_cur)
        else:
            scores = _generic(col, ref_counts, cur_counts)
        scores = scores.astype(np.float64)
        scores[n_cur < max(min_rows, 1)] = np.nan
        out[lo : lo + step] = scores
    return out


def _wasserstein_counts(
    values: np.ndarray, ref_counts: np.ndarray, cur_counts: np.ndarray, n_cur: np.ndarray
) -> np.ndarray:
    """W1 / std(reference) from counts on the sorted distinct values: the CDF gap times spacing
    (what stattests.wasserstein_sorted sums, without sorting anything)."""
    n_ref = ref_counts.sum()
    ref_cdf = np.cumsum(ref_counts) / n_ref
    mean = float(ref_counts @ values) / n_ref
    std = math.sqrt(float(ref_counts @ (values - mean) ** 2) / n_ref)
    cur_cdf = np.cumsum(cur_counts, axis=1) / np.maximum(n_cur, 1)[:, None]
    gaps = np.abs(cur_cdf[:, :-1] - ref_cdf[:-1])
    return (gaps @ np.diff(values)) / max(std, 0.001)


def _wasserstein_codes(values: np.ndarray, ref_counts: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """What _wasserstein_counts computes, from each batch's codes (-1: missing) instead of a
    batches x distinct-values count matrix: the batch's CDF is constant (i / n) between its
    sorted values, and the sum of |i / n - F_ref| x spacing over such a stretch comes from
    prefix sums of the reference CDF, split where F_ref crosses i / n."""
    s = values.size
    n_ref = ref_counts.sum()
    mean = float(ref_counts @ values) / n_ref
    std = math.sqrt(float(ref_counts @ (values - mean) ** 2) / n_ref)
    r = (np.cumsum(ref_counts) / n_ref)[: s - 1]  # F_ref on [v_k, v_k+1)
    gap = np.diff(values)
    d = np.concatenate([[0.0], np.cumsum(gap)])  # prefix sums, length s
    rd = np.concatenate([[0.0], np.cumsum(r * gap)])
    n = (codes >= 0).sum(axis=1)
    srt = np.sort(np.where(codes >= 0, codes, s - 1), axis=1)  # missing: empty stretches
    b_rows, m_rows = srt.shape
    # Stretch i (0..m) runs over k in [a_i, b_i), where the batch CDF is i / n; a_i = b_(i-1),
    # so the prefix sums at the batch's own values are read once.
    first = np.zeros((b_rows, 1), dtype=srt.dtype)
    last = np.full((b_rows, 1), s - 1, dtype=srt.dtype)
    a = np.concatenate([first, srt], axis=1)
    b = np.concatenate([srt, last], axis=1)
    d_at, rd_at = d[srt], rd[srt]
    d_a = np.concatenate([np.zeros((b_rows, 1)), d_at], axis=1)
    d_b = np.concatenate([d_at, np.full((b_rows, 1), d[s - 1])], axis=1)
    rd_a = np.concatenate([np.zeros((b_rows, 1)), rd_at], axis=1)
    rd_b = np.concatenate([rd_at, np.full((b_rows, 1), rd[s - 1])], axis=1)
    c = np.arange(m_rows + 1)[None, :] / np.maximum(n, 1)[:, None]
    # Where F_ref crosses i / n depends on n only: looked up once per distinct batch count.
    counts, which = np.unique(n, return_inverse=True)
    steps = np.arange(m_rows + 1)
    cross = np.stack([np.searchsorted(r, steps / max(int(u), 1), side="left") for u in counts])
    m = np.clip(cross[which.ravel()], a, b)
    d_m, rd_m = d[m], rd[m]
    total = c * (2 * d_m - d_a - d_b) + (rd_a + rd_b - 2 * rd_m)
    return total.sum(axis=1) / max(std, 0.001)


def _jensenshannon_counts(
    ref_counts: np.ndarray, cur_counts: np.ndarray, n_cur: np.ndarray
) -> np.ndarray:
    """scipy's jensenshannon (natural log) over value shares, one batch per row."""
    from scipy.special import rel_entr

    p = ref_counts / ref_counts.sum()
    q = cur_counts / np.maximum(n_cur, 1)[:, None]
    m = (p + q) / 2
    js = (rel_entr(p, m).sum(axis=1) + rel_entr(q, m).sum(axis=1)) / 2
    return np.sqrt(np.maximum(js, 0))


def _generic(col: _Column, ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """Any other configured test, through the monitor's own function (slower, exact)."""

    def sample(counts: np.ndarray) -> ColumnSample:
        n = int(counts.sum())
        if col.kind == "numerical":
            arr = np.repeat(col.values.astype(np.float64), counts)
            return ColumnSample(
                "numerical",
                n,
                sorted_values=arr,
                std=float(np.std(arr)) if n else 0.0,
                nunique=int(np.count_nonzero(counts)),
            )
        keep = counts > 0
        series = pd.Series(counts[keep], index=pd.Index(col.values[keep], dtype=object))
        return ColumnSample("categorical", n, counts_=series, nunique=int(keep.sum()))

    ref = sample(ref_counts)
    out = np.full(cur_counts.shape[0], np.nan)
    for i, counts in enumerate(cur_counts):
        if counts.sum() == 0:
            continue
        outcome = col.test(ref, sample(counts), col.test.default_threshold)
        out[i] = outcome.p_value if col.test.score == "p_value" else outcome.statistic
    return out


# -- the monitor's entry points ----------------------------------------------------------------


def calibration_key(detector: DriftDetector, reference_sha256: str, spec: dict[str, Any]) -> str:
    """What the thresholds depend on: the reference's content and every setting that shapes them."""
    parts = {
        "format": CALIBRATION_FORMAT,
        "reference": reference_sha256,
        "tests": {c: [r.test, r.threshold] for c, r in sorted(detector.tests.items())},
        "ignore": sorted(detector.ignore),
        "report_only": sorted(detector.report_only),
        "numerical": detector.numerical,
        "categorical": detector.categorical,
        "min_rows": detector.min_rows,
        **spec,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def calibrate(
    detector: DriftDetector,
    reference: pd.DataFrame,
    reference_sha256: str,
    batch_rows: int,
    false_alarm_rate: float,
    batches: int = 4000,
    confidence: float = 0.95,
    random_state: int = 0,
    reference_path: str = "",
) -> Calibration:
    spec = {
        "batch_rows": batch_rows,
        "false_alarm_rate": false_alarm_rate,
        "batches": batches,
        "confidence": confidence,
        "random_state": random_state,
    }
    started = time.perf_counter()
    cal = ThresholdCalibrator(
        detector, batch_rows, false_alarm_rate, batches, confidence, random_state
    ).fit(reference)
    return Calibration(
        columns=cal.thresholds_,
        batch_rows=batch_rows,
        false_alarm_rate=false_alarm_rate,
        confidence=confidence,
        batches=batches,
        allowed_alarms=cal.allowed_alarms_,
        in_sample_alarms=cal.in_sample_alarms_,
        level=float(f"{cal.level_:.4g}"),
        reference_sha256=reference_sha256,
        reference_rows=len(reference),
        key=calibration_key(detector, reference_sha256, spec),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - started, 3),
        reference_path=reference_path,
        warnings=cal.warnings_,
    )
