"""False alarms and detection of each drift method on the same batches of real flights data.

Reference: a random half of January 2013 (13.4k rows, the config's 14 feature columns, all of
them counting towards the alarm: no report-only columns here). Quiet batches: drawn with
replacement from the other half. Shifted batches: the same quiet batches with one change each,
  temp +0.2 std    the numerical column temp moved by 0.2 reference standard deviations;
  carrier +10 pts  rows of other carriers relabelled to the biggest one until its share is
                   10 points higher.
Methods, all at a dataset-level rate of 1% where they have one:
  evidently    Evidently 0.7's default tests and 50%-of-columns rule (driftwatch's
               re-implementation, checked against Evidently itself in test_evidently_parity)
  calibrated   driftwatch calibrate's thresholds for the batch size (from the reference only)
  bonferroni   two-sample K-S / chi-square homogeneity, Bonferroni
  bh           the same p-values, Benjamini-Hochberg
Cells are the share of batches with a dataset alarm; "(col)" is how often the shifted column
itself was flagged. Caveat (FACTS.md): at 10k and 100k rows the pool of quiet rows (13.5k) is
not much larger than a batch, so every quiet batch repeats the pool's own chance difference from
the reference; the calibration models exactly that (it resamples a held-out half of the
reference), but the quiet rate at those sizes says more about this one split than about a
stream of independent batches.

    .venv/bin/python benchmarks/false_alarms.py                 # 1000 batches at 1k, 10k, 100k
    .venv/bin/python benchmarks/false_alarms.py --batches 200 --sizes 1000

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
from driftwatch.engine.calibration import calibrate
from driftwatch.engine.drift import DriftDetector, DriftResult, correct_p_values
from driftwatch.store.flights import load_flights, local_month

HERE = Path(__file__).resolve().parent
RATE = 0.01


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=1000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    settings = load_settings(HERE.parent / "config.yaml")
    num, cat = list(settings.model.numerical), list(settings.model.categorical)
    flights = load_flights()
    january = flights[local_month(flights) == 1].reset_index(drop=True)[num + cat]
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(january))
    reference = january.iloc[perm[: len(january) // 2]].reset_index(drop=True)
    pool = january.iloc[perm[len(january) // 2 :]].reset_index(drop=True)
    std = float(reference["temp"].std(ddof=0))
    biggest = str(reference["carrier"].value_counts().idxmax())

    def det(method: str, **kw) -> DriftDetector:
        return DriftDetector(numerical=num, categorical=cat, method=method, alpha=RATE, **kw)

    evidently = det("evidently").fit(reference)
    pvalues = det("bonferroni").fit(reference)
    results = []
    for n in args.sizes:
        t0 = time.perf_counter()
        cal = calibrate(det("calibrated"), reference, "bench", n, RATE, batches=1000)
        cal_s = time.perf_counter() - t0
        calibrated = det("calibrated", tests=cal.tests()).with_profile(evidently.profile_)
        counts = {
            (m, s): [0, 0]
            for m in ("evidently", "calibrated", "bonferroni", "bh")
            for s in ("quiet", "temp", "carrier")
        }
        t0 = time.perf_counter()
        for _ in range(args.batches):
            quiet = pool.iloc[rng.integers(0, len(pool), n)].reset_index(drop=True)
            for scenario, batch, col in (
                ("quiet", quiet, None),
                ("temp", shifted_temp(quiet, std), "temp"),
                ("carrier", shifted_carrier(quiet, biggest, rng), "carrier"),
            ):
                p = pvalues.check(batch)
                verdicts = {
                    "evidently": evidently.check(batch),
                    "calibrated": calibrated.check(batch),
                    "bonferroni": p,
                }
                for m, r in verdicts.items():
                    counts[m, scenario][0] += r.dataset_drift
                    counts[m, scenario][1] += bool(col and r.column(col).drifted)
                counts["bh", scenario][0] += bh_from(p)
        secs = time.perf_counter() - t0
        for m in ("evidently", "calibrated", "bonferroni", "bh"):
            row = {"method": m, "rows": n, "batches": args.batches}
            for s in ("quiet", "temp", "carrier"):
                row[s] = counts[m, s][0] / args.batches
                if s != "quiet" and m != "bh":
                    row[f"{s}_column"] = counts[m, s][1] / args.batches
            results.append(row)
        print(f"{n} rows: {args.batches} x 3 batches in {secs:.0f} s; calibration {cal_s:.1f} s")

    print(
        f"\n| method | batch rows | quiet batches with an alarm (target <= {RATE:.0%}) |"
        " temp +0.2 std: alarm (col) | carrier +10 pts: alarm (col) |"
    )
    print("|---|---|---|---|---|")
    for r in results:

        def cell(s: str, r: dict = r) -> str:
            col = r.get(f"{s}_column")
            return f"{r[s]:.1%}" + (f" ({col:.0%})" if col is not None else "")

        print(
            f"| {r['method']} | {r['rows']:,} | {r['quiet']:.1%} | {cell('temp')} |"
            f" {cell('carrier')} |"
        )
    out = HERE / "results" / "false_alarms.json"
    out.write_text(
        json.dumps(
            {
                "reference_rows": len(reference),
                "pool_rows": len(pool),
                "rate": RATE,
                "biggest_carrier": biggest,
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
