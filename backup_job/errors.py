"""How a run ends: the exit codes and the one last line a scheduler, a log-based metric or a person acts on.

Only the standard library (and core.contracts, which imports nothing else) is imported here, so `python -m backup_job` installs
the SIGTERM handler before the client libraries load (a second or more) and a
run stopped even then ends with its line and exit 10.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from core.contracts import (
    DATA_COMMANDS,
    LOG_EVENT,
    Command,
    ExitCode,
    LogField,
    Result,
    failure_label,
)

__all__ = ["COMMANDS", "DATA_COMMANDS", "LOG_EVENT", "ExitCode", "JobError", "Terminated", "end_run", "handle_sigterm",
           "log_line", "on_sigterm", "printable", "terminating"]

# What crosses into the program, the alerts and the runbook is named in core.contracts (standard library only,
# copied into the image beside this package): the exit codes, the subcommands and the log line's fields.
COMMANDS = tuple(Command)  # backup_job.cli's subcommands


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

    Every command but a listing prints the JSON line (core.contracts.LogField: `event`, `command`, `result`,
    `exitCode`, `failure`, `message`, and `fields`); a listing prints its data, and on failure one `error:` line
    on stderr, unless `as_json` (an argument error, which argparse has explained on stderr already).
    """
    _RUN.ending = True
    if not (command not in DATA_COMMANDS if as_json is None else as_json):
        if code != ExitCode.OK:
            print(f"error: {message}", file=sys.stderr, flush=True)
        return code
    failed = code != ExitCode.OK
    log_line(**{
        LogField.SEVERITY: "ERROR" if failed else "INFO", LogField.EVENT: LOG_EVENT, LogField.COMMAND: command,
        LogField.RESULT: Result.FAILURE if failed else Result.SUCCESS, LogField.EXIT_CODE: int(code),
        LogField.FAILURE: failure_label(code) if failed else None, LogField.MESSAGE: message, **fields,
    })
    return code
