"""Deployment entry point of the retrain flow (normally run as the monitor's subflow)."""

from driftwatch.orchestration.retrain_flow import retrain_flow

__all__ = ["retrain_flow"]
