"""A model's quality on a big batch, scored per partition: the metrics' sufficient statistics.

RMSE needs the sum of squared errors and the count, MAE the sum of absolute errors, accuracy the
number right, F1 the confusion counts (per class for macro F1): all of them add up across
partitions, so each Dask worker scores its partition and the sums are merged. The metrics from
the merged sums equal ``quality.score_predictions`` on the whole batch (tests/test_summaries.py).
ROC AUC needs every score ranked together and is not offered on a summarised batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftwatch.config import ModelSettings


@dataclass
class QualitySums:
    task: str
    n: int = 0
    sse: float = 0.0
    sae: float = 0.0
    correct: int = 0
    # class -> [true positives, false positives, false negatives]
    confusion: dict[int, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, model: Any, frame: pd.DataFrame, spec: ModelSettings) -> QualitySums:
        """The sums over ``frame``'s labelled rows (unlabelled rows are skipped)."""
        from driftwatch.model.estimators import predict, target
        from driftwatch.model.schema import labelled

        rows = labelled(frame, spec)
        if rows.empty:
            return cls(spec.task)
        y = target(rows, spec).to_numpy()
        return cls.from_predictions(y, predict(model, rows, spec), spec.task)

    @classmethod
    def from_predictions(cls, y: np.ndarray, p: np.ndarray, task: str) -> QualitySums:
        out = cls(task, n=len(y))
        if task == "regression":
            err = np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)
            out.sse, out.sae = float(err @ err), float(np.abs(err).sum())
            return out
        y = np.asarray(y).astype(int)
        labels = np.asarray(p).astype(int) if task == "multiclass" else (p >= 0.5).astype(int)
        out.correct = int((labels == y).sum())
        classes = np.union1d(y, labels) if task == "multiclass" else np.array([1])
        for k in classes.tolist():
            tp = int(((labels == k) & (y == k)).sum())
            fp = int(((labels == k) & (y != k)).sum())
            fn = int(((labels != k) & (y == k)).sum())
            out.confusion[int(k)] = [tp, fp, fn]
        return out

    def merge(self, other: QualitySums) -> QualitySums:
        confusion = {k: list(v) for k, v in self.confusion.items()}
        for k, v in other.confusion.items():
            have = confusion.setdefault(k, [0, 0, 0])
            confusion[k] = [a + b for a, b in zip(have, v, strict=True)]
        return QualitySums(
            self.task,
            self.n + other.n,
            self.sse + other.sse,
            self.sae + other.sae,
            self.correct + other.correct,
            confusion,
        )

    def metrics(self) -> dict[str, float]:
        """The task's metrics (as ``quality.score_predictions`` names them, ROC AUC aside)."""
        if self.n == 0:
            return {}
        if self.task == "regression":
            return {"rmse": math.sqrt(self.sse / self.n), "mae": self.sae / self.n}

        def f1(tp: int, fp: int, fn: int) -> float:
            return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0

        scores = [f1(*v) for v in self.confusion.values()]
        out = {"accuracy": self.correct / self.n}
        if self.task == "multiclass":
            out["f1"] = float(np.mean(scores)) if scores else 0.0
        else:
            out["f1"] = scores[0] if scores else 0.0
        return out
