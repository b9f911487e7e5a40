"""Calibrated thresholds on disk: the user's calibration file, else a cache per reference + size.

The reference moves with every promotion, so a calibration file written by hand goes stale;
recalibrating automatically (seconds) keeps the promised false-alarm rate instead of silently
applying thresholds measured on other data. Both files are YAML, read within the limits of
:mod:`driftwatch.yamlio` (size, encoding, depth, aliases: no alias bomb hangs a run) and with every
threshold checked to be a number (a pin of ``.nan`` would never alarm, one of ``abc`` would fail
every run): a file that fails is named in the log, and the thresholds are recalibrated.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from driftwatch.engine.blocks import (
    BLOCKS_FORMAT,
    BlockThresholds,
    thresholds_from_dict,
    thresholds_to_dict,
)
from driftwatch.engine.calibration import (
    CALIBRATION_FORMAT,
    Calibration,
    ColumnThreshold,
    calibration_key,
)
from driftwatch.errors import NotEnoughData
from driftwatch.files import atomic_write_bytes
from driftwatch.monitor.plan import Plan, Segment
from driftwatch.monitor.ports import ReferenceHandle, ReferenceStore
from driftwatch.yamlio import read_yaml_file

log = logging.getLogger("driftwatch.calibration")


BLOCKS_FILE_KIND = "time_blocks"


def save_blocks(path: Path, entries: list[dict], head: str = "") -> Path:
    import yaml

    body = {"kind": BLOCKS_FILE_KIND, "format": BLOCKS_FORMAT, "horizons": entries}
    return atomic_write_bytes(path, (head + yaml.safe_dump(body, sort_keys=False)).encode())


def _threshold(value: object, where: str) -> float:
    """A threshold as the file gives it: a number (inf: never alarms), not NaN, text or a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{where}: threshold {value!r} is not a number")
    return float(value)


def _mapping(path: Path) -> dict:
    raw = read_yaml_file(path, ValueError) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a mapping")
    return raw


def read_blocks(path: Path) -> dict[str, dict]:
    """The horizons of a time-block calibration file by key ({} when none or unreadable)."""
    if not path.is_file():
        return {}
    try:
        raw = _mapping(path)
        if raw.get("kind") != BLOCKS_FILE_KIND or raw.get("format") != BLOCKS_FORMAT:
            return {}
        horizons = {h["key"]: h for h in raw.get("horizons", [])}
        for h in horizons.values():
            for name, c in h["components"].items():
                _threshold(c["threshold"], f"horizon {h.get('span')} {name}")
        return horizons
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("%s: unreadable calibration file (%s); recalibrating", path, exc)
        return {}


def block_entry(
    plan: Plan,
    ref: ReferenceHandle,
    reference: pd.DataFrame,
    span: pd.Timedelta,
    rate: float | None = None,
    segment: Segment | None = None,
) -> dict:
    """Calibrate one horizon on time blocks of the reference (``segment``: of its rows only, at
    ``rate``); the entry carries provenance."""
    if plan.settings.model.timestamp not in reference.columns:
        raise NotEnoughData(
            f"{ref.path}: no timestamp column {plan.settings.model.timestamp!r} to cut time"
            " blocks from (drift.calibration.quiet: time_blocks); use quiet: rows"
        )
    fitted = plan.calibrate_blocks(plan.segment_rows(reference, segment), span, rate)
    entry = thresholds_to_dict(fitted.thresholds_)
    entry |= {
        "key": plan.block_key(ref.sha256, span, rate, segment),
        "reference_sha256": ref.sha256,
        "reference_path": str(ref.path),
        "reference_rows": len(reference),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return entry


class CalibrationStore:
    """The monitor's ThresholdStore: the calibration file when its provenance matches, else a
    cached or freshly computed calibration under ``<state>/calibration/``."""

    def __init__(self, plan: Plan, references: ReferenceStore) -> None:
        self.plan = plan
        self.references = references
        self.file = plan.settings.drift.calibration.file
        self.cache_dir = plan.settings.paths.state / "calibration"
        self._file = read_calibration(self.file)  # read once per run

    def block_thresholds(
        self,
        ref: ReferenceHandle,
        span: pd.Timedelta,
        rate: float | None = None,
        segment: Segment | None = None,
    ) -> BlockThresholds:
        """Time-block thresholds for this reference and span: the calibration file's when its
        key matches, else cached under the state dir, else calibrated now (under a second).
        ``rate``, ``segment``: a share of the horizon's rate, one segment's rows (segments)."""
        key = self.plan.block_key(ref.sha256, span, rate, segment)
        entry = read_blocks(self.file).get(key)
        cached = self.cache_dir / f"blocks-{key}.yaml"
        if entry is None:
            entry = read_blocks(cached).get(key)
        if entry is None:
            entry = block_entry(self.plan, ref, self.references.frame(ref), span, rate, segment)
            save_blocks(cached, [entry])
            for warning in entry["warnings"]:
                log.info("calibration %s: %s", entry["span"], warning)
            log.info(
                "calibrated %s time-block thresholds for reference %s: %d blocks over %d days,"
                " %s rule, %.1f s (%s)",
                entry["span"],
                ref.version,
                entry["blocks"],
                entry["days"],
                entry["rule"],
                entry["seconds"],
                cached,
            )
        return thresholds_from_dict(entry)

    def thresholds(self, ref: ReferenceHandle, batch_rows: int) -> Calibration:
        plan = self.plan
        rows = plan.calibration_rows(batch_rows)
        pins = self._file.pins() if self._file else {}
        key = calibration_key(plan.detector(dict(pins)), ref.sha256, plan.calibration_spec(rows))
        if self._file and self._file.key == key:
            return self._file
        cached = self.cache_dir / f"calibration-{key}.yaml"
        found = read_calibration(cached)
        if found and found.key == key:
            return found
        cal = plan.calibrate_rows(self.references.frame(ref), ref.sha256, rows, pins, str(ref.path))
        try:
            cal.save(cached)
        except OSError as exc:  # used now all the same; the next run calibrates again
            log.warning("%s: cannot cache the calibration (%s)", cached, exc)
        for warning in cal.warnings:
            log.warning("calibration: %s", warning)
        log.info(
            "calibrated drift thresholds for reference %s at %d rows per batch in %.1f s (%s)",
            ref.version,
            rows,
            cal.seconds,
            cached,
        )
        return cal


def write_calibration(
    plan: Plan,
    reference: pd.DataFrame,
    ref: ReferenceHandle,
    batch_rows: int,
    out: Path | None = None,
) -> tuple[Calibration, Path]:
    """``driftwatch calibrate``: thresholds for the active reference, written where the monitor
    looks (drift.calibration.file); pinned entries of the existing file are kept."""
    out = out or plan.settings.drift.calibration.file
    existing = read_calibration(out)
    pins = existing.pins() if existing else None
    cal = plan.calibrate_rows(reference, ref.sha256, batch_rows, pins, str(ref.path))
    return cal, cal.save(out)


def read_calibration(path: Path) -> Calibration | None:
    """A calibration file, or None when there is none or it cannot be read (then recalibrated,
    and said so in the log)."""
    if not path.is_file():
        return None
    try:
        return load_calibration(path)
    except _TimeBlocksFile:  # the other kind of calibration file: not for random rows
        return None
    except ValueError as exc:
        log.warning("%s; recalibrating", exc)
        return None


class _TimeBlocksFile(ValueError):
    """The calibration file holds time-block thresholds (``kind: time_blocks``)."""


def load_calibration(path: Path) -> Calibration:
    """``Calibration.load`` within the YAML limits, every threshold a number (ValueError naming
    the file otherwise)."""
    try:
        raw = _mapping(path)
        if raw.get("kind") == BLOCKS_FILE_KIND:
            raise _TimeBlocksFile(f"{path}: a time-block calibration file")
        if raw.get("format") != CALIBRATION_FORMAT:
            raise ValueError(f"not a calibration of format {CALIBRATION_FORMAT}")
        raw["columns"] = {c: ColumnThreshold(**v) for c, v in raw["columns"].items()}
        for c, t in raw["columns"].items():
            if t.threshold is None and t.reason:  # not judged at this size, and said why
                continue
            _threshold(t.threshold, f"column {c!r}")
        return Calibration(**raw)
    except _TimeBlocksFile:
        raise
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        why = str(exc).removeprefix(f"{path}: ")  # yamlio names the file already
        raise ValueError(f"{path}: unreadable calibration file: {why}") from exc
