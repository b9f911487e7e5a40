"""driftwatch: drift monitoring that retrains and promotes a model only when it helps.

The public API is importable from here; names are resolved lazily, so ``import driftwatch``
and ``driftwatch --help`` stay instant (Prefect, MLflow and Evidently are imported only inside
the few modules that talk to them, and only when used).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "DriftDetector": "driftwatch.engine.drift",
    "DriftResult": "driftwatch.engine.drift",
    "ColumnDrift": "driftwatch.engine.drift",
    "ReferenceProfile": "driftwatch.engine.drift",
    "ColumnRule": "driftwatch.engine.rules",
    "rule_for": "driftwatch.engine.rules",
    "ThresholdCalibrator": "driftwatch.engine.calibration",
    "Calibration": "driftwatch.engine.calibration",
    "Settings": "driftwatch.config",
    "load_settings": "driftwatch.config",
    "Plan": "driftwatch.monitor.plan",
    "MonitorCycle": "driftwatch.monitor.pipeline",
    "MonitorResult": "driftwatch.monitor.result",
    "Decision": "driftwatch.monitor.result",
    "RetrainOutcome": "driftwatch.monitor.result",
    "Backtester": "driftwatch.monitor.backtest",
    "DriftwatchError": "driftwatch.errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'driftwatch' has no attribute {name!r}")
