"""STAND-IN for the Pulumi CLI, put first on PATH of the failover tool in a drill: not Pulumi.

The real CLI and its providers cannot reach the drill's world, so `python -m tools.failover promote --stack dr
--yes` drives this script through the Automation API instead. It answers what the Automation API asks:

    version                                  v3.200.0 (the last version handed a file for engine events)
    stack select --stack S                   S must be the drill's stack (any of its name forms)
    config set KEY --plaintext ... -- VALUE  kept in the drill's state (the checkout's stack file is never written)
    stack output --json [--show-secrets]     the outputs of the last plan applied (failoverHostnames...)
    stack history --json ...                 one update
    up --yes --skip-preview ...              applies the stack's plan with its config to the stand-ins
    config set --secret / rm / --json        secret config, and `up` applying it (tools/drill/pulumi_secrets.py)

`up` plans the stack offline with `promoted` as the config now says and applies `tools.failover.diff_plans`
of the plan last applied (its checkpoint, tools/drill/pulumi_apply.py) and the new one - the two plans
`python -m tools.failover diff` compares - change by change: Cloudflare
record contents through the Cloudflare API stand-in, Vercel variables through the Vercel stand-in (a value the
drill supplies in place of the plan's, such as the database URL, is substituted), Cloud Scheduler's `paused`
flags, the alert policies and the failover components' `activeSite` into the state the drill reads. A change
of any other type or input, or a diff that is not in place, is an error: `error: ...` on stderr and exit 255,
as the CLI fails, with nothing applied. It records how long it took (the drill's `apply` step) and when the
DNS records changed.

The state is a JSON file in $RFDR_PULUMI_STATE (the drill's private folder); the Cloudflare token is
$CLOUDFLARE_API_TOKEN and the Vercel API and token $VERCEL_API_URL and $VERCEL_TOKEN, as the tool has them.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

STARTED = time.monotonic()
"""When this call of the CLI began: an update is timed from here (loading the program's modules included)."""
STATE_VARIABLE = "RFDR_PULUMI_STATE"
STATE_FILE = "state.json"
CHECKPOINT_COMMAND = "drill-checkpoint"
"""The drill's own verb, not Pulumi's: `drill-checkpoint STACK KEY VALUE` writes the checkpoint of the stack as
deployed (planned with KEY=VALUE), before any operator runs `up`."""
VERSION = "v3.200.0"
ERROR_EXIT = 255
REQUEST_TIMEOUT_SECONDS = 10.0


class UpError(Exception):
    """What makes the stand-in fail as the CLI does: one `error:` line, exit 255."""


# ---------------------------------------------------------------------- what the Automation API reads back


def history_entry() -> dict[str, Any]:
    """One entry of `stack history --json` (what `Stack.info()` reads after an update)."""
    return {"kind": "update", "startTime": "2026-11-29T00:00:00.000Z", "message": "", "environment": {},
            "config": {}, "result": "succeeded", "endTime": "2026-11-29T00:00:01.000Z", "version": 1,
            "resourceChanges": {}}


def write_event_log(path: str, succeeded: bool) -> None:
    """The engine events the Automation API waits for: the summary after a success, and always the cancel
    event the CLI writes last (without it the log watcher is joined only after its 5-second timeout)."""
    with open(path, "a") as events:
        if succeeded:
            events.write(json.dumps({"sequence": 1, "timestamp": 0, "summaryEvent": {
                "maybeCorrupt": False, "durationSeconds": 0, "resourceChanges": {}}}) + "\n")
        events.write(json.dumps({"sequence": 2, "timestamp": 0, "cancelEvent": {}}) + "\n")


# ---------------------------------------------------------------------- the drill's side


def state_path(folder: Path) -> Path:
    """The state file in the stand-in's folder."""
    return folder / STATE_FILE


def install(folder: Path, root: Path, state: dict[str, Any]) -> dict[str, str]:
    """Write the stand-in as `folder/bin/pulumi` and its initial state; return the variables that put it first
    on PATH and point it at its state."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    cli = bin_dir / "pulumi"
    cli.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(root)!r})\n"
                   "from tools.drill.pulumi_cli import main\nsys.exit(main(sys.argv[1:]))\n")
    cli.chmod(0o700)
    save(folder, state)
    return {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", STATE_VARIABLE: str(folder),
            "PULUMI_HOME": str(folder / "home"), "PULUMI_SKIP_UPDATE_CHECK": "true"}


def load(folder: Path) -> dict[str, Any]:
    """The stand-in's state."""
    document: dict[str, Any] = json.loads(state_path(folder).read_text())
    return document


def save(folder: Path, state: dict[str, Any]) -> None:
    """Replace the state (written whole, then renamed: a reader never sees half of it)."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / (STATE_FILE + ".new")
    partial.write_text(json.dumps(state, indent=1))
    partial.chmod(0o600)
    partial.replace(state_path(folder))


# ---------------------------------------------------------------------- the CLI


def _short(stack: str) -> str:
    return stack.rsplit("/", 1)[-1]


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None


def main(argv: list[str]) -> int:
    """Answer one CLI call."""
    args = [a for a in argv if a != "--non-interactive"]
    if args == ["version"]:
        print(VERSION)
        return 0
    folder = Path(os.environ[STATE_VARIABLE])
    if args[:1] == [CHECKPOINT_COMMAND]:
        from tools.drill import pulumi_apply

        pulumi_apply.checkpoint(folder, args[1], args[2], args[3], Path.cwd())
        return 0
    from tools.drill import pulumi_secrets

    state = load(folder)
    stack = _option(args, "--stack")
    try:
        if stack is not None and _short(stack) != state["stack"]:
            raise UpError(f"no stack named '{stack}' found")
        if args[:2] == ["stack", "select"]:
            return 0
        if args[:1] == ["config"] and pulumi_secrets.answers(args):
            printed = pulumi_secrets.config(args, state, "" if "--secret" not in args else sys.stdin.read())
            save(folder, state)
            if printed is not None:
                print(printed)
            return 0
        if args[:2] == ["config", "set"]:
            key = next(a for i, a in enumerate(args[2:], 2) if not a.startswith("--") and args[i - 1] != "--stack")
            state["config"][key] = args[args.index("--") + 1]
            save(folder, state)
            return 0
        if args[:2] == ["stack", "output"]:
            print(json.dumps(state["outputs"]))
            return 0
        if args[:2] == ["stack", "history"]:
            print(json.dumps([history_entry()]))
            return 0
        if args[:1] == ["up"]:
            return _up(args, folder, state)
        raise UpError(f"the drill's stand-in Pulumi CLI does not answer `pulumi {' '.join(args[:3])}`")
    except UpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ERROR_EXIT


def _up(args: list[str], folder: Path, state: dict[str, Any]) -> int:
    events = _option(args, "--event-log")
    try:
        applied = _apply(folder, state)
    except UpError:
        if events:
            write_event_log(events, False)
        raise
    print(f"Updating ({state['stack']}) - the drill's STAND-IN Pulumi CLI:")
    for line in applied:
        print(f"    ~ {line}")
    print(f"Resources:\n    ~ {len(applied)} updated\nDuration: {state['up']['seconds']:.1f}s")
    if events:
        write_event_log(events, True)
    return 0


def _apply(folder: Path, state: dict[str, Any]) -> list[str]:
    """Plan, check, apply; record the update in the state. The lines of the update's summary."""
    from tools.drill import pulumi_apply as failover_apply
    from tools.drill import pulumi_secrets

    started = STARTED
    # The engine hands the program every config key of the stack, and the program refuses a namespace it does not
    # know before it plans anything: so does this `up`, for the keys `pulumi config set` stored here.
    from components.config.loading import unknown_namespace

    keys = {pulumi_secrets.full_key(k) for k in state["config"]} | set(state.get("secrets", {}))
    refused = [problem for problem in map(unknown_namespace, sorted(keys)) if problem]
    if refused:
        raise UpError(f"invalid stack config in Pulumi.{state['stack']}.yaml: {'; '.join(refused)}")
    key = state["promotedKey"]
    wanted = str(state["config"].get(key, state["applied"]))
    _, after, diff = failover_apply.plan_diff(folder, state["stack"], key, str(state["applied"]), wanted, Path.cwd())
    planned = time.monotonic()
    changes = failover_apply.apply(diff, after, state)
    changes += pulumi_secrets.apply(after, state, wanted)
    state["applied"] = wanted
    state["outputs"] = failover_apply.outputs(after)
    state["up"] = {"startedAt": started, "seconds": time.monotonic() - started, "planSeconds": planned - started,
                   "changes": changes}
    save(folder, state)
    return [f"{c['type']}  {c['name']}  ({', '.join(c['inputs'])})" for c in changes]


def call(base: str, token: str, method: str, path: str, body: Any = None) -> Any:
    """One JSON request to a stand-in's API; UpError naming the call when it fails (never the token)."""
    request = urllib.request.Request(base + path, method=method,  # noqa: S310 - the drill's own stand-ins
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise UpError(f"{method} {path.split('?')[0]} answered {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UpError(f"{method} {path.split('?')[0]} unanswered: {type(exc).__name__}") from None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
