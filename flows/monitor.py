"""Deployment entry point of the hourly monitor (``prefect.yaml`` points here).

The flow itself lives in :mod:`driftwatch.orchestration.monitor_flow`; this file only names it
for ``prefect deploy`` and keeps the dependency one way (``flows`` imports ``driftwatch``).
"""

from driftwatch.orchestration.monitor_flow import monitor_flow

__all__ = ["monitor_flow"]

if __name__ == "__main__":
    monitor_flow()
