"""Online retrain rules on the 2013 weekly replay, searched in milliseconds on the oracle's matrix.

``benchmarks/retrain_oracle_2013.py`` saves, per model seed, ``sse[r, w]``: the squared error on
weekly batch ``w`` of the model a retrain after batch ``r`` deploys (trained on the last 60 days
up to ``r``, refit on its whole window). Any rule whose signals are known after batch ``j`` (the
serving champion's realised error on the weeks it has served so far, its first week in service,
its age, features of the batches against its training window) can then be played over the year
without training anything: the champion after a retrain at ``j`` is model ``j``, every retrain
deploys (the replay's "promote always"; a kept champion would only be worse or equal here).

Families (each one signal with a reason, one or two parameters):

- **even**: every k weeks (the fixed schedules);
- **quality** (the shipped trigger's kind): the champion's RMSE on the newest week (``last``) or
  the newest two (``two``) above its served baseline (its first week in service, as
  ``quality.baseline: served``) by x, or above its best week so far (``best``), or relative to
  the January model's error on the same week (``yardstick``: a week's difficulty divides out);
  with a minimum age (weeks) and an age floor;
- **support**: the share of the newest week's rows beyond the 1st-99th percentile of the
  champion's training window (driftwatch's :class:`~driftwatch.model.support.Support`, as
  ``retrain.support_columns``) above x in any of the named columns; with a minimum age;
- **support at another edge**: the same for ``temp`` beyond the 2.5th-97.5th, 5th-95th or
  10th-90th percentile (``Support(quantile=q)``: a week approaching the edge fires before it
  crosses it), or beyond the 0.1th-99.9th, 0.25th-99.75th or 0.5th-99.5th (a champion's own
  newest week, the top 1% of its window in a warming spell, is not yet outside);
- **distance**: how far the newest week's mean moved from the window's, in the window's
  standard deviations (``Support.distance``, what widens the estimate's interval), above d;
  with a minimum age and an age floor.

Chosen on one half and reported on the other: the rule with the lowest pooled RMSE on the first
half (weeks 1-22, March to early August, seed 0) among those with at most 11 retrains there (half
the weekly schedule's); then its second half (weeks 23-44) and whole year, on seeds 0-2. The
hindsight oracle and the even schedules give the frame. Also printed: why the oracle's weeks are
good (what staleness costs week by week, against the support signal).

    .venv/bin/python benchmarks/retrain_rules_2013.py   # ~1 min (data load); needs the oracle's caches

Writes benchmarks/results/retrain_rules_2013.json.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftwatch.config import load_settings
from driftwatch.model.schema import validate_batch
from driftwatch.model.support import Support
from driftwatch.monitor.window import training_window
from driftwatch.store.replay import history_batches, shipped_reference

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SEEDS = (0, 1, 2)
WEATHER = ["temp", "dewp", "humid", "wind_speed", "pressure", "visib", "precip", "wind_dir"]
COLUMN_SETS = {"temp": ["temp"], "temp+dewp": ["temp", "dewp"], "all weather": WEATHER}
# Other edges of the temperature's range (the quantile on each side), and the mean's distance.
EDGES = (0.001, 0.0025, 0.005, 0.025, 0.05, 0.1)
DISTANCE_SETS = {"temp": ["temp"], "temp+dewp": ["temp", "dewp"]}
# A rule: (sse, n, champion, week, state) -> retrain after this week?
Rule = Callable[[np.ndarray, np.ndarray, int, int], bool]


def load() -> tuple[list[str], dict[int, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """Batch labels, the oracle's matrices per seed, and the support share per column set:
    ``share[c, j]`` = the largest share, over the set's columns, of batch j's rows beyond the
    1st-99th percentile of model c's training window (the same window and code as the monitor)."""
    settings = load_settings(ROOT / "config.yaml", overrides={"model": {"id_column": "flight_id"}})
    batches = [
        (k, validate_batch(f, settings.model, k))
        for k, f in history_batches(settings, end="2013-12-31", freq="W-SUN")
    ]
    shipped = shipped_reference(settings)
    labels, frames = [k for k, _ in batches], [f for _, f in batches]
    size = len(frames)
    per_col = np.full((size, size, len(WEATHER)), np.nan)
    edge_share = {q: np.full((size, size), np.nan) for q in EDGES}
    distance = {name: np.full((size, size), np.nan) for name in DISTANCE_SETS}
    for c in range(size - 1):
        window = training_window(pd.concat(frames[: c + 1], ignore_index=True), shipped, settings)
        support = Support().fit(window[WEATHER])
        edges = {q: Support(quantile=q).fit(window[["temp"]]) for q in EDGES}
        for j in range(c + 1, size):
            shares = support.outside(frames[j][WEATHER])
            per_col[c, j] = [shares[col] for col in WEATHER]
            for q, edge in edges.items():
                edge_share[q][c, j] = edge.outside(frames[j][["temp"]])["temp"]
            for name, cols in DISTANCE_SETS.items():
                distance[name][c, j] = support.distance(frames[j][cols])
    share = {
        name: np.max(per_col[:, :, [WEATHER.index(c) for c in cols]], axis=2)
        for name, cols in COLUMN_SETS.items()
    }
    share.update({f"temp, {q:.2%}-{1 - q:.2%}": m for q, m in edge_share.items()})
    share.update({f"distance {name}": m for name, m in distance.items()})
    matrices = {}
    for seed in SEEDS:
        saved = np.load(RESULTS / f"retrain_oracle_2013_seed{seed}.npz")
        matrices[seed] = (saved["sse"], saved["n"])
        if matrices[seed][0].shape[0] != size:
            raise SystemExit(f"seed {seed}: the oracle's matrix has another number of batches")
    return labels, matrices, share


def play(sse: np.ndarray, n: np.ndarray, rule: Rule) -> tuple[np.ndarray, list[int]]:
    """The champion serving each week, and the weeks after which the rule retrained."""
    size = len(n)
    served, retrains, champion = np.zeros(size, dtype=int), [], 0
    for j in range(1, size):
        served[j] = champion
        if rule(sse, n, champion, j):
            champion = j
            retrains.append(j)
    return served, retrains


def pooled(sse: np.ndarray, n: np.ndarray, served: np.ndarray, weeks: range) -> float:
    w = list(weeks)
    return math.sqrt(sum(sse[served[k], k] for k in w) / n[w].sum())


def rmse(sse: np.ndarray, n: np.ndarray, model: int, week: int) -> float:
    return math.sqrt(sse[model, week] / n[week])


def rules(share: dict[str, np.ndarray]) -> dict[str, tuple[str, Rule]]:
    """Every candidate, by name, with its family."""
    out: dict[str, tuple[str, Rule]] = {}

    def aged(m: int, a: int | None, signal: Callable[..., bool]) -> Rule:
        def rule(sse: np.ndarray, n: np.ndarray, c: int, j: int) -> bool:
            if a is not None and j - c >= a:
                return True
            return j - c >= m and signal(sse, n, c, j)

        return rule

    for k in (1, 2, 3, 4):
        out[f"even, every {k} week(s)"] = ("even", aged(0, k, lambda *_: False))

    def last(x: float) -> Callable[..., bool]:
        return lambda s, n, c, j: j > c + 1 and rmse(s, n, c, j) > rmse(s, n, c, c + 1) * (1 + x)

    def two(x: float) -> Callable[..., bool]:
        def f(s: np.ndarray, n: np.ndarray, c: int, j: int) -> bool:
            both = math.sqrt((s[c, j] + s[c, j - 1]) / (n[j] + n[j - 1]))
            return j > c + 2 and both > rmse(s, n, c, c + 1) * (1 + x)

        return f

    def best(x: float) -> Callable[..., bool]:
        def f(s: np.ndarray, n: np.ndarray, c: int, j: int) -> bool:
            low = min(rmse(s, n, c, w) for w in range(c + 1, j)) if j > c + 1 else math.inf
            return rmse(s, n, c, j) > low * (1 + x)

        return f

    def yardstick(x: float) -> Callable[..., bool]:
        def f(s: np.ndarray, n: np.ndarray, c: int, j: int) -> bool:
            if j <= c + 1 or c == 0:
                return last(x)(s, n, c, j)
            ratio = rmse(s, n, c, j) / rmse(s, n, 0, j)
            return ratio > rmse(s, n, c, c + 1) / rmse(s, n, 0, c + 1) * (1 + x)

        return f

    quality = {"last": last, "two": two, "best": best, "yardstick": yardstick}
    for (kind, make), x, m, a in itertools.product(
        quality.items(), np.arange(0.0, 0.41, 0.02), (0, 1, 2), (None, 3, 4, 6)
    ):
        name = f"quality {kind} > {x:.0%}, min age {m}, max age {a or '-'}"
        out[name] = ("quality", aged(m, a, make(float(x))))

    def beyond(cols: str, x: float) -> Callable[..., bool]:
        return lambda s, n, c, j: bool(share[cols][c, j] > x)

    for cols, x, m, a in itertools.product(
        COLUMN_SETS, (0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2), (0, 2), (None, 4)
    ):
        name = f"support {cols} > {x:.1%}, min age {m}, max age {a or '-'}"
        out[name] = ("support", aged(m, a, beyond(cols, x)))
    for q, x, m, a in itertools.product(
        EDGES,
        (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3),
        (0, 1, 2),
        (None, 3, 4),
    ):
        edge = f"{q:.2%}-{1 - q:.2%}"
        name = f"support temp beyond {edge} > {x:.2%}, min age {m}, max age {a or '-'}"
        out[name] = ("other edge", aged(m, a, beyond(f"temp, {edge}", x)))
    for cols, d, m, a in itertools.product(
        DISTANCE_SETS, np.arange(0.1, 1.01, 0.05), (0, 1, 2), (None, 3, 4)
    ):
        name = f"distance {cols} > {d:.2f} sd, min age {m}, max age {a or '-'}"
        out[name] = ("distance", aged(m, a, beyond(f"distance {cols}", float(d))))
    return out


def why_oracle(matrices: dict, share: dict[str, np.ndarray], labels: list[str]) -> dict[str, Any]:
    """What staleness costs week by week (seed 0): a model 3 weeks old against last week's,
    split by whether the week leaves the 3-week-old model's temperature range (> 1% of rows)."""
    sse, n = matrices[0]
    rows = []
    for w in range(3, len(n)):
        cost = rmse(sse, n, w - 3, w) / rmse(sse, n, w - 1, w) - 1
        rows.append({"week": labels[w], "cost_3w": cost, "temp_share": share["temp"][w - 3, w]})
    frame = pd.DataFrame(rows)
    out = frame["temp_share"] > 0.01
    return {
        "weeks_outside": int(out.sum()),
        "weeks_inside": int((~out).sum()),
        "mean_cost_outside": float(frame.cost_3w[out].mean()),
        "mean_cost_inside": float(frame.cost_3w[~out].mean()),
        "spearman": float(frame.cost_3w.corr(frame.temp_share, method="spearman")),
        "weeks": frame.to_dict(orient="records"),
    }


def main() -> None:
    labels, matrices, share = load()
    size = len(labels)
    halves = {"year": range(1, size), "H1": range(1, 23), "H2": range(23, size)}
    table = {}
    for name, (family, rule) in rules(share).items():
        row: dict[str, Any] = {"family": family}
        for seed, (sse, n) in matrices.items():
            served, retrains = play(sse, n, rule)
            row[f"seed {seed}"] = {
                **{h: round(pooled(sse, n, served, weeks), 6) for h, weeks in halves.items()},
                "retrains": len(retrains),
                "retrains_H1": sum(1 for r in retrains if r in halves["H1"]),
                # Seed 0's retrain weeks, by the first day (MM-DD) of the week retrained after.
                "weeks": [labels[r][5:10] for r in retrains] if seed == 0 else None,
            }
        table[name] = row
    weekly = table["even, every 1 week(s)"]["seed 0"]
    budget = weekly["retrains_H1"] // 2
    chosen = {}
    for family in ("quality", "support", "other edge", "distance", "any"):
        pool = {
            k: v
            for k, v in table.items()
            if (family == "any" and v["family"] != "even") or v["family"] == family
        }
        pool = {k: v for k, v in pool.items() if v["seed 0"]["retrains_H1"] <= budget}
        chosen[family] = min(pool, key=lambda k: (pool[k]["seed 0"]["H1"], k))
    oracle = json.loads((RESULTS / "retrain_oracle_2013.json").read_text())
    why = why_oracle(matrices, share, labels)
    out = {
        "budget_H1": budget,
        "chosen_on_H1_seed0": chosen,
        "why_oracle": why,
        "oracle": {s: oracle[f"seed {s}"]["oracle"] for s in SEEDS if f"seed {s}" in oracle},
        "rules": table,
    }
    # One line per rule and per week: 1,100 rules x 3 seeds stay readable and diffable.
    text = json.dumps({k: v for k, v in out.items() if k not in ("rules", "why_oracle")}, indent=1)
    lines = [f" {json.dumps(k)}: {json.dumps(v, default=str)}" for k, v in table.items()]
    weeks = [f"  {json.dumps(w)}" for w in why.pop("weeks")]
    text = (
        text[:-2]
        + ',\n "why_oracle": '
        + json.dumps(why)[:-1]
        + ', "weeks": [\n'
        + ",\n".join(weeks)
        + '\n ]},\n "rules": {\n'
        + ",\n".join(lines)
        + "\n }\n}\n"
    )
    (RESULTS / "retrain_rules_2013.json").write_text(text)

    def cells(name: str) -> str:
        r = table[name]
        years = [r[f"seed {s}"]["year"] for s in SEEDS]
        s0 = r["seed 0"]
        return (
            f"| {name} | {s0['H1']:.3f} ({s0['retrains_H1']}) | {s0['H2']:.3f}"
            f" ({s0['retrains'] - s0['retrains_H1']}) | {s0['year']:.3f} ({s0['retrains']}) |"
            f" {min(years):.3f}-{max(years):.3f} |"
        )

    print("| rule | H1, seed 0 (retrains) | H2, seed 0 (retrains) | year, seed 0 (retrains) |"
          " year, seeds 0-2 |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for k in (1, 2, 4):
        print(cells(f"even, every {k} week(s)"))
    for family, name in chosen.items():
        print(cells(name) + f" chosen on H1 ({family})")
    best_year = {
        fam: min(
            (k for k, v in table.items() if v["family"] == fam and v["seed 0"]["retrains"] <= 22),
            key=lambda k: table[k]["seed 0"]["year"],
        )
        for fam in ("quality", "support", "other edge", "distance")
    }
    for family, name in best_year.items():
        print(cells(name) + f" best year with <= 22 retrains, hindsight ({family})")
    for s in SEEDS:
        o = out["oracle"].get(s, {})
        print(f"oracle seed {s}: " + ", ".join(f"{k}: {v['rmse']:.3f}" for k, v in o.items()))
    print(
        f"\nwhy: weeks leaving the 3-week-old model's temperature range: {why['weeks_outside']},"
        f" a 3-week-old model costs {why['mean_cost_outside']:+.1%} there against"
        f" {why['mean_cost_inside']:+.1%} in the {why['weeks_inside']} others"
        f" (Spearman {why['spearman']:.2f})"
    )
    print("chosen on H1 (seed 0), retrain weeks:", table[chosen["any"]]["seed 0"]["weeks"])
    print(f"wrote {RESULTS / 'retrain_rules_2013.json'}")


if __name__ == "__main__":
    main()
