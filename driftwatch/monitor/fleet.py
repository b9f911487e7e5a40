"""One tick over the models of a config with ``models:``: what each model's run came to, and the
one line the tick as a whole is known by.

Each model is checked in a monitor run of its own (its plan, ports and state, built from its
resolved settings); this module only gathers how those runs ended, so that the parent run, the
CLI and the daemon report every model, and a failed model alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelRun:
    """How one model's monitor run ended: ``state`` is its final state's name (Completed,
    Failed, Crashed...), ``result`` the stored result's dict when it completed."""

    model: str
    state: str
    message: str
    run_id: str | None = None
    result: dict[str, Any] | None = None
    seconds: float | None = None  # its child run's wall time, Prefect's overhead included

    @property
    def ok(self) -> bool:
        return self.state == "Completed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "state": self.state,
            "message": self.message,
            "run_id": self.run_id,
            "result": self.result,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelRun:
        return cls(**d)


def tick_message(runs: list[ModelRun]) -> str:
    """``3 models: 2 completed, 1 failed (b: ValueError: ...)``: the parent run's message."""
    failed = [r for r in runs if not r.ok]
    text = f"{len(runs)} models: {len(runs) - len(failed)} completed"
    if failed:
        text += (
            f", {len(failed)} failed ("
            + "; ".join(f"{r.model}: {r.message or r.state}" for r in failed)
            + ")"
        )
    return text
