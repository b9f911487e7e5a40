"""How a retrain trains, measured fast on the 2013 weekly replay: windows and recency weights.

``retrain_oracle_2013.py`` showed that the timing of driftwatch's retrains cannot close the gap
to the weekly schedule without hindsight. This asks the other question: with the same timings,
what does a different training recipe buy? For each recipe it trains the model a retrain after
weekly batch ``r`` would deploy (the challenger refit on its whole window, through driftwatch's
own ``training_window``, ``recency_weights`` and ``train``), scores it on every later week, and
reports the pooled RMSE (in minutes) of:

- the weekly, fortnightly and monthly schedules (retrain after every 1st / 2nd / 4th batch,
  always deploy), exactly as ``replay_2013.py`` counts them (its weekly schedule is reproduced
  to the third decimal with the shipped recipe);
- driftwatch's own promotions in the last full replay (``replay_2013.json``, same seed): the
  weeks its champion changed, kept fixed (a new recipe would move some of its decisions: the
  full replay measures that).

A recipe ``choose ...`` trains each candidate on its window up to the holdout (the newest
``retrain.holdout_fraction`` of the configured 60-day window, the same rows for every
candidate), keeps the one with the lowest holdout RMSE and deploys it refit on its whole window,
as a retrain choosing its window would (measured here only: it did not pay, so driftwatch has no
such setting).

Choosing: the recipe is picked on seed 0, March-June; July-December and seeds 1-2 are reported
separately as data it was not chosen on.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/retrain_recipes_2013.py --seed 0 \
        [--only "60 d" "60 d, half-life 14 d"]   # train (kept under results/recipes/)
    .venv/bin/python benchmarks/retrain_recipes_2013.py --seed 0 --evaluate   # the table

Writes benchmarks/results/retrain_recipes_2013.json (one entry per seed) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from filelock import FileLock

from driftwatch.config import Settings, load_settings
from driftwatch.model.estimators import predict, train
from driftwatch.model.schema import labelled, validate_batch
from driftwatch.monitor.window import recency_weights, split_holdout, training_window
from driftwatch.store.replay import history_batches, shipped_reference

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# name -> (window_days, half_life_days); the first is the shipped recipe before this work.
RECIPES: dict[str, tuple[float, float | None]] = {
    "60 d": (60, None),
    "30 d": (30, None),
    "120 d": (120, None),
    "60 d, half-life 7 d": (60, 7),
    "60 d, half-life 14 d": (60, 14),
    "60 d, half-life 30 d": (60, 30),
    "90 d, half-life 14 d": (90, 14),
    "90 d, half-life 30 d": (90, 30),
    "120 d, half-life 30 d": (120, 30),
}
# Candidates each "choose" recipe picks from on the holdout.
CHOICES: dict[str, list[str]] = {
    "choose 30/60/120 d": ["30 d", "60 d", "120 d"],
    "choose 60 d, half-life 14 d / none": ["60 d", "60 d, half-life 14 d"],
}


# Weeks after its retrain a model is scored on (driftwatch kept a champion 5 weeks at most; the
# monthly schedule retrains every 4).
HORIZON = 8


def slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def with_recipe(base: Settings, window: float, half_life: float | None) -> Settings:
    data = base.model_dump()
    data["retrain"] = {**data["retrain"], "window_days": window, "half_life_days": half_life}
    data["history"] = {**data["history"], "keep_days": max(data["history"]["keep_days"], window)}
    return Settings.model_validate(data)


def served_errors(sse: np.ndarray, retrain_after: list[int]) -> np.ndarray:
    """Squared error of each batch under the model deployed after the latest retrain before it
    (batch 0's rows bootstrap the first model and are not scored)."""
    size = sse.shape[0]
    out = np.zeros(size)
    served, after = 0, set(retrain_after)
    for w in range(1, size):
        out[w] = sse[served, w]
        if w in after:
            served = w
    return out


def pooled(errors: np.ndarray, n: np.ndarray, mask: np.ndarray) -> float:
    mask = mask.copy()
    mask[0] = False
    return math.sqrt(errors[mask].sum() / n[mask].sum())


def driftwatch_weeks(seed: int, labels: list[str]) -> list[int]:
    """Batches after which driftwatch promoted in the last full replay of this seed."""
    saved = json.loads((RESULTS / "replay_2013.json").read_text())["arrivals"]
    entry = saved["weekly" if seed == 0 else f"weekly, seed {seed}"]["policies"]
    row = entry.get("driftwatch") or next(v for k, v in entry.items() if "max_age_days=21" in k)
    return [labels.index(lab) for lab, _, promoted in row["triggers"] if promoted]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--end", default="2013-12-31")
    ap.add_argument("--only", nargs="*", help="train these recipes only")
    ap.add_argument(
        "--evaluate", action="store_true", help="train nothing: tabulate the kept matrices"
    )
    args = ap.parse_args()
    base = load_settings(
        ROOT / "config.yaml",
        overrides={
            "model": {"id_column": "flight_id"},
            "retrain": {"random_state": args.seed, "half_life_days": None, "window_days": 60},
        },
    )
    spec = base.model
    batches = [
        (k, validate_batch(f, spec, k))
        for k, f in history_batches(base, end=args.end, freq="W-SUN")
    ]
    labels = [k for k, _ in batches]
    frames = [f for _, f in batches]
    shipped = shipped_reference(base)
    size = len(frames)
    n = np.array([labelled(f, spec).shape[0] for f in frames], dtype=float)
    scored = [labelled(f, spec) for f in frames]
    truth = [r[spec.target].to_numpy(float) for r in scored]
    names = list(RECIPES) if not args.only else [x for x in RECIPES if x in args.only]
    needed = {c for cs in CHOICES.values() for c in cs}  # holdout scores for the choices
    sse: dict[str, np.ndarray] = {}
    holdout_rmse: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    for name in names:
        cache = RESULTS / "recipes" / f"seed{args.seed}_{slug(name)}.npz"
        if cache.is_file():  # each recipe's matrix is kept: --evaluate reads them all
            saved_m = np.load(cache)
            sse[name], holdout_rmse[name] = saved_m["sse"], saved_m["holdout"]
            continue
        if args.evaluate:
            continue
        window_days, half_life = RECIPES[name]
        s = with_recipe(base, window_days, half_life)
        m = np.full((size, size), np.nan)
        h = np.full(size, np.nan)
        for r in range(size - 1):  # the model after the last batch serves nothing
            history = pd.concat(frames[: r + 1], ignore_index=True)
            window = labelled(training_window(history, shipped, s), spec)
            model = train(
                window, spec, random_state=args.seed, sample_weight=recency_weights(window, s)
            )
            # A served model is at most a few weeks old (driftwatch's age floor is 3 weeks).
            for w in range(r + 1, min(size, r + 1 + HORIZON)):
                m[r, w] = float(np.sum((truth[w] - predict(model, scored[w], spec)) ** 2))
            if name in needed:
                # The holdout of the configured (60-day) window, the same rows for everyone;
                # the candidate trains on its own window's rows older than the holdout.
                _, holdout = split_holdout(training_window(history, shipped, base), base)
                start = holdout[spec.timestamp].min()
                rows = window[window[spec.timestamp] < start]
                cand = train(
                    rows, spec, random_state=args.seed, sample_weight=recency_weights(rows, s)
                )
                err = holdout[spec.target].to_numpy(float) - predict(cand, holdout, spec)
                h[r] = math.sqrt(float(np.mean(err**2)))
        sse[name], holdout_rmse[name] = m, h
        cache.parent.mkdir(exist_ok=True)
        np.savez_compressed(cache, sse=m, holdout=h, n=n)
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    if not args.evaluate:
        return
    for choice, cands in CHOICES.items():
        if not all(c in sse for c in cands):
            continue
        m = np.full((size, size), np.nan)
        picks = []
        for r in range(size - 1):
            best = min(cands, key=lambda c: holdout_rmse[c][r])
            picks.append(best)
            m[r] = sse[best][r]
        sse[choice] = m
        counts = {c: picks.count(c) for c in cands}
        print(f"{choice}: picked {counts}")
    months = pd.Series([pd.Timestamp(lab.split("/")[1]).month for lab in labels])
    halves = {
        "all": np.ones(size, dtype=bool),
        "Mar-Jun": (months <= 6).to_numpy(),
        "Jul-Dec": (months >= 7).to_numpy(),
    }
    dw = driftwatch_weeks(args.seed, labels)
    schedules = {
        "weekly": list(range(1, size)),
        "fortnightly": [w for w in range(1, size) if w % 2 == 0],
        "monthly": [w for w in range(1, size) if w % 4 == 0],
        "driftwatch's promotions": dw,
    }
    out: dict[str, Any] = {"seed": args.seed, "batches": size, "driftwatch_promotions": len(dw)}
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, m in sse.items():
        table[name] = {}
        for sched, weeks in schedules.items():
            errs = served_errors(m, weeks)
            table[name][sched] = {h: pooled(errs, n, mask) for h, mask in halves.items()}
    out["pooled_rmse"] = table
    if any(k.startswith("choose") for k in sse):
        out["picks"] = {
            c: [min(cs, key=lambda x: holdout_rmse[x][r]) for r in range(size - 1)]
            for c, cs in CHOICES.items()
            if c in sse
        }
    print(f"\nseed {args.seed}; pooled RMSE, all / Mar-Jun / Jul-Dec\n")
    print("| recipe | " + " | ".join(schedules) + " |")
    print("|---|" + "---:|" * len(schedules))
    for name, row in table.items():
        cells = " | ".join(
            f"{v['all']:.3f} / {v['Mar-Jun']:.3f} / {v['Jul-Dec']:.3f}" for v in row.values()
        )
        print(f"| {name} | {cells} |")
    path = RESULTS / "retrain_recipes_2013.json"
    with FileLock(f"{path}.lock"):  # recipes may run in parallel processes: merged
        saved = json.loads(path.read_text()) if path.is_file() else {}
        entry = saved.setdefault(f"seed {args.seed}", {})
        for key, value in out.items():
            entry[key] = (
                {**entry[key], **value} if isinstance(value, dict) and key in entry else value
            )
        path.write_text(json.dumps(saved, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
