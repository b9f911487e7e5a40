"""What a config would have done on history: replay batches with no side effects.

The replay runs the monitor's own use case (:class:`driftwatch.monitor.pipeline.MonitorCycle`)
with in-memory ports: the same drift check, calibration, quality verdict, prediction drift,
decision, training window, holdout and promotion rule as the daemon, but no ledger, no MLflow
and no files under the state dir. It starts with no champion, as a new deployment would.

``policy`` replaces the retrain trigger for comparisons: "config" retrains when the monitor
would, "always" after every batch, "never" not at all (the champion stays the first model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from driftwatch.config import Settings
from driftwatch.engine.drift import ColumnDrift
from driftwatch.monitor.memory import (
    MemoryBatches,
    MemoryHistory,
    MemoryLabels,
    MemoryReferences,
    MemoryRegistry,
    MemoryThresholds,
    ResultLog,
)
from driftwatch.monitor.pipeline import MonitorCycle
from driftwatch.monitor.plan import Plan, RetrainPolicy
from driftwatch.monitor.result import MonitorResult

Policy = Literal["config", "always", "never", "schedule"]
POLICIES: dict[str, RetrainPolicy] = {
    "config": "monitor",
    "always": "always",
    "never": "never",
    "schedule": "schedule",  # by age only (retrain.max_age_days)
}


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
    champion: int  # backtest-local model version after the batch (1 is the bootstrap)
    reason: str
    triggers: list[str] = field(default_factory=list)
    train_rows: int | None = None  # rows the retrain's registered model learnt from
    quality_rows: int = 0  # labelled rows behind ``value`` (the batch's, or the lookback's)
    # The champion's estimated metric on the batch (no labels), its interval, whether it is
    # reliable and whether it says degraded (quality.estimate; None without an estimate).
    estimated: float | None = None
    estimated_low: float | None = None
    estimated_high: float | None = None
    estimated_reliable: bool | None = None
    estimated_degraded: bool | None = None


@dataclass
class BacktestResult:
    name: str
    policy: str
    method: str
    batches: list[BatchVerdict] = field(default_factory=list)
    report_only: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        vals = [(b.value, b.quality_rows) for b in self.batches if b.value is not None]
        return {
            "config": self.name,
            "policy": self.policy,
            "method": self.method,
            "batches": len(self.batches),
            "alarms": sum(b.dataset_drift for b in self.batches),
            "quality_alarms": sum(bool(b.degraded) for b in self.batches),
            "estimated_alarms": sum(bool(b.estimated_degraded) for b in self.batches),
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
    """``run(batches)``: one pass over history through the monitor's own use case.

    The ports are in memory (:mod:`driftwatch.monitor.memory`): no ledger, no MLflow, no files
    under the state dir. It starts as a new deployment would, with no champion: the first batch
    bootstraps one from the configured reference plus that batch.
    """

    def __init__(
        self,
        settings: Settings,
        name: str = "config",
        policy: Policy = "config",
        label_time: str | None = None,
    ):
        """``label_time``: a column of the batches holding when each row's label becomes known;
        the batches then arrive without labels and each label joins history at its time
        (needs ``model.id_column``), as late labels do in production."""
        self.settings = settings
        self.name = name
        self.policy = policy
        self.label_time = label_time
        self.plan = Plan(settings=settings, policy=POLICIES[policy])

    def run(
        self,
        batches: Iterable[tuple[str, pd.DataFrame]],
        reference: pd.DataFrame,
        progress: Callable[[str], None] | None = None,
    ) -> BacktestResult:
        """``reference``: the first reference (``paths.reference``, read by the caller)."""
        plan, s = self.plan, self.settings
        labels = MemoryLabels(plan, self.label_time) if self.label_time else None
        source = MemoryBatches(plan, batches, labels)
        references = MemoryReferences(plan, reference)
        registry = MemoryRegistry()
        log = ResultLog()
        cycle = MonitorCycle(
            plan,
            source,
            references,
            MemoryThresholds(plan, references),
            registry,
            log,
            MemoryHistory(plan, labels),
        )
        out = BacktestResult(self.name, self.policy, s.drift.method, [], list(s.drift.report_only))
        while len(source):
            label = source._queue[0][0]
            result = cycle.run(run_id=label)
            if result.rows:
                out.batches.append(verdict(result, label, plan))
            if progress:
                progress(label)
        if labels is not None:  # the replay is over: every label has arrived by now
            labels.now = pd.Timestamp.max.tz_localize("UTC")
            labels.release()
        # Every row with the prediction of the champion that served it (realised performance).
        self.history_ = cycle.history.rows()
        return out


def verdict(result: MonitorResult, label: str, plan: Plan) -> BatchVerdict:
    """One backtest row from the monitor's own result."""
    drift, quality, retrain = result.drift, result.quality, result.retrain
    e = result.estimated
    return BatchVerdict(
        label=label,
        start=result.start or "",
        end=result.end or "",
        rows=result.rows,
        labelled_rows=result.labelled_rows,
        severity={c.column: severity(c) for c in drift.columns} if drift else {},
        drifted=drift.drifted_columns if drift else [],
        dataset_drift=bool(drift and drift.dataset_drift),
        metric=plan.metric,
        value=quality.value if quality else None,
        baseline=quality.baseline if quality else None,
        degraded=quality.degraded if quality else None,
        action=result.decision.action,
        retrained=retrain is not None,
        promoted=bool(retrain and retrain.promoted),
        champion=int(result.champion_version or 0),
        reason=result.decision.reason,
        triggers=sorted(result.decision.triggers),
        train_rows=retrain.train_rows if retrain else None,
        quality_rows=quality.labelled_rows if quality else 0,
        estimated=e.value if e else None,
        estimated_low=e.low if e else None,
        estimated_high=e.high if e else None,
        estimated_reliable=e.reliable if e and e.value is not None else None,
        estimated_degraded=e.degraded if e else None,
    )
