"""Stored run results as ``status`` and ``report`` read them: a damaged file is skipped and said
in one line, so one truncated JSON (a full disk, a copy cut short) never hides the other runs."""

from __future__ import annotations

import json
from pathlib import Path

from driftwatch.files import escaped, shown
from driftwatch.monitor.result import MonitorResult

# A run result is tens of KB; a file far larger is not one (and is not read into memory).
MAX_RUN_BYTES = 16 << 20


def stored_runs(runs_dir: Path) -> tuple[list[MonitorResult], str | None]:
    """Every readable stored run, oldest first, and one warning line naming those skipped."""
    results: list[MonitorResult] = []
    skipped: list[str] = []
    for p in sorted(runs_dir.glob("*.json")):
        try:
            with p.open("rb") as f:
                data = f.read(MAX_RUN_BYTES + 1)
            if len(data) > MAX_RUN_BYTES:
                raise ValueError(f"larger than {MAX_RUN_BYTES >> 20} MiB")
            results.append(MonitorResult.from_dict(json.loads(data.decode("utf-8"))))
        except Exception as exc:  # truncated, not JSON, not a result, unreadable: skip it
            why = escaped(" ".join(str(exc).split())[:120]) or type(exc).__name__
            skipped.append(f"{shown(p.name)} ({why})")
    if not skipped:
        return results, None
    shown_files = "; ".join(skipped[:3]) + (
        f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    )
    return results, (
        f"warning: skipped {len(skipped)} unreadable run result(s) in {shown(runs_dir)}:"
        f" {shown_files}"
    )
