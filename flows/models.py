"""Deployment entry point of a config with ``models:``: the parent flow that checks every model
in a child run of its own (point a ``prefect.yaml`` deployment's entrypoint here, with
``config_path`` as its parameter, instead of ``flows/monitor.py:monitor_flow``).

The flow itself lives in :mod:`driftwatch.orchestration.models_flow`. Its task runner here is
Prefect's default thread pool; ``driftwatch serve`` sets ``orchestration.max_parallel_models``.
"""

from driftwatch.orchestration.models_flow import monitor_models_flow

__all__ = ["monitor_models_flow"]

if __name__ == "__main__":
    monitor_models_flow()
