"""One exception base; each subclass keeps its fields and says how to fix the problem."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class BatchRevokeError(Exception):
    """Base of every error batch-revoke raises on purpose."""


@dataclass(eq=False, repr=False)
class InputError(BatchRevokeError):
    """The input file cannot be used at all; nothing was sent."""

    path: Path
    problem: str
    fix: str = ""
    sheet: str = ""  # of a workbook: the problem is in this sheet

    def __str__(self) -> str:
        where = f"{self.path}, sheet {self.sheet!r}" if self.sheet else str(self.path)
        text = f"{where}: {self.problem}"
        return f"{text}; {self.fix}" if self.fix else text


@dataclass(eq=False, repr=False)
class ConfigError(BatchRevokeError):
    """An option, environment variable or credential is missing or wrong; nothing was sent."""

    problem: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.problem}; {self.fix}" if self.fix else self.problem


@dataclass(eq=False, repr=False)
class AuthError(BatchRevokeError):
    """The API refused our credentials (401/403): going on would fail every request."""

    http_status: int
    message: str

    def __str__(self) -> str:
        hint = (
            "check CAP_USERNAME/CAP_PASSWORD or CAP_OAUTH_KEY/CAP_OAUTH_SECRET (or, with "
            "--profile, what `batch-revoke login` stored or was typed) and the cluster"
            if self.http_status == 401
            else "the credentials lack permission for the badge API (default access group)"
        )
        return f"HTTP {self.http_status} {self.message}; {hint}"


@dataclass(eq=False, repr=False)
class RunInProgress(BatchRevokeError):
    """--auto-resume: a run of this very input is still going in another process."""

    output: Path

    def __str__(self) -> str:
        return (
            f"a run of this input is still going in another process (results {self.output}); "
            "nothing was sent: it is left to finish, and the next run goes on with it if it "
            "stops"
        )


@dataclass(eq=False, repr=False)
class StorageError(BatchRevokeError):
    """The journal or the result file cannot be written (disk full, folder gone). What was
    recorded before stays intact, so the run can be resumed once the problem is fixed."""

    path: Path
    problem: str

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.problem}"
