"""Typed settings parsed from ``config.yaml``.

The file is re-read at every monitor run so thresholds can be tuned without a restart; a wrong
key or value fails *before* anything runs, with the dotted path of the setting and what is
allowed, because a daemon that silently ignores a typo in a threshold is worse than one that
refuses to start.

Layering is pydantic-settings': explicit overrides (``backtest --compare``) over the
environment (``DRIFTWATCH_SECTION__KEY``) over the YAML file over the defaults, deep-merged key by
key and validated once by the same model, so every layer gets the same dotted-path errors.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from driftwatch.errors import ConfigError
from driftwatch.yamlio import load_yaml, read_yaml_file

ENV_PREFIX = "DRIFTWATCH_"
ENV_NESTED_DELIMITER = "__"
TestName = Literal[
    "ks",
    "chisquare",
    "chi2_contingency",
    "z",
    "wasserstein",
    "jensenshannon",
    "psi",
    "kl_div",
    "hellinger",
    "cramer_von_mises",
    "anderson",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PathsSettings(_Strict):
    reference: Path = Path("reference.parquet")
    landing: Path = Path("state/landing")
    state: Path = Path("state")
    # Late labels land here as their own files (id + label): see README, "Late labels". None:
    # labels come only with the features, in the batch files.
    labels: Path | None = None


class LandingSettings(_Strict):
    """The contract with producers: see README, "Landing directory"."""

    # Files modified more recently than this are still being written: left for the next tick.
    settle_seconds: float = Field(0, ge=0)
    # After this many failed runs a file is moved to <state>/quarantine with its reason.
    max_attempts: int = Field(3, ge=1)
    max_files_per_run: int = Field(1000, ge=1)
    # An isolated file (its run of several files failed for no known cause) whose runs alone
    # fail with the very same error this many times in a row, other files' runs succeeding in
    # between (say a retrain that always raises on its rows), is quarantined too.
    max_same_failures: int = Field(5, ge=2)
    # Files larger than this are refused unread (memory stays bounded), then quarantined.
    max_file_mb: float = Field(512, gt=0)
    # Judge drift over the new files plus the files that arrived in the last N hours (a rolling
    # window: an hourly batch of ~40 rows says little alone). None: the new files alone.
    window_hours: float | None = Field(None, gt=0)
    # A file with more columns than this is refused from its header, before it is read.
    max_columns: int = Field(1000, ge=1)
    # Rows stamped more than this many days ahead of now are dropped (and counted).
    max_future_days: float = Field(2, ge=0)
    # A file with more rows than this is refused before it is loaded (parquet: the row count in
    # its footer; csv: a read that stops one row past the limit), then quarantined.
    max_rows: int = Field(1_000_000, ge=1)
    # The same content (sha256) under a second name: "skip" marks it done as a duplicate of the
    # first (with a warning naming it); "process" reads it again (with the same warning).
    duplicates: Literal["skip", "process"] = "skip"


MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class ModelSettings(_Strict):
    """What the monitored model is: its features by type, its target and its estimator."""

    # Required: the MLflow experiment and registered model name (two projects sharing an MLflow
    # server must not share a default).
    name: str = Field(pattern=MODEL_NAME)
    # regression, binary (0/1 labels, or target > target_threshold) or multiclass (integer class
    # labels). "classification" is the older name of binary, still read.
    task: Literal["regression", "binary", "multiclass"] = "regression"
    target: str  # required: the column the model predicts
    numerical: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    # A built-in pipeline name (see driftwatch.model.estimators.BUILTIN_ESTIMATORS) or "package.module:factory".
    estimator: str = "hist_gradient_boosting"
    params: dict[str, Any] = Field(default_factory=dict)
    # The column that orders rows in time; None: data without time (calibration quiet: rows).
    timestamp: str | None = None
    # The column that identifies a row (a flight, a transaction): late labels are joined on it.
    id_column: str | None = None
    # The time zone the data's days follow (calendar days of the time-block calibration).
    timezone: str = "UTC"
    # Categorical features whose values are segments judged apart (drift per segment as well as
    # overall; the false-alarm rate holds over all of them together): issue 19.
    segments: list[str] = Field(default_factory=list)
    # Classification only: a numeric target is turned into a label by ``target > threshold``
    # (e.g. arr_delay > 15); None means the target column already holds 0/1 labels.
    target_threshold: float | None = None

    @property
    def features(self) -> list[str]:
        return [*self.numerical, *self.categorical]

    @property
    def family(self) -> Literal["regression", "classification"]:
        """Which kind of estimator the task needs (a regressor or a classifier)."""
        return "regression" if self.task == "regression" else "classification"

    @field_validator("task", mode="before")
    @classmethod
    def _task_alias(cls, v: Any) -> Any:
        return "binary" if v == "classification" else v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. UTC, America/New_York)") from None
        return v

    @model_validator(mode="after")
    def _features_disjoint(self) -> ModelSettings:
        both = sorted(set(self.numerical) & set(self.categorical))
        if both:
            raise ValueError(f"columns listed as both numerical and categorical: {both}")
        if self.target in self.features:
            raise ValueError(
                f"model.target {self.target!r} is also listed as a feature"
                f" (model.{'numerical' if self.target in self.numerical else 'categorical'})"
            )
        if self.task != "binary" and self.target_threshold is not None:
            raise ValueError(
                f"model.target_threshold ({self.target_threshold:g}) turns the target into 0/1"
                f" labels, which only model.task binary uses (model.task is {self.task!r}):"
                " remove it or set model.task: binary"
            )
        return self


# The metrics a quality verdict and a promotion can use per task, the default first. binary:
# F1 of the positive class, ROC AUC of P(positive); multiclass: F1 macro-averaged (every class
# counts the same, whatever its size), accuracy.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("rmse", "mae"),
    "binary": ("roc_auc", "accuracy", "f1"),
    "multiclass": ("f1", "accuracy"),
}


class ColumnTestSettings(_Strict):
    test: TestName | None = None
    threshold: float | None = Field(None, gt=0)


class CalibrationSettings(_Strict):
    # What a quiet batch is, for the calibrated method:
    #   time_blocks: contiguous blocks of the reference of the horizon's span (an hour, a day),
    #     each scored against the reference without its days: batches as production sends them
    #     (needs model.timestamp; see README "Drift that knows time")
    #   rows: batches of random reference rows, for data without time structure
    quiet: Literal["time_blocks", "rows"] = "time_blocks"
    # time_blocks: blocks with fewer rows are left out of the calibration (and such a horizon's
    # batch is not judged).
    min_block_rows: int = Field(20, ge=5)
    # time_blocks: at most this share of the reference's days may be set aside as broken feeds
    # (a column wholly null, then back) before its missing-share threshold is set, so that one
    # outage in the reference does not blind the monitor to the next. 0: none set aside.
    incident_share: float = Field(0.05, ge=0, le=0.2)
    # Written by `driftwatch calibrate`, read by the monitor when its provenance matches.
    file: Path = Path("calibration.yaml")
    # The batch size to calibrate for; null: the size of each batch checked (exact below 64
    # rows, else rounded down to a step of 2^(1/8), at most max_batch_rows; computed once per
    # reference and size, cached under the state dir).
    batch_rows: int | None = Field(None, ge=1)
    # Batches larger than this use this size's thresholds (on the quiet side): a calibration's
    # cost is bounded by batches x max_batch_rows x columns whatever the batch size.
    max_batch_rows: int = Field(2000, ge=100)
    # Resampled batches; more gives a tighter threshold estimate (4,000: thresholds within
    # ~3%, detection within a few points, from one random_state to the next; seconds).
    batches: int = Field(4000, ge=100)
    # Time-block calibration time is bounded whatever the reference holds: at most this many
    # of its rows, the newest whole days, are calibrated on (and batches judged against).
    max_reference_rows: int = Field(500_000, ge=1_000)
    # The thresholds keep the false-alarm rate with this confidence (a binomial tolerance bound).
    confidence: float = Field(0.95, ge=0.5, lt=1)
    random_state: int = 0


class DriftSettings(_Strict):
    # How columns add up to a dataset alarm:
    #   calibrated: thresholds from resampling the reference (driftwatch calibrate), any column
    #     past its threshold; keeps false alarms <= false_alarm_rate at the calibrated batch size.
    #   bonferroni / bh: two-sample p-value per column, family-wise error (Bonferroni) or false
    #     discovery rate (Benjamini-Hochberg) at false_alarm_rate.
    #   evidently: Evidently's tests and rule, drifted columns / tested columns >= drift_share.
    method: Literal["calibrated", "bonferroni", "bh", "evidently"] = "calibrated"
    false_alarm_rate: float = Field(0.01, gt=0, lt=0.5)
    drift_share: float = Field(0.5, gt=0, le=1)
    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings)
    # Columns with fewer usable rows (after dropping NaN/inf) than this get "insufficient data".
    min_rows: int = Field(30, ge=1)
    columns: dict[str, ColumnTestSettings] = Field(default_factory=dict)
    ignore: list[str] = Field(default_factory=list)
    # Tested and reported, but never a dataset alarm (and so never a retrain) on their own:
    # columns expected to move, e.g. weather with the season.
    report_only: list[str] = Field(default_factory=list)
    # Judge drift on the champion's predictions too (batch vs reference).
    prediction_drift: bool = True
    # time_blocks: the spans judged at every tick, each on the newest rows of that span and
    # against thresholds calibrated for it, e.g. [1h, 6h, 1D] for an hourly daemon (a fast
    # incident shows in the hour, a slow shift in the day). false_alarm_rate holds for the tick
    # as a whole: each horizon gets an equal share. Empty: one horizon, the batch's own span.
    horizons: list[str] = Field(default_factory=list)

    @field_validator("horizons")
    @classmethod
    def _spans(cls, v: list[str]) -> list[str]:
        import pandas as pd

        for text in v:
            try:
                span = pd.Timedelta(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a time span (e.g. 1h, 6h, 1D, 7D)") from None
            if not pd.Timedelta("1h") <= span <= pd.Timedelta("30D"):
                raise ValueError(f"{text!r}: a horizon must be between 1h and 30D")
        return v


class ServedIntervalSettings(_Strict):
    """The estimate's interval re-calibrated on the champion's served periods whose labels have
    arrived (README, "The interval learns from the labels that arrive")."""

    # Calibrate the interval on the champion's own labelled periods from history.
    enabled: bool = True
    # Below this many labelled periods the holdout's interval stands (a new champion starts
    # from it); from here the interval's half-widths are scaled so that the level holds on them.
    min_periods: int = Field(8, ge=1)
    # Only the newest this many labelled periods count (conformal on a recent window: the
    # estimator's errors change over months; and the cost per tick is bounded).
    max_periods: int = Field(30, ge=1)
    # The interval is narrowed (a factor below 1) only from this many labelled periods; before,
    # it is only widened. Below ~20 periods the 90% conformal rank is the largest score or the
    # next: a noisy statistic, and an interval narrowed on it claims a confidence the periods
    # have not shown (2013: the June-July champion's weeks, 15 calibrated, 83% inside when
    # narrowed from 8, 96% from 20). None: narrowed from min_periods.
    narrow_after: int | None = Field(20, ge=1)
    # A served period's length, e.g. "1h", "1D", "7D". None: the batch's span as a horizon
    # takes it (the smallest of 1h, 6h, 1D, 7D that holds it): periods judged like the batch.
    period: str | None = None

    @field_validator("period")
    @classmethod
    def _period(cls, v: str | None) -> str | None:
        import pandas as pd

        if v is None:
            return v
        try:
            length = pd.Timedelta(v)
        except ValueError:
            raise ValueError(f"{v!r} is not a time span (e.g. 1h, 1D, 7D)") from None
        if length < pd.Timedelta("1min"):
            raise ValueError(f"{v!r}: a served period must be at least a minute")
        return v

    @model_validator(mode="after")
    def _bounds(self) -> ServedIntervalSettings:
        if self.max_periods < self.min_periods:
            raise ValueError(
                f"max_periods {self.max_periods} < min_periods {self.min_periods}: it could"
                " never calibrate"
            )
        if self.narrow_after is not None and self.narrow_after > 3 * self.max_periods:
            raise ValueError(
                f"narrow_after {self.narrow_after} > 3 x max_periods ({3 * self.max_periods},"
                " the most periods the calibration reads): it could never narrow"
            )
        return self


class EstimateSettings(_Strict):
    """Estimated performance without labels (README, "Estimated performance")."""

    # Estimate the champion's metric on every batch, from an estimator fitted on its holdout
    # at promotion (regression: a loss model; classification: calibrated scores).
    enabled: bool = True
    # The interval's level: this share of realised values should fall inside it.
    level: float = Field(0.9, gt=0, lt=1)
    # The estimate is flagged unreliable (and never triggers) when more than this share of
    # the batch's rows lies outside the holdout's support in some column (numerical: beyond
    # its 1st-99th percentile; categorical: a category the holdout never had).
    max_outside_share: float = Field(0.2, gt=0, le=1)
    # Re-calibrate the interval on the champion's served periods once their labels arrive.
    served: ServedIntervalSettings = Field(default_factory=ServedIntervalSettings)


class QualitySettings(_Strict):
    """Degradation = metric worse than baseline by more than either tolerance that is set."""

    metric: Literal["rmse", "mae", "accuracy", "f1", "roc_auc"] | None = None
    relative_tolerance: float | None = Field(0.10, ge=0)
    absolute_tolerance: float | None = Field(None, ge=0)
    min_labelled_rows: int = Field(30, ge=1)
    # With late labels: judge the champion on the predictions of the last N hours whose labels
    # have arrived (from history), not only on the labels inside the new files. None: the batch.
    lookback_hours: float | None = Field(None, gt=0)
    # What the champion's quality is compared with:
    #   holdout  its score on the newest holdout of its training window (or of the last
    #            challenge it won): a different span, measured the day it was trained;
    #   served   its realised metric over its first lookback in service (its first labelled
    #            batch without a lookback), from history: measured the way the verdict is
    #            measured. The span restarts after a challenge it won (the challenger was not
    #            promoted), so the quality trigger waits for a full lookback of fresh labelled
    #            time before it may fire again. No verdict while that span is still filling.
    baseline: Literal["holdout", "served"] = "holdout"
    # Which quality rule may trigger a retrain: realised (the labels that have arrived),
    # estimated (the estimate, degraded beyond tolerance with its interval excluding the
    # baseline; an unreliable estimate never triggers), or either (the first that fires).
    trigger: Literal["realised", "estimated", "either"] = "realised"
    estimate: EstimateSettings = Field(default_factory=EstimateSettings)


class RetrainSettings(_Strict):
    # Training pool = the last N days of history (every batch processed, late labels joined).
    window_days: float = Field(60, gt=0)
    # While history is shorter than the window, the shipped reference fills its older end.
    include_reference: bool = True
    holdout_fraction: float = Field(0.2, gt=0, lt=1)
    # The challenger must beat the champion on the holdout by this relative margin.
    # Negative: a tolerance (-0.05: promoted unless more than 5% worse), for a fresh model that
    # is scored against a champion which has seen part of the holdout's time already.
    promotion_margin: float = Field(0.01, gt=-0.5, lt=1)
    random_state: int = 0
    # After the holdout has decided, the model that is registered is refit on the whole window
    # (holdout included): the newest rows are the most valuable ones to learn from.
    refit: bool = True
    # Retrain too when the champion's training data ends more than this many days before the
    # newest batch, whatever drift and quality say (a schedule as a floor). None: never by age.
    max_age_days: float | None = Field(None, gt=0)
    # Drift and quality retrain only when the champion's data (or the newest holdout it held
    # its own on) ends at least this many days before the batch; sooner they are reported and
    # held. A challenger trained sooner learns from almost the champion's window and is scored
    # on a holdout the champion has partly trained on. None: no wait.
    min_age_days: float | None = Field(None, ge=0)
    # "if_better": a challenger must beat the champion on the holdout (by promotion_margin);
    # "always": every challenger is deployed (a plain retraining schedule).
    promote: Literal["if_better", "always"] = "if_better"
    # Recency weighting of the training window: a row's sample weight is
    # 2^(-age / half_life_days), its age counted back from the window's newest row, so a row
    # half_life_days old counts half as much as the newest one. The world a model serves next
    # is most like the last few weeks, but older rows still teach the routes and hours that are
    # rare lately. None: every row counts the same. Needs an estimator whose fit takes
    # sample_weight (the built-in ones do; a factory's that does not is refused at its retrain).
    half_life_days: float | None = Field(None, gt=0)
    # Retrain when the newest data leaves the range the champion was trained on: more than
    # support_share of the batch's rows beyond the 1st-99th percentile of the champion's
    # training window (its drift reference) in any of these numerical features (finding
    # "support"). Meant for a column that carries the season (temperature for flights): a
    # model learns nothing about values it has not seen, and a promoted retrain takes the new
    # range into its window, so the finding does not repeat on the same evidence (a lost
    # challenge keeps the champion's window: it repeats at the next tick, as drift does; use
    # it with retrain.min_age_days or promote: always).
    # [] (default): off. README, "Replay of 2013": what it buys on the 2013 replay.
    support_columns: list[str] = Field(default_factory=list)
    # The training window itself has ~1% of its rows beyond each end (by construction): 0.01
    # asks for more rows past the range than the champion saw past it in training.
    support_share: float = Field(0.01, gt=0, lt=1)
    # The span the share is judged on: the newest N hours of history up to the batch's newest
    # row (the batch's rows and the history rows before them; features are in history whether
    # or not their labels have come). None: the batch alone. With hourly or daily ticks, 168
    # asks what a weekly file asks: one warm day is not a season (README, "Replay of 2013").
    support_hours: float | None = Field(None, gt=0)
    # Which findings retrain (the others are reported and held): drift (the dataset rule),
    # quality (realised or estimated, as quality.trigger says), age (max_age_days), support
    # (support_columns). [quality, age]: feature drift is reported, only performance (or age)
    # retrains.
    triggers: list[Literal["drift", "quality", "age", "support"]] = Field(
        default_factory=lambda: ["drift", "quality", "age", "support"], min_length=1
    )


class HistorySettings(_Strict):
    """Every processed batch's rows, kept under <state>/history: see README, "History"."""

    # Rows whose timestamp is older than this (counted back from the newest row) are pruned.
    keep_days: float = Field(400, gt=0)


class OrchestrationSettings(_Strict):
    retries: int = Field(2, ge=0)
    retry_delay_seconds: float = Field(5, ge=0)
    schedule: str = "0 * * * *"
    # Daemon: a tick that starts later than this after its time is skipped (coalesced).
    # APScheduler takes whole seconds >= 1 (the value is truncated); a day at most.
    misfire_grace_seconds: float = Field(600, ge=1, le=86_400, allow_inf_nan=False)
    # Daemon: on SIGTERM wait this long for the current run, then abandon it (safely); an hour
    # at most (a service manager kills a daemon that takes longer to stop anyway).
    shutdown_grace_seconds: float = Field(30, ge=0, le=3_600, allow_inf_nan=False)
    # PREFECT_API_URL set but the server does not answer: "ephemeral" runs the check anyway on
    # a temporary local Prefect API (logged; the run is missing from the server's UI), "fail"
    # fails the run (the daemon logs it and retries at the next tick; files are untouched).
    prefect_unreachable: Literal["ephemeral", "fail"] = "ephemeral"
    # A config with models: at most this many models are checked at once in one tick (threads
    # of Prefect's task runner; a slow model holds one of them, never the others).
    max_parallel_models: int = Field(4, ge=1, le=64)  # issue 19

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        """Parsed by the very function the daemon uses, so a schedule that loads is one it runs."""
        from datetime import UTC, datetime

        from apscheduler.triggers.cron import CronTrigger

        if len(v.split()) != 5:
            raise ValueError(f"expected a 5-field cron expression like '0 * * * *', got {v!r}")
        try:
            trigger = CronTrigger.from_crontab(v, timezone=UTC)
        except ValueError as exc:
            raise ValueError(f"{v!r} is not a valid cron expression: {exc}") from None
        if trigger.get_next_fire_time(None, datetime.now(UTC)) is None:
            raise ValueError(f"{v!r} never fires (no such date)")
        return v


class MlflowSettings(_Strict):
    # None: a sqlite file under the state dir (no server needed).
    tracking_uri: str | None = None


class ReportSettings(_Strict):
    artifacts: bool = True
    # driftwatch's HTML page of a run (state/reports/, the MLflow run's artifact, an http link in
    # the Prefect UI with an MLflow server): true on every run with rows, "alarm" only on runs
    # whose decision is not "no drift" (drift, degraded quality, a retrain), false never. It is
    # rendered from the stored result (~10 ms, tens of KB), so every run can have one.
    html: bool | Literal["alarm"] = True
    # Evidently's data-drift (and quality) page too, next to driftwatch's, on the same runs:
    # an extra for exploring, under a banner saying its rule is Evidently's, not driftwatch's.
    # Off by default: it costs ~1.5-3 s and 4-5 MB a run.
    evidently: bool = False
    # Evidently is slow on big frames: both sides are sampled to this many rows for its page.
    html_sample_rows: int = Field(10_000, ge=100)
    # HTML reports kept under <state>/reports: those of the newest N stored runs; the HTML of a
    # run that failed after writing it is deleted too.
    html_keep_last: int = Field(24, ge=1)


class RetentionSettings(_Strict):
    # Reference versions and cached calibrations under the state dir: the ones the registry
    # points to (champion, previous champion) are always kept, plus the newest keep_last.
    keep_last: int = Field(10, ge=1)


# -- alerts (issue 17) ---------------------------------------------------------------------
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class AlertTarget(_Strict):
    """Where the server-less notifier sends: the NAME of an environment variable holding the
    URL (a webhook, or Apprise URLs), never the URL itself: config.yaml is not a secret store."""

    env: str
    kind: Literal["webhook", "apprise"] = "webhook"

    @field_validator("env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        import re

        if not re.match(ENV_NAME, v):
            raise ValueError(
                "expected the name of an environment variable that holds the URL (e.g."
                " DRIFTWATCH_ALERT_WEBHOOK), not a URL: secrets do not belong in config.yaml"
            )
        return v


class AlertsSettings(_Strict):
    # Prefect events (driftwatch.drift.detected, ...) from every monitor run and retrain.
    events: bool = True
    # Server-less notifications from `driftwatch daemon`: one message when an incident opens,
    # one when it ends. Leave empty when the Prefect server's automations notify instead.
    targets: list[AlertTarget] = Field(default_factory=list)
    retries: int = Field(3, ge=0, le=10)
    backoff_seconds: float = Field(2, ge=0, le=300)
    timeout_seconds: float = Field(10, gt=0, le=300)
    # `driftwatch alerts install`: the notification block the automations send through (made
    # from the URL in webhook_env when that variable is set, else an existing block of the name).
    # "<name>" (a Custom Webhook block) or "<type-slug>/<name>" (e.g. slack-webhook/ops).
    block: str = Field("driftwatch-alerts", pattern=r"^([a-z0-9][a-z0-9-]*/)?[a-z0-9][a-z0-9-]*$")
    webhook_env: str = Field("DRIFTWATCH_ALERT_WEBHOOK", pattern=ENV_NAME)
    # No completed monitor run for this many hours: the "monitor went silent" automation fires.
    silent_hours: float = Field(3, gt=0, le=24 * 30)


# -- end alerts ----------------------------------------------------------------------------


# -- scale (issue 19, big batches on Dask) -------------------------------------------------------


class ScaleSettings(_Strict):
    """Big batches: summarised per partition (on Dask workers) instead of read whole. See
    README, "Big batches on Dask"."""

    # A batch or reference with more rows than this, or a directory of parquet files (a
    # partitioned dataset), is summarised per partition; smaller files keep the exact path.
    summary_above_rows: int = Field(2_000_000, ge=1)
    # Lattice points per numerical column (every distinct reference value up to this many,
    # else quantiles and an even grid): more points, closer Wasserstein and K-S statistics.
    points: int = Field(2048, ge=16, le=1_000_000)
    # Where partitions are summarised: "local" (this process, one partition at a time),
    # "local_cluster" (a dask.distributed LocalCluster started for the run) or "address"
    # (an existing Dask scheduler at `address`).
    runner: Literal["local", "local_cluster", "address"] = "local"
    address: str | None = Field(None, pattern=r"^(tcp|tls|inproc|ws|wss)://\S+$")
    n_workers: int = Field(2, ge=1, le=512)
    threads_per_worker: int = Field(1, ge=1, le=64)
    # Per worker, as Dask reads it ("1GB", "512MiB"); Dask spills, then pauses, near it.
    memory_limit: str = "1GB"
    # Rows per partition when one big parquet file is split by its row groups.
    partition_rows: int = Field(1_000_000, ge=1_000)

    @model_validator(mode="after")
    def _address_given(self) -> ScaleSettings:
        if self.runner == "address" and not self.address:
            raise ValueError("scale.runner 'address' needs scale.address (tcp://host:8786)")
        return self


# -- end scale -----------------------------------------------------------------------------------


class Settings(BaseSettings):
    """Build with :func:`load_settings` (which chooses the layers); ``Settings()`` alone would
    read ``os.environ`` but no file."""

    model_config = SettingsConfigDict(
        extra="forbid",
        validate_assignment=True,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
    )

    paths: PathsSettings = Field(default_factory=PathsSettings)
    landing: LandingSettings = Field(default_factory=LandingSettings)
    model: ModelSettings  # required: name, target and features have no neutral default
    drift: DriftSettings = Field(default_factory=DriftSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    retrain: RetrainSettings = Field(default_factory=RetrainSettings)
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)  # issue 17
    scale: ScaleSettings = Field(default_factory=ScaleSettings)  # issue 19: big batches

    @field_validator("paths")
    @classmethod
    def _paths_not_empty(cls, v: PathsSettings) -> PathsSettings:
        for name in ("reference", "landing", "state"):
            if str(getattr(v, name)) in ("", "."):
                raise ValueError(f"paths.{name} must name a file or directory")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        metric, task = self.quality_metric, self.model.task
        if metric not in TASK_METRICS[task]:
            why = ""
            if task == "multiclass" and metric == "roc_auc":
                why = (
                    " (history keeps each row's predicted class, not its class probabilities, so"
                    " quality verdicts cannot compute it; one-vs-rest ROC AUC is still logged for"
                    " the holdout)"
                )
            raise ValueError(
                f"quality.metric {metric!r} is not a {task} metric (model.task {task!r}){why};"
                " allowed:"
                f" {', '.join(TASK_METRICS[task])}"
            )
        if self.history.keep_days < self.retrain.window_days:
            raise ValueError(
                f"history.keep_days ({self.history.keep_days:g}) is shorter than"
                f" retrain.window_days ({self.retrain.window_days:g}): the training window would"
                " be pruned away; keep at least the window"
            )
        r = self.retrain
        lo, hi = r.min_age_days, r.max_age_days
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(
                f"retrain.min_age_days ({r.min_age_days:g}) is above retrain.max_age_days"
                f" ({r.max_age_days:g}): the age trigger would fire before the others may"
            )
        if r.half_life_days is not None and not self.model.timestamp:
            raise ValueError(
                f"retrain.half_life_days ({r.half_life_days:g}) needs model.timestamp: a row's"
                " age is counted from its time; set model.timestamp or half_life_days: null"
            )
        if self.quality.trigger != "realised" and not self.quality.estimate.enabled:
            raise ValueError(
                f"quality.trigger {self.quality.trigger!r} needs the estimate, but"
                " quality.estimate.enabled is false: enable it or use quality.trigger: realised"
            )
        known = set(self.model.features)
        # "prediction" names the champion's output, judged by the same engine (prediction drift).
        columns = [c for c in self.drift.columns if c != "prediction"]
        named = [
            *(("drift.columns", c) for c in columns),
            *(("drift.ignore", c) for c in self.drift.ignore),
            *(("drift.report_only", c) for c in self.drift.report_only),
            *(("retrain.support_columns", c) for c in r.support_columns),
        ]
        for setting, col in named:
            if known and col not in known:
                raise ValueError(
                    f"{setting}: {col!r} is not a model feature (model.numerical /"
                    f" model.categorical){_did_you_mean(col, known)}"
                )
        if r.support_hours is not None and r.support_columns and not self.model.timestamp:
            raise ValueError(
                "retrain.support_hours needs model.timestamp (the span is the newest hours up to"
                " the batch's newest row): set model.timestamp, or support_hours: null (the batch)"
            )
        for col in r.support_columns:
            if col in self.model.categorical:
                raise ValueError(
                    f"retrain.support_columns: {col!r} is categorical; the support is a numerical"
                    " range (1st-99th percentile): name a column of model.numerical"
                )
        if self.drift.method in ("bonferroni", "bh"):
            from driftwatch.engine.stattests import TESTS

            for col, opts in self.drift.columns.items():
                if col != "prediction" and opts.test and TESTS[opts.test].score != "p_value":
                    p_tests = ", ".join(n for n, t in TESTS.items() if t.score == "p_value")
                    raise ValueError(
                        f"drift.columns.{col}.test: {opts.test!r} is a distance, but drift.method"
                        f" {self.drift.method!r} corrects p-values; use a p-value test ({p_tests})"
                    )
        return self

    @property
    def quality_metric(self) -> str:
        if self.quality.metric:
            return self.quality.metric
        return TASK_METRICS[self.model.task][0]

    @property
    def tracking_uri(self) -> str:
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return f"sqlite:///{(self.paths.state / 'mlflow.db').resolve()}"

    def resolved(self, base: Path) -> Settings:
        """Paths in config.yaml are relative to the file, not to wherever the daemon started."""
        paths = {
            name: None if p is None else (p if p.is_absolute() else base / p).resolve()
            for name, p in self.paths.model_dump().items()
        }
        cal = self.drift.calibration
        if not cal.file.is_absolute():
            cal = cal.model_copy(update={"file": (base / cal.file).resolve()})
        drift = self.drift.model_copy(update={"calibration": cal})
        return self.model_copy(update={"paths": PathsSettings(**paths), "drift": drift})


def _did_you_mean(word: str, choices: set[str] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _format_validation_error(err: ValidationError, source: str, model: type[BaseModel]) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            parent = _model_at(model, e["loc"][:-1])
            allowed = sorted(parent.model_fields) if parent else []
            msg = f"unknown setting{_did_you_mean(str(e['loc'][-1]), allowed)}; allowed: {allowed}"
        elif e["type"] == "missing":
            msg = f"required setting, not set{_required_hint(loc)}"
        elif e["type"] == "literal_error":
            msg = f"{msg} (got {e['input']!r}){_did_you_mean(str(e['input']), _choices(e))}"
        elif "input" in e and not isinstance(e["input"], dict | list):
            msg = f"{msg} (got {e['input']!r})"  # a whole section is never dumped
        if e["type"] == "value_error" and not loc:
            msg = msg.removeprefix("Value error, ")
        # Cross-field checks at the top (or of a section) name their settings themselves.
        lines.append(f"  {loc}: {msg}" if loc else f"  {msg}")
    return "\n".join(lines)


def _choices(e: Any) -> list[str]:
    expected = (e.get("ctx") or {}).get("expected", "")
    return [p.strip().strip("'") for p in expected.replace(" or ", ",").split(",") if p.strip()]


def _required_hint(loc: str) -> str:
    return {
        "model.name": " (the MLflow experiment and registered model name, e.g. my-model)",
        "model.target": " (the column the model predicts)",
    }.get(loc, "")


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if get_origin(current) is dict:  # drift.columns.<name>: the part names an entry
            current = get_args(current)[1]
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = field.annotation
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _is_scalar(annotation: Any) -> bool:
    """A type pydantic parses from a string itself (numbers, bools, names, paths, choices)."""
    if get_origin(annotation) in (Union, type(int | None)):
        return all(_is_scalar(a) for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Literal:
        return True
    return isinstance(annotation, type) and issubclass(annotation, str | int | float | bool | Path)


def _parse_strings(value: Any, annotation: Any) -> Any:
    """Strings from the environment or an override, typed the way the field needs: "null" is
    None; a scalar field gets the string (pydantic parses "0.3", "true", "bh" and keeps a name
    like "123" a name); anything else (``model.params`` values, lists, sections) is YAML."""
    if isinstance(value, dict):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = annotation.model_fields
            return {
                k: _parse_strings(v, fields[k].annotation if k in fields else str)
                for k, v in value.items()
            }
        if get_origin(annotation) is dict:
            inner = get_args(annotation)[1]
            return {k: _parse_strings(v, inner) for k, v in value.items()}
        return value
    if not isinstance(value, str):
        return value
    if value == "null":
        return None
    if _is_scalar(annotation):
        return value
    try:
        return load_yaml(value)
    except yaml.YAMLError:  # YamlLimitError too: an alias bomb stays an (invalid) string
        return value  # pydantic then names the setting and shows the string


class _YamlFile(YamlConfigSettingsSource):
    """The config file, with errors that name it: read within driftwatch.yamlio's limits (size,
    UTF-8, depth, alias expansion), YAML tags never executed."""

    def _read_file(self, path: Any) -> dict[str, Any]:
        raw = read_yaml_file(path, ConfigError) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        return raw


class _Environment(EnvSettingsSource):
    """``DRIFTWATCH_DRIFT__DRIFT_SHARE=0.3`` sets ``drift.drift_share``, read from ``environ``
    (``os.environ`` unless a test passes its own). Only ``SECTION__KEY`` names are settings:
    ``DRIFTWATCH_CONFIG``, ``DRIFTWATCH_HOME``, ``DRIFTWATCH_PAUSE_AT`` and the like are not."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = {
            k: v
            for k, v in environ.items()
            if k.upper().startswith(ENV_PREFIX) and ENV_NESTED_DELIMITER in k[len(ENV_PREFIX) :]
        }
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items()}

    def decode_complex_value(self, field_name: str, field: Any, value: Any) -> Any:
        # YAML, of which JSON is a subset: [a, b] and ["a", "b"]; not YAML: pydantic names the
        # setting and shows the string.
        try:
            return load_yaml(value)
        except yaml.YAMLError:
            return value

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        # pydantic-settings skips names that match no section; a typo in a section name is
        # kept so that validation refuses it like a typo in the file ("did you mean").
        for key, value in self.env_vars.items():
            section, _, rest = key[len(ENV_PREFIX) :].partition(ENV_NESTED_DELIMITER)
            if section not in self.settings_cls.model_fields:
                data.setdefault(section, {})[rest] = value
        return _parse_strings(data, self.settings_cls)


class _Overrides(InitSettingsSource):
    """``{"drift.method": "bh"}``: settings by dotted path, over the file and the environment
    (``driftwatch backtest --compare``); values are strings, typed like environment values."""

    def __init__(self, settings_cls: type[BaseSettings], overrides: Mapping[str, Any]) -> None:
        nested: dict[str, Any] = {}
        for dotted, value in overrides.items():
            *parents, leaf = [p.strip() for p in dotted.split(".")]
            node = nested
            for i, part in enumerate(parents):
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    where = ".".join(parents[: i + 1])
                    raise ConfigError(f"override {dotted}: {where!r} is set, not a section")
            node[leaf] = value
        super().__init__(settings_cls, _parse_strings(nested, settings_cls))


def resolve_config_path(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The config file in use: the argument, else $DRIFTWATCH_CONFIG, else ./config.yaml."""
    environ = os.environ if environ is None else environ
    return Path(path or environ.get("DRIFTWATCH_CONFIG", "config.yaml"))


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    check_estimator: bool = True,
    model: str | None = None,
) -> Settings:
    """Read, override (``overrides`` by dotted path, then ``DRIFTWATCH_`` variables of
    ``environ``, default ``os.environ``), validate, and resolve paths against the file.

    ``check_estimator=False``: for a command that builds no model (``driftwatch check``), the
    estimator and ``model.params`` are not checked, which would import scikit-learn (~1 s).

    ``model``: in a config with ``models:``, the settings of that model (required there: see
    :func:`load_models` for all of them); in a single-model config it must be its name."""
    environ = os.environ if environ is None else environ
    path = resolve_config_path(path, environ)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path.resolve()}")
    raw = read_yaml_file(path, ConfigError)
    if isinstance(raw, dict) and MODELS_KEY in raw:  # several models: issue 19, below
        return _load_model_of_many(path, raw, environ, overrides, check_estimator, model)
    settings = _load_document(path, None, environ, overrides, check_estimator)
    if model is not None and model != settings.model.name:
        raise ConfigError(
            f"{path}: --model {model!r}: this config monitors one model, {settings.model.name!r}"
        )
    return settings


def _load_document(
    path: Path,
    document: dict[str, Any] | None,
    environ: Mapping[str, str],
    overrides: Mapping[str, Any] | None,
    check_estimator: bool,
) -> Settings:
    """Validate one model's settings: the file itself, or (``document``) one entry of its
    ``models:`` merged over the shared sections; the checks are the same either way."""
    sources: tuple[Any, ...] = (
        _Overrides(Settings, overrides or {}),
        _Environment(Settings, environ),
        _YamlFile(Settings, yaml_file=path)
        if document is None
        else InitSettingsSource(Settings, document),
    )
    try:
        settings = Settings(_build_sources=(sources, {}))
    except ValidationError as exc:
        where = _describe(path, sources)
        if document is not None:
            where = where.replace(str(path), f"{path} (models: {document['model']['name']})", 1)
        raise ConfigError(_format_validation_error(exc, where, Settings)) from None
    except SettingsError as exc:  # a source that could not read its value
        raise ConfigError(f"{exc}: {exc.__cause__}") from None
    settings = settings.resolved(path.resolve().parent)
    # The whole config is checked before anything runs (and before the daemon keeps it as its
    # last good config): what pydantic cannot see alone, the model's features and estimator.
    if not settings.model.features:
        raise ConfigError(
            f"{path}: model: no features; list the model's input columns in model.numerical"
            " and/or model.categorical"
        )
    if check_estimator:
        _check_estimator(settings.model)
    _check_segments(settings, path)  # issue 19
    if not settings.paths.reference.exists():
        raise ConfigError(
            f"{path}: paths.reference: file not found: {settings.paths.reference}"
            " (build it with `driftwatch build-reference`)"
        )
    _check_task_fits_reference(settings, path)
    return settings


def _check_task_fits_reference(settings: Settings, path: Path) -> None:
    """A classification task whose reference labels cannot work (a 3-class target under
    ``binary``) is refused here, not at the first retrain: reads the target column only."""
    import pandas as pd

    spec, ref = settings.model, settings.paths.reference
    if spec.family != "classification" or ref.suffix.lower() not in (".parquet", ".csv"):
        return
    try:
        if ref.suffix.lower() == ".csv":
            frame = pd.read_csv(ref, usecols=[spec.target])
        else:
            frame = pd.read_parquet(ref, columns=[spec.target])
    except Exception:  # missing column, unreadable file: the run says so, naming the file
        return
    y = pd.to_numeric(frame[spec.target], errors="coerce").dropna()
    if spec.task == "binary" and spec.target_threshold is not None:
        y = (y > spec.target_threshold).astype(float)
    problem = label_problem(y.to_numpy(dtype=float), spec)
    if problem:
        raise ConfigError(f"{path}: {problem} (in paths.reference {ref.name})")


def label_problem(values: Any, spec: ModelSettings) -> str | None:
    """What is wrong with a classification task's labels (an array of them), naming the
    settings to change; None when they fit (or the task is regression)."""
    import numpy as np

    if spec.family != "classification":
        return None
    values = np.unique(np.asarray(values, dtype=np.float64))
    where = f"model.target {spec.target!r}"
    fraction = values[values != np.round(values)]
    if len(fraction):
        return (
            f"{where} holds non-integer values such as {fraction[0]:g}; model.task"
            f" {spec.task!r} needs integer class labels (or model.task: regression)"
        )
    shown = ", ".join(f"{v:g}" for v in values[:10]) + (" ..." if len(values) > 10 else "")
    if spec.task == "binary" and not set(values.tolist()) <= {0.0, 1.0}:
        hint = (
            "model.task: multiclass"
            if len(values) > 2
            else f"model.target_threshold: {values[0]:g} (label = target > {values[0]:g})"
        )
        return (
            f"{where} holds {len(values)} classes ({shown}) but model.task 'binary' needs 0/1"
            f" labels: set {hint}"
        )
    if spec.task == "multiclass" and len(values) < 2:
        return f"{where} holds {len(values)} class(es) ({shown}); model.task multiclass needs 2+"
    return None


def _describe(path: Path, sources: tuple[Any, ...]) -> str:
    """The file, and the other layers that set something: where to look for the error."""
    overrides, env, _ = sources
    layers = [str(path)]
    if env.env_vars:
        layers.append(
            f"{ENV_PREFIX}* variables ({', '.join(sorted(k.upper() for k in env.env_vars))})"
        )
    if overrides.init_kwargs:
        layers.append("overrides")
    return " + ".join(layers)


def _check_estimator(model: ModelSettings) -> None:
    """The estimator as the run will build it: a built-in is built, and ``model.params`` must be
    parameters of the step they go to (the pipeline's final step) with values it accepts; a
    factory that cannot be imported stops the run before anything else happens (its params are
    the factory's own business: it is not called here)."""
    spec = model.estimator
    if ":" not in spec:
        _check_builtin(model)
        return
    module, _, attr = spec.partition(":")
    try:
        found = hasattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise ConfigError(f"model.estimator: cannot import {spec!r}: {exc}") from None
    if not found:
        raise ConfigError(f"model.estimator: module {module!r} has no attribute {attr!r}")


# The final step of each built-in pipeline of driftwatch.model.estimators, the step that gets
# model.params. Named here because config sits below model in the layers (tests/test_layers.py);
# tests/test_config_limits.py checks this table against build_estimator for every name and task.
BUILTIN_FINAL_STEPS: dict[str, dict[str, str]] = {
    "hist_gradient_boosting": {
        "regression": "sklearn.ensemble:HistGradientBoostingRegressor",
        "classification": "sklearn.ensemble:HistGradientBoostingClassifier",
    },
    "linear": {
        "regression": "sklearn.linear_model:Ridge",
        "classification": "sklearn.linear_model:LogisticRegression",
    },
}


def _check_builtin(model: ModelSettings) -> None:
    if model.estimator not in BUILTIN_FINAL_STEPS:
        raise ConfigError(
            f"model.estimator: unknown estimator {model.estimator!r}"
            f"{_did_you_mean(model.estimator, list(BUILTIN_FINAL_STEPS))}; use one of"
            f" {sorted(BUILTIN_FINAL_STEPS)} or 'package.module:factory'"
        )
    module, _, name = BUILTIN_FINAL_STEPS[model.estimator][model.family].partition(":")
    cls = getattr(importlib.import_module(module), name)
    allowed = sorted(cls().get_params(deep=False))
    for key in model.params:
        if key not in allowed:
            raise ConfigError(
                f"model.params.{key}: not a parameter of {name}"
                f" (model.estimator {model.estimator!r}, task {model.task!r})"
                f"{_did_you_mean(str(key), allowed)}; allowed: {allowed}"
            )
    final = cls(**model.params)
    validate = getattr(final, "_validate_params", None)  # scikit-learn >= 1.2: what fit checks
    if validate is not None:
        try:
            validate()
        except (ValueError, TypeError) as exc:
            import re

            named = re.match(r"The '(\w+)' parameter", str(exc))
            where = f"model.params.{named[1]}" if named else "model.params"
            raise ConfigError(f"{where}: {exc}") from None


# -- many models (issue 19) ----------------------------------------------------------------
# A config may monitor several models: the top-level sections are shared defaults, and each
# entry of ``models:`` (a list of mappings with a ``name``, or a mapping by name) overrides any
# section key by key and inherits the rest. What an entry does not set of its own, it gets under
# its name, so that nothing of one model can reach another's:
#   paths.state           <state>/models/<name>   (ledger, history, references, runs, reports)
#   paths.landing         <landing>/<name>
#   paths.labels          <labels>/<name>          (when the shared one is set)
#   drift.calibration.file  <its state>/calibration.yaml
#   mlflow.tracking_uri   one sqlite file for all, <state>/mlflow.db: the experiment and the
#                         registered model are each model's own (model.name), and one MLflow UI
#                         shows them all
# One deployment has one schedule: ``orchestration`` is set at the top level only.
MODELS_KEY = "models"
SHARED_ONLY = ("orchestration",)


def model_names(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> list[str] | None:
    """The names a ``models:`` config declares, in its order (structure checked, settings not
    validated); None for a single-model config."""
    path = resolve_config_path(path, environ)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path.resolve()}")
    raw = read_yaml_file(path, ConfigError)
    if not isinstance(raw, dict) or MODELS_KEY not in raw:
        return None
    return list(_model_entries(path, raw))


def load_models(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    check_estimator: bool = True,
) -> dict[str, Settings]:
    """Every monitored model's settings by name, each validated fully (one entry for a
    single-model config); two models sharing a state or landing dir are refused."""
    names = model_names(path, environ)
    if names is None:
        one = load_settings(path, environ, overrides, check_estimator)
        return {one.model.name: one}
    loaded = {n: load_settings(path, environ, overrides, check_estimator, model=n) for n in names}
    for attr in ("state", "landing"):
        seen: dict[Path, str] = {}
        for name, s in loaded.items():
            where = getattr(s.paths, attr)
            if where in seen:
                raise ConfigError(
                    f"{resolve_config_path(path, environ)}: models {seen[where]!r} and {name!r}"
                    f" share paths.{attr} {where}: each model needs its own (leave it unset in"
                    " the entries to get <"
                    + attr
                    + ">/"
                    + ("models/" if attr == "state" else "")
                    + "<name>)"
                )
            seen[where] = name
    _check_shared_between_models(path, environ, loaded)
    return loaded


def artifact_key(model_name: str) -> str:
    """A model's Prefect artifact key: lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-") or "driftwatch"


def _check_shared_between_models(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None, loaded: dict
) -> None:
    """What models of one process must share or keep apart, beyond their dirs: MLflow's
    tracking URI is process-wide in MLflow (its fluent API), so models checked concurrently in
    one process need the same one; Prefect artifact keys derive from the names and must differ."""
    where = resolve_config_path(path, environ)
    uris = {name: s.mlflow.tracking_uri for name, s in loaded.items()}
    if len(set(uris.values())) > 1:
        listed = ", ".join(f"{n}: {u or 'default'}" for n, u in uris.items())
        raise ConfigError(
            f"{where}: models set different mlflow.tracking_uri ({listed}): one process checks"
            " them concurrently and MLflow's tracking URI is process-wide; set it once at the"
            " top level"
        )
    keys: dict[str, str] = {}
    for name in loaded:
        key = artifact_key(name)
        if key in keys:
            raise ConfigError(
                f"{where}: models {keys[key]!r} and {name!r} give the same Prefect artifact key"
                f" {key!r}: rename one (letters, digits and dashes that differ)"
            )
        keys[key] = name


def deployment_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """The settings of the deployment as a whole, for a daemon or a parent run: the schedule,
    the task runner, and the state dir of its locks and last good config. For a single-model
    config, that model's settings; with ``models:``, the first model's with the top-level
    ``paths.state`` (``orchestration`` is set at the top level only)."""
    names = model_names(path, environ)
    if names is None:
        return load_settings(path, environ)
    first = load_settings(path, environ, model=names[0])
    path = resolve_config_path(path, environ)
    raw = read_yaml_file(path, ConfigError)
    state = Path((raw.get("paths") or {}).get("state") or PathsSettings().state)
    root = (state if state.is_absolute() else path.resolve().parent / state).resolve()
    return first.model_copy(update={"paths": first.paths.model_copy(update={"state": root})})


def _model_entries(path: Path, raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``models:`` as {name: sections}, checked for shape: one line naming the entry at fault."""
    entries = raw[MODELS_KEY]
    out: dict[str, dict[str, Any]] = {}
    if isinstance(entries, dict):
        items = [(f"models.{k}", {"name": k, **(v or {})}) for k, v in entries.items()]
        if any(not isinstance(v, dict | None) for v in entries.values()):
            raise ConfigError(f"{path}: models: each entry must be a mapping of sections")
    elif isinstance(entries, list) and entries:
        items = [(f"models[{i}]", e) for i, e in enumerate(entries)]
    else:
        raise ConfigError(
            f"{path}: models: expected a list of models (each with a name) or a mapping by name"
        )
    import re

    for where, entry in items:
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: {where}: expected a mapping with a name and sections")
        entry = dict(entry)
        name = entry.pop("name", None) or (entry.get("model") or {}).get("name")
        if not isinstance(name, str) or not re.match(MODEL_NAME, name):
            raise ConfigError(
                f"{path}: {where}.name: required, letters, digits and _ . - (got {name!r})"
            )
        other = (entry.get("model") or {}).get("name")
        if other is not None and other != name:
            raise ConfigError(f"{path}: {where}: name {name!r} and model.name {other!r} differ")
        for key in entry:
            if key in SHARED_ONLY:
                raise ConfigError(
                    f"{path}: {where}.{key}: set at the top level only (one deployment, one"
                    " schedule)"
                )
            if key not in Settings.model_fields:
                allowed = sorted(set(Settings.model_fields) - set(SHARED_ONLY))
                raise ConfigError(
                    f"{path}: {where}.{key}: unknown section{_did_you_mean(key, allowed)};"
                    f" allowed: ['name', {', '.join(repr(a) for a in allowed)}]"
                )
            if not isinstance(entry[key], dict):
                raise ConfigError(f"{path}: {where}.{key}: expected a mapping of settings")
        if name in out:
            raise ConfigError(f"{path}: {where}: model {name!r} is declared twice")
        out[name] = entry
    return out


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _model_document(path: Path, raw: dict[str, Any], name: str) -> dict[str, Any]:
    """One model's whole config: its entry over the shared sections, with its own paths."""
    entries = _model_entries(path, raw)
    if name not in entries:
        raise ConfigError(
            f"{path}: --model {name!r}: no such model{_did_you_mean(name, list(entries))};"
            f" the config declares {list(entries)}"
        )
    shared = {k: v for k, v in raw.items() if k != MODELS_KEY}
    for key, value in shared.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {key}: expected a mapping of settings")
    entry = entries[name]
    doc = _deep_merge(shared, entry)
    doc["model"] = {**(doc.get("model") or {}), "name": name}
    own_paths = entry.get("paths") or {}
    paths = dict(doc.get("paths") or {})
    state = Path(paths.get("state") or PathsSettings().state)
    root = (state if state.is_absolute() else path.resolve().parent / state).resolve()
    if "state" not in own_paths:
        paths["state"] = str(state / "models" / name)
    if "landing" not in own_paths:
        paths["landing"] = str(Path(paths.get("landing") or PathsSettings().landing) / name)
    if "labels" not in own_paths and paths.get("labels"):
        paths["labels"] = str(Path(paths["labels"]) / name)
    doc["paths"] = paths
    cal = ((entry.get("drift") or {}).get("calibration") or {}).get("file")
    if cal is None:
        drift = dict(doc.get("drift") or {})
        drift["calibration"] = {
            **(drift.get("calibration") or {}),
            "file": str(Path(paths["state"]) / "calibration.yaml"),
        }
        doc["drift"] = drift
    if not (doc.get("mlflow") or {}).get("tracking_uri"):
        doc["mlflow"] = {**(doc.get("mlflow") or {}), "tracking_uri": f"sqlite:///{root}/mlflow.db"}
    return doc


def _load_model_of_many(
    path: Path,
    raw: dict[str, Any],
    environ: Mapping[str, str],
    overrides: Mapping[str, Any] | None,
    check_estimator: bool,
    model: str | None,
) -> Settings:
    if model is None:
        names = list(_model_entries(path, raw))
        raise ConfigError(
            f"{path}: declares {len(names)} models ({', '.join(names)}): name one with --model"
        )
    document = _model_document(path, raw, model)
    try:
        settings = _load_document(path, document, environ, overrides, check_estimator)
    except ConfigError as exc:
        text = str(exc)
        if not text.startswith("invalid configuration"):  # that one names the model already
            text = f"{path}: models: {model}: {text.removeprefix(f'{path}: ')}"
        raise ConfigError(text) from None
    if settings.model.name != model:
        # DRIFTWATCH_MODEL__NAME (left from a single-model deployment) or --set model.name
        # ranks above the entry and would give every model one experiment, registered model
        # and champion alias.
        raise ConfigError(
            f"{path}: models: {model}: model.name is overridden to {settings.model.name!r}"
            " (by DRIFTWATCH_MODEL__NAME or an override); in a models: config each entry's"
            " name is its model's: unset the variable"
        )
    return settings


def _check_segments(settings: Settings, path: Path) -> None:
    """``model.segments``: categorical features, judged on time-block thresholds (the rate is
    split over the overall verdict and every segment's: see README, "Segments")."""
    spec, drift = settings.model, settings.drift
    for col in spec.segments:
        if col not in spec.categorical:
            raise ConfigError(
                f"{path}: model.segments: {col!r} is not a categorical feature (model.categorical)"
                f"{_did_you_mean(col, spec.categorical)}"
            )
    if spec.segments and not (
        spec.timestamp and drift.method == "calibrated" and drift.calibration.quiet == "time_blocks"
    ):
        raise ConfigError(
            f"{path}: model.segments: segments are judged on time-block thresholds, which need"
            " model.timestamp, drift.method: calibrated and drift.calibration.quiet: time_blocks"
        )


# -- end many models -----------------------------------------------------------------------
