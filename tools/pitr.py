"""Point-in-time recovery of the Supabase database through the Management API: restore to a timestamp, then wait
until the project is healthy again.

    python -m tools.pitr restore --project-ref REF --to 2026-12-02T14:03:09Z
                                 [--timeout-seconds 3600] [--poll-seconds 10] [--api-url URL] [--state-dir DIR]

The token is `SUPABASE_ACCESS_TOKEN` (never an argument, never printed). `--api-url` (or `SUPABASE_API_URL`)
points the calls at another base URL than https://api.supabase.com, such as the drill's stand-in
(tools/drill/pitr.py). `--to` is RFC 3339 in UTC (`Z` or `+00:00`), whole seconds: the API takes Unix seconds.

What it does, in order (https://supabase.com/docs/reference/api, OpenAPI https://api.supabase.com/api/v1-json):
1. `GET /v1/projects/{ref}` (https://supabase.com/docs/reference/api/v1-get-project): the project's `status`.
   RESTORING after this command requested a restore to the same target: it waits (step 4). RESTORING otherwise:
   refused (exit 4), nothing requested.
2. `GET /v1/projects/{ref}/database/backups` (https://supabase.com/docs/reference/api/v1-list-all-backups):
   `pitr_enabled` and the window `physical_backup_data.earliest_physical_backup_date_unix` ..
   `latest_physical_backup_date_unix`. A target outside it is refused before anything is requested (exit 3).
   Supabase's latest point can lag now when the database has been idle
   (https://supabase.com/docs/guides/platform/backups#point-in-time-recovery): run again a little later.
3. `POST /v1/projects/{ref}/database/backups/restore-pitr` with `{"recovery_time_target_unix": <int>}`
   (https://supabase.com/docs/reference/api/v1-restore-pitr-backup): 201 starts the restore. The project is
   unavailable while it runs.
4. Polls `GET /v1/projects/{ref}` every `--poll-seconds` until `status` is ACTIVE_HEALTHY, within
   `--timeout-seconds` counted from the start of the command. The API can still answer ACTIVE_HEALTHY for a
   moment after the 201 (the restore is queued; the dashboard shows RESTORING on its own), so ACTIVE_HEALTHY
   counts only once the project has been seen in another status since the request.

Idempotent: each request leaves a receipt, `<state dir>/<ref>.json` (`--state-dir`, default
`$XDG_STATE_HOME/raptorflow-dr/pitr`, else `~/.local/state/raptorflow-dr/pitr`). Run again with the same target
while the restore runs, it waits for it instead of requesting another; once the project is healthy after it, it
says the project is already restored to that target and requests nothing, waiting if it is not ACTIVE_HEALTHY
just then (delete the receipt to restore to the same time once more). After a restore that ended RESTORE_FAILED,
the same command requests it again. A run stopped (killed, or the network failed) before its request was answered
keeps the receipt, as the request may have arrived: the next run waits up to START_GRACE_SECONDS (120) for that
restore to start and, when it does not, exits 1 saying so (delete the receipt and run again).

Output: one line per step on stdout; a failure is one line on stderr.

Exit codes:
  0    the project is ACTIVE_HEALTHY after a restore to the target (now, or by an earlier run)
  1    not ACTIVE_HEALTHY within --timeout-seconds (the restore goes on; run again to keep waiting), or the
       restore was never seen starting
  2    usage: a bad option, timestamp or API URL, no SUPABASE_ACCESS_TOKEN, a state folder that cannot be written
  3    refused before anything was requested: PITR not enabled, or the target outside the recovery window
  4    the API refused or did not answer (401, 404, 5xx, network), or another restore is in progress
  5    the restore failed: the project ended RESTORE_FAILED (or another state it does not leave by itself)
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP)
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from tools.operator import STOPPING_SIGNALS
from tools.pitr_api import (
    EXIT_API,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    Api,
    Failure,
    Receipts,
    message,
)

DEFAULT_API_URL = "https://api.supabase.com"
TOKEN_VARIABLE, API_URL_VARIABLE = "SUPABASE_ACCESS_TOKEN", "SUPABASE_API_URL"
HEALTHY, RESTORING = "ACTIVE_HEALTHY", "RESTORING"
FAILED_STATES = frozenset({"RESTORE_FAILED", "INIT_FAILED", "REMOVED", "INACTIVE", "PAUSE_FAILED"})
"""Statuses a project does not leave by itself (https://api.supabase.com/api/v1-json, V1ProjectResponse.status)."""
DEFAULT_TIMEOUT_SECONDS, DEFAULT_POLL_SECONDS, START_GRACE_SECONDS = 3600.0, 10.0, 120.0
_REF = re.compile(r"^[a-z]{20}$")


def project_ref(text: str) -> str:
    """A project ref as the API defines it: 20 lowercase letters."""
    if not _REF.match(text):
        raise argparse.ArgumentTypeError("a project ref is 20 lowercase letters (the dashboard URL's /project/<ref>)")
    return text


def target_time(text: str) -> int:
    """RFC 3339 in UTC, whole seconds -> Unix seconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 time such as 2026-12-02T14:03:09Z") from None
    if moment.utcoffset() is None or moment.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
        raise argparse.ArgumentTypeError(f"{text!r} must be in UTC (end it with Z)")
    if moment.microsecond:
        raise argparse.ArgumentTypeError(f"{text!r}: the API restores to whole seconds; drop the fraction")
    return int(moment.timestamp())


def api_url(text: str) -> str:
    """An http(s) base URL with a host."""
    try:
        parts = urllib.parse.urlsplit(text)
        good = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        good = False
    if not good:
        raise argparse.ArgumentTypeError("the API URL is http(s)://host[:port], such as https://api.supabase.com")
    return text


def seconds(minimum: float) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds >= minimum."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= {minimum:g}")
        return value
    return parse


def utc_text(unix: float) -> str:
    """Unix seconds as RFC 3339 UTC."""
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def default_state_dir() -> Path:
    """Where receipts live unless --state-dir says otherwise."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "raptorflow-dr" / "pitr"


def restore(api: Api, receipts: Receipts, target: int, timeout: float, poll: float,
            say: Callable[[str], None]) -> None:
    """Steps 1-4 of the module docstring; returns when healthy, raises Failure otherwise."""
    started = time.monotonic()
    receipt = receipts.read()
    ours = receipt is not None and receipt.get("targetUnix") == target
    status = api.status()
    if ours and receipt is not None and status in FAILED_STATES:
        say(f"the restore to {utc_text(target)} requested at {receipt.get('requestedAt')} ended {status}: "
            "requesting it again")
        ours = False
    if ours and receipt is not None and status == RESTORING and receipt.get("healthyAt"):
        ours = False  # ours ended healthy; this restore is another one
    if status == RESTORING and not ours:
        raise Failure(EXIT_API, f"project {api.ref} is RESTORING, not to {utc_text(target)} by this command: wait "
                                "until it is ACTIVE_HEALTHY, then run again")
    if ours and receipt is not None and receipt.get("healthyAt"):  # not RESTORING, not failed: see above
        say(f"project {api.ref} is already restored to {utc_text(target)} (healthy since {receipt['healthyAt']}; "
            f"receipt {receipts.path}): nothing requested")
        if status != HEALTHY:  # restarting, say: wait for it, never restore a second time
            wait_healthy(api, receipts, started, (timeout, poll, timeout), say, True)
        return
    seen, unseen_limit = status == RESTORING, timeout
    if ours and receipt is not None and status != RESTORING and not receipt.get("healthyAt"):
        say(f"restore to {utc_text(target)} requested at {receipt.get('requestedAt')} by an earlier run")
        seen, unseen_limit = bool(receipt.get("restoringSeenAt")), min(timeout, START_GRACE_SECONDS)
    elif status != RESTORING:
        check_window(api, target, say)
        receipts.write({"projectRef": api.ref, "target": utc_text(target), "targetUnix": target,
                        "requestedAt": utc_text(time.time())})
        code, body = api.call("POST", "/database/backups/restore-pitr", {"recovery_time_target_unix": target})
        if code not in (200, 201):
            receipts.remove()
            refused = EXIT_REFUSED if code == 400 else EXIT_API
            raise Failure(refused, f"restore-pitr refused ({code}): {message(body)}")
        say(f"restore to {utc_text(target)} requested (HTTP {code}); the project is unavailable until it ends")
    else:
        say(f"a restore to {utc_text(target)} requested by an earlier run is in progress: waiting")
    status = wait_healthy(api, receipts, started, (timeout, poll, unseen_limit), say, seen)
    receipt = receipts.read() or {"projectRef": api.ref, "target": utc_text(target), "targetUnix": target}
    receipts.write({**receipt, "healthyAt": utc_text(time.time())})
    say(f"project {api.ref} {status} after {time.monotonic() - started:.1f} s: restored to {utc_text(target)}")


def check_window(api: Api, target: int, say: Callable[[str], None]) -> None:
    """Refuse (exit 3) a target outside the project's PITR window, before anything is requested."""
    backups = api.get("/database/backups")
    if not backups.get("pitr_enabled"):
        raise Failure(EXIT_REFUSED, f"project {api.ref} has no point-in-time recovery (pitr_enabled is false): "
                                    "enable the PITR add-on, or restore a daily backup")
    window = backups.get("physical_backup_data") or {}
    earliest = window.get("earliest_physical_backup_date_unix")
    latest = window.get("latest_physical_backup_date_unix")
    if not isinstance(earliest, int) or not isinstance(latest, int):
        raise Failure(EXIT_REFUSED, f"project {api.ref} lists no recovery window yet: nothing to restore from")
    if not earliest <= target <= latest:
        side = "before the earliest" if target < earliest else "after the latest"
        raise Failure(EXIT_REFUSED, f"{utc_text(target)} is {side} recovery point: the window is "
                                    f"{utc_text(earliest)} to {utc_text(latest)}; choose a time inside it"
                                    + ("" if target < earliest else " (or wait: the latest point follows the "
                                                                    "archived WAL)"))
    say(f"recovery window {utc_text(earliest)} to {utc_text(latest)}: {utc_text(target)} is inside it")


def wait_healthy(api: Api, receipts: Receipts, started: float, limits: tuple[float, float, float],
                 say: Callable[[str], None], seen: bool) -> str:
    """Poll the project's status until ACTIVE_HEALTHY (returned) after the restore was `seen` (another status, noted
    in the receipt); exit 1 at the timeout or unseen at the unseen limit (seconds), 5 on a failed state."""
    timeout, poll, unseen_limit = limits
    last = ""
    while True:
        status = api.status()
        if status != last:
            say(f"status {status} after {time.monotonic() - started:.1f} s"
                + ("" if seen or status != HEALTHY else ": no restore seen yet"))
            last = status
        if status != HEALTHY and not seen:
            seen = True
            receipts.write({**(receipts.read() or {}), "restoringSeenAt": utc_text(time.time())})
        if status == HEALTHY and seen:
            return status
        if status in FAILED_STATES:
            raise Failure(EXIT_FAILED, f"the restore failed: project {api.ref} is {status}; see the dashboard's "
                                       "database backups page or contact Supabase support")
        left = timeout - (time.monotonic() - started)
        if not seen and time.monotonic() - started >= unseen_limit:
            raise Failure(EXIT_TIMEOUT, f"project {api.ref} is still {status} after {unseen_limit:g} s: the restore was "
                                        "never seen starting; if the dashboard shows none, delete the receipt "
                                        f"{receipts.path} and run again")
        if left <= 0:
            raise Failure(EXIT_TIMEOUT, f"project {api.ref} is still {status} after {timeout:g} s "
                                        "(--timeout-seconds); the restore goes on: run the same command again to wait")
        time.sleep(min(poll, left))


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="python -m tools.pitr", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("restore", help="restore the project's database to a time and wait until healthy")
    run.add_argument("--project-ref", required=True, type=project_ref, help="the Supabase project's ref")
    run.add_argument("--to", required=True, type=target_time, dest="target",
                     help="the time to restore to, RFC 3339 UTC (2026-12-02T14:03:09Z)")
    run.add_argument("--timeout-seconds", type=seconds(0), default=DEFAULT_TIMEOUT_SECONDS,
                     help=f"how long to wait for ACTIVE_HEALTHY, from the start (default {DEFAULT_TIMEOUT_SECONDS:g})")
    run.add_argument("--poll-seconds", type=seconds(0.1), default=DEFAULT_POLL_SECONDS,
                     help=f"between status checks (default {DEFAULT_POLL_SECONDS:g})")
    run.add_argument("--api-url", type=api_url, default=os.environ.get(API_URL_VARIABLE, DEFAULT_API_URL),
                     help=f"the Management API's base URL (default ${API_URL_VARIABLE} or {DEFAULT_API_URL})")
    run.add_argument("--state-dir", type=Path, default=None, help="where receipts are kept (see the module's help)")
    return top


def _interrupted(signum: int, _frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the command; the exit code."""
    args = parser().parse_args(argv)
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        print(f"error: set {TOKEN_VARIABLE} to a Supabase access token (https://supabase.com/dashboard/account/"
              "tokens)", file=sys.stderr)
        return EXIT_USAGE
    for signum in STOPPING_SIGNALS:  # as Ctrl-C: a `kill`, or the terminal or ssh session gone
        signal.signal(signum, _interrupted)
    api = Api(args.api_url, token, args.project_ref)
    receipts = Receipts(args.state_dir or default_state_dir(), args.project_ref)

    def say(line: str) -> None:
        print(line.replace(token, "[secret]"), flush=True)

    try:
        restore(api, receipts, args.target, args.timeout_seconds, args.poll_seconds, say)
    except Failure as failure:
        print(f"error: {str(failure).replace(token, '[secret]')}", file=sys.stderr)
        return failure.code
    except KeyboardInterrupt:
        print("interrupted: nothing more was requested (a restore already requested goes on; run again to wait)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
