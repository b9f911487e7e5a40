"""driftwatch's drift check vs Evidently's DataDriftPreset on the same generated data.

20 numerical + 2 categorical columns; reference and current of the same size; half of the
numerical columns shifted a little in the current batch so verdicts are a mix. driftwatch's
reference profile is fitted beforehand (that is how the monitor uses it: fit once per
reference), in a separate process, as the monitor gets it from its cache. Both tools get a
warm-up call on 200 rows first (imports, first-report set-up), so the table shows what each
hourly check costs in a running monitor. Each (tool, size) runs in its
own process so peak memory (max RSS) is that case's alone.

    .venv/bin/python benchmarks/drift_speed.py                 # 10k, 100k, 1M
    .venv/bin/python benchmarks/drift_speed.py --sizes 10000 100000 --no-evidently-above 100000

Writes benchmarks/results/drift_speed.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
N_NUM, CATS = 20, {"cat_small": 5, "cat_large": 30}
P_VALUE_STRICT = {"K-S p_value", "Cramer-von Mises"}  # p <= threshold; other p-values: p <
P_VALUE = {"chi-square p_value", "Z-test p_value", "Anderson-Darling", *P_VALUE_STRICT}


def generate(n: int, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for i in range(N_NUM):
        shift = 0.1 * (i % 4) if shifted and i % 2 else 0.0
        base = rng.normal(i + shift, 1 + i / 10, n)
        cols[f"num_{i:02d}"] = np.round(base, 2) if i % 5 == 0 else base  # some heavily tied
    for name, k in CATS.items():
        p = np.linspace(1, 2, k)
        if shifted and name == "cat_small":
            p[0] *= 1.3
        cols[name] = pd.Categorical(rng.choice([f"c{j}" for j in range(k)], n, p=p / p.sum()))
    return pd.DataFrame(cols, copy=False)  # as read from parquet: one copy of the data


def columns() -> tuple[list[str], list[str]]:
    return [f"num_{i:02d}" for i in range(N_NUM)], list(CATS)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fit_profile(n: int, path: Path) -> dict:
    """Fitted in its own process, as the monitor does (its profile comes from the cache)."""
    from driftwatch.engine.drift import DriftDetector

    num, cat = columns()
    ref = generate(n, 1, False)
    t0 = time.perf_counter()
    det = DriftDetector(numerical=num, categorical=cat).fit(ref)
    seconds = time.perf_counter() - t0
    det.profile_.save(path)
    return {"fit_seconds": seconds}


def run_driftwatch(n: int, profile: Path) -> dict:
    from driftwatch.engine.drift import DriftDetector, ReferenceProfile

    num, cat = columns()
    det = DriftDetector(numerical=num, categorical=cat).with_profile(ReferenceProfile.load(profile))
    det.check(generate(200, 3, True))  # warm-up: lazy imports, as in a running monitor
    cur = generate(n, 2, True)
    t0 = time.perf_counter()
    result = det.check(cur)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "peak_mb": max_rss_mb(),
        "verdicts": {c.column: bool(c.drifted) for c in result.columns},
        "tests": {c.column: c.test for c in result.columns},
    }


def run_evidently(n: int) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    num, cat = columns()
    dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
    with warnings.catch_warnings():  # warm-up on 200 rows: imports and first-report set-up
        warnings.simplefilter("ignore")
        small = generate(200, 3, True)
        Report([DataDriftPreset()]).run(
            Dataset.from_pandas(small, data_definition=dd),
            Dataset.from_pandas(small, data_definition=dd),
        )
    ref, cur = generate(n, 1, False), generate(n, 2, True)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snap = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(cur, data_definition=dd),
            Dataset.from_pandas(ref, data_definition=dd),
        )
    seconds = time.perf_counter() - t0
    verdicts, tests = {}, {}
    for m in snap.dict()["metrics"]:
        cfg = m["config"]
        if "column" not in cfg or "method" not in cfg:
            continue
        method, value, thr = cfg["method"], float(m["value"]), float(cfg["threshold"])
        if method in P_VALUE_STRICT:
            drifted = value <= thr
        elif method in P_VALUE:
            drifted = value < thr
        else:
            drifted = value >= thr
        verdicts[cfg["column"]], tests[cfg["column"]] = drifted, method
    return {"seconds": seconds, "peak_mb": max_rss_mb(), "verdicts": verdicts, "tests": tests}


def one(tool: str, n: int) -> dict:
    profile = Path(tempfile.gettempdir()) / f"driftwatch-bench-profile-{n}.pkl"
    if tool == "fit":
        return fit_profile(n, profile)
    return run_driftwatch(n, profile) if tool == "driftwatch" else run_evidently(n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--no-evidently-above", type=int, default=10**9)
    ap.add_argument("--one", nargs=2, metavar=("TOOL", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return

    def child(tool: str, n: int) -> dict:
        out = subprocess.run(
            [sys.executable, __file__, "--one", tool, str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    rows = []
    for n in args.sizes:
        fit = child("fit", n)
        dw = child("driftwatch", n) | fit
        ev = child("evidently", n) if n <= args.no_evidently_above else None
        agree = None
        if ev:
            agree = sum(dw["verdicts"][c] == ev["verdicts"].get(c) for c in dw["verdicts"])
        rows.append(
            {
                "rows": n,
                "driftwatch_s": round(dw["seconds"], 3),
                "driftwatch_fit_s": round(dw["fit_seconds"], 3),
                "driftwatch_peak_mb": round(dw["peak_mb"]),
                "evidently_s": round(ev["seconds"], 2) if ev else None,
                "evidently_peak_mb": round(ev["peak_mb"]) if ev else None,
                "speedup": round(ev["seconds"] / dw["seconds"], 1) if ev else None,
                "verdicts_agree": f"{agree}/{len(dw['verdicts'])}" if ev else "-",
                "drifted_columns": sum(dw["verdicts"].values()),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    out = HERE / "results" / "drift_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"columns": "20 numerical + 2 categorical", "rows": rows}, indent=2))
    print()
    print(
        "| rows | driftwatch check (s) | driftwatch peak RSS (MB) | Evidently (s) | Evidently peak RSS (MB) | speed-up | verdicts agree |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['rows']:,} | {r['driftwatch_s']} | {r['driftwatch_peak_mb']} | {r['evidently_s'] or '-'} "
            f"| {r['evidently_peak_mb'] or '-'} | {r['speedup'] or '-'}x | {r['verdicts_agree']} |"
        )


if __name__ == "__main__":
    main()
