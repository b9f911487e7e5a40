"""Typed settings parsed from ``config.yaml``.

The file is re-read at every monitor run so thresholds can be tuned without a restart; a wrong
key or value fails *before* anything runs, with the dotted path of the setting and what is
allowed, because a daemon that silently ignores a typo in a threshold is worse than one that
refuses to start.
"""

from __future__ import annotations

import difflib
import importlib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from driftwatch.errors import ConfigError

ENV_PREFIX = "DRIFTWATCH_"
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
    reference: Path = Path("reference_data/flights_2013_01.parquet")
    landing: Path = Path("state/landing")
    state: Path = Path("state")


class LandingSettings(_Strict):
    """The contract with producers: see README, "Landing directory"."""

    # Files modified more recently than this are still being written: left for the next tick.
    settle_seconds: float = Field(0, ge=0)
    # After this many failed runs a file is moved to <state>/quarantine with its reason.
    max_attempts: int = Field(3, ge=1)
    max_files_per_run: int = Field(1000, ge=1)
    # A file whose runs fail with the very same non-data error this many times in a row (say a
    # retrain that always raises on it) is quarantined too, instead of failing every hour.
    max_same_failures: int = Field(5, ge=2)
    # Files larger than this are refused unread (memory stays bounded), then quarantined.
    max_file_mb: float = Field(512, gt=0)
    # Judge drift over the new files plus the files that arrived in the last N hours (a rolling
    # window: an hourly batch of ~40 rows says little alone). None: the new files alone.
    window_hours: float | None = Field(None, gt=0)


class ModelSettings(_Strict):
    """What the monitored model is: its features by type, its target and its estimator."""

    name: str = Field("flights-air-time", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    task: Literal["regression", "classification"] = "regression"
    target: str = "air_time"
    numerical: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    # A built-in pipeline name (see driftwatch.model.estimators.BUILTIN_ESTIMATORS) or "package.module:factory".
    estimator: str = "hist_gradient_boosting"
    params: dict[str, Any] = Field(default_factory=dict)
    timestamp: str | None = "time_hour"
    # Classification only: a numeric target is turned into a label by ``target > threshold``
    # (e.g. arr_delay > 15); None means the target column already holds 0/1 labels.
    target_threshold: float | None = None

    @property
    def features(self) -> list[str]:
        return [*self.numerical, *self.categorical]

    @model_validator(mode="after")
    def _features_disjoint(self) -> ModelSettings:
        both = sorted(set(self.numerical) & set(self.categorical))
        if both:
            raise ValueError(f"columns listed as both numerical and categorical: {both}")
        if self.target in self.features:
            raise ValueError(f"target {self.target!r} is also listed as a feature")
        return self


class ColumnTestSettings(_Strict):
    test: TestName | None = None
    threshold: float | None = Field(None, gt=0)


class CalibrationSettings(_Strict):
    # Written by `driftwatch calibrate`, read by the monitor when its provenance matches.
    file: Path = Path("calibration.yaml")
    # The batch size to calibrate for; null: the size of each batch checked (rounded down to a
    # step of sqrt(2), computed once per reference and size, cached under the state dir).
    batch_rows: int | None = Field(None, ge=30)
    # Resampled batches; more gives a tighter threshold estimate (1,000 takes seconds).
    batches: int = Field(1000, ge=100)
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


class QualitySettings(_Strict):
    """Degradation = metric worse than baseline by more than either tolerance that is set."""

    metric: Literal["rmse", "mae", "accuracy", "f1", "roc_auc"] | None = None
    relative_tolerance: float | None = Field(0.10, ge=0)
    absolute_tolerance: float | None = Field(None, ge=0)
    min_labelled_rows: int = Field(30, ge=1)


class RetrainSettings(_Strict):
    # Training pool = reference (the champion's window) + the new batch, cut to the last N days.
    window_days: float = Field(60, gt=0)
    include_reference: bool = True
    holdout_fraction: float = Field(0.2, gt=0, lt=1)
    # The challenger must beat the champion on the holdout by this relative margin.
    promotion_margin: float = Field(0.01, ge=0, lt=1)
    random_state: int = 0


class OrchestrationSettings(_Strict):
    retries: int = Field(2, ge=0)
    retry_delay_seconds: float = Field(5, ge=0)
    schedule: str = "0 * * * *"
    # Daemon: a tick that starts later than this after its time is skipped (coalesced).
    misfire_grace_seconds: float = Field(600, gt=0)
    # Daemon: on SIGTERM wait this long for the current run, then abandon it (safely).
    shutdown_grace_seconds: float = Field(30, ge=0)
    # PREFECT_API_URL set but the server does not answer: "ephemeral" runs the check anyway on
    # a temporary local Prefect API (logged; the run is missing from the server's UI), "fail"
    # fails the run (the daemon logs it and retries at the next tick; files are untouched).
    prefect_unreachable: Literal["ephemeral", "fail"] = "ephemeral"

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError(f"expected a 5-field cron expression like '0 * * * *', got {v!r}")
        return v


class MlflowSettings(_Strict):
    # None: a sqlite file under the state dir (no server needed).
    tracking_uri: str | None = None


class ReportSettings(_Strict):
    artifacts: bool = True
    # Evidently's HTML report per run (state/reports/, MLflow, a Prefect link artifact).
    html: bool = True
    # Evidently is slow on big frames: both sides are sampled to this many rows for the HTML.
    html_sample_rows: int = Field(10_000, ge=100)


class RetentionSettings(_Strict):
    # Reference versions and cached calibrations under the state dir: the ones the registry
    # points to (champion, previous champion) are always kept, plus the newest keep_last.
    keep_last: int = Field(10, ge=1)


class Settings(_Strict):
    paths: PathsSettings = Field(default_factory=PathsSettings)
    landing: LandingSettings = Field(default_factory=LandingSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    retrain: RetrainSettings = Field(default_factory=RetrainSettings)
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @field_validator("paths")
    @classmethod
    def _paths_not_empty(cls, v: PathsSettings) -> PathsSettings:
        for name in ("reference", "landing", "state"):
            if str(getattr(v, name)) in ("", "."):
                raise ValueError(f"paths.{name} must name a file or directory")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        metric = self.quality_metric
        if self.model.task == "regression" and metric not in ("rmse", "mae"):
            raise ValueError(f"quality.metric {metric!r} is not a regression metric (rmse, mae)")
        if self.model.task == "classification" and metric not in ("accuracy", "f1", "roc_auc"):
            raise ValueError(
                f"quality.metric {metric!r} is not a classification metric (accuracy, f1, roc_auc)"
            )
        known = set(self.model.features)
        # "prediction" names the champion's output, judged by the same engine (prediction drift).
        columns = [c for c in self.drift.columns if c != "prediction"]
        for col in [*columns, *self.drift.ignore, *self.drift.report_only]:
            if known and col not in known:
                raise ValueError(
                    f"drift column {col!r} is not a model feature{_did_you_mean(col, known)}"
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
        return "rmse" if self.model.task == "regression" else "roc_auc"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return f"sqlite:///{(self.paths.state / 'mlflow.db').resolve()}"

    def resolved(self, base: Path) -> Settings:
        """Paths in config.yaml are relative to the file, not to wherever the daemon started."""
        paths = {
            name: (p if p.is_absolute() else (base / p)).resolve()
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
        elif "input" in e and e["type"] not in ("missing",):
            msg = f"{msg} (got {e['input']!r})"
        lines.append(f"  {loc or '<root>'}: {msg}")
    return "\n".join(lines)


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = field.annotation
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _apply_env_overrides(raw: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    """``DRIFTWATCH_DRIFT__DRIFT_SHARE=0.3`` sets ``drift.drift_share``; values are YAML."""
    for key, value in environ.items():
        # Only SECTION__KEY names are settings; DRIFTWATCH_CONFIG and the like are not.
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        path = key[len(ENV_PREFIX) :].lower().split("__")
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {key}: {part!r} is not a section")
        node[path[-1]] = yaml.safe_load(value)
    return raw


def resolve_config_path(
    path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None
) -> Path:
    """The config file in use: the argument, else $DRIFTWATCH_CONFIG, else ./config.yaml."""
    environ = dict(os.environ) if environ is None else environ
    return Path(path or environ.get("DRIFTWATCH_CONFIG", "config.yaml"))


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read, override from the environment, validate, and resolve paths against the file."""
    environ = dict(os.environ) if environ is None else environ
    path = resolve_config_path(path, environ)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path.resolve()}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    raw = _apply_env_overrides(raw, environ)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, str(path), Settings)) from None
    settings = settings.resolved(path.resolve().parent)
    _check_estimator_importable(settings.model.estimator)
    if not settings.paths.reference.exists():
        raise ConfigError(
            f"{path}: paths.reference: file not found: {settings.paths.reference}"
            " (build it with `driftwatch build-reference`)"
        )
    return settings


def _check_estimator_importable(spec: str) -> None:
    """A factory that cannot be imported should stop the run before anything else happens."""
    if ":" not in spec:
        return  # a built-in name, checked by driftwatch.model.estimators
    module, _, attr = spec.partition(":")
    try:
        found = hasattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise ConfigError(f"model.estimator: cannot import {spec!r}: {exc}") from None
    if not found:
        raise ConfigError(f"model.estimator: module {module!r} has no attribute {attr!r}")
