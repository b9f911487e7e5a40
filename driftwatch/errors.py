"""Errors a user can act on: each names the file, column or setting at fault."""

from __future__ import annotations


class DriftwatchError(Exception):
    """Base class: the CLI turns these into exit code 2 and a one-paragraph message."""


class ConfigError(DriftwatchError):
    """config.yaml (or an override) is wrong; the message carries the setting's dotted path."""


class BatchError(DriftwatchError):
    """A batch file cannot be used as it is; names the file and, when known, the column."""

    def __init__(self, path: str, reason: str, column: str | None = None) -> None:
        self.path = str(path)
        self.column = column
        self.reason = reason
        from driftwatch.files import shown

        where = f"column {column!r} in {shown(self.path)}" if column else shown(self.path)
        super().__init__(f"{where}: {reason}")


class SchemaError(BatchError):
    """Columns missing, duplicated, or of the wrong type."""


class RegistryError(DriftwatchError):
    """MLflow could not be reached or refused an operation; the champion alias did not move."""


class ChampionChanged(DriftwatchError):
    """The champion alias moved (a rollback?) between a retrain's scoring and its promotion."""

    def __init__(self, expected: str | None, current: str | None) -> None:
        self.expected, self.current = expected, current

        def v(version: str | None) -> str:
            return f"v{version}" if version else "none"

        super().__init__(
            f"champion changed from {v(expected)} to {v(current)} during the retrain"
            " (a rollback?): not promoted"
        )


class NotEnoughData(DriftwatchError):
    """Too few rows or labels to do what was asked (train, hold out, calibrate); says how many."""


class StateError(DriftwatchError):
    """Something under the state dir that driftwatch needs is missing or unreadable."""


def infrastructure(exc: BaseException) -> bool:
    """A failure known not to be the data's: MLflow, the disk, sqlite, the state dir, the
    config, or the process stopped (KeyboardInterrupt, SystemExit, a cancelled flow).

    Here (not in the landing source) because the monitor use case asks it too: such a fault
    stops a tick's runs of isolated files, since every further run would fail the same way."""
    import sqlite3

    known = (RegistryError, StateError, ConfigError, OSError, sqlite3.Error)
    return isinstance(exc, known) or not isinstance(exc, Exception)


def describe_failure(exc: BaseException) -> str:
    """One line for a failure: a DriftwatchError's own message, else the exception's type too."""
    from driftwatch.files import escaped

    return escaped(str(exc) if isinstance(exc, DriftwatchError) else f"{type(exc).__name__}: {exc}")
