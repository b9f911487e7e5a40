"""One monitor run's findings and decision, as data.

Logs, Prefect artifacts, MLflow metrics and the CLI's JSON are all renderings of a
``MonitorResult``; nothing decides anything twice.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from driftwatch.engine.drift import ColumnDrift, DriftResult, atomic_write_bytes
from driftwatch.model.quality import QualityResult

Action = Literal["no_data", "no_drift", "retrain", "bootstrap"]


@dataclass
class Decision:
    action: Action
    reason: str

    @property
    def retrain(self) -> bool:
        return self.action in ("retrain", "bootstrap")


def decide(
    drift: DriftResult | None,
    quality: QualityResult | None,
    prediction: ColumnDrift | None,
    has_champion: bool,
    rows: int,
) -> Decision:
    """Retrain when features drifted (dataset rule) or the champion's quality degraded.

    Prediction drift alone is reported but does not retrain: without labels it cannot show
    the model got worse, and retraining on every shift of the output would churn the model.
    """
    if rows == 0:
        return Decision("no_data", "no new data")
    if not has_champion:
        return Decision("bootstrap", "no champion yet: train and register the first one")
    reasons = []
    if drift is not None and drift.dataset_drift:
        reasons.append(drift.summary())
    if quality is not None and quality.degraded:
        reasons.append(quality.reason)
    if reasons:
        return Decision("retrain", "; ".join(reasons))
    parts = ["no drift"]
    if drift is not None:
        parts.append(drift.summary())
    if quality is not None:
        parts.append(quality.reason)
    if prediction is not None and prediction.drifted:
        parts.append("prediction drift seen (reported only)")
    return Decision("no_drift", "; ".join(parts))


@dataclass
class RetrainOutcome:
    promoted: bool
    reason: str
    metric: str
    challenger_score: float
    champion_score: float | None
    challenger_version: str
    champion_version: str | None  # after the decision
    previous_version: str | None
    train_rows: int
    holdout_rows: int
    run_id: str
    reference: str | None
    seconds: float


@dataclass
class MonitorResult:
    run_id: str
    started: str
    files: list[str]
    rows: int
    labelled_rows: int
    decision: Decision
    window: str = ""
    drift: DriftResult | None = None
    quality: QualityResult | None = None
    prediction: ColumnDrift | None = None
    champion_version: str | None = None
    reference_version: str | None = None
    retrain: RetrainOutcome | None = None
    warnings: list[str] = field(default_factory=list)
    html_report: str | None = None
    seconds: float = 0.0

    @property
    def outcome(self) -> str:
        if self.retrain is not None:
            return "retrained-promoted" if self.retrain.promoted else "retrained-kept"
        return self.decision.action.replace("_", "-")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outcome"] = self.outcome
        if self.drift is not None:
            d["drift"] = self.drift.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonitorResult:
        d = dict(d)
        d.pop("outcome", None)
        d["decision"] = Decision(**d["decision"])
        if d.get("drift"):
            d["drift"] = DriftResult.from_dict(d["drift"])
        if d.get("quality"):
            d["quality"] = QualityResult(**d["quality"])
        if d.get("prediction"):
            d["prediction"] = ColumnDrift(**d["prediction"])
        if d.get("retrain"):
            d["retrain"] = RetrainOutcome(**d["retrain"])
        return cls(**d)

    @property
    def stem(self) -> str:
        """A stable, sortable name for this run's files (result JSON, HTML report)."""
        return f"{self.started[:19].replace(':', '').replace('-', '')}Z-{self.run_id[:8]}"

    def save(self, runs_dir: Path) -> Path:
        name = f"{self.stem}.json"
        data = json.dumps(self.to_dict(), indent=2, default=str).encode()
        return atomic_write_bytes(runs_dir / name, data)


def load_results(runs_dir: Path) -> list[MonitorResult]:
    return [
        MonitorResult.from_dict(json.loads(p.read_text(encoding="utf-8")))
        for p in sorted(runs_dir.glob("*.json"))
    ]
