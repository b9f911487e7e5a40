"""The plan of a monitor run: the validated settings read once, turned into the objects that act.

``config.yaml`` is read once per run (``Plan.load``) and the plan travels as one typed object
to every step and to the retrain subflow, so a config edit landing mid-run can never make the
retrain use other settings than the decision. Only the plan and the layers above it read
``Settings``; the engine and the model layers get plain arguments.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from driftwatch.config import Settings, load_settings
from driftwatch.engine.blocks import (
    BLOCKS_FORMAT,
    BlockCalibrator,
    BlockProfile,
    fit_profile,
    span_of,
)
from driftwatch.engine.calibration import Calibration, calibrate, size_bucket
from driftwatch.engine.drift import DriftDetector
from driftwatch.engine.rules import ColumnRule, DatasetRule, rule_for
from driftwatch.errors import NotEnoughData

log = logging.getLogger("driftwatch.calibration")

# The champion's output, judged like a column: ``drift.columns.prediction`` configures its test.
PREDICTION = "prediction"

# What starts a retrain: "monitor" when drift, degraded quality or the champion's age
# (retrain.max_age_days) says so; "always", "never" and "schedule" (age only) replace the trigger
# (the backtest's baselines; "always" and "schedule" are also plain retraining schedules).
RetrainPolicy = Literal["monitor", "always", "never", "schedule"]

# One segment of model.segments: (column, value), e.g. ("origin", "EWR").
Segment = tuple[str, str]


class Plan(BaseModel):
    """Settings plus what follows from them; frozen, so no step can change another's view."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    settings: Settings
    policy: RetrainPolicy = "monitor"

    @classmethod
    def load(
        cls,
        config_path: str | os.PathLike[str] | None = None,
        check_estimator: bool = True,
        model: str | None = None,
    ) -> Plan:
        """``check_estimator=False``: a drift check builds no model (see ``load_settings``);
        ``model``: which one of a config with ``models:``."""
        return cls(
            settings=load_settings(config_path, check_estimator=check_estimator, model=model)
        )

    @property
    def rule(self) -> DatasetRule:
        d = self.settings.drift
        return rule_for(d.method, d.false_alarm_rate, d.drift_share)

    @property
    def metric(self) -> str:
        return self.settings.quality_metric

    @property
    def name(self) -> str:
        return self.settings.model.name

    def detector(
        self, thresholds: Mapping[str, ColumnRule | tuple[str | None, float | None]] | None = None
    ) -> DriftDetector:
        """The configured detector; ``thresholds`` (from a calibration) fill what config.yaml
        leaves open, never override a test or threshold set there."""
        d = self.settings.drift
        rules = {c: ColumnRule.coerce(v) for c, v in (thresholds or {}).items()}
        for c, o in d.columns.items():
            if c == PREDICTION:
                continue
            base = rules.get(c, ColumnRule())
            threshold = base.threshold
            if o.test and o.test != base.test:
                threshold = None  # a calibrated threshold belongs to the calibrated test only
            if o.threshold is not None:
                threshold = o.threshold
            rules[c] = ColumnRule(
                test=o.test or base.test,
                threshold=threshold,
                pinned=o.threshold is not None or base.pinned,
                reason=base.reason if threshold is None and o.test in (None, base.test) else "",
            )
        return DriftDetector(
            numerical=list(self.settings.model.numerical),
            categorical=list(self.settings.model.categorical),
            tests=rules,
            ignore=list(d.ignore),
            min_rows=d.min_rows,
            report_only=list(d.report_only),
            rule=self.rule,
        )

    def prediction_detector(self) -> DriftDetector:
        """The drift engine on the champion's outputs; ``drift.columns.prediction`` applies."""
        o = self.settings.drift.columns.get(PREDICTION)
        tests = {PREDICTION: (o.test, o.threshold)} if o else {}
        # A multiclass model's output is its predicted class: a category, not a number.
        classes = self.settings.model.task == "multiclass"
        return DriftDetector(
            numerical=[] if classes else [PREDICTION],
            categorical=[PREDICTION] if classes else [],
            tests=tests,
            min_rows=self.settings.drift.min_rows,
        )

    def calibration_rows(self, batch_rows: int) -> int:
        """The batch size thresholds are calibrated for: the configured one, else the batch's
        own (exact below 64 rows, else rounded down to a step of 2^(1/8), at most
        ``drift.calibration.max_batch_rows``: see ``size_bucket``)."""
        conf = self.settings.drift.calibration
        return conf.batch_rows or size_bucket(batch_rows, conf.max_batch_rows)

    def calibrate_rows(
        self,
        reference: pd.DataFrame,
        reference_sha256: str,
        batch_rows: int,
        pins: Mapping[str, tuple[str, float]] | None = None,
        reference_path: str = "",
    ) -> Calibration:
        """Random-row thresholds of the configured detector (plus ``pins``) at ``batch_rows``;
        a reference too small to calibrate on is the user's to fix (NotEnoughData, exit 2)."""
        try:
            return calibrate(
                self.detector(dict(pins or {})),
                reference,
                reference_sha256,
                **self.calibration_spec(batch_rows),
                reference_path=reference_path,
            )
        except ValueError as exc:
            where = reference_path or "the reference"
            raise NotEnoughData(f"cannot calibrate drift thresholds on {where}: {exc}") from exc

    def calibration_spec(self, batch_rows: int) -> dict[str, Any]:
        """Every setting a calibration depends on (part of its cache key)."""
        conf = self.settings.drift.calibration
        return {
            "batch_rows": batch_rows,
            "false_alarm_rate": self.settings.drift.false_alarm_rate,
            "batches": conf.batches,
            "confidence": conf.confidence,
            "random_state": conf.random_state,
        }

    def calibration_reference(self, reference: pd.DataFrame) -> pd.DataFrame:
        """Time blocks: at most ``drift.calibration.max_reference_rows`` rows, the newest whole
        local days (blocks stay whole), so a calibration's time is bounded before it starts;
        said in the log when it cuts. (Random-row calibration resamples a fixed number of
        batches; its cost is bounded by ``drift.calibration.batches`` and the batch size.)"""
        cap = self.settings.drift.calibration.max_reference_rows
        if len(reference) <= cap or not self.time_blocks:
            return reference
        days = self.local_times(reference).dt.floor("D")
        sizes = days.value_counts().sort_index(ascending=False).cumsum()
        keep = sizes[sizes <= cap].index
        out = reference[days.isin(keep).to_numpy()]
        log.warning(
            "the reference holds %d rows, above drift.calibration.max_reference_rows = %d:"
            " thresholds are calibrated on its newest %d day(s) (%d rows)",
            len(reference), cap, len(keep), len(out),
        )  # fmt: skip
        return out

    # -- time blocks ---------------------------------------------------------------------------
    @property
    def time_blocks(self) -> bool:
        """Thresholds from time blocks of the reference (the calibrated rule, a timestamp)."""
        s = self.settings
        return (
            self.rule.needs_calibration
            and s.drift.calibration.quiet == "time_blocks"
            and bool(s.model.timestamp)
        )

    @property
    def counting(self) -> list[str]:
        """The features that raise the dataset alarm (all but the report-only ones)."""
        d = self.settings.drift
        return [c for c in self.settings.model.features if c not in d.ignore + d.report_only]

    @property
    def horizon_rate(self) -> float:
        """Each horizon's share of the tick's false-alarm rate (Bonferroni over horizons)."""
        return self.settings.drift.false_alarm_rate / max(1, len(self.settings.drift.horizons))

    @property
    def context_hours(self) -> float | None:
        """How far back a tick reads earlier files: the rolling window, or the longest horizon
        (a day horizon on an hourly tick judges the last day, not just the new hour)."""
        s = self.settings
        longest = max((pd.Timedelta(h) for h in s.drift.horizons), default=None)
        hours = longest / pd.Timedelta("1h") if longest is not None else None
        return max(filter(None, [s.landing.window_hours, hours]), default=None)

    # -- segments (issue 19) ---------------------------------------------------------------------
    def segments(self, reference: pd.DataFrame) -> list[Segment]:
        """Every value of every ``model.segments`` column in the (calibration) reference: the
        segments judged at each tick, whether or not a batch holds rows of them."""
        reference = self.calibration_reference(reference)
        return [
            (col, value)
            for col in self.settings.model.segments
            for value in sorted(reference[col].dropna().astype(str).unique())
        ]

    def segment_rate(self, n_segments: int) -> float:
        """Each verdict's share of a horizon's rate: the whole batch and each of the
        ``n_segments`` segments get an equal share (Bonferroni), so the tick's false-alarm
        rate holds over all segments together, never per segment."""
        return self.horizon_rate / (1 + n_segments)

    def quality_segment_rate(self, n_segments: int) -> float:
        """Each segment's share of the false-alarm rate for its quality verdict: the same
        Bonferroni split as drift's (the whole batch and each segment an equal share), of the
        tick's rate, not a horizon's (quality is judged once per tick, on the labelled rows)."""
        return self.settings.drift.false_alarm_rate / (1 + n_segments)

    @staticmethod
    def segment_name(segment: Segment) -> str:
        """``origin=EWR``: how reports, events and stored baselines name a segment."""
        return f"{segment[0]}={segment[1]}"

    @staticmethod
    def segment_rows(frame: pd.DataFrame, segment: Segment | None) -> pd.DataFrame:
        """The rows of one segment (all rows for None)."""
        if segment is None:
            return frame
        col, value = segment
        return frame[(frame[col].astype(str) == value).to_numpy()]

    def local_times(self, frame: pd.DataFrame) -> pd.Series:
        """The timestamp in the data's own time zone, naive: calendar days are its days."""
        ts = frame[self.settings.model.timestamp]
        return ts.dt.tz_convert(self.settings.model.timezone).dt.tz_localize(None)

    def spans(self, frame: pd.DataFrame) -> list[pd.Timedelta]:
        """The horizons to judge: the configured ones, else the batch's own span."""
        configured = self.settings.drift.horizons
        if configured:
            return [pd.Timedelta(h) for h in configured]
        return [span_of(self.local_times(frame))]

    def block_calibrator(self, span: pd.Timedelta, rate: float | None = None) -> BlockCalibrator:
        """``rate``: this horizon's false-alarm rate (default: its share of the tick's)."""
        s = self.settings
        pinned = {
            c: o.threshold
            for c, o in s.drift.columns.items()
            if o.threshold is not None and c != PREDICTION
        }
        features = [c for c in s.model.features if c not in s.drift.ignore]
        return BlockCalibrator(
            numerical=[c for c in s.model.numerical if c in features],
            categorical=[c for c in s.model.categorical if c in features],
            rate=self.horizon_rate if rate is None else rate,
            confidence=s.drift.calibration.confidence,
            min_rows=s.drift.calibration.min_block_rows,
            incident_share=s.drift.calibration.incident_share,
            pinned=pinned,
            counts=self.counting,
        )

    def calibrate_blocks(
        self, reference: pd.DataFrame, span: pd.Timedelta, rate: float | None = None
    ) -> BlockCalibrator:
        """Time-block thresholds for ``span`` fitted on ``reference`` (see ``block_calibrator``)."""
        calibrator = self.block_calibrator(span, rate)
        reference = self.calibration_reference(reference)
        return calibrator.fit(reference, self.local_times(reference), span)

    def block_profile(self, reference: pd.DataFrame) -> BlockProfile:
        """The profile batches are scored against: the same rows the thresholds came from."""
        c = self.block_calibrator(pd.Timedelta("1h"))
        reference = self.calibration_reference(reference)
        return fit_profile(
            reference, c.numerical, c.categorical, c.min_r2, self.local_times(reference)
        )

    def block_key(
        self,
        reference_sha256: str,
        span: pd.Timedelta,
        rate: float | None = None,
        segment: Segment | None = None,
    ) -> str:
        """What block thresholds depend on: the reference's content and every shaping setting
        (``rate``: the verdict's share when segments split it; ``segment``: its rows only)."""
        s = self.settings
        parts = {
            "format": BLOCKS_FORMAT,
            "reference": reference_sha256,
            "span": str(span),
            "rate": self.horizon_rate if rate is None else rate,
            "confidence": s.drift.calibration.confidence,
            "min_block_rows": s.drift.calibration.min_block_rows,
            "incident_share": s.drift.calibration.incident_share,
            "max_reference_rows": s.drift.calibration.max_reference_rows,
            "timezone": s.model.timezone,
            "numerical": s.model.numerical,
            "categorical": s.model.categorical,
            "ignore": sorted(s.drift.ignore),
            "report_only": sorted(s.drift.report_only),
            "pins": {c: o.threshold for c, o in sorted(s.drift.columns.items())},
        }
        if segment is not None:  # a key without segments stays what it was
            parts["segment"] = list(segment)
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:20]
