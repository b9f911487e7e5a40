"""Calibrated drift thresholds: "alarm on at most 1% of quiet hours", kept by construction.

A fixed threshold means a different false-alarm rate at every batch size and column (a distance
of 0.1 is noise at 100 rows and a huge shift at 100,000), and ten columns tested at 5% each
alarm far more often than 5%. Instead we *measure* the null distribution: split the reference
in two random halves, fit the detector's reference side on one half, draw batches of the
configured size from the other half (so no row is scored against itself), and record every
column's statistic. The per-column thresholds are then set together, at one common per-column
level, so that the share of resampled batches with *any* column past its threshold (the
dataset-level alarm) stays within the target. Working on the maximum over columns accounts for
the number of columns and for their correlation, which Bonferroni ignores.

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
from driftwatch.engine.stattests import ColumnSample, StatTest
from driftwatch.files import atomic_write_bytes

CALIBRATION_FORMAT = 1


@dataclass
class ColumnThreshold:
    test: str
    threshold: float
    pinned: bool = False
    # The resampled null statistic, for the reader: its median and its 99th percentile.
    null_median: float | None = None
    null_p99: float | None = None


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
    created: str = ""
    seconds: float = 0.0
    reference_path: str = ""
    warnings: list[str] = field(default_factory=list)
    format: int = CALIBRATION_FORMAT

    def tests(self) -> dict[str, tuple[str | None, float | None]]:
        return {c: (t.test, t.threshold) for c, t in self.columns.items()}

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
        return {c: (t.test, t.threshold) for c, t in self.columns.items() if t.pinned}


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


def size_bucket(rows: int) -> int:
    """Round a batch size down to a step of sqrt(2): fewer calibrations, and a smaller size
    means a wider null distribution, so the thresholds err on the quiet side."""
    if rows < 2:
        return max(rows, 1)
    return max(1, int(2 ** (math.floor(2 * math.log2(rows)) / 2)))


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
        batches: int = 1000,
        confidence: float = 0.95,
        random_state: int = 0,
        splits: int = 20,
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
        splits = max(1, min(self.splits, self.batches))
        bounds = np.linspace(0, self.batches, splits + 1).astype(int)
        for s in range(splits):
            perm = rng.permutation(n)
            fit_rows, held_out = perm[: n // 2], perm[n // 2 :]
            k = bounds[s + 1] - bounds[s]
            picks = held_out[rng.integers(0, held_out.size, size=(k, self.batch_rows))]
            for j, col in enumerate(cols):
                null[bounds[s] : bounds[s + 1], j] = _null_scores(
                    col, fit_rows, picks, self.detector.min_rows
                )
        self.columns_ = [c.name for c in cols]
        self.tests_ = {c.name: c.test.name for c in cols}
        self.null_ = null
        self._set_thresholds(cols, null)
        return self

    # -- thresholds --------------------------------------------------------------------------
    def _set_thresholds(self, cols: list[_Column], null: np.ndarray) -> None:
        # Severity: larger = more drift. p-value tests flip sign (drift when p <= threshold).
        flip = np.array([c.test.score == "p_value" for c in cols], dtype=bool)
        sev = np.where(flip, -null, null)
        sev = np.where(np.isnan(sev), -np.inf, sev)
        pinned = np.array([c.threshold is not None for c in cols], dtype=bool)
        pinned_sev = np.array(
            [
                (-c.threshold if f else c.threshold) if c.threshold is not None else np.inf
                for c, f in zip(cols, flip, strict=True)
            ],
            dtype=float,
        )
        # Report-only columns get thresholds at the same per-column level but raise no alarm.
        counts = np.array([c.name not in self.detector.report_only for c in cols], dtype=bool)
        if not counts.any():  # all report-only: their level is set as if they counted
            counts[:] = True
        pinned_alarm = (sev[:, pinned & counts] >= pinned_sev[pinned & counts]).any(axis=1)
        free = np.flatnonzero(~pinned)
        free_counts = counts[free]
        desc = -np.sort(-sev[:, free], axis=0)  # each free column, largest first
        b = sev.shape[0]
        allowed = allowed_alarms(b, self.false_alarm_rate, self.confidence)
        self.warnings_: list[str] = []
        if allowed < 0:
            self.warnings_.append(
                f"{b} resampled batches cannot show a {self.false_alarm_rate:g} false-alarm rate"
                f" with {self.confidence:.0%} confidence; thresholds are set above every"
                " resampled batch (raise drift.calibration.batches)"
            )
            allowed = 0

        def cut(k: int) -> np.ndarray:
            # Thresholds that let at most k resampled values of each free column through:
            # half-way between the (k+1)-th largest value and the next larger one.
            top = desc[k] if k < b else np.full(free.size, -np.inf)
            above = desc[k - 1] if k > 0 else top + np.maximum(np.abs(top) * 1e-9, 1e-12)
            # -inf marks a batch where the column could not be tested (too few rows).
            return np.where(np.isfinite(top), (top + above) / 2, above)

        tested = np.isfinite(sev[:, free])

        def alarms(k: int) -> int:
            past = (tested & (sev[:, free] >= cut(k)))[:, free_counts]
            return int((pinned_alarm | past.any(axis=1)).sum())

        if int(pinned_alarm.sum()) > allowed:
            self.warnings_.append(
                f"pinned thresholds alone alarm on {pinned_alarm.mean():.1%} of resampled quiet"
                f" batches, above the {self.false_alarm_rate:g} target"
            )
        lo, hi = 0, b - 1  # largest k with alarms(k) <= allowed (alarms is monotone in k)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if alarms(mid) <= allowed:
                lo = mid
            else:
                hi = mid - 1
        k = lo
        thresholds = dict(zip(free.tolist(), cut(k).tolist(), strict=True))
        self.thresholds_: dict[str, ColumnThreshold] = {}
        for j, c in enumerate(cols):
            finite = null[:, j][np.isfinite(null[:, j])]
            med = float(np.median(finite)) if finite.size else None
            p99 = float(np.quantile(finite, 0.01 if flip[j] else 0.99)) if finite.size else None
            if c.threshold is not None:
                self.thresholds_[c.name] = ColumnThreshold(c.test.name, c.threshold, True, med, p99)
                continue
            t = thresholds[j]
            if not np.isfinite(t):  # the column was never testable at this batch size
                t = 0.0 if flip[j] else float("inf")
                self.warnings_.append(
                    f"column {c.name!r} had too few usable values (drift.min_rows) in the"
                    f" resampled batches of {self.batch_rows} rows: it cannot raise an alarm"
                )
            self.thresholds_[c.name] = ColumnThreshold(
                c.test.name, float(-t if flip[j] else t), False, med, p99
            )
        self.allowed_alarms_ = allowed
        self.in_sample_alarms_ = alarms(k)


def _null_scores(
    col: _Column, fit_rows: np.ndarray, picks: np.ndarray, min_rows: int
) -> np.ndarray:
    """The column's statistic for each resampled batch (rows of ``picks``) against ``fit_rows``."""
    size = col.values.size
    fit_codes = col.codes[fit_rows]
    ref_counts = np.bincount(fit_codes[fit_codes >= 0], minlength=size)
    out = np.full(picks.shape[0], np.nan)
    # Batches are counted a few at a time: a count matrix is batches x distinct values.
    step = max(1, min(picks.shape[0], 4_000_000 // max(size, picks.shape[1])))
    for lo in range(0, picks.shape[0], step):
        codes = col.codes[picks[lo : lo + step]]
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
    batches: int = 1000,
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
        reference_sha256=reference_sha256,
        reference_rows=len(reference),
        key=calibration_key(detector, reference_sha256, spec),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - started, 3),
        reference_path=reference_path,
        warnings=cal.warnings_,
    )
