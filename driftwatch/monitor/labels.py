"""What late labels do to history rows, as pure functions of frames (the store and the
in-memory history both use them): see :mod:`driftwatch.store.labels` for the rules."""

from __future__ import annotations

import numpy as np
import pandas as pd


def apply_labels(
    rows: pd.DataFrame, labels: pd.DataFrame, id_column: str, target: str
) -> pd.DataFrame:
    """History rows with the labels that arrived for them: a missing target is filled with the
    first label of its id (labels are in arrival order); a target present stays."""
    if labels.empty or rows.empty or id_column not in rows.columns:
        return rows
    first = labels.drop_duplicates(id_column, keep="first").set_index(id_column)[target]
    ids = rows[id_column].astype("string")
    late = ids.map(first).astype(np.float64).to_numpy()
    out = rows.copy()
    out[target] = np.where(out[target].isna().to_numpy(), late, out[target].to_numpy())
    return out


def label_outcomes(
    new: pd.DataFrame,
    earlier: pd.DataFrame,
    known: pd.Series,
    id_column: str,
    target: str,
) -> dict[str, object]:
    """What a new label file's rows do given the labels before it and the ids (with their
    labels, when a batch carried them) in history: applied, waiting, duplicate, changed."""
    seen = pd.concat([known.dropna(), earlier.set_index(id_column)[target]])
    seen = seen[~seen.index.duplicated(keep="first")]
    # Within the file too: the first label of an id counts, later ones are duplicates/changes.
    prior = new[id_column].duplicated(keep="first").to_numpy()
    before = new[id_column].map(seen).to_numpy(dtype=float)
    first_in_file = new.drop_duplicates(id_column).set_index(id_column)[target]
    before = np.where(prior, new[id_column].map(first_in_file).to_numpy(dtype=float), before)
    has = ~np.isnan(before)
    same = has & np.isclose(before, new[target].to_numpy(), rtol=0, atol=1e-9)
    changed = has & ~same
    fresh = ~has
    in_history = new[id_column].isin(known.index).to_numpy()
    example = ""
    if changed.any():
        i = int(np.flatnonzero(changed)[0])
        example = f"id {new[id_column].iloc[i]}: {before[i]:g} -> {new[target].iloc[i]:g}"
    return {
        "applied": int((fresh & in_history).sum()),
        "waiting": int((fresh & ~in_history).sum()),
        "duplicates": int(same.sum()),
        "changed": int(changed.sum()),
        "example": example,
    }
