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
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from distributed import Client

    from driftwatch.config import ModelSettings, ScaleSettings
    from driftwatch.engine.drift import DriftDetector, DriftResult
    from driftwatch.engine.stattests import Kind
    from driftwatch.engine.summaries import BatchSummary
    from driftwatch.model.partial_quality import QualitySums
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
    shared = {k: client.scatter([v], broadcast=True)[0] for k, v in kwargs.items()}
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
