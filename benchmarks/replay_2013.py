"""2013 replayed from the January champion: never retrain, fixed schedules, driftwatch.

Every policy starts from the same first champion (trained on the shipped reference, Jan+Feb,
plus the first batch) and sees the same batches, February to December, through the monitor's
own use case with in-memory ports (``driftwatch.monitor.backtest``: the same code path as the
daemon, history included). Two ways the data arrives:

- ``weekly``: weekly batch files with their labels inside;
- ``late``: daily feature files without labels; each flight's ``air_time`` arrives on its own
  when the flight has landed (departure hour + dep_delay + air_time + 20 minutes), joined to
  history by ``flight_id``; the quality verdict uses the labels of the last 7 days of
  predictions (``quality.lookback_hours: 168``).

Policies: ``never`` keeps the first model; ``weekly schedule`` retrains every week on the last
60 days of history and always deploys; ``monthly schedule`` the same every 4 weeks (28 days);
``driftwatch`` is the shipped config.yaml (drift at three horizons, quality against the
champion's baseline, the champion's age, the promotion rule). The metric of each row is the
error of the champion that *served* it (its prediction kept in history, scored once its label
arrived): RMSE in minutes, pooled per month and over the replay.

    .venv/bin/python benchmarks/replay_2013.py                 # both, ~40 min on 2 cores
    .venv/bin/python benchmarks/replay_2013.py --arrival weekly
    .venv/bin/python benchmarks/replay_2013.py --arrival late --only driftwatch  # one policy
    .venv/bin/python benchmarks/replay_2013.py --arrival weekly --variants --only \
        "driftwatch, holdout baseline" "driftwatch, 1% margin"   # a shipped rule taken back
    .venv/bin/python benchmarks/replay_2013.py --arrival weekly --seed 1   # another model seed
    .venv/bin/python benchmarks/replay_2013.py --arrival weekly --references \
        --only "fortnightly schedule"          # the retrain budget of issue 15 spent evenly
    .venv/bin/python benchmarks/replay_2013.py --arrival weekly --set retrain.max_age_days=28 \
        --only "driftwatch, retrain.max_age_days=28"   # a variant of the shipped config

Writes benchmarks/results/replay_2013.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one fit per core; FACTS: oversubscription

import pandas as pd
from filelock import FileLock

from driftwatch.config import Settings, load_settings
from driftwatch.monitor.backtest import Backtester
from driftwatch.monitor.ports import PREDICTED
from driftwatch.store.flights import FLIGHTS_TZ
from driftwatch.store.replay import history_batches, shipped_reference

ROOT = Path(__file__).resolve().parents[1]
LABEL_TIME = "label_time"


def policies(base: Settings, arrival: str) -> dict[str, tuple[Settings, str]]:
    """Each policy as (settings, backtest policy)."""

    def with_(**sections: dict[str, Any]) -> Settings:
        data = base.model_dump()
        for name, values in sections.items():
            data[name] = {**data[name], **values}
        return Settings.model_validate(data)

    # By age only: nothing to hold. The schedules are the issue's: the last 60 days, every row
    # weighted the same, whatever recipe driftwatch's config trains with.
    deploy = {"promote": "always", "min_age_days": None, "window_days": 60, "half_life_days": None}
    weekly = (
        (with_(retrain=deploy), "always")
        if arrival == "weekly"
        else (with_(retrain={**deploy, "max_age_days": 7}), "schedule")
    )
    # Weekly batches end a few hours short of 7 days apart: 27 days is every 4th batch.
    monthly_age = 27 if arrival == "weekly" else 28
    return {
        "never": (base, "never"),
        "weekly schedule": weekly,
        "monthly schedule": (with_(retrain={**deploy, "max_age_days": monthly_age}), "schedule"),
        "driftwatch": (base, "config"),
    }


def references(base: Settings, arrival: str) -> dict[str, tuple[Settings, str]]:
    """Not one of the target's schedules: retrain every 2 weeks, always deploy. It spends the
    retrain budget the target allows (half the weekly schedule's) evenly, so it is what
    driftwatch's triggers must beat by timing alone (``--references``); and the weekly schedule
    trained with driftwatch's recipe (``retrain.window_days``, ``retrain.half_life_days``)."""
    data = base.model_dump()
    # Weekly batches end a few hours short of 7 days apart: 13 days is every 2nd batch.
    fixed = {"promote": "always", "min_age_days": None, "window_days": 60, "half_life_days": None}
    data["retrain"] = {**data["retrain"], **fixed}
    data["retrain"]["max_age_days"] = 13 if arrival == "weekly" else 14
    out = {"fortnightly schedule": (Settings.model_validate(data), "schedule")}
    # The weekly schedule trained with driftwatch's own recipe (its window and recency
    # weights): how much of driftwatch's gain is the recipe, how much the timing.
    data = base.model_dump()
    data["retrain"] = {**data["retrain"], "promote": "always", "min_age_days": None}
    if arrival == "weekly":
        out["weekly schedule, driftwatch's recipe"] = (Settings.model_validate(data), "always")
    else:
        data["retrain"]["max_age_days"] = 7
        out["weekly schedule, driftwatch's recipe"] = (Settings.model_validate(data), "schedule")
    return out


def variants(base: Settings) -> dict[str, tuple[Settings, str]]:
    """The shipped config with one of its retraining rules taken back (``--variants``). The
    entries named "before i15: ..." in the results were measured on the previous config."""
    out = {}
    for name, changes in {
        "driftwatch, holdout baseline": ["quality.baseline=holdout"],
        "driftwatch, no min age": ["retrain.min_age_days=null"],
        "driftwatch, 1% margin": ["retrain.promotion_margin=0.01"],
        "driftwatch, max age 28 days": ["retrain.max_age_days=28"],
    }.items():
        out[name] = (changed(base, changes), "config")
    return out


def dump(saved: dict[str, Any]) -> str:
    """Indented JSON with each innermost list (a batch's row, a month list) on one line."""
    text = json.dumps(saved, indent=2, default=str)
    return re.sub(r"\[[^\[\]{}]*\]", lambda m: re.sub(r"\s*\n\s*", " ", m.group()), text)


def changed(base: Settings, changes: list[str]) -> Settings:
    """``base`` with ``section.key=value`` changes (values are YAML)."""
    import yaml

    data = base.model_dump()
    for change in changes:
        path, _, value = change.partition("=")
        section, _, name = path.partition(".")
        data[section] = {**data[section], name: yaml.safe_load(value)}
    return Settings.model_validate(data)


def served_rmse(
    history: pd.DataFrame, target: str
) -> tuple[dict[int, float], float, int, dict[int, int]]:
    """RMSE of the serving champion's predictions, per local month and pooled; rows per month."""
    rows = history[history[PREDICTED].notna() & history[target].notna()]
    err = (rows[target] - rows[PREDICTED]) ** 2
    month = rows["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.month
    per = {int(m): math.sqrt(e.mean()) for m, e in err.groupby(month)}
    counts = {int(m): len(e) for m, e in err.groupby(month)}
    return per, math.sqrt(err.mean()), len(rows), counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arrival", choices=["weekly", "late", "both"], default="both")
    ap.add_argument("--end", default="2013-12-31")
    ap.add_argument("--only", nargs="*", help="run these policies only (merged into the file)")
    ap.add_argument("--variants", action="store_true", help="also the shipped rules taken back")
    ap.add_argument("--references", action="store_true", help="also a fortnightly schedule")
    ap.add_argument(
        "--seed", type=int, default=0, help="retrain.random_state of every policy (and the first"
        " champion); results of seed N > 0 are kept under '<arrival>, seed N'",
    )  # fmt: skip
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
        help="a variant of driftwatch's config, named by these changes (repeat --only with it)",
    )  # fmt: skip
    args = ap.parse_args()
    arrivals = ["weekly", "late"] if args.arrival == "both" else [args.arrival]
    out_path = ROOT / "benchmarks" / "results" / "replay_2013.json"
    saved = json.loads(out_path.read_text()) if out_path.is_file() else {}
    saved = saved if "arrivals" in saved else {"arrivals": {}}
    for arrival in arrivals:
        overrides: dict[str, Any] = {
            "model": {"id_column": "flight_id"},
            "retrain": {"random_state": args.seed},
        }
        if arrival == "late":
            overrides["quality"] = {"lookback_hours": 168}
        base = load_settings(ROOT / "config.yaml", overrides=overrides)
        key = arrival if args.seed == 0 else f"{arrival}, seed {args.seed}"
        freq = "W-SUN" if arrival == "weekly" else "D"
        batches = history_batches(base, end=args.end, freq=freq)
        if arrival == "late":
            batches = [
                (k, f.assign(**{LABEL_TIME: f.time_hour + pd.to_timedelta(
                    f.dep_delay.fillna(0) + f.air_time + 20, unit="min")}))
                for k, f in batches
            ]  # fmt: skip
        reference = shipped_reference(base)
        kept = saved["arrivals"].get(key, {}).get("policies", {})
        rows: dict[str, Any] = {k: v for k, v in kept.items() if args.only}
        chosen = policies(base, arrival) | (variants(base) if args.variants else {})
        chosen |= references(base, arrival) if args.references else {}
        if args.set:
            chosen |= {f"driftwatch, {' '.join(args.set)}": (changed(base, args.set), "config")}
        for name, (settings, policy) in chosen.items():
            if args.only and name not in args.only:
                continue
            t0 = time.perf_counter()
            bt = Backtester(
                settings, name, policy, label_time=LABEL_TIME if arrival == "late" else None
            )  # type: ignore[arg-type]
            result = bt.run(batches, reference)
            monthly, pooled, n, counts = served_rmse(bt.history_, base.model.target)
            summary = result.summary()
            trains = [b.train_rows for b in result.batches if b.train_rows is not None]
            rows[name] = {
                "monthly_rmse": monthly,
                "pooled_rmse": pooled,
                "scored_rows": n,
                "monthly_rows": counts,
                "retrains": summary["retrains"] - 1,  # the bootstrap is everyone's
                "promotions": summary["promotions"] - 1,
                "drift_alarms": summary["alarms"],
                "quality_alarms": summary["quality_alarms"],
                "train_rows": trains[1:],
                "triggers": [
                    (b.label, b.triggers, b.promoted) for b in result.batches if b.retrained
                ][1:],
                # Per batch: the champion's metric and baseline, drift, decision, retrain.
                "batches": [
                    (b.label, b.value, b.baseline, b.dataset_drift, b.action, b.promoted)
                    for b in result.batches
                ],
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(
                f"{arrival} / {name}: pooled RMSE {pooled:.2f}, {rows[name]['retrains']}"
                f" retrains, {rows[name]['promotions']} promotions ({rows[name]['seconds']} s)",
                flush=True,
            )
            with FileLock(f"{out_path}.lock"):  # policies may run in parallel processes
                saved = json.loads(out_path.read_text()) if out_path.is_file() else saved
                saved = saved if "arrivals" in saved else {"arrivals": {}}
                entry = saved["arrivals"].setdefault(key, {"policies": {}})
                entry["batches"] = len(batches)
                entry["policies"][name] = rows[name]
                out_path.write_text(dump(saved))
        if all(n in rows for n in policies(base, arrival)):
            print_tables(key, len(batches), rows)
    print(f"\nwrote {out_path}")


def pooled_months(row: dict[str, Any], months: range, counts: dict[int, int]) -> float:
    """Pooled RMSE over some months, from the monthly RMSEs and the rows scored per month (the
    same for every policy of a replay: each row is served by some champion)."""
    rmse = {int(m): v for m, v in row["monthly_rmse"].items()}
    chosen = [m for m in months if m in counts and m in rmse]
    total = sum(counts[m] for m in chosen)
    if not total:
        return float("nan")
    return math.sqrt(sum(rmse[m] ** 2 * counts[m] for m in chosen) / total)


def print_tables(arrival: str, n: int, rows: dict[str, Any]) -> None:
    names = list(rows)
    print(f"\n### {arrival}: {n} batches, Feb-Dec 2013; RMSE (minutes) of the serving champion\n")
    print("| month | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    # Months are int keys as measured, text keys when read back from the JSON file.
    monthly = {n: {int(m): v for m, v in r["monthly_rmse"].items()} for n, r in rows.items()}
    months = sorted({m for r in monthly.values() for m in r})
    for m in months:
        cells = " | ".join(f"{monthly[n].get(m, float('nan')):.2f}" for n in names)
        print(f"| {pd.Timestamp(2013, m, 1):%b} | {cells} |")
    print("| **pooled** | " + " | ".join(f"**{rows[n]['pooled_rmse']:.2f}**" for n in names) + " |")
    for label, half in (("Mar-Jun", range(1, 7)), ("Jul-Dec", range(7, 13))):
        have = [r["monthly_rows"] for r in rows.values() if r.get("monthly_rows")]
        counts = {int(m): n for m, n in have[0].items()} if have else {}
        cells = [pooled_months(r, half, counts) for r in rows.values()]
        print(f"| {label} pooled | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    for key in ("retrains", "promotions"):
        print(f"| {key} | " + " | ".join(str(rows[n][key]) for n in names) + " |")
    t = rows["driftwatch"]["train_rows"]
    if t:
        print(
            f"\ndriftwatch's training sets: {min(t)}-{max(t)} rows (median {sorted(t)[len(t) // 2]})"
        )


if __name__ == "__main__":
    main()
