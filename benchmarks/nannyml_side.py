"""NannyML's side of benchmarks/estimate_2013.py: run by the NannyML venv's python, never by
driftwatch's (NannyML 0.13's pins conflict with driftwatch's: FACTS.md). NannyML 0.13.1 needs
``pandas<3`` (under pandas 3 its DLE fails on string columns: "ArrowStringArray does not
support reshape") and ``statsmodels``, which it imports but does not declare.

    /work/nannyml-venv/bin/python benchmarks/nannyml_side.py DIR

DIR holds what estimate_2013.py wrote: ``reference.parquet`` (the champion's holdout: features,
``y_true``, ``y_pred`` and, for classification, ``y_pred_proba``), ``analysis.parquet`` (the
periods' rows: features, the champion's outputs and one period column per granularity, no
labels) and ``spec.json`` (task, feature names, period columns). Writes ``result.json``: per
granularity, one record per period with NannyML's estimate, its sampling error and its own
confidence band (value +- 3 sampling errors). Imports nothing of driftwatch.

Regression: Direct Loss Estimation (``nml.DLE``, metric rmse, default LightGBM loss model, no
tuning). Classification: ``nml.CBPE`` (metric roc_auc, problem_type classification_binary,
its default isotonic calibration on the reference when its check says the scores need it).
Both chunked by the period column (:class:`ColumnChunker`), so NannyML's chunks are exactly the
periods driftwatch estimates.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # no analytics calls from a closed network

import pandas as pd


def main(workdir: Path) -> None:
    import nannyml as nml
    from nannyml.chunk import Chunk, Chunker

    class ColumnChunker(Chunker):
        """One chunk per value of a column (a period key), in sorted order. NannyML ships
        size, count and period (pandas offset) chunkers; the periods here are local-time
        weeks and days computed by the benchmark, so the chunk boundaries are given, not
        re-derived from a UTC offset. The reference has no such column: one chunk."""

        def __init__(self, column: str) -> None:
            super().__init__(None)
            self.column = column

        def _split(self, data: pd.DataFrame) -> list[Chunk]:
            if self.column not in data.columns:
                return [Chunk(key="reference", data=data)]
            return [
                Chunk(key=str(key), data=group)
                for key, group in data.groupby(self.column, sort=True)
            ]

    spec = json.loads((workdir / "spec.json").read_text())
    reference = pd.read_parquet(workdir / "reference.parquet")
    analysis = pd.read_parquet(workdir / "analysis.parquet")
    features = [*spec["numerical"], *spec["categorical"]]
    for col in spec["categorical"]:  # NannyML treats object/category columns as categorical
        reference[col] = reference[col].astype("object")
        analysis[col] = analysis[col].astype("object")
    metric = "rmse" if spec["task"] == "regression" else "roc_auc"
    out: dict = {"version": nml.__version__, "periods": {}, "timing": {}}
    for column in spec["periods"]:
        chunker = ColumnChunker(column)
        if spec["task"] == "regression":
            est = nml.DLE(
                feature_column_names=features,
                y_pred="y_pred",
                y_true="y_true",
                metrics=[metric],
                chunker=chunker,
            )
        else:
            est = nml.CBPE(
                y_pred_proba="y_pred_proba",
                y_pred="y_pred",
                y_true="y_true",
                problem_type="classification_binary",
                metrics=[metric],
                chunker=chunker,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "too few chunks" on the one-chunk reference
            t0 = time.perf_counter()
            est.fit(reference)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = est.estimate(analysis)
            estimate_s = time.perf_counter() - t0
        frame = result.filter(period="analysis").to_df()
        records = []
        for _, row in frame.iterrows():
            records.append(
                {
                    "period": str(row[("chunk", "key")]),
                    "estimate": float(row[(metric, "value")]),
                    "sampling_error": float(row[(metric, "sampling_error")]),
                    "lower_band": float(row[(metric, "lower_confidence_boundary")]),
                    "upper_band": float(row[(metric, "upper_confidence_boundary")]),
                }
            )
        out["periods"][column] = records
        out["timing"][column] = {
            "fit_s": round(fit_s, 3),
            "estimate_s": round(estimate_s, 3),
            "chunks": len(records),
        }
    (workdir / "result.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
