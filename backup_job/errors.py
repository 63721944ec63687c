"""How a run ends: the exit codes and the one last line a scheduler, a log-based metric or a person acts on.

Only the standard library is imported here, so `python -m backup_job` installs
the SIGTERM handler before the client libraries load (a second or more) and a
run stopped even then ends with its line and exit 10.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

LOG_EVENT = "raptorflow.backup"
COMMANDS = ("backup", "restore-check", "restore", "export-dns", "list")  # backup_job.cli's subcommands
# Commands whose stdout is data (a listing): their failure is one `error:` line on stderr, not the JSON line.
DATA_COMMANDS = frozenset({"list"})


class ExitCode(enum.IntEnum):
    """Why a run ended. Anything but OK means no new complete backup exists."""

    OK = 0
    FAILED = 1  # an unexpected error (a bug): see the log line
    USAGE = 2  # bad arguments or configuration (also: no room to spool the dump for restore --jobs N)
    DATABASE_UNREACHABLE = 3  # connection or login failed, the restore target is read-only, or a table lock was not had in time
    UPLOAD_FAILED = 4  # Cloud Storage refused or lost the upload, or the bucket is unreadable
    VERIFICATION_MISMATCH = 5  # checksum or row counts differ from the manifest, or a download arrived damaged
    DUMP_FAILED = 6  # pg_dump or pg_restore failed after connecting
    NOT_FOUND = 7  # no complete backup to check
    EXPORT_FAILED = 8  # the Cloudflare zone export failed, or the zone had no records
    ROW_COUNT_FAILED = 9  # the database failed while the job counted rows for the manifest
    TERMINATED = 10  # stopped by SIGTERM (Cloud Run's task timeout, or a cancel): the line says what was left
    RESTORE_REFUSED = 11  # a table restore would leave rows referencing missing keys: nothing was changed


class JobError(Exception):
    """A failure with the exit code that names it; the message is safe to log. `details` are extra fields of
    the log line (what a failed restore left, by table)."""

    def __init__(self, code: ExitCode, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.details = details or {}


def printable(text: str) -> str:
    """`text` with every character that is not printable escaped (`\\x1b`): names from the database and the
    bucket go into messages and listings, and must not move a terminal's cursor or split a log line."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


class Terminated(BaseException):
    """SIGTERM (what Cloud Run sends when a task times out): unwind, clean up, log the failure.

    A BaseException, so no `except Exception` on the way (a retry loop, a client library) swallows it.
    """


# Failure labels of the log line that are not the exit code's name.
_FAILURES = {ExitCode.FAILED: "unexpected"}


class _Run:
    """Where the running command stands, for the SIGTERM handler."""

    terminating = False  # Terminated was raised once: a second SIGTERM must not interrupt the cleanup
    ending = False  # the last line is being written: the run is over, a SIGTERM changes nothing


_RUN = _Run()


def _signal_children(signum: int) -> None:
    # Cloud Run signals only the container's first process: pass it on to pg_dump / pg_restore, so they stop
    # now rather than at the SIGKILL ten seconds later, and nothing waits on them while this run unwinds.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                os.kill(int(stat.parent.name), signum)


def on_sigterm(signum: int, frame: Any) -> None:
    """The SIGTERM handler: pass the signal on to child processes, then raise Terminated - once, and not while
    the run's last line is being written."""
    _signal_children(signum)
    if _RUN.terminating or _RUN.ending:
        return
    _RUN.terminating = True
    raise Terminated()


def terminating() -> bool:
    """Whether SIGTERM has ended this run (a client library may have turned the Terminated into its own error)."""
    return _RUN.terminating


def handle_sigterm() -> Any:
    """Install on_sigterm for a new run; return the handler it replaces."""
    _RUN.terminating = _RUN.ending = False
    return signal.signal(signal.SIGTERM, on_sigterm)


def log_line(**fields: Any) -> None:
    """One structured log line on stdout (Cloud Logging reads `severity`)."""
    print(json.dumps({k: v for k, v in fields.items() if v is not None}, sort_keys=True), flush=True)


def end_run(command: str | None, code: ExitCode, message: str, as_json: bool | None = None, **fields: Any) -> int:
    """Write the run's one last line and return its exit code.

    Every command but a listing prints the JSON line (`event`, `command`, `result`, `exitCode`, `failure`,
    `message`, and `fields`); a listing prints its data, and on failure one `error:` line on stderr, unless
    `as_json` (an argument error, which argparse has explained on stderr already).
    """
    _RUN.ending = True
    if not (command not in DATA_COMMANDS if as_json is None else as_json):
        if code != ExitCode.OK:
            print(f"error: {message}", file=sys.stderr, flush=True)
        return code
    failed = code != ExitCode.OK
    log_line(severity="ERROR" if failed else "INFO", event=LOG_EVENT, command=command,
             result="failure" if failed else "success", exitCode=int(code),
             failure=_FAILURES.get(code, code.name.lower()) if failed else None, message=message, **fields)
    return code
