"""Failover of the dr stack: see what promotion changes, and promote or demote for real.

    python -m tools.failover diff [--stack dr]
    python -m tools.failover promote|demote [--stack dr] [--yes] [--timeout-seconds 600]

`diff` plans the stack offline with `promoted=false` and `promoted=true` and
prints, resource by resource, every input that changes (old -> new). It
checks that nothing is created or deleted and that every change is an
in-place update (exit 1 otherwise).

`promote` / `demote` use the Pulumi Automation API on the real stack: set
`raptorflow-dr:promoted`, run `up` (`preview` without `--yes`), then poll
`https://<hostname><healthPath>` of every failover hostname until each answers
200 or the timeout passes, and print a timed report. They need the Pulumi CLI
and the stack's credentials. Without `--yes` the flip is previewed from a
temporary copy of the stack file (`--config-file`): the stack's own config is
never changed, even when the preview is killed. The health URLs are those of
the `failoverHostnames` the update reports.

Exit codes: 0 applied (or previewed) and every hostname healthy; 1 some
hostname not healthy within the timeout; 2 no CLI, no such stack, or invalid
config; 3 `pulumi preview` / `pulumi up` failed (one line: the last error it
printed); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config import ConfigError
from tools.offline import PROJECT, ROOT, SECRET_PLACEHOLDER, Plan, StackFileError, is_secret, plan_stack, unwrap

PROMOTED_KEY = f"{PROJECT}:promoted"
VERCEL_VARIABLE = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"

# Inputs that a promotion may change, per type: each is updated in place by its provider.
IN_PLACE = {
    "cloudflare:index/dnsRecord:DnsRecord": {"content"},
    "cloudflare:index/loadBalancer:LoadBalancer": {"defaultPools", "fallbackPool"},
    VERCEL_VARIABLE: {"value"},
    "gcp:cloudscheduler/job:Job": {"paused"},
    # Components carry which site is active, for reviewers and policies.
    "raptorflow:failover:FailoverRecord": {"activeSite"},
    "raptorflow:failover:FailoverLoadBalancer": {"activeSite"},
    # Monitoring follows the active site: its uptime alerts page P0, the other site's P2.
    "gcp:monitoring/alertPolicy:AlertPolicy": {"displayName", "severity", "enabled", "userLabels", "documentation"},
}


@dataclass
class Change:
    """One resource whose inputs differ between the two plans."""

    urn: str
    type: str
    name: str
    changes: dict[str, tuple[Any, Any]]

    @property
    def in_place(self) -> bool:
        """Whether every changed input is one its provider updates in place."""
        return {key.split(".")[0] for key in self.changes} <= IN_PLACE.get(self.type, set())


@dataclass
class FlipDiff:
    """What flipping `promoted` does to a stack."""

    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        """Nothing created, deleted or replaced."""
        return not self.created and not self.deleted and all(c.in_place for c in self.changed)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and not is_secret(value):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else key))
        return flat
    return {prefix: value}


def diff_plans(before: Plan, after: Plan) -> FlipDiff:
    """Resource-by-resource differences of two plans of one stack."""
    old = {r.urn: r for r in before.resources}
    new = {r.urn: r for r in after.resources}
    result = FlipDiff(created=sorted(set(new) - set(old)), deleted=sorted(set(old) - set(new)))
    for urn in sorted(set(old) & set(new)):
        a, b = old[urn], new[urn]
        if unwrap(a.inputs) == unwrap(b.inputs) and a.protect == b.protect:
            continue
        flat_a, flat_b = _flatten(a.inputs), _flatten(b.inputs)
        changes = {}
        for key in sorted(set(flat_a) | set(flat_b)):
            if unwrap(flat_a.get(key)) != unwrap(flat_b.get(key)):
                changes[key] = (flat_a.get(key), flat_b.get(key))
        result.changed.append(Change(urn, a.type, a.name, changes))
    return result


def _shown(resource_type: str, sensitive: bool, value: Any) -> str:
    # The Vercel SDK stores every value as a secret; only the `sensitive` ones are secret in config.
    if is_secret(value) and (resource_type != VERCEL_VARIABLE or sensitive):
        return SECRET_PLACEHOLDER
    return str(unwrap(value))


def render_diff(stack: str, diff: FlipDiff, after: Plan) -> Iterable[str]:
    """The report `diff` prints."""
    sensitive = {r.urn: bool(r.inputs.get("sensitive")) for r in after.resources}
    yield f"promoting {stack}: {len(diff.changed)} resources change"
    for change in diff.changed:
        mark = "update in place" if change.in_place else "NOT an in-place update"
        yield f"  ~ {change.type}  {change.name}  ({mark})"
        for key, (old, new) in change.changes.items():
            hidden = sensitive.get(change.urn, False)
            yield (f"      {key}: {_shown(change.type, hidden, old)} -> "
                   f"{_shown(change.type, hidden, new)}")
    secret_variables = sorted(r.inputs["key"] for r in after.resources
                              if r.type == VERCEL_VARIABLE and r.inputs.get("sensitive"))
    if secret_variables:
        yield f"  (secret values switch too but cannot be compared offline: {', '.join(secret_variables)})"
    for urn in diff.created:
        yield f"  + {urn}  (CREATED)"
    for urn in diff.deleted:
        yield f"  - {urn}  (DELETED)"
    if diff.safe:
        yield "nothing is created, replaced or deleted: promotion only updates these resources in place"
    else:
        yield "UNSAFE: promotion would create, delete or replace resources; resource names must not depend on `promoted`"


# ---------------------------------------------------------------- health verification


@dataclass
class HealthResult:
    """How one endpoint answered while we waited for it."""

    url: str
    healthy_after_seconds: float | None
    last_status: str


def probe(url: str, timeout_seconds: float) -> str:
    """One GET: '200' or the status code or error seen."""
    try:
        request = urllib.request.Request(url, method="GET")  # noqa: S310 - the stack's own health URLs
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:  # noqa: S310
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        return type(getattr(exc, "reason", exc)).__name__


def wait_healthy(
    urls: list[str],
    timeout_seconds: float,
    interval_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[HealthResult]:
    """Poll every URL until it answers 200 or `timeout_seconds` pass; report when each first did."""
    started = clock()
    results = {url: HealthResult(url, None, "not tried") for url in urls}
    while True:
        for url, result in results.items():
            if result.healthy_after_seconds is None:
                result.last_status = probe(url, min(10.0, max(1.0, interval_seconds)))
                if result.last_status == "200":
                    result.healthy_after_seconds = round(clock() - started, 2)
        if all(r.healthy_after_seconds is not None for r in results.values()) or clock() - started >= timeout_seconds:
            return list(results.values())
        sleep(interval_seconds)


# ---------------------------------------------------------------- promote / demote


def health_urls(hostnames: Iterable[str], stack: str, project_dir: Path = ROOT) -> list[str]:
    """https://<hostname><healthPath> of each hostname the stack reports (the health path from its config)."""
    from components.config import parse_stack_config
    from tools.offline import supply_missing_secrets
    from tools.stack_files import read_stack_config

    values, secret_keys = read_stack_config(stack, project_dir)
    supply_missing_secrets(stack, values, secret_keys)
    config = parse_stack_config(stack, values, secret_keys)
    path = config.failover.health_path if config.failover else "/health"
    return [f"https://{host}{path}" for host in hostnames]


EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_SETUP, EXIT_PULUMI_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Interrupted(BaseException):
    """SIGTERM: unwind so that every `finally` runs (the preview's temporary config file goes)."""


def _children() -> list[int]:
    """Pids of this process's children (the Pulumi CLI the Automation API started), from /proc."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields and int(fields[1]) == os.getpid():
            found.append(int(entry.parent.name))
    return found


def _on_sigterm(signum: int, frame: Any) -> None:
    # Pass it on to the CLI, as a terminal would: it cancels its operation and exits, so the Automation API's
    # worker returns and nothing keeps running after this process.
    for pid in _children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    raise _Interrupted()


def flipped_config_file(stack: str, promote: bool, folder: Path, project_dir: Path = ROOT) -> Path:
    """A copy of the stack file with `promoted` flipped, for a preview that must not change the real one."""
    from tools.stack_files import load_yaml_mapping

    source = project_dir / f"Pulumi.{stack}.yaml"
    document = load_yaml_mapping(source)
    config = dict(document.get("config") or {})
    config[PROMOTED_KEY] = promote
    copy = folder / source.name
    copy.write_text(yaml.safe_dump({**document, "config": config}, sort_keys=False))
    return copy


def _last_line(exc: BaseException) -> str:
    """The last error line the CLI printed (the Automation API's CommandError holds `code:`/`stdout:`/`stderr:`)."""
    lines = [line.strip().removeprefix("stderr:").removeprefix("stdout:").strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [type(exc).__name__])[-1][:300]


def switch(stack_name: str, promote: bool, apply: bool, timeout_seconds: float, interval_seconds: float,
           project_dir: Path = ROOT) -> int:
    """Preview (default) or apply the flip, then verify health; print a timed report. Exit codes: module doc."""
    from pulumi import automation as auto

    report: list[tuple[str, float]] = []
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        stack = auto.select_stack(stack_name=stack_name, work_dir=str(project_dir))
    except FileNotFoundError:
        print("error: the Pulumi CLI is not installed (or not on PATH); install it from "
              "https://www.pulumi.com/docs/install/ - `python -m tools.failover diff` works without it",
              file=sys.stderr)
        return EXIT_SETUP
    except auto.errors.CommandError as exc:
        print(f"error: cannot select stack {stack_name}: {_last_line(exc)}", file=sys.stderr)
        return EXIT_SETUP
    value = "true" if promote else "false"
    results: list[HealthResult] = []
    try:
        if apply:
            stack.set_config(PROMOTED_KEY, auto.ConfigValue(value=value))
            report.append((f"config {PROMOTED_KEY}={value}", time.monotonic() - started))
            try:
                outcome = stack.up(on_output=print)
            except auto.errors.CommandError as exc:
                print(f"error: pulumi up failed: {_last_line(exc)}; {PROMOTED_KEY}={value} stays set in the stack "
                      "config - fix the cause and run the same command again", file=sys.stderr)
                return EXIT_PULUMI_FAILED
            report.append(("pulumi up finished", time.monotonic() - started))
            hostnames = outcome.outputs.get("failoverHostnames")
            try:
                urls = health_urls(hostnames.value if hostnames else [], stack_name, project_dir)
            except (StackFileError, ConfigError) as exc:
                print(f"error: the update is done, but the health path cannot be read: {exc}", file=sys.stderr)
                return EXIT_SETUP
            results = wait_healthy(urls, timeout_seconds, interval_seconds)
        else:
            # The flip lives only in a temporary copy of the stack file: a preview never changes the stack's
            # config, even when it is killed half-way.
            with tempfile.TemporaryDirectory(prefix="raptorflow-failover-") as folder:
                flipped = flipped_config_file(stack_name, promote, Path(folder), project_dir)
                try:
                    stack.preview(on_output=print, config_file=str(flipped))
                except auto.errors.CommandError as exc:
                    print(f"error: pulumi preview failed: {_last_line(exc)}", file=sys.stderr)
                    return EXIT_PULUMI_FAILED
            report.append(("pulumi preview finished (nothing applied; pass --yes to apply)", time.monotonic() - started))
    except (_Interrupted, KeyboardInterrupt):
        print("interrupted: " + ("the stack config may already say promoted; run the command again"
                                 if apply else "nothing was changed"), file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    for result in results:
        when = f"healthy after {result.healthy_after_seconds:.1f} s" if result.healthy_after_seconds is not None \
            else f"NOT healthy within {timeout_seconds:.0f} s (last: {result.last_status})"
        report.append((f"{result.url} {when}", time.monotonic() - started))
    print(f"\n{'promote' if promote else 'demote'} {stack_name}:")
    for step, at in report:
        print(f"  {at:8.1f} s  {step}")
    return EXIT_HEALTHY if all(r.healthy_after_seconds is not None for r in results) else EXIT_UNHEALTHY


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.failover`."""
    parser = argparse.ArgumentParser(prog="python -m tools.failover", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    diff = commands.add_parser("diff", help="what promotion changes, resource by resource (offline)")
    diff.add_argument("--stack", default="dr")
    for name in ("promote", "demote"):
        command = commands.add_parser(name, help=f"{name} the standby site for real (Pulumi CLI needed)")
        command.add_argument("--stack", default="dr")
        command.add_argument("--yes", action="store_true", help="apply (without it: preview only)")
        command.add_argument("--timeout-seconds", type=float, default=600.0, help="health wait (default 600)")
        command.add_argument("--interval-seconds", type=float, default=5.0, help="between health polls (default 5)")
        command.add_argument("--project-dir", type=Path, default=ROOT, metavar="DIR",
                             help="folder of Pulumi.yaml and the stack files (default: this repo)")
    args = parser.parse_args(argv)

    if args.command == "diff":
        try:
            as_filed: dict[str, Plan] = {}  # the referenced prod plan, made once for both
            before = plan_stack(args.stack, (f"{PROMOTED_KEY}=false",), as_filed=as_filed)
            after = plan_stack(args.stack, (f"{PROMOTED_KEY}=true",), as_filed=as_filed)
        except StackFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # noqa: BLE001 - config errors are RunErrors with a readable message
            print(f"error: stack {args.stack}: {exc}", file=sys.stderr)
            return 2
        result = diff_plans(before, after)
        print("\n".join(render_diff(args.stack, result, after)))
        return 0 if result.safe else 1
    return switch(args.stack, args.command == "promote", args.yes, args.timeout_seconds, args.interval_seconds,
                  args.project_dir)


if __name__ == "__main__":
    sys.exit(main())
