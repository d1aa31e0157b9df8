"""Errors a user can act on.

Anything raised as `UnmaskError` is printed by the CLI as one line (`unmask: error: ...`)
with a non-zero exit code and no traceback. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UnmaskError(Exception):
    """A problem with the user's input, config or environment, explained in one line."""

    exit_code = 2


class BadInputError(UnmaskError):
    """One input file cannot be used. `reason` is a short machine-readable tag
    (e.g. `corrupt`, `no_face`, `too_large`) recorded in `rejected.csv` by batch jobs."""

    def __init__(self, path: object, reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        msg = f"{self.path}: {reason}" + (f" ({detail})" if detail else "")
        super().__init__(msg)


class ConfigError(UnmaskError):
    """A config file or `--set` override is invalid."""
