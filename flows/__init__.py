"""Prefect orchestration for driftwatch: thin flows whose tasks each wrap one library call."""

from driftwatch import prefect_env

prefect_env.configure()
