"""Pruning the state dir: reference versions (``state/reference/``) and cached calibrations
(``state/calibration/``), which every retrain and every new reference or batch size add to.

A reference is kept while the registry may still need it: the champion's (the drift reference
now) and its previous champion's (``driftwatch rollback`` activates that one), plus the newest
``keep_last`` files, which cover a challenger being registered right now. A calibration is kept
when it belongs to a kept reference or the shipped one, or is among the newest ``keep_last``.
Everything the registry is asked is asked before anything is deleted: if MLflow cannot answer,
nothing is removed. Run it where no retrain can run concurrently (under the monitor's lock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from driftwatch.config import Settings
from driftwatch.store.batches import file_hash
from driftwatch.store.references import reference_dir
from driftwatch.store.registry import Registry

REFERENCE_GLOB = "reference-*.parquet"
CALIBRATION_GLOBS = ("calibration-*.yaml", "blocks-*.yaml")  # random-row, time-block caches


@dataclass
class Pruned:
    kept: list[Path] = field(default_factory=list)
    deleted: list[Path] = field(default_factory=list)


@dataclass
class RetentionResult:
    references: Pruned
    calibrations: Pruned
    reports: Pruned = field(default_factory=Pruned)

    def summary(self) -> str:
        return (
            f"retention: deleted {len(self.references.deleted)} reference(s),"
            f" {len(self.calibrations.deleted)} calibration(s) and"
            f" {len(self.reports.deleted)} HTML report(s); kept"
            f" {len(self.references.kept)}, {len(self.calibrations.kept)} and"
            f" {len(self.reports.kept)}"
        )


def calibration_dir(settings: Settings) -> Path:
    return settings.paths.state / "calibration"


def registry_references(registry: Registry) -> set[Path]:
    """The references the registry points to: the champion's and its previous champion's."""
    champion = registry.champion()
    if champion is None:
        return set()
    paths = [champion.reference]
    if champion.previous:
        paths.append(registry.reference_of(champion.previous))
    return {Path(p).resolve() for p in paths if p}


def prune_state(
    settings: Settings, keep_last: int, registry: Registry | None = None, dry_run: bool = False
) -> RetentionResult:
    """Delete the reference versions and calibrations nothing needs any more (see the module
    docstring). ``keep_last`` (>= 1): the newest files of each kind kept regardless."""
    if keep_last < 1:
        raise ValueError(
            f"keep_last must be >= 1 (got {keep_last}): a challenger being "
            "registered needs its reference before the registry points to it"
        )
    protected = registry_references(registry or Registry(settings))
    refs = _newest_first(reference_dir(settings.paths.state), REFERENCE_GLOB)
    keep_refs = [p for i, p in enumerate(refs) if i < keep_last or p.resolve() in protected]
    references = _prune(refs, keep_refs, dry_run)

    shipped = settings.paths.reference
    kept_shas = {file_hash(p) for p in [*keep_refs, shipped, *protected] if p.is_file()}
    cals = [p for g in CALIBRATION_GLOBS for p in _newest_first(calibration_dir(settings), g)]
    cals.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    keep_cals = [p for i, p in enumerate(cals) if i < keep_last or _reference_sha(p) in kept_shas]
    profiles = _newest_first(settings.paths.state / "profiles", "profile-*.npz")
    cals += profiles[keep_last:]  # profile caches: the newest keep_last are enough
    calibrations = _prune(cals, keep_cals + profiles[:keep_last], dry_run)
    return RetentionResult(references, calibrations, prune_reports(settings, dry_run))


def prune_reports(settings: Settings, dry_run: bool = False) -> Pruned:
    """HTML reports (driftwatch's page, and Evidently's ``<stem>-evidently.html``) of the newest
    ``report.html_keep_last`` stored runs are kept; older ones go, and so does the HTML of a run
    that failed after writing it (no stored result names it: a retried file would otherwise leave
    one per attempt). Their MLflow copies stay with their MLflow runs."""
    state = settings.paths.state
    html = _newest_first(state / "reports", "*.html")
    recorded = (
        {p.stem for p in (state / "runs").glob("*.json")} if (state / "runs").is_dir() else set()
    )
    runs = [
        s for s in dict.fromkeys(p.stem.removesuffix("-evidently") for p in html) if s in recorded
    ]
    newest = set(runs[: settings.report.html_keep_last])
    kept = [p for p in html if p.stem.removesuffix("-evidently") in newest]
    return _prune(html, kept, dry_run)


def _newest_first(directory: Path, pattern: str) -> list[Path]:
    if not directory.is_dir():
        return []
    files = [p for p in directory.glob(pattern) if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)


def _reference_sha(path: Path) -> str | None:
    """The reference a calibration was computed on; None when the file cannot be read."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if isinstance(raw, dict) and raw.get("kind") == "time_blocks":  # one entry per horizon
        raw = (raw.get("horizons") or [{}])[0]
    sha = raw.get("reference_sha256") if isinstance(raw, dict) else None
    return sha if isinstance(sha, str) else None


def _prune(files: list[Path], keep: list[Path], dry_run: bool) -> Pruned:
    kept = set(keep)
    out = Pruned(kept=list(keep))
    for path in files:
        if path in kept:
            continue
        if not dry_run:
            path.unlink(missing_ok=True)
        out.deleted.append(path)
    return out
