"""Drift that knows time: false alarms on quiet time blocks, detection of real incidents.

Reference: every flight on an odd-numbered day of two months of 2013 (local New York days);
quiet batches: contiguous blocks of flights from the even-numbered days of the same months (one
departure hour, six hours, one day; blocks with fewer than 20 flights are left out, as the
calibration leaves them out). 13 features, all counting: distance, hour, temp, dewp, humid,
wind_speed, precip, pressure, visib, dep_delay, carrier, origin, dest. Rate 1% per span.

Thresholds, per span, from the reference alone:
  rows     the previous calibration: batches of random reference rows (driftwatch's
           ThresholdCalibrator on a random half, W1 / Jensen-Shannon), for the batch's size
  blocks   time-block calibration (driftwatch.engine.blocks): leave-day-out blocks of the span,
           W1, KS, missing, novel, modal, Jensen-Shannon and cross-column residual statistics
Incidents injected into the same quiet blocks: temp in °C, pressure all-null, visib all-null,
carrier codes lower-cased, distance in km, dep_delay + 30 min. Also: random-row batches of 1k
and 10k rows from the even days (the previous benchmark's setting), and the cost.

Jan+Feb is the month pair the method was designed on; the other pairs are held out.

    .venv/bin/python benchmarks/time_blocks.py                  # Jan+Feb, Jul+Aug, Oct+Nov
    .venv/bin/python benchmarks/time_blocks.py --months 3,4 5,6 9,10 11,12 --no-rows \
        --out time_blocks_more_months.json                       # more held-out pairs

Writes benchmarks/results/time_blocks.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from driftwatch.engine.blocks import BlockCalibrator, block_statistics
from driftwatch.engine.calibration import ThresholdCalibrator
from driftwatch.engine.drift import DriftDetector
from driftwatch.store.flights import FLIGHTS_TZ, load_flights

HERE = Path(__file__).resolve().parent
RATE = 0.01
MIN_ROWS = 20
NUMERICAL = [
    "distance", "hour", "temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib",
    "dep_delay",
]  # fmt: skip
CATEGORICAL = ["carrier", "origin", "dest"]
WEATHER = ["temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"]
SPANS = ("1h", "6h", "1D")
INCIDENTS = {
    "temp in °C": lambda b: b.assign(temp=(b.temp - 32) / 1.8),
    "pressure all-null": lambda b: b.assign(pressure=np.nan),
    "visib all-null": lambda b: b.assign(visib=np.nan),
    "carrier lower-case": lambda b: b.assign(carrier=b.carrier.astype(str).str.lower()),
    "distance in km": lambda b: b.assign(distance=b.distance * 1.609),
    "dep_delay + 30 min": lambda b: b.assign(dep_delay=b.dep_delay + 30),
}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def rate_cell(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{100 * k / n:.1f}% ({k}/{n}; {100 * lo:.1f}-{100 * hi:.1f})"


def blocks_of(frame: pd.DataFrame, span: str) -> list[pd.DataFrame]:
    local = frame["local"]
    if span == "6h":
        key = local.dt.normalize() + pd.to_timedelta((local.dt.hour // 6) * 6, unit="h")
    else:
        key = local.dt.floor(span)
    return [g for _, g in frame.groupby(key.to_numpy()) if len(g) >= MIN_ROWS]


def explained_by_outage(block: pd.DataFrame, components: list[str]) -> bool:
    """Every alarming statistic is the missing share of a weather feature whose feed had no
    reading for an airport-hour of the block (every flight of that origin and hour null: the
    weather source lacks the hour). A real feed gap in the "quiet" data, not a false alarm;
    ``dep_delay`` nulls are cancelled flights, the world, and stay counted as false alarms."""
    if not components or not all(c.endswith(":missing") for c in components):
        return False
    cols = [c.split(":")[0] for c in components]
    if not set(cols) <= set(WEATHER):
        return False
    hours = block.groupby(["origin", block["local"].dt.floor("1h")], observed=True)
    gaps = hours[cols].agg(lambda s: bool(s.isna().all()))
    return bool(gaps.any(axis=0).all())


class RowThresholds:
    """The previous method: thresholds from random-row resamples, for each batch size."""

    def __init__(self, reference: pd.DataFrame) -> None:
        self.reference = reference
        self.cache: dict[int, DriftDetector] = {}

    def alarm(self, batch: pd.DataFrame) -> bool:
        rows = len(batch)
        if rows not in self.cache:
            det = DriftDetector(NUMERICAL, CATEGORICAL, method="calibrated", min_rows=MIN_ROWS)
            cal = ThresholdCalibrator(det, rows, RATE, batches=500).fit(self.reference)
            tests = {c: (t.test, t.threshold) for c, t in cal.thresholds_.items()}
            self.cache[rows] = DriftDetector(
                NUMERICAL, CATEGORICAL, tests=tests, method="calibrated", min_rows=MIN_ROWS
            ).fit(self.reference)
        return self.cache[rows].check(batch).dataset_drift


def run(months: tuple[int, ...], with_rows: bool) -> dict:
    flights = load_flights()
    flights["local"] = flights["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.tz_localize(None)
    chosen = flights[flights["local"].dt.month.isin(months)]
    odd = chosen["local"].dt.day % 2 == 1
    reference = chosen[odd].reset_index(drop=True)
    quiet = chosen[~odd].reset_index(drop=True)
    out: dict = {"months": list(months), "reference_rows": len(reference), "spans": {}}
    for span in SPANS:
        started = time.perf_counter()
        cal = BlockCalibrator(NUMERICAL, CATEGORICAL, rate=RATE, min_rows=MIN_ROWS).fit(
            reference, reference["local"], span
        )
        seconds = time.perf_counter() - started
        t = cal.thresholds_

        def alarm(batch: pd.DataFrame, t=t, cal=cal) -> tuple[bool, list[str]]:
            stats = block_statistics(cal.profile_, batch)
            with np.errstate(invalid="ignore"):
                hit = np.nan_to_num(stats > t.thresholds, nan=0).astype(bool)
            return bool(hit.any()), [c for c, h in zip(t.components, hit, strict=True) if h]

        blocks = blocks_of(quiet, span)
        tick = [time.perf_counter()]
        quiet_hits, gap_hits, who = 0, 0, Counter()
        for b in blocks:
            a, comps = alarm(b)
            quiet_hits += a
            # A quiet block in which a feature's feed was down for whole hours: a real incident
            # in the "quiet" data, counted as a false alarm above, shown apart here.
            gap_hits += a and explained_by_outage(b, comps)
            who.update(comps)
        per_check = (time.perf_counter() - tick[0]) / max(len(blocks), 1)
        row: dict = {
            "blocks": len(blocks),
            "calibration": {"rule": t.rule, "blocks": t.n_blocks, "days": t.n_days},
            "calibrate_seconds": round(seconds, 2),
            "check_ms": round(1000 * per_check, 2),
            "quiet": [quiet_hits, len(blocks)],
            "quiet_alarms_in_feed_gaps": gap_hits,
            "quiet_components": who.most_common(5),
            "incidents": {},
        }
        for name, inject in INCIDENTS.items():
            hits = sum(alarm(inject(b.copy()))[0] for b in blocks)
            row["incidents"][name] = [hits, len(blocks)]
        # Every numerical feature's feed broken in turn: the general form of "one numerical
        # feature all-null" (pressure is all-null in 3-10% of 2013's quiet hours by itself).
        row["all_null"] = {
            col: [sum(alarm(b.assign(**{col: np.nan}))[0] for b in blocks), len(blocks)]
            for col in NUMERICAL
        }
        rng = np.random.default_rng(0)
        for size in (1000, 10_000):
            n = 200
            hits = sum(
                alarm(quiet.iloc[np.sort(rng.choice(len(quiet), size, replace=False))])[0]
                for _ in range(n)
            )
            row[f"random_{size}"] = [hits, n]
        if with_rows:
            rows = RowThresholds(reference)
            sample = blocks[:: max(1, len(blocks) // 120)]  # every size calibrates: subsample
            row["rows_quiet"] = [sum(rows.alarm(b) for b in sample), len(sample)]
            row["rows_incidents"] = {
                name: [sum(rows.alarm(inject(b.copy())) for b in sample), len(sample)]
                for name, inject in INCIDENTS.items()
            }
        out["spans"][span] = row
        print(
            f"{months} {span}: quiet {rate_cell(*row['quiet'])} {row['quiet_components']}",
            flush=True,
        )
    return out


def tables(results: list[dict]) -> str:
    lines = ["### Quiet blocks: dataset alarms (n blocks; 95% Wilson interval)", ""]
    head = "| months | " + " | ".join(SPANS) + " |"
    lines += [head, "|---|" + "---|" * len(SPANS)]
    for r in results:
        cells = [rate_cell(*r["spans"][s]["quiet"]) for s in SPANS]
        lines.append(f"| {'+'.join(map(str, r['months']))} | " + " | ".join(cells) + " |")
    cols = [f"{'+'.join(map(str, r['months']))} {s}" for r in results for s in SPANS]

    def shares(title: str, first: str, key: str, names: list[str]) -> list[str]:
        out = ["", f"### {title}: share of blocks with an alarm", ""]
        out += [f"| {first} | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for name in names:
            hits = [r["spans"][s][key][name] for r in results for s in SPANS]
            out.append(f"| {name} | " + " | ".join(f"{100 * k / n:.0f}%" for k, n in hits) + " |")
        return out

    lines += shares("Incidents", "incident", "incidents", list(INCIDENTS))
    lines += shares("Each numerical feature all-null in turn", "feature", "all_null", NUMERICAL)
    lines += ["", "### Quiet alarms explained by a feed outage (of all alarms)", ""]
    lines += ["| months | " + " | ".join(SPANS) + " |", "|---|" + "---|" * len(SPANS)]
    for r in results:
        cells = [
            f"{r['spans'][s]['quiet_alarms_in_feed_gaps']} of {r['spans'][s]['quiet'][0]}"
            for s in SPANS
        ]
        lines.append(f"| {'+'.join(map(str, r['months']))} | " + " | ".join(cells) + " |")
    lines += ["", "### Quiet blocks without a feed outage: dataset alarms", ""]
    lines += [head, "|---|" + "---|" * len(SPANS)]
    for r in results:
        cells = []
        for s in SPANS:
            (k, n), gaps = r["spans"][s]["quiet"], r["spans"][s]["quiet_alarms_in_feed_gaps"]
            cells.append(rate_cell(k - gaps, n - gaps))
        lines.append(f"| {'+'.join(map(str, r['months']))} | " + " | ".join(cells) + " |")
    lines += ["", "### Random-row batches from the even days, block thresholds", ""]
    lines += ["| months | " + " | ".join(f"{s} 1k / 10k" for s in SPANS) + " |"]
    lines += ["|---|" + "---|" * len(SPANS)]
    for r in results:
        cells = [
            f"{rate_cell(*r['spans'][s]['random_1000'])} / {rate_cell(*r['spans'][s]['random_10000'])}"
            for s in SPANS
        ]
        lines.append(f"| {'+'.join(map(str, r['months']))} | " + " | ".join(cells) + " |")
    if "rows_quiet" in results[0]["spans"][SPANS[0]]:
        lines += ["", "### The previous thresholds (random-row resampling) on the same blocks", ""]
        lines += ["| months | " + " | ".join(f"{s} quiet" for s in SPANS) + " |"]
        lines += ["|---|" + "---|" * len(SPANS)]
        for r in results:
            cells = [rate_cell(*r["spans"][s]["rows_quiet"]) for s in SPANS]
            lines.append(f"| {'+'.join(map(str, r['months']))} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Cost",
        "",
        "| months | span | rule | blocks (days) | calibrate s | check ms |",
    ]
    lines += ["|---|---|---|---|---|---|"]
    for r in results:
        for s in SPANS:
            x = r["spans"][s]
            c = x["calibration"]
            lines.append(
                f"| {'+'.join(map(str, r['months']))} | {s} | {c['rule']} |"
                f" {c['blocks']} ({c['days']}) | {x['calibrate_seconds']} | {x['check_ms']} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--months", nargs="*", default=["1,2", "7,8", "10,11"])
    p.add_argument("--no-rows", action="store_true", help="skip the previous method's columns")
    p.add_argument("--out", default="time_blocks.json", help="file under benchmarks/results/")
    args = p.parse_args()
    results = [
        run(tuple(int(m) for m in group.split(",")), not args.no_rows) for group in args.months
    ]
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / args.out).write_text(json.dumps(results, indent=2))
    print(tables(results))


if __name__ == "__main__":
    main()
