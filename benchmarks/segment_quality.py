"""Quality per segment (issue 19, part 2): how often segment verdicts alarm on quiet days, what
the significance rule saves over a tolerance alone, and what the segment steps cost per tick.

The setup of tests/test_segment_quality.py: NYC flights of January-February 2013, the odd days
the reference (a linear champion trained on them by a bootstrap run of the in-memory monitor,
its holdout the newest 20%: its baselines, whole and per origin), the 29 even days the batches,
each whole (time-contiguous, as production sends them), ``model.segments: [origin]``,
``drift.false_alarm_rate`` as given (0.05 by default, so a held rate is visible on 29 days),
relative tolerance 10%.

Per day: the whole batch's verdict (tolerance), each segment's with the rule (tolerance and
significance at rate / (1 + segments)) and by the tolerance alone. Then a day with EWR's labels
made noisy (sd 15 min). Cost: the segment verdicts and estimates of one day, best of 5, against
the whole assess step.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/segment_quality.py [--rate 0.05]

Writes benchmarks/results/segment_quality.json (segment_quality_rate<rate>.json for another rate)
and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from driftwatch.model.estimators import predict
from driftwatch.monitor.memory import (
    MemoryBatches,
    MemoryHistory,
    MemoryReferences,
    MemoryRegistry,
    MemoryThresholds,
    ResultLog,
)
from driftwatch.monitor.pipeline import MonitorCycle, assess, judged_labels
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import Batch
from driftwatch.monitor.segment_quality import segment_estimates, segment_quality
from driftwatch.store.flights import FLIGHTS_TZ, load_flights
from driftwatch.store.replay import shipped_reference

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "segment_quality.json"


def setup(rate: float, work: Path) -> tuple[Plan, Any, Any, Any, Any, list[pd.DataFrame]]:
    flights = load_flights()
    local = flights["time_hour"].dt.tz_convert(FLIGHTS_TZ)
    months = local.dt.month.isin([1, 2]).to_numpy()
    odd = (local.dt.day % 2 == 1).to_numpy()
    reference = flights[months & odd].reset_index(drop=True)
    even = flights[months & ~odd]
    days = [g.reset_index(drop=True) for _, g in even.groupby(local[even.index].dt.date)]
    reference.to_parquet(work / "reference.parquet", index=False)
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["paths"] = {"reference": str(work / "reference.parquet"), "state": str(work / "state")}
    raw["model"].update({"segments": ["origin"], "estimator": "linear", "params": {}})
    raw["drift"].update({"horizons": [], "false_alarm_rate": rate})
    raw["quality"].update({"baseline": "holdout", "lookback_hours": None})
    raw["report"] = {"html": False}
    (work / "config.yaml").write_text(yaml.safe_dump(raw))
    plan = Plan.load(work / "config.yaml")
    dates = reference["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.date
    newest = reference[(dates == dates.max()).to_numpy()].reset_index(drop=True)
    refs = MemoryReferences(plan, shipped_reference(plan.settings))
    cycle = MonitorCycle(
        plan,
        MemoryBatches(plan, [("newest-reference-day", newest)]),
        refs,
        MemoryThresholds(plan, refs),
        MemoryRegistry(),
        ResultLog(),
        MemoryHistory(plan),
    )
    cycle.run(run_id="bootstrap")
    champion = cycle.registry.champion()
    model = cycle.registry.load_model(champion.version)
    estimator = cycle.registry.load_estimator(champion.version)
    blocks = cycle.block_judging(Batch(days[0], ["first"], False), refs.locate(None))
    return plan, blocks, champion, model, estimator, days


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=0.05)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plan, blocks, champion, model, estimator, days = setup(args.rate, Path(tmp))

        def judge(frame: pd.DataFrame) -> Any:
            batch = Batch(frame, ["batch"], False, new_rows=len(frame))
            return assess(
                plan, batch, champion, model, None, None, None, blocks, estimator=estimator
            )

        rows = []
        for day in days:
            found = judge(day)
            segs = found.segment_quality
            rows.append(
                {
                    "day": str(day["time_hour"].dt.tz_convert(FLIGHTS_TZ).dt.date.iloc[0]),
                    "whole_rmse": found.quality.value,
                    "whole_degraded": bool(found.quality.degraded),
                    "segments": {
                        q.segment: {
                            "rmse": q.value,
                            "baseline": q.baseline,
                            "rows": q.labelled_rows,
                            "p_value": q.p_value,
                            "degraded": q.degraded,
                            "beyond_tolerance": bool(q.value > 1.1 * q.baseline),
                        }
                        for q in segs
                    },
                }
            )
        quiet = [r for r in rows if not r["whole_degraded"]]
        windy = [r for r in rows if r["whole_degraded"]]

        def any_(rs: list[dict], key: str) -> int:
            return sum(any(s[key] for s in r["segments"].values()) for r in rs)

        day = next(d for d in days if str(d["time_hour"].iloc[0])[:10] == "2013-02-24").copy()
        ewr = (day["origin"] == "EWR").to_numpy()
        day.loc[ewr, "air_time"] += np.random.default_rng(0).normal(0, 15, int(ewr.sum()))
        noisy = judge(day)

        day = days[4]
        preds = pd.Series(predict(model, day, plan.settings.model), index=day.index)
        segments = [g.segment for g in blocks.segments]
        judged = judged_labels(day, preds, None, champion.version, plan.settings.model, [])
        seg_times, all_times = [], []
        for _ in range(5):
            t = time.perf_counter()
            segment_quality(plan, judged, segments, champion.segments, champion.version)
            segment_estimates(plan, estimator, model, day, preds, "", segments, champion.segments)
            seg_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            judge(day)
            all_times.append(time.perf_counter() - t)

    out = {
        "machine": platform.node(),
        "rate": args.rate,
        "segment_rate": plan.quality_segment_rate(len(segments)),
        "baselines": {"whole": champion.baseline, **(champion.segments or {})},
        "days": len(rows),
        "whole_degraded_days": len(windy),
        "whole_degraded_days_with_a_degraded_segment": any_(windy, "degraded"),
        "quiet_days": len(quiet),
        "quiet_days_segment_alarm_rule": any_(quiet, "degraded"),
        "quiet_days_segment_beyond_tolerance_alone": any_(quiet, "beyond_tolerance"),
        "noisy_ewr_day": {
            "whole": noisy.quality.reason,
            "segments": [q.line() for q in noisy.segment_quality],
            "estimated": [e.line() for e in noisy.segment_estimated],
            "decision": noisy.decision.reason,
        },
        "cost_seconds": {
            "segment_steps_best_of_5": round(min(seg_times), 4),
            "assess_best_of_5": round(min(all_times), 4),
            "rows": len(day),
        },
        "per_day": rows,
    }
    results = RESULTS
    if args.rate != 0.05:
        results = RESULTS.with_name(f"segment_quality_rate{args.rate:g}.json")
    results.write_text(json.dumps(out, indent=2, default=str))
    print(
        f"| days | whole degraded (with a segment) | within tolerance | segment alarms"
        f" (rule, rate {out['segment_rate']:.3g} each) | segment beyond tolerance alone |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| {len(rows)} | {len(windy)} ({out['whole_degraded_days_with_a_degraded_segment']})"
        f" | {len(quiet)} | {out['quiet_days_segment_alarm_rule']}"
        f" | {out['quiet_days_segment_beyond_tolerance_alone']} |"
    )
    print()
    print("noisy EWR labels, 24 February:")
    print(" ", noisy.quality.line())
    for line in out["noisy_ewr_day"]["segments"] + out["noisy_ewr_day"]["estimated"]:
        print(" ", line)
    c = out["cost_seconds"]
    print(
        f"\ncost: segment verdicts + estimates {c['segment_steps_best_of_5']:.3f} s;"
        f" whole assess step {c['assess_best_of_5']:.3f} s ({c['rows']} rows)"
    )
    print(f"wrote {results.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
