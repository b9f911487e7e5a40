"""``driftwatch init``: a commented config.yaml, a reference and a first batch from one data file.

A team with its own model starts from a file of its data, not from the flights example: the
columns are sorted by inferred type, the timestamp and the row id are recognised and kept out
of the features, the task is taken from the flags or from the target's values, and the data is
cut in two (by time when there is a timestamp): the older part is the reference, the newer part
the first batch in the landing dir, so that the first ``driftwatch run`` trains a champion and
judges a batch. Every choice is written into the config as a comment, to be read and changed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from driftwatch.config import TASK_METRICS, ModelSettings, label_problem
from driftwatch.errors import BatchError, ConfigError
from driftwatch.store.batches import read_batch

TARGET_NAMES = ("target", "label", "y", "class", "outcome")
ID_NAME = re.compile(r"(^id$|_id$|^id_|uuid|guid|^index$|^unnamed: ?0$)", re.IGNORECASE)
TIME_NAME = re.compile(r"(time|date|timestamp|_at$|^ts$|datetime)", re.IGNORECASE)
MAX_CLASSES = 20  # integer targets with more values are taken as a regression


@dataclass
class Layout:
    """What each column of the data is for, and why the others are left out."""

    target: str
    task: str
    target_threshold: float | None = None
    timestamp: str | None = None
    id_column: str | None = None
    numerical: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _parses_as_time(values: pd.Series) -> bool:
    """Text that pandas reads as timestamps (a sample of it), and that is not just numbers."""
    sample = values.dropna().head(200).astype(str)
    if sample.empty or sample.str.fullmatch(r"[-+.\d]+").all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", utc=True, format="mixed")
    return bool(parsed.notna().mean() >= 0.95)


def looks_like_time(frame: pd.DataFrame, col: str) -> bool:
    """A datetime column, or text whose values parse as timestamps (a csv's time column)."""
    values = frame[col]
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    textual = values.dtype == object or pd.api.types.is_string_dtype(values)
    return textual and _parses_as_time(values)


def _is_id(frame: pd.DataFrame, col: str) -> bool:
    """One value per row, integer or text: a row's name, which no model should learn from."""
    values = frame[col].dropna()
    if len(values) < 20 or values.nunique() < 0.95 * len(frame):
        return False
    if pd.api.types.is_float_dtype(values):
        return False
    return bool(ID_NAME.search(col)) or values.nunique() == len(frame)


def infer_layout(frame: pd.DataFrame, target: str | None, task: str | None, source: str) -> Layout:
    """Sort the columns of ``frame`` into target, timestamp, id, features and left out."""
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    if target is None:
        target = next((c for c in columns if c.lower() in TARGET_NAMES), None)
        if target is None:
            raise ConfigError(
                f"{source}: which column does the model predict? pass --target (columns:"
                f" {', '.join(columns[:30])}{' ...' if len(columns) > 30 else ''})"
            )
    if target not in columns:
        import difflib

        close = difflib.get_close_matches(target, columns, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{source}: --target {target!r} is not a column{hint}")
    task, threshold = _task(frame[target], target, task, source)
    layout = Layout(target=target, task=task, target_threshold=threshold)
    times = [c for c in columns if c != target and looks_like_time(frame, c)]
    times.sort(key=lambda c: not TIME_NAME.search(c))  # a name that says time first
    if times:
        layout.timestamp = times[0]
        for other in times[1:]:
            layout.left_out[other] = "a second timestamp"
    for col in columns:
        if col == target or col in times:
            continue
        values = frame[col]
        if values.isna().all():
            layout.left_out[col] = "always empty"
        elif values.nunique(dropna=True) <= 1:
            layout.left_out[col] = "constant"
        elif _is_id(frame, col):
            if layout.id_column is None:
                layout.id_column = col
            else:
                layout.left_out[col] = "one value per row (an id?)"
        elif pd.api.types.is_bool_dtype(values):
            layout.categorical.append(col)
        elif pd.api.types.is_numeric_dtype(values):
            layout.numerical.append(col)
        elif values.nunique() > 50 and values.nunique() > 0.5 * len(frame):
            layout.left_out[col] = f"text with {values.nunique()} distinct values (free text?)"
        else:
            layout.categorical.append(col)
    if not layout.numerical and not layout.categorical:
        raise ConfigError(f"{source}: no column left to be a feature (left out: {layout.left_out})")
    return layout


def _task(y: pd.Series, target: str, task: str | None, source: str) -> tuple[str, float | None]:
    """The task (given, or read from the target's values) and a threshold for a binary target
    whose two values are not 0/1."""
    if pd.api.types.is_bool_dtype(y):
        y = y.astype(float)
    numeric = pd.to_numeric(y, errors="coerce")
    if numeric.notna().sum() < y.notna().sum():
        raise ConfigError(
            f"{source}: column {target!r} holds text labels such as {y.dropna().iloc[0]!r};"
            " driftwatch needs numbers (map the classes to 0, 1, 2, ... first)"
        )
    values = np.unique(numeric.dropna().to_numpy(dtype=float))
    if len(values) < 2:
        raise ConfigError(f"{source}: column {target!r} holds {len(values)} value(s): no target")
    integral = bool(np.all(values == np.round(values)))
    if task is None:
        if not integral or len(values) > MAX_CLASSES:
            task = "regression"
        else:
            task = "binary" if len(values) == 2 else "multiclass"
    threshold = None
    if task == "binary" and len(values) == 2 and not set(values.tolist()) <= {0.0, 1.0}:
        threshold = float(values[0])  # label = target > the lower value
    if task != "regression":
        labels = values if threshold is None else (values > threshold).astype(float)
        spec = ModelSettings(
            name="init", task=task, target=target, target_threshold=threshold, numerical=["_"]
        )
        problem = label_problem(labels, spec)
        if problem:
            raise ConfigError(f"{source}: --task {task}: {problem}")
    return task, threshold


@dataclass
class Started:
    config: Path
    reference: Path
    batch: Path | None
    layout: Layout
    reference_rows: int
    batch_rows: int


def split(
    frame: pd.DataFrame, layout: Layout, share: float, source: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The older ``share`` of the rows (by the timestamp, else in file order) and the rest."""
    if layout.timestamp:
        times = pd.to_datetime(frame[layout.timestamp], errors="coerce", utc=True, format="mixed")
        if times.isna().all():
            raise BatchError(source, "no timestamp could be read", column=layout.timestamp)
        order = times.sort_values(kind="stable", na_position="first").index
        frame = frame.loc[order].reset_index(drop=True)
    cut = round(len(frame) * share)
    if cut < 30 or len(frame) - cut < 1:
        raise BatchError(
            source, f"{len(frame)} rows: too few to cut a reference of 30+ rows and a batch"
        )
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


def model_name(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-._") or "model"
    return name if name[0].isalnum() else f"m{name}"


def init_project(
    data: str | Path,
    directory: str | Path = ".",
    target: str | None = None,
    task: str | None = None,
    reference_share: float = 0.5,
    first_batch: bool = True,
    force: bool = False,
) -> Started:
    """Write ``config.yaml``, ``reference/<name>.parquet`` and (``first_batch``) the newer rows
    as ``landing/<name>-first.parquet`` under ``directory``."""
    data, directory = Path(data), Path(directory)
    config = directory / "config.yaml"
    if config.exists() and not force:
        raise ConfigError(f"{config} exists: pass --force to overwrite it (or --dir elsewhere)")
    frame = read_batch(data)
    if frame.empty:
        raise BatchError(str(data), "no rows")
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    layout = infer_layout(frame, target, task, str(data))
    reference, rest = split(frame, layout, reference_share, str(data))
    name = model_name(data)
    ref_path = directory / "reference" / f"{name}-reference.parquet"
    ref_path.parent.mkdir(parents=True, exist_ok=True)
    reference.to_parquet(ref_path, index=False)
    batch_path = None
    if first_batch:
        batch_path = directory / "landing" / f"{name}-first.parquet"
        batch_path.parent.mkdir(parents=True, exist_ok=True)
        rest.to_parquet(batch_path, index=False)
    config.write_text(
        config_text(layout, name, ref_path.relative_to(directory), reference, str(data)),
        encoding="utf-8",
    )
    return Started(config, ref_path, batch_path, layout, len(reference), len(rest))


def _flow(values: list[str]) -> str:
    """A YAML list (JSON strings are YAML: names are quoted as needed), a line per name when
    there are many."""
    if len(values) <= 4:
        return " " + json.dumps(values, ensure_ascii=False)
    return "".join(f"\n    - {json.dumps(v, ensure_ascii=False)}" for v in values)


def _time_blocks(reference: pd.DataFrame, ts: str | None) -> tuple[bool, str]:
    """Time-block calibration needs many days with enough rows each; else random rows."""
    if not ts:
        return False, "no timestamp: quiet batches are random reference rows"
    days = pd.to_datetime(reference[ts], errors="coerce", utc=True, format="mixed").dt.floor("D")
    per_day = days.value_counts()
    full = int((per_day >= 20).sum())
    if full >= 28:
        return True, f"{full} days of 20+ rows in the reference: quiet batches are time blocks"
    return False, (
        f"only {full} days with 20+ rows in the reference (time blocks want 28+):"
        " quiet batches are random reference rows"
    )


def config_text(
    layout: Layout, name: str, reference: Path, frame: pd.DataFrame, source: str
) -> str:
    ts = layout.timestamp
    blocks, why_blocks = _time_blocks(frame, ts)
    window = 60.0
    if ts:
        times = pd.to_datetime(frame[ts], errors="coerce", utc=True, format="mixed").dropna()
        span_days = (times.max() - times.min()) / pd.Timedelta(days=1) if len(times) else 0
        window = float(max(1, int(np.ceil(span_days)) + 1))
    metrics = TASK_METRICS[layout.task]
    left = "".join(f"\n#   {c}: {why}" for c, why in layout.left_out.items()) or " none"
    threshold = (
        f"\n  target_threshold: {layout.target_threshold:g}   # label = {layout.target} >"
        f" {layout.target_threshold:g} (its two values are not 0/1)"
        if layout.target_threshold is not None
        else ""
    )
    return f"""# driftwatch configuration written by `driftwatch init {source}`.
# Read it, then change what the guesses got wrong: `driftwatch config` validates it and prints
# every setting. Paths are relative to this file. README: "Monitor your own model".
#
# Left out of the features:{left}

paths:
  reference: {reference}   # the older {len(frame)} rows: what "no drift" looks like
  landing: landing         # drop new batch files (parquet or csv, same columns) here
  state: state             # ledger, history, MLflow (sqlite), references, reports

model:
  name: {json.dumps(name)}   # MLflow experiment and registered model name
  task: {layout.task}   # regression, binary or multiclass
  target: {json.dumps(layout.target)}   # rows without it are scored for drift only (labels may come later){threshold}
  timestamp: {json.dumps(ts) if ts else "null"}   # orders batches, the training window and the holdout
  id_column: {json.dumps(layout.id_column) if layout.id_column else "null"}   # late labels are joined to rows on it
  timezone: UTC            # the time zone of the data's calendar days
  numerical:{_flow(layout.numerical)}
  categorical:{_flow(layout.categorical)}
  estimator: hist_gradient_boosting   # or: linear, or "package.module:factory"
  params: {{}}

drift:
  method: calibrated       # thresholds from resampling the reference, false alarms <= the rate
  false_alarm_rate: 0.01
  horizons: []             # e.g. [1h, 1D] with hourly batches and a timestamp
  calibration:
    quiet: {"time_blocks" if blocks else "rows"}   # {why_blocks}
  report_only: []          # features tested and shown, never an alarm on their own
  ignore: []               # features not tested

quality:
  metric: {metrics[0]}   # {layout.task}: {", ".join(metrics)}
  relative_tolerance: 0.10 # degraded when worse than the champion's holdout score by 10%
  min_labelled_rows: 30
  baseline: holdout

retrain:
  window_days: {window:g}   # train on the last {window:g} days of history{" (the reference's span)" if ts else " (no timestamp: the reference and every batch)"}
  holdout_fraction: 0.2    # the newest 20% of labelled rows score both models
  promotion_margin: 0.01   # a challenger must be 1% better (a tie at the ceiling: README)
  promote: if_better

history:
  keep_days: {max(400.0, window):g}

report:
  html: true               # driftwatch's HTML page per run under state/reports/ (and in MLflow)
"""
