"""Big batches on Dask: the cluster from configuration, partitions summarised where they are.

driftwatch builds no distribution of its own: partitions are Dask tasks (``Client.map``), their
summaries (engine/summaries.py) are merged by Dask tasks in a tree, and only the merged summary
reaches this process. The same function runs without a cluster (``scale.runner: local``): one
partition at a time in this process, merged as it goes, so memory is one partition's column.
Dask is imported here only, and only when a cluster is asked for: the core imports without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from distributed import Client

    from driftwatch.config import ModelSettings, ScaleSettings
    from driftwatch.engine.blocks import BlockProfile
    from driftwatch.engine.drift import DriftDetector, DriftResult
    from driftwatch.engine.stattests import Kind
    from driftwatch.engine.summaries import BatchSummary
    from driftwatch.model.partial_quality import QualitySums
    from driftwatch.monitor.big import HourSummaries
    from driftwatch.monitor.plan import Plan
    from driftwatch.store.partitions import Partition

T = TypeVar("T")
# Summaries merged per Dask task: a tree of fan-in 8 keeps every merge small and parallel.
FAN_IN = 8


@contextmanager
def dask_client(scale: ScaleSettings) -> Iterator[Client | None]:
    """A ``distributed.Client`` for ``scale.runner`` (None for "local"): a LocalCluster on
    127.0.0.1 started and closed here, or an existing scheduler at ``scale.address``."""
    if scale.runner == "local":
        yield None
        return
    from distributed import Client, LocalCluster

    if scale.runner == "address":
        with Client(scale.address, timeout="60s") as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=scale.n_workers,
            threads_per_worker=scale.threads_per_worker,
            memory_limit=scale.memory_limit,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # never the shared default 8787
            processes=True,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _merge_many(items: Sequence[Any]) -> Any:
    out = items[0]
    for x in items[1:]:
        out = out.merge(x)
    return out


def map_merge(
    client: Client | None, func: Callable[..., T], parts: Sequence[Partition], **kwargs: Any
) -> T:
    """``func(part, **kwargs)`` for every partition, merged (``.merge``) into one result: on the
    cluster as a tree of Dask tasks, or here one partition at a time."""
    if not parts:
        raise ValueError("no partitions to summarise")
    if client is None:
        out = func(parts[0], **kwargs)
        for part in parts[1:]:
            out = out.merge(func(part, **kwargs))
        return out
    # Shared inputs (lattices, a model) travel to each worker once, not once per task.
    # (Wrapped in a list: a dict given to scatter alone would be scattered item by item.)
    shared = {
        k: None if v is None else client.scatter([v], broadcast=True)[0] for k, v in kwargs.items()
    }
    futures = client.map(func, list(parts), pure=False, **shared)
    while len(futures) > 1:
        futures = [
            client.submit(_merge_many, futures[i : i + FAN_IN], pure=False)
            for i in range(0, len(futures), FAN_IN)
        ]
    return futures[0].result()


def summarise(
    client: Client | None,
    parts: Sequence[Partition],
    kinds: Mapping[str, Kind],
    lattices: Mapping[str, np.ndarray],
) -> BatchSummary:
    """The merged summary of every partition (store/partitions.summarise_partition)."""
    from driftwatch.store.partitions import summarise_partition

    return map_merge(client, summarise_partition, parts, kinds=dict(kinds), lattices=dict(lattices))


def score(
    client: Client | None, parts: Sequence[Partition], model: Any, spec: ModelSettings
) -> QualitySums:
    """The model's quality sums over every partition (scored where the partition is)."""
    from driftwatch.store.partitions import score_partition

    return map_merge(client, score_partition, parts, model=model, spec=spec)


def check_big(
    detector: DriftDetector,
    current: str,
    scale: ScaleSettings,
    reference: str | None = None,
    client: Client | None = None,
) -> DriftResult:
    """The drift check of a big batch (a parquet file or a directory of them) against the
    detector's fitted profile, or against a big ``reference`` summarised the same way (its
    lattices then come from a sample of it: the detector must be fitted on that sample).
    ``client``: a Dask client to use (else one from ``scale``)."""
    from driftwatch.store.partitions import partitions

    lattices = detector.lattices(scale.points)
    kinds = {c: s.kind for c, s in detector.profile_.columns.items() if c not in detector.ignore}
    cur_parts = partitions(current, scale.partition_rows)
    ref_parts = partitions(reference, scale.partition_rows) if reference else None

    def run(c: Client | None) -> DriftResult:
        ref_summary = summarise(c, ref_parts, kinds, lattices) if ref_parts else None
        cur_summary = summarise(c, cur_parts, kinds, lattices)
        return detector.check_summary(cur_summary, ref_summary, source=current)

    if client is not None:
        return run(client)
    with dask_client(scale) as c:
        return run(c)


def is_big(path: str | Path, scale: ScaleSettings) -> bool:
    """A directory (a partitioned dataset), or a parquet file of more than
    ``scale.summary_above_rows`` rows (read from its footer)."""
    from driftwatch.store.partitions import is_big as big

    return big(path, scale.summary_above_rows)


class DaskBigBatches:
    """The monitor's big-batch port (:class:`driftwatch.monitor.ports.BigBatches`): a landing
    directory or big parquet file summarised per local hour where its partitions are, on the
    cluster of config ``scale`` (``runner``: this process one partition at a time, a
    LocalCluster started and stopped for the batch, or the scheduler at ``scale.address``)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def summarise(
        self,
        path: str,
        profile: BlockProfile,
        keep: Any,
        model: Any = None,
        estimator: Any = None,
    ) -> HourSummaries:
        from driftwatch.engine.block_summaries import block_lattices
        from driftwatch.store.partitions import partitions, summarise_partition_hours

        s = self.plan.settings
        parts = partitions(path, s.scale.partition_rows)
        lattices = block_lattices(profile, s.scale.points)
        with dask_client(s.scale) as client:
            return map_merge(
                client,
                summarise_partition_hours,
                parts,
                spec=s.model,
                profile=profile,
                lattices=lattices,
                keep=keep,
                model=model,
                estimator=estimator,
            )


class _Loaded:
    """A reference already read, for the calibration store (it asks for the frame only when
    it has to calibrate)."""

    def __init__(self, frame: Any) -> None:
        self._frame = frame

    def frame(self, ref: Any) -> Any:
        return self._frame


def check_with_plan(
    plan: Plan, reference: str, current: str, scale: ScaleSettings, client: Client | None = None
) -> tuple[DriftResult, list[str]]:
    """A big batch judged with the configured rule: the result and notes for the reader.

    A big reference is fitted on a sample (test choice, lattices) and summarised whole.
    Calibrated thresholds come from the calibration store at the batch's size (the reference
    must fit then); time-block thresholds judge a batch's own time blocks, which a summary no
    longer has: refused, naming the setting."""
    from driftwatch.errors import ConfigError
    from driftwatch.store.batches import model_columns, open_columns
    from driftwatch.store.partitions import dataset_rows, sample_rows

    columns = model_columns(plan.settings.model)
    big_ref = is_big(reference, scale)
    calibrated = plan.rule.needs_calibration
    if calibrated and (plan.time_blocks or big_ref):
        raise ConfigError(
            "drift.calibration.quiet: time-block thresholds judge a batch's own time blocks,"
            " and calibrating needs the reference whole: a summarised big batch is checked"
            " with drift.calibration.quiet: rows and a reference that fits, or with"
            " drift.method bonferroni, bh or evidently (README, 'Big batches on Dask')"
        )
    source: Any = (
        sample_rows(reference, 200_000, columns) if big_ref else open_columns(reference, columns)
    )
    notes: list[str] = []
    if calibrated:
        from driftwatch.files import file_hash
        from driftwatch.model.schema import validate_batch
        from driftwatch.monitor.ports import ReferenceHandle
        from driftwatch.store.batches import read_batch
        from driftwatch.store.calibrations import CalibrationStore

        frame = read_batch(reference, columns=columns)
        frame = validate_batch(frame, plan.settings.model, reference)
        path = Path(reference).resolve()
        handle = ReferenceHandle(path, file_hash(path), path.name)
        cal = CalibrationStore(plan, _Loaded(frame)).thresholds(handle, dataset_rows(current))
        notes += cal.warnings
        detector = plan.detector(cal.tests())
        source = frame
    else:
        detector = plan.detector()
    detector.fit(source)
    result = check_big(
        detector, current, scale, reference=reference if big_ref else None, client=client
    )
    return result, notes
