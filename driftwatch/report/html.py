"""Evidently's HTML report for a monitor run (``report.evidently``): an optional deep dive,
never the verdict.

The drift verdict comes from driftwatch's own engine and its own page
(:mod:`driftwatch.report.page`); Evidently's page applies Evidently's rule (a share of columns,
its fixed thresholds), so it opens under a banner saying that and giving driftwatch's verdict.
Evidently is slow on large frames (FACTS.md: 1M rows ~3 min), so both sides are sampled to
``report.html_sample_rows``. When the batch has labels and a champion exists, the rows shown are
labelled rows with the champion's predictions, and the regression or classification quality
preset is added next to the data drift preset.
"""

from __future__ import annotations

import html
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from driftwatch.config import Settings
from driftwatch.files import atomic_write
from driftwatch.model.estimators import predict, target
from driftwatch.model.schema import labelled


def _prepared(
    frame: pd.DataFrame, settings: Settings, model: object | None, n: int
) -> pd.DataFrame:
    spec = settings.model
    rows = frame
    if model is not None and frame[spec.target].notna().sum() >= settings.quality.min_labelled_rows:
        rows = labelled(frame, spec)
    if len(rows) > n:
        rows = rows.sample(n, random_state=0)
    out = rows[spec.features].copy()
    for col in spec.categorical:
        out[col] = out[col].astype(object)
    if model is not None and rows[spec.target].notna().all():
        out["target"] = target(rows, spec).to_numpy()
        out["prediction"] = predict(model, rows, spec)
    return out.reset_index(drop=True)


BANNER = (
    '<div style="background:#fff8c5;border:2px solid #bf8700;padding:10px 16px;margin:8px;'
    'font:15px system-ui,sans-serif;color:#1f2328">'
    "<b>Evidently's page, not driftwatch's verdict.</b> Its dataset rule (drifted share of"
    " columns &ge; 0.5) and its per-column thresholds are Evidently's defaults; driftwatch judged"
    " this run with its own calibrated thresholds: <b>{verdict}</b>. driftwatch's page:"
    ' <a href="{page}">{page}</a>.</div>'
)


def add_banner(path: Path, verdict: str, page: str) -> None:
    """Put the banner at the top of Evidently's page (right after ``<body>``)."""
    text = path.read_text(encoding="utf-8")
    banner = BANNER.format(verdict=html.escape(verdict), page=html.escape(page))
    found = re.search(r"<body[^>]*>", text)
    at = found.end() if found else 0
    path.write_text(text[:at] + banner + text[at:], encoding="utf-8")


def write_html(
    settings: Settings,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    model: object | None,
    path: Path,
    verdict: str = "",
    page: str = "",
) -> Path:
    from evidently import (
        BinaryClassification,
        DataDefinition,
        Dataset,
        MulticlassClassification,
        Regression,
        Report,
    )
    from evidently.presets import ClassificationPreset, DataDriftPreset, RegressionPreset

    spec = settings.model
    n = settings.report.html_sample_rows
    ref = _prepared(reference, settings, model, n)
    cur = _prepared(current, settings, model, n)
    quality = "target" in ref.columns and "target" in cur.columns
    numerical, categorical = list(spec.numerical), list(spec.categorical)
    kwargs: dict = {}
    presets: list = [DataDriftPreset(columns=list(spec.features))]
    if quality and spec.task == "regression":
        numerical += ["target", "prediction"]
        kwargs["regression"] = [Regression(target="target", prediction="prediction")]
        presets.append(RegressionPreset())
    elif quality and spec.task == "multiclass":  # prediction = the predicted class
        for frame in (ref, cur):
            frame["target"] = frame["target"].astype(np.int64)
            frame["prediction"] = frame["prediction"].astype(np.int64)
        kwargs["classification"] = [
            MulticlassClassification(target="target", prediction_labels="prediction")
        ]
        categorical += ["target", "prediction"]
        presets.append(ClassificationPreset())
    elif quality:
        for frame in (ref, cur):
            frame["target"] = frame["target"].astype(np.int64)
        numerical += ["prediction"]
        kwargs["classification"] = [
            BinaryClassification(target="target", prediction_probas="prediction", pos_label=1)
        ]
        presets.append(ClassificationPreset())
    else:
        ref = ref[list(spec.features)]
        cur = cur[list(spec.features)]
    definition = DataDefinition(
        numerical_columns=numerical, categorical_columns=categorical, **kwargs
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report(presets).run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition),
        )

        def save(tmp: Path) -> None:
            snapshot.save_html(str(tmp))
            add_banner(tmp, verdict, page)

        return atomic_write(path, save)
