"""One monitor run's findings and decision, as typed, frozen data.

Logs, Prefect artifacts, MLflow metrics, the stored JSON and the CLI's JSON all render a
``MonitorResult``; nothing re-derives a decision from its text. The models serialise themselves
(pydantic), so Prefect and the JSON files use them directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from driftwatch.engine.drift import ColumnDrift, DriftResult
from driftwatch.files import atomic_write_bytes
from driftwatch.model.quality import EstimatedQuality, QualityResult

# no_verdict: rows arrived but no feature column (at any horizon) could be judged, and nothing
# else asked for a retrain: not "no drift".
Action = Literal["no_data", "no_verdict", "no_drift", "no_retrain", "retrain", "bootstrap"]
# Why a retrain was started: drift (the dataset rule), quality (the champion degraded),
# estimated (its estimated quality degraded, labels not needed), bootstrap (no champion yet),
# schedule (retrain policy "always"), age (retrain.max_age_days), support (the batch leaves the
# champion's training range in a column of retrain.support_columns).
Trigger = Literal["drift", "quality", "estimated", "bootstrap", "schedule", "age", "support"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Decision(_Frozen):
    action: Action
    reason: str
    triggers: frozenset[Trigger] = frozenset()

    @property
    def retrain(self) -> bool:
        return self.action in ("retrain", "bootstrap")


class PromotionDecision(_Frozen):
    promote: bool
    metric: str
    challenger: float | None
    champion: float | None
    margin: float
    reason: str


class RetrainOutcome(_Frozen):
    promoted: bool
    reason: str
    metric: str
    challenger_score: float | None
    champion_score: float | None
    challenger_version: str
    champion_version: str | None  # after the decision
    previous_version: str | None
    train_rows: int
    holdout_rows: int
    run_id: str
    reference: str | None
    seconds: float = 0.0
    challenger_metrics: dict[str, float] = Field(default_factory=dict)
    champion_metrics: dict[str, float] | None = None


class MonitorResult(_Frozen):
    run_id: str
    started: str
    files: list[str]
    rows: int
    # The batch's time span (its timestamp column, UTC), when it has one.
    start: str | None = None
    end: str | None = None
    labelled_rows: int
    decision: Decision
    window: str = ""
    drift: DriftResult | None = None
    # Time-block thresholds: the verdict of every horizon judged (drift is one of them).
    horizons: list[DriftResult] = Field(default_factory=list)
    quality: QualityResult | None = None
    # The champion's estimated quality on the batch (labels not needed), with its interval.
    estimated: EstimatedQuality | None = None
    # model.segments: each segment's realised quality (labels of its rows, batch and lookback)
    # and estimated quality, each against the segment's own baseline; ``segment`` names it.
    segment_quality: list[QualityResult] = Field(default_factory=list)
    segment_estimated: list[EstimatedQuality] = Field(default_factory=list)
    # retrain.support_columns: per column, the share of the batch's rows beyond the 1st-99th
    # percentile of the champion's training window (empty when off or not judged), so that a
    # user sees how close each is to retrain.support_share before it retrains.
    support: dict[str, float] = Field(default_factory=dict)
    # The rows those shares were judged on: "the batch (2,345 rows)", or with
    # retrain.support_hours "the newest 168 h (6,789 rows)" (batch and history); its rows and
    # hours (None: the batch alone).
    support_span: str = ""
    support_rows: int = 0
    support_hours: float | None = None
    prediction: ColumnDrift | None = None
    champion_version: str | None = None
    # The champion's scores on its holdout (the newest labelled rows it never trained on, or the
    # newer holdout it held its own on): the reference quality the HTML page shows, whatever
    # ``quality.baseline`` the verdict used.
    champion_holdout: dict[str, float] = Field(default_factory=dict)
    reference_version: str | None = None
    retrain: RetrainOutcome | None = None
    warnings: list[str] = Field(default_factory=list)
    # Late label files taken at this run: what their labels did, one line each.
    labels: list[str] = Field(default_factory=list)
    # Files of this run left out (schema, unreadable, too large), with their reasons.
    rejected: dict[str, str] = Field(default_factory=dict)
    # driftwatch's own HTML page of this run (state/reports/), and Evidently's optional page.
    html_report: str | None = None
    evidently_report: str | None = None
    seconds: float = 0.0

    @property
    def outcome(self) -> str:
        if self.retrain is not None:
            return "retrained-promoted" if self.retrain.promoted else "retrained-kept"
        return self.decision.action.replace("_", "-")

    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump(mode="json")
        d["outcome"] = self.outcome
        if self.drift is not None:
            d["drift"] = self.drift.to_dict()
        d["horizons"] = [h.to_dict() for h in self.horizons]
        d["decision"]["triggers"] = sorted(self.decision.triggers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonitorResult:
        d = {k: v for k, v in d.items() if k != "outcome"}
        if d.get("drift"):
            d["drift"] = DriftResult.from_dict(d["drift"])
        d["horizons"] = [DriftResult.from_dict(h) for h in d.get("horizons", [])]
        return cls.model_validate(d)

    @property
    def stem(self) -> str:
        """A stable, sortable name for this run's files (result JSON, HTML report)."""
        return f"{self.started[:19].replace(':', '').replace('-', '')}Z-{self.run_id[:8]}"

    def save(self, runs_dir: Path) -> Path:
        data = json.dumps(self.to_dict(), indent=2, default=str).encode()
        return atomic_write_bytes(runs_dir / f"{self.stem}.json", data)


def load_results(runs_dir: Path) -> list[MonitorResult]:
    """Every stored run, oldest first; a damaged file fails with its name (ValueError)."""
    results = []
    for p in sorted(runs_dir.glob("*.json")):
        try:
            results.append(MonitorResult.from_dict(json.loads(p.read_text(encoding="utf-8"))))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{p}: not a readable run result: {exc}") from exc
    return results
