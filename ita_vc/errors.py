"""The one exception tree of ita-vc, and the exit codes the CLI maps it to.

Exit codes are a contract with git hooks and CI scripts: they are append-only.

====  =============================================================
code  meaning
====  =============================================================
0     success
1     :class:`ItaVcError` (any other ita-vc error)
2     usage error (bad command line: typer, or :class:`UsageError` from the core)
3     unexpected exception (a bug: traceback in ``logs/``)
4     :class:`RuleValidationError`
5     :class:`NotInitializedError`
6     :class:`IntegrityError` (DVC data dirty or missing, hash mismatch)
7     :class:`RetentionRefusedError`
8     :class:`ConfigError`
9     :class:`PersistentStoreError`
10    :class:`WorkspaceLockedError`
11    :class:`DataValidationError` (input data refused: candles, params)
12    :class:`DirtyWorkspaceError` (uncommitted changes block a run)
13    :class:`RemoteError` (a DVC remote refused the credentials, is missing or did not answer)
14    :class:`JobStoreError` (the job store is unreachable, refused the login or is of a newer
      ita-vc)
130   interrupted (Ctrl-C)
====  =============================================================
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "ConfigError",
    "DataValidationError",
    "DirtyWorkspaceError",
    "IndexCorruptError",
    "IntegrityError",
    "ItaVcError",
    "JobStoreError",
    "NotInitializedError",
    "PersistentStoreError",
    "RemoteError",
    "RetentionRefusedError",
    "RuleValidationError",
    "UsageError",
    "VcsError",
    "WorkspaceLockedError",
]

EXIT_USAGE = 2
EXIT_UNEXPECTED = 3
EXIT_INTERRUPTED = 130


class ItaVcError(Exception):
    """Base class of every error ita-vc raises on purpose (exit code 1)."""

    exit_code: ClassVar[int] = 1


class UsageError(ItaVcError):
    """A bad argument the command line could not catch itself (a malformed run id, a negative
    or NaN number of days or seconds): the same code as typer's usage errors."""

    exit_code: ClassVar[int] = EXIT_USAGE


class RuleValidationError(ItaVcError):
    """A rule or lifecycle file is invalid, or a committed version was changed."""

    exit_code: ClassVar[int] = 4


class NotInitializedError(ItaVcError):
    """The current directory is not inside an ita-vc workspace."""

    exit_code: ClassVar[int] = 5


class IntegrityError(ItaVcError):
    """Stored data does not match its recorded hash, or DVC data is dirty/missing."""

    exit_code: ClassVar[int] = 6


class RetentionRefusedError(ItaVcError):
    """A retention run would delete something that must be kept."""

    exit_code: ClassVar[int] = 7


class ConfigError(ItaVcError):
    """``configs/config.yaml`` (or another config file) is invalid."""

    exit_code: ClassVar[int] = 8


class PersistentStoreError(ItaVcError):
    """A store read or write failed; nothing was half-written.

    Attributes:
        path: the repo-relative (or absolute) path concerned, when known.
    """

    exit_code: ClassVar[int] = 9

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class IndexCorruptError(PersistentStoreError):
    """The SQLite metadata index cannot be read; `ita-vc index rebuild` recreates it."""


class VcsError(ItaVcError):
    """A git or DVC operation failed."""


class WorkspaceLockedError(ItaVcError):
    """Another ita-vc process holds the workspace lock."""

    exit_code: ClassVar[int] = 10


class DataValidationError(ItaVcError):
    """Input data was refused (bad candles, a merge conflict, bad run parameters); nothing was
    written."""

    exit_code: ClassVar[int] = 11


class DirtyWorkspaceError(ItaVcError):
    """Uncommitted changes (code, rules, configs, or DVC-tracked data that differs from its
    committed ``.dvc`` entry) would make a run untraceable; nothing was run."""

    exit_code: ClassVar[int] = 12


class RemoteError(VcsError):
    """A DVC remote (an S3 bucket, a team server) refused the credentials, does not exist or
    did not answer in time; the message names the remote and its URL, never a credential."""

    exit_code: ClassVar[int] = 13


class JobStoreError(ItaVcError):
    """The job store (``.ita/jobs.sqlite`` or the team's PostgreSQL server) is unreachable,
    refused the login, or was migrated by a newer ita-vc; the message names it, never a
    password."""

    exit_code: ClassVar[int] = 14
