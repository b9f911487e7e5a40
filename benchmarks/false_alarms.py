"""False alarms and detection of each drift method on the same batches of real flights data.

Reference: a random half of January 2013 (13.5k rows, the config's 14 feature columns, all of
them counting towards the alarm: no report-only columns here), for each of ``--splits``
different random halves. Quiet batches: drawn with replacement from the other half. Shifted
batches: the same quiet batches with one change each,
  temp +0.2 std    the numerical column temp moved by 0.2 reference standard deviations;
  carrier +10 pts  rows of other carriers relabelled to the biggest one until its share is
                   10 points higher.
Methods, all at a dataset-level rate of 1% where they have one:
  evidently    Evidently 0.7's default tests and 50%-of-columns rule (driftwatch's
               re-implementation, checked against Evidently itself in test_evidently_parity)
  calibrated   what `driftwatch check --config` does with `quiet: rows`: the same size rule
               (Plan.calibration_rows: exact below 64 rows, else a 2^(1/8) step down, capped at
               drift.calibration.max_batch_rows), Plan.calibrate_rows, Plan.detector; once per
               reference split and calibration seed (drift.calibration.random_state)
  bonferroni   two-sample K-S / chi-square homogeneity, Bonferroni
  bh           the same p-values, Benjamini-Hochberg
Cells are the share of batches with a dataset alarm, averaged over the splits (and seeds for
calibrated), with the range over them; "(col)" is how often the shifted column itself was
flagged. Caveat (FACTS.md): at 10k rows the pool of quiet rows (13.5k) is not much larger than a
batch, so every quiet batch repeats the pool's own chance difference from the reference; the
calibration models exactly that (it resamples a held-out half of the reference).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/false_alarms.py        # ~10 min
    .venv/bin/python benchmarks/false_alarms.py --batches 50 --sizes 1000 --splits 1 --seeds 1

Writes benchmarks/results/false_alarms.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from driftwatch.config import load_settings
from driftwatch.engine.drift import DriftDetector, DriftResult, correct_p_values
from driftwatch.monitor.plan import Plan
from driftwatch.store.flights import load_flights, local_month

HERE = Path(__file__).resolve().parent
RATE = 0.01
METHODS = ("evidently", "calibrated", "bonferroni", "bh")
SCENARIOS = ("quiet", "temp", "carrier")


def shifted_temp(batch: pd.DataFrame, std: float) -> pd.DataFrame:
    out = batch.copy()
    out["temp"] = out["temp"] + 0.2 * std
    return out


def shifted_carrier(batch: pd.DataFrame, biggest: str, rng: np.random.Generator) -> pd.DataFrame:
    out = batch.copy()
    others = np.flatnonzero((out["carrier"] != biggest).to_numpy())
    take = rng.choice(others, size=min(others.size, round(0.10 * len(out))), replace=False)
    out.iloc[take, out.columns.get_loc("carrier")] = biggest
    return out


def bh_from(bonferroni: DriftResult) -> bool:
    cols = copy.deepcopy([c for c in bonferroni.columns if c.status != "insufficient_data"])
    correct_p_values(cols, "bh", RATE)
    return any(c.drifted for c in cols)


def plan_for(seed: int) -> Plan:
    """The shipped config with random-row calibration at a 1% rate, all features counting."""
    overrides = {
        "drift.method": "calibrated",
        "drift.false_alarm_rate": RATE,
        "drift.calibration.quiet": "rows",
        "drift.calibration.random_state": seed,
        "drift.report_only": [],
        "drift.ignore": [],
    }
    return Plan(settings=load_settings(HERE.parent / "config.yaml", overrides=overrides))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=200, help="batches per split and scenario")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    ap.add_argument("--splits", type=int, default=3, help="random reference halves")
    ap.add_argument("--seeds", type=int, default=2, help="calibration seeds per split")
    args = ap.parse_args()

    plans = [plan_for(seed) for seed in range(args.seeds)]
    settings = plans[0].settings
    num, cat = list(settings.model.numerical), list(settings.model.categorical)
    flights = load_flights()
    january = flights[local_month(flights) == 1].reset_index(drop=True)[num + cat]

    def det(method: str, **kw) -> DriftDetector:
        return DriftDetector(
            numerical=num, categorical=cat, method=method, alpha=RATE, min_rows=30, **kw
        )

    # rates[(method, rows, scenario)] -> one alarm share per split (x seed); cols likewise.
    rates: dict[tuple, list[float]] = {}
    cols: dict[tuple, list[float]] = {}
    cal_info: list[dict] = []
    started = time.perf_counter()
    for split in range(args.splits):
        rng = np.random.default_rng(1000 + split)
        perm = rng.permutation(len(january))
        reference = january.iloc[perm[: len(january) // 2]].reset_index(drop=True)
        pool = january.iloc[perm[len(january) // 2 :]].reset_index(drop=True)
        std = float(reference["temp"].std(ddof=0))
        biggest = str(reference["carrier"].value_counts().idxmax())
        evidently = det("evidently").fit(reference)
        pvalues = det("bonferroni").fit(reference)
        for n in args.sizes:
            calibrated = []
            for seed, plan in enumerate(plans):
                rows = plan.calibration_rows(n)  # the size rule `check` applies
                cal = plan.calibrate_rows(reference, f"split{split}", rows)
                calibrated.append(plan.detector(cal.tests()).fit(reference))
                se = {c: t.threshold_se for c, t in cal.columns.items()}
                rel = [
                    se[c] / t.threshold
                    for c, t in cal.columns.items()
                    if se[c] is not None and t.threshold
                ]
                cal_info.append(
                    {
                        "split": split,
                        "seed": seed,
                        "rows": n,
                        "calibrated_rows": rows,
                        "seconds": cal.seconds,
                        "level": cal.level,
                        "in_sample_alarms": cal.in_sample_alarms,
                        "allowed_alarms": cal.allowed_alarms,
                        "median_relative_se": float(np.median(rel)) if rel else None,
                        "thresholds": {c: t.threshold for c, t in cal.columns.items()},
                        "threshold_se": se,
                    }
                )
            counts = {
                (m, s, k): [0, 0] for m in METHODS for s in SCENARIOS for k in range(len(plans))
            }
            brng = np.random.default_rng(2000 + split)
            for _ in range(args.batches):
                quiet = pool.iloc[brng.integers(0, len(pool), n)].reset_index(drop=True)
                for scenario, batch, col in (
                    ("quiet", quiet, None),
                    ("temp", shifted_temp(quiet, std), "temp"),
                    ("carrier", shifted_carrier(quiet, biggest, brng), "carrier"),
                ):
                    p = pvalues.check(batch)
                    e = evidently.check(batch)
                    for m, r in (("evidently", e), ("bonferroni", p)):
                        counts[m, scenario, 0][0] += r.dataset_drift
                        counts[m, scenario, 0][1] += bool(col and r.column(col).drifted)
                    counts["bh", scenario, 0][0] += bh_from(p)
                    for k, d in enumerate(calibrated):
                        r = d.check(batch)
                        counts["calibrated", scenario, k][0] += r.dataset_drift
                        counts["calibrated", scenario, k][1] += bool(col and r.column(col).drifted)
            for (m, s, k), (alarms, flagged) in counts.items():
                if m != "calibrated" and k > 0:
                    continue
                rates.setdefault((m, n, s), []).append(alarms / args.batches)
                cols.setdefault((m, n, s), []).append(flagged / args.batches)
            print(
                f"split {split}, {n} rows: done at {time.perf_counter() - started:.0f} s",
                flush=True,
            )

    results = []
    for n in args.sizes:
        for m in METHODS:
            row: dict = {"method": m, "rows": n, "batches_per_run": args.batches}
            for s in SCENARIOS:
                v = rates[m, n, s]
                row[s] = float(np.mean(v))
                row[f"{s}_min"], row[f"{s}_max"] = float(min(v)), float(max(v))
                row[f"{s}_runs"] = v
                if s != "quiet" and m != "bh":
                    row[f"{s}_column"] = float(np.mean(cols[m, n, s]))
            results.append(row)

    print(
        f"\n| method | batch rows (calibrated for) | quiet batches with an alarm (target <="
        f" {RATE:.0%}) | temp +0.2 std: alarm [range] (col) | carrier +10 pts: alarm [range]"
        " (col) |"
    )
    print("|---|---:|---:|---:|---:|")
    for r in results:

        def cell(s: str, r: dict = r) -> str:
            col = r.get(f"{s}_column")
            spread = f" [{r[f'{s}_min']:.1%}-{r[f'{s}_max']:.1%}]"
            return f"{r[s]:.1%}{spread}" + (f" ({col:.0%})" if col is not None else "")

        size = f"{r['rows']:,}"
        if r["method"] == "calibrated":
            size += f" ({plans[0].calibration_rows(r['rows']):,})"
        print(f"| {r['method']} | {size} | {cell('quiet')} | {cell('temp')} | {cell('carrier')} |")
    for n in args.sizes:
        mine = [c for c in cal_info if c["rows"] == n]
        secs = [c["seconds"] for c in mine]
        rel = [c["median_relative_se"] for c in mine if c["median_relative_se"] is not None]
        print(
            f"{n} rows: calibration {min(secs):.1f}-{max(secs):.1f} s, median relative"
            f" threshold se {np.median(rel):.1%}"
        )
    out = HERE / "results" / "false_alarms.json"
    out.write_text(
        json.dumps(
            {
                "reference_rows": len(january) // 2,
                "rate": RATE,
                "splits": args.splits,
                "seeds": args.seeds,
                "batches_per_run": args.batches,
                "results": results,
                "calibrations": cal_info,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
