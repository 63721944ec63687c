"""Exit codes a scheduler, a log-based metric or a person can act on."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Why a run ended. Anything but OK means no new complete backup exists."""

    OK = 0
    FAILED = 1  # an unexpected error (a bug): see the log line
    USAGE = 2  # bad arguments or configuration
    DATABASE_UNREACHABLE = 3  # connection or login to PostgreSQL failed
    UPLOAD_FAILED = 4  # Cloud Storage refused or lost the upload, or the bucket is unreadable
    VERIFICATION_MISMATCH = 5  # checksum or row counts differ from the manifest
    DUMP_FAILED = 6  # pg_dump or pg_restore failed after connecting
    NOT_FOUND = 7  # no complete backup to check
    EXPORT_FAILED = 8  # the Cloudflare zone export failed, or the zone had no records
    ROW_COUNT_FAILED = 9  # the database failed while the job counted rows for the manifest
    TERMINATED = 10  # stopped by SIGTERM (Cloud Run's task timeout, or a cancel): nothing was completed
    RESTORE_REFUSED = 11  # a table restore would leave rows referencing missing keys: nothing was changed


class JobError(Exception):
    """A failure with the exit code that names it; the message is safe to log."""

    def __init__(self, code: ExitCode, message: str):
        super().__init__(message)
        self.code = code


def printable(text: str) -> str:
    """`text` with every character that is not printable escaped (`\\x1b`): names from the database and the
    bucket go into messages and listings, and must not move a terminal's cursor or split a log line."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
