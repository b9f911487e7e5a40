"""The best any retrain timing could do on the 2013 weekly replay, with K retrains.

The replay (``benchmarks/replay_2013.py``) asks driftwatch for the weekly schedule's pooled RMSE
with at most half its retrains. Whatever a trigger decides, what it can deploy after weekly batch
``r`` is the model trained on the last 60 days of history up to ``r`` (the challenger refit on
its whole window, as every promoted challenger is). This trains that model after every batch,
scores it on every later week, and finds, by dynamic programming over the choice of retrain
weeks, the lowest pooled RMSE reachable with K retrains chosen **with hindsight** (an oracle
that knows every future week's error). Keeping a champion after a retrain is never better than
not retraining (the kept model is the same), so this bounds every policy that retrains at
weekly batch boundaries on this window, gate or no gate.

If the oracle with K = half the weekly schedule's retrains is above the weekly schedule's RMSE,
no trigger can meet the target on this data and model; the gap between the oracle and an even
schedule (every 2 weeks) is all that good timing could buy.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/retrain_oracle_2013.py [--seed 0]

Writes benchmarks/results/retrain_oracle_2013.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from driftwatch.config import load_settings
from driftwatch.model.estimators import predict, train
from driftwatch.model.schema import labelled, validate_batch
from driftwatch.monitor.window import training_window
from driftwatch.store.replay import history_batches, shipped_reference

ROOT = Path(__file__).resolve().parents[1]


def best_timing(sse: np.ndarray, n: np.ndarray, k: int) -> tuple[float, list[int]]:
    """Lowest pooled RMSE over batches 1.. with the bootstrap model (after batch 0) and ``k``
    more retrains; ``sse[r, w]``: squared error of the model trained after batch r on batch w."""
    size = len(n)
    # cum[q, r]: squared error of batches q+1..r (inclusive) served by model q.
    cum = np.zeros((size, size))
    for q in range(size - 1):
        cum[q, q + 1 :] = np.cumsum(sse[q, q + 1 :])

    def seg(q: int, r: int) -> float:
        return float(cum[q, r])

    inf = float("inf")
    best = np.full((k + 1, size), inf)
    back = np.zeros((k + 1, size), dtype=int)
    best[0, 0] = 0.0
    for j in range(1, k + 1):
        for r in range(1, size):
            cands = [best[j - 1, q] + seg(q, r) for q in range(r)]
            q = int(np.argmin(cands))
            best[j, r], back[j, r] = cands[q], q
    total, end, used = inf, 0, 0
    for j in range(k + 1):
        for r in range(size):
            if best[j, r] < inf and best[j, r] + seg(r, size - 1) < total:
                total, end, used = best[j, r] + seg(r, size - 1), r, j
    chosen = [end]
    for j in range(used, 0, -1):
        chosen.append(int(back[j, chosen[-1]]))
    return math.sqrt(total / n[1:].sum()), sorted(set(chosen) - {0})


def even(sse: np.ndarray, n: np.ndarray, every: int) -> tuple[float, int]:
    """A fixed schedule: retrain after every ``every``-th batch."""
    served, total, retrains = 0, 0.0, 0
    for w in range(1, len(n)):
        total += sse[served, w]
        if w % every == 0:  # counted as the replay counts (after the last batch too)
            served, retrains = w, retrains + 1
    return math.sqrt(total / n[1:].sum()), retrains


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--end", default="2013-12-31")
    ap.add_argument("--from-matrix", action="store_true", help="reuse the saved error matrix")
    args = ap.parse_args()
    matrix = ROOT / "benchmarks" / "results" / f"retrain_oracle_2013_seed{args.seed}.npz"
    base = load_settings(
        ROOT / "config.yaml",
        overrides={"model": {"id_column": "flight_id"}, "retrain": {"random_state": args.seed}},
    )
    spec = base.model
    batches = [
        (k, validate_batch(f, spec, k))
        for k, f in history_batches(base, end=args.end, freq="W-SUN")
    ]
    shipped = shipped_reference(base)
    frames = [f for _, f in batches]
    size = len(frames)
    sse = np.full((size, size), np.nan)
    n = np.array([labelled(f, spec).shape[0] for f in frames], dtype=float)
    t0 = time.perf_counter()
    if args.from_matrix:
        sse = np.load(matrix)["sse"]
    for r in range(size - 1 if not args.from_matrix else 0):  # the last model serves nothing
        window = training_window(pd.concat(frames[: r + 1], ignore_index=True), shipped, base)
        model = train(labelled(window, spec), spec, random_state=base.retrain.random_state)
        for w in range(r + 1, size):
            rows = labelled(frames[w], spec)
            err = rows[spec.target].to_numpy(float) - predict(model, rows, spec)
            sse[r, w] = float(np.sum(err**2))
        print(f"model after {batches[r][0]}: {time.perf_counter() - t0:.0f} s", flush=True)
    np.savez_compressed(matrix, sse=sse, n=n)
    weekly_k = size - 1  # the weekly schedule retrains after every batch but the bootstrap
    out = {
        "seed": args.seed,
        "batches": size,
        "even": {},
        "oracle": {},
    }
    for e in (1, 2, 3, 4):
        rmse, retrains = even(sse, n, e)
        out["even"][f"every {e} week(s)"] = {"rmse": rmse, "retrains": retrains}
    for k in sorted({5, 10, 15, 20, 22, 25, 30, 35, 40, weekly_k // 2}):
        rmse, weeks = best_timing(sse, n, k)
        out["oracle"][k] = {"rmse": rmse, "weeks": [batches[w][0] for w in weeks]}
        print(f"oracle, {k} retrains: {rmse:.3f}")
    for name, v in out["even"].items():
        print(f"{name}: {v['rmse']:.3f} ({v['retrains']} retrains)")
    path = ROOT / "benchmarks" / "results" / "retrain_oracle_2013.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    saved[f"seed {args.seed}"] = out
    path.write_text(json.dumps(saved, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
