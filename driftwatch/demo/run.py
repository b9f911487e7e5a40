"""The demo: NYC flights 2013 replayed batch by batch through the real monitor flow.

It writes a demo config (the project's config with its state under ``state/demo``), drops one
batch file per tick into the landing dir and runs the monitor flow on it, so every tick is a
real Prefect flow run and every retrain a real MLflow run.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import yaml
from rich.table import Table

from driftwatch.config import load_settings
from driftwatch.report import tables
from driftwatch.report.text import batch_row
from driftwatch.store.batches import split_batches
from driftwatch.store.flights import FLIGHTS_TZ, load_flights, local_month

COLUMNS = [
    "tick",
    "batch",
    "rows",
    "drifted",
    "trigger",
    "rmse",
    "baseline",
    "outcome",
    "champion",
    "s",
]


# Minimum widths, so rows printed one at a time (one table each) line up under the header.
WIDTHS = {
    "tick": 4,
    "batch": 10,
    "rows": 6,
    "drifted": 7,
    "trigger": 13,
    "rmse": 7,
    "baseline": 8,
    "outcome": 19,
    "champion": 8,
    "s": 5,
}


def _row_table(header: bool) -> Table:
    t = tables.table(*COLUMNS)
    t.show_header = header
    for col in t.columns:
        col.min_width = WIDTHS[str(col.header)]
    return t


def _print_header() -> None:
    tables.echo(_row_table(header=True), flush=True)


def _print_row(values: dict[str, object]) -> None:
    """One batch's row as soon as its run ends (the replay takes minutes)."""
    t = _row_table(header=False)
    t.add_row(*(str(values.get(c, "-")) for c in COLUMNS))
    tables.echo(t, flush=True)


def write_demo_config(config: str | Path | None, state: Path, **sections: dict) -> Path:
    """The project's config with its state (and landing dir) under ``state``; ``sections``
    override keys per section, e.g. ``report={"html": False}``. Written to state/config.yaml."""
    source = Path(config or "config.yaml").resolve()
    raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    paths = raw.setdefault("paths", {})
    ref = Path(paths.get("reference", "reference_data/flights_2013_01.parquet"))
    paths["reference"] = str(ref if ref.is_absolute() else (source.parent / ref).resolve())
    paths["state"] = str(state.resolve())
    paths["landing"] = str((state / "landing").resolve())
    out = state / "config.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return out


def quiet_prefect_console() -> None:
    """The demo prints its own table; Prefect's INFO lines still reach the API (and the UI)."""
    for handler in ("CONSOLE", "CONSOLE_FLOW_RUNS", "CONSOLE_TASK_RUNS"):
        os.environ.setdefault(f"PREFECT_LOGGING_HANDLERS_{handler}_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def run_demo(
    config: str | None,
    months: tuple[int, ...],
    freq: str,
    state: Path,
    keep: bool,
    verbose: bool = False,
) -> int:
    if not verbose:
        quiet_prefect_console()
    from driftwatch.orchestration.runner import run_once

    if state.exists() and not keep:
        shutil.rmtree(state)
    # Daily batches are judged at their own span (one day of flights against day blocks of the
    # reference); the hourly horizons of config.yaml are for an hourly daemon. Labels come late,
    # as their own files: the champion is judged on its last 7 days of predictions with labels.
    demo_config = write_demo_config(
        config,
        state,
        drift={"horizons": []},
        paths={"labels": str((state / "labels").resolve())},
        quality={"lookback_hours": 168},
    )
    settings = load_settings(demo_config)
    landing, labels_dir = settings.paths.landing, settings.paths.labels
    landing.mkdir(parents=True, exist_ok=True)
    assert labels_dir is not None
    labels_dir.mkdir(parents=True, exist_ok=True)
    late = LateLabels(settings.model.target)

    flights = load_flights()
    reference_months = set(local_month(_read_reference(settings.paths.reference)).unique())
    batches = [
        (key, b)
        for key, b in split_batches(
            flights[local_month(flights).isin(months)], "time_hour", freq, FLIGHTS_TZ
        )
        if not set(local_month(b).unique()) & reference_months
    ]
    print(
        f"driftwatch demo: {len(batches)} batches ({freq}) from months {months} of 2013;"
        f" reference {settings.paths.reference.name}; state {state}"
    )
    _print_header()
    rows = []
    ticks = [("(empty)", None), *batches]
    failures = 0
    for i, (key, frame) in enumerate(ticks):
        if frame is not None:
            name = key.replace("/", "_")
            features = late.withhold(frame)  # the day's flights land without their air_time
            features.to_parquet(landing / f"flights-{name}.parquet", index=False)
            # ... and the air_times of the flights that have landed by the end of the day.
            due = late.due(frame["time_hour"].max() + pd.Timedelta(hours=1))
            if len(due):
                due.to_csv(labels_dir / f"labels-{name}.csv", index=False)
        t0 = time.time()
        final_state, result = run_once(str(demo_config))
        if result is None:
            failures += 1
            _print_row({"tick": i, "batch": key, "outcome": final_state.name})
            print(f"      {final_state.message}", flush=True)
            continue
        from driftwatch.monitor.result import MonitorResult

        row = {
            "tick": i,
            "batch": key,
            **batch_row(MonitorResult.from_dict(result)),
            "s": f"{time.time() - t0:.1f}",
        }
        rows.append(row)
        _print_row(row)
    _summary(rows, settings)
    return 0 if failures == 0 else 3


class LateLabels:
    """Each flight's ``air_time`` becomes known when it lands: departure hour + departure delay
    + air time + 20 minutes to report it."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.waiting = pd.DataFrame()

    def withhold(self, frame: pd.DataFrame) -> pd.DataFrame:
        lab = frame[["flight_id", self.target]].dropna(subset=[self.target])
        # Only the flights that have a label (cancelled ones have none: no NaN minutes, which
        # pandas' unit conversion warns about as an overflow).
        rows = frame.loc[lab.index]
        minutes = (rows["dep_delay"].fillna(0) + rows[self.target] + 20).to_numpy(dtype=float)
        lab = lab.assign(label_time=rows["time_hour"] + pd.to_timedelta(minutes, unit="min"))
        self.waiting = pd.concat([self.waiting, lab.dropna()], ignore_index=True)
        return frame.drop(columns=[self.target])

    def due(self, now: pd.Timestamp) -> pd.DataFrame:
        if self.waiting.empty:
            return self.waiting
        ready = self.waiting["label_time"] <= now
        out, self.waiting = self.waiting[ready], self.waiting[~ready]
        return out.reset_index(drop=True)


def _read_reference(path: Path):
    return pd.read_parquet(path, columns=["time_hour"])


def _summary(rows: list[dict[str, object]], settings) -> None:
    from driftwatch.store.registry import Registry

    outcomes: dict[str, int] = {}
    for r in rows:
        outcomes[str(r["outcome"])] = outcomes.get(str(r["outcome"]), 0) + 1
    t = tables.table("outcome", "batches", title="\noutcomes", right=("batches",))
    for k, v in sorted(outcomes.items()):
        t.add_row(k, str(v))
    tables.echo(t)
    reg = Registry(settings)
    versions = reg.client.search_model_versions(f"name='{settings.model.name}'")
    champion = reg.champion()
    print(
        f"MLflow ({settings.tracking_uri}): registered model {settings.model.name!r},"
        f" {len(versions)} versions, alias 'champion' -> v{champion.version if champion else '-'}"
    )
    print(f"see: mlflow ui --backend-store-uri {settings.tracking_uri} --host 127.0.0.1")
