"""The active drift reference: the shipped file at first, then the champion's training window.

Drift is only meaningful against what the champion learned from, so each retrain stores its
training window as a reference version under the state dir, and the champion's model version
carries the path of its window as a tag. The active reference is *derived* from the champion:
moving the alias (promotion or rollback) is the single commit point, so the model and its
reference can never disagree, and a crash leaves the old pair or the new one.

Its profile (sorted values, counts) is computed once per reference content and cached under
``<state>/profiles/`` as ``.npz`` (no pickle), so wiping the state dir clears it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from driftwatch.engine.blocks import BlockProfile
from driftwatch.engine.drift import PROFILE_FORMAT, ReferenceProfile
from driftwatch.errors import StateError
from driftwatch.files import atomic_write, file_hash
from driftwatch.model.schema import validate_batch
from driftwatch.monitor.plan import Plan, Segment
from driftwatch.monitor.ports import Champion, ReferenceHandle
from driftwatch.store.batches import model_columns, read_batch

log = logging.getLogger("driftwatch.retention")


def reference_dir(state: Path) -> Path:
    return state / "reference"


def active_reference(plan: Plan, champion_reference: str | None = None) -> ReferenceHandle:
    """The champion's window if it has one, else the shipped reference (before the bootstrap)."""
    if champion_reference:
        path = Path(champion_reference)
        if not path.is_file():
            raise StateError(
                f"the champion's reference {path} is missing from the state dir; restore it from"
                " the champion's MLflow run (artifact 'reference/') or run `driftwatch rollback`"
            )
        return ReferenceHandle(path, file_hash(path), path.stem.removeprefix("reference-"))
    path = plan.settings.paths.reference
    return ReferenceHandle(path, file_hash(path), "shipped")


def load_reference(plan: Plan, ref: ReferenceHandle) -> pd.DataFrame:
    """Only the model's columns are read (validation keeps no others)."""
    spec = plan.settings.model
    return validate_batch(read_batch(ref.path, columns=model_columns(spec)), spec, str(ref.path))


def profile_key(plan: Plan, ref: ReferenceHandle) -> str:
    """Cache key of the fitted profile: the reference's content and the settings that shape it."""
    # The profile format is part of the key: an upgraded driftwatch never reuses an old file.
    h = hashlib.sha256(f"{PROFILE_FORMAT}:{ref.sha256}".encode())
    h.update(plan.settings.model.model_dump_json(include={"numerical", "categorical"}).encode())
    h.update(plan.settings.drift.model_dump_json(include={"ignore"}).encode())
    return f"profile-{h.hexdigest()[:24]}"


class _Recent(dict[tuple[str, ...], Any]):
    """The last few values by key, for this process: the daemon's ticks run in one process and
    judge the same reference hour after hour, so its frame and block profile are built once,
    not per tick (measured by benchmarks/process_speed.py: ~0.3 s of a warm tick). Keys hold
    the reference's content hash and the settings that shape the value, so an edited config or
    a new reference is a new entry; the oldest entries go."""

    def __init__(self, size: int = 2) -> None:
        super().__init__()
        self.size = size

    def get_or_make(self, key: tuple[str, ...], make: Callable[[], Any]) -> Any:
        with _LOCK:
            if key in self:
                return self[key]
        value = make()  # outside the lock: other models' runs (threads) go on meanwhile
        with _LOCK:
            while len(self) >= self.size:
                del self[next(iter(self))]
            self[key] = value
        return value


# Per model name: the models of a config with models: run in threads of one process, and each
# keeps its own last few entries (one shared pair would be rebuilt by every model, every tick).
_LOCK = threading.Lock()
_FRAMES_BY_MODEL: dict[str, _Recent] = {}
_PROFILES_BY_MODEL: dict[str, _Recent] = {}


def _recent(caches: dict[str, _Recent], model: str) -> _Recent:
    with _LOCK:
        return caches.setdefault(model, _Recent())


class ReferenceFiles:
    """The monitor's ReferenceStore over parquet files under ``<state>/reference/``."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.state = plan.settings.paths.state

    def locate(self, champion: Champion | None) -> ReferenceHandle:
        return active_reference(self.plan, champion.reference if champion else None)

    def frame(self, ref: ReferenceHandle) -> pd.DataFrame:
        """Read once per process and reference content, however many steps and ticks need it
        (callers never modify it)."""
        spec = self.plan.settings.model.model_dump_json()
        key = (str(ref.path), ref.sha256, spec)
        cache = _recent(_FRAMES_BY_MODEL, self.plan.name)
        return cache.get_or_make(key, lambda: load_reference(self.plan, ref))

    def profile(self, ref: ReferenceHandle) -> ReferenceProfile:
        """Fitted once per reference content; hourly runs read the cached ``.npz``."""
        path = self.state / "profiles" / f"{profile_key(self.plan, ref)}.npz"
        if path.is_file():
            try:
                return ReferenceProfile.load(path)
            except ValueError:
                path.unlink(missing_ok=True)  # unreadable: fitted again below
        profile = self.plan.detector().fit(self.frame(ref), fingerprint=ref.sha256[:16]).profile_
        profile.save(path)
        return profile

    def block_profile(self, ref: ReferenceHandle, segment: Segment | None = None) -> BlockProfile:
        """Values, counts and cross-column regressions of the reference (once per process);
        ``segment``: of that segment's rows."""
        s = self.plan.settings  # every setting that could shape it is in the key
        key = (str(ref.path), ref.sha256, s.model.model_dump_json(), s.drift.model_dump_json())
        key += (f"{segment[0]}={segment[1]}",) if segment else ()
        cache = _recent(_PROFILES_BY_MODEL, self.plan.name + (f"/{key[-1]}" if segment else ""))
        return cache.get_or_make(
            key, lambda: self.plan.block_profile(self.plan.segment_rows(self.frame(ref), segment))
        )

    def store(self, frame: pd.DataFrame, key: str) -> str:
        """Write a reference version (atomically) named by ``key``: a retried write of the same
        retrain lands on the same file. Does not activate it."""
        target = reference_dir(self.state) / f"reference-{_safe(key)}.parquet"
        if not target.is_file():
            atomic_write(target, lambda tmp: frame.to_parquet(tmp, index=False))
        return str(target)

    def prune(self) -> str:
        """Old reference versions and calibrations go (see :mod:`driftwatch.store.retention`);
        a failure to prune is said and never fails the run."""
        from driftwatch.store.retention import prune_state

        try:
            return prune_state(self.plan.settings, self.plan.settings.retention.keep_last).summary()
        except Exception as exc:  # pruning is housekeeping: the run's work is already done
            log.warning("retention: state dir not pruned: %s", exc)
            return f"not pruned: {exc}"


def _safe(key: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in key)
