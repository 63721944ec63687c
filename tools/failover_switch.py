"""`python -m tools.failover promote|demote`: flip `promoted` on the real stack through the Pulumi Automation API,
redeploy the Vercel production deployment so the app takes the flipped env vars (tools/vercel_deploy.py), then
wait for the health endpoint of every hostname the update reports. Usage and exit codes: tools/failover.py.

Everything that can be known before the flip is checked before it, so a refusal changes nothing: the stack
name's form, its stack file (named after the stack's short name, as the CLI names it: `myorg/dr` and
`myorg/raptorflow-dr/dr` are both `Pulumi.dr.yaml`), its config, and - when applying - that the file can be
written and, for a stack with a `vercel` section, the Vercel API URL and token.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config import ConfigError
from tools.failover_health import wait_healthy
from tools.offline import PROJECT, ROOT, StackFileError
from tools.operator import Interrupted, config_file_copy, last_error_line, short_name, stoppable
from tools.vercel_deploy import VercelApi, VercelError, api_url, production_deployment, redeploy, wait_ready
from tools.vercel_deploy import token as vercel_token

PROMOTED_KEY = f"{PROJECT}:promoted"

EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_SETUP, EXIT_PULUMI_FAILED, EXIT_REDEPLOY_FAILED = 0, 1, 2, 3, 4
EXIT_NO_HOSTNAMES, EXIT_INTERRUPTED = 5, 130

# What the CLI says when it cannot write a stack file (Go's os errors, lower-cased).
_UNWRITABLE = ("read-only", "permission denied", "operation not permitted")


class SetupError(Exception):
    """What stops the switch before it changes anything: one line, exit 2."""


def _one_line(text: str) -> str:
    first, *rest = [line.strip() for line in text.splitlines() if line.strip()] or [""]
    return " ".join([first, "; ".join(rest)]).strip()


@dataclass(frozen=True)
class StackSettings:
    """What the switch needs from the stack file, read before anything changes."""

    stack_file: Path
    health_path: str
    vercel_project: str | None = None  # the Vercel project whose env vars flip: redeployed after the update
    vercel_team: str | None = None


def read_settings(stack: str, project_dir: Path = ROOT) -> StackSettings:
    """The stack file of `stack` (any of its name forms), validated as the program would; SetupError if the
    file is missing or invalid, or the stack has no traffic switch."""
    from components.config import parse_stack_config
    from tools.offline import supply_missing_secrets
    from tools.stack_files import read_stack_config

    short = short_name(stack)
    try:
        values, secret_keys = read_stack_config(short, project_dir)
        supply_missing_secrets(short, values, secret_keys)
        config = parse_stack_config(short, values, secret_keys)
    except (StackFileError, ConfigError) as exc:
        raise SetupError(_one_line(str(exc))) from None
    if config.failover is None:
        raise SetupError(f"Pulumi.{short}.yaml has no `failover` section: stack {stack} has no traffic switch "
                         "to promote or demote")
    vercel = config.vercel
    return StackSettings(project_dir / f"Pulumi.{short}.yaml", config.failover.health_path,
                         vercel.project_id if vercel else None, vercel.team_id if vercel else None)


def health_urls(hostnames: Iterable[str], stack: str, project_dir: Path = ROOT) -> list[str]:
    """https://<hostname><healthPath> of each hostname the stack reports (the health path from its config)."""
    path = read_settings(stack, project_dir).health_path
    return [f"https://{host}{path}" for host in hostnames]


def _unwritable(stack_file: Path, reason: str) -> str:
    return (f"the stack file {stack_file.name} is read-only or immutable ({reason}): make it writable "
            "(chmod u+w, chattr -i) and run the same command again; nothing was changed")


def check_writable(stack_file: Path) -> None:
    """SetupError unless the stack file can be opened for writing (which writes nothing), as `config set` needs."""
    try:
        with open(stack_file, "r+b"):
            pass
    except OSError as exc:
        raise SetupError(_unwritable(stack_file, exc.strerror or type(exc).__name__)) from None


def _flip_failed(exc: BaseException, stack_file: Path) -> str:
    last = last_error_line(exc)
    if any(hint in last.lower() for hint in _UNWRITABLE):
        return _unwritable(stack_file, last)
    return f"cannot set {PROMOTED_KEY} in {stack_file.name}: {last}; nothing was changed"


@dataclass
class _Run:
    """One promote or demote: what it was asked, and the timed steps it has done."""

    stack_name: str
    promote: bool
    settings: StackSettings
    started: float = field(default_factory=time.monotonic)
    report: list[tuple[str, float]] = field(default_factory=list)
    flipping: bool = False  # the stack config may say the new value from here on
    redeploying: str | None = None  # the Vercel deployment requested, once it is

    def step(self, text: str) -> None:
        self.report.append((text, time.monotonic() - self.started))

    def print_report(self) -> None:
        print(f"\n{'promote' if self.promote else 'demote'} {self.stack_name}:")
        for text, at in self.report:
            print(f"  {at:8.1f} s  {text}")


def switch(stack_name: str, promote: bool, apply: bool, timeout_seconds: float, interval_seconds: float,
           project_dir: Path = ROOT) -> int:
    """Preview (default) or apply the flip, then verify health; print a timed report. Exit codes: module doc."""
    try:
        settings = read_settings(stack_name, project_dir)
        if apply:
            check_writable(settings.stack_file)
            if settings.vercel_project:
                api_url()
    except (SetupError, ValueError, VercelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    run = _Run(stack_name, promote, settings)
    try:
        with stoppable():
            return _apply(run, timeout_seconds, interval_seconds, project_dir) if apply else _preview(run, project_dir)
    except (Interrupted, KeyboardInterrupt):
        building = f" (Vercel deployment {run.redeploying} keeps building)" if run.redeploying else ""
        print("interrupted: " + (f"the stack config may already say promoted; run the command again{building}"
                                 if run.flipping else "nothing was changed"), file=sys.stderr)
        return EXIT_INTERRUPTED


def _select(run: _Run, project_dir: Path) -> Any:
    """The stack through the Automation API, or SetupError naming why not."""
    from pulumi import automation as auto

    try:
        return auto.select_stack(stack_name=run.stack_name, work_dir=str(project_dir))
    except FileNotFoundError:
        raise SetupError("the Pulumi CLI is not installed (or not on PATH); install it from "
                         "https://www.pulumi.com/docs/install/ - `python -m tools.failover diff` works without it"
                         ) from None
    except auto.errors.CommandError as exc:
        raise SetupError(f"cannot select stack {run.stack_name}: {last_error_line(exc)}") from None


def _preview(run: _Run, project_dir: Path) -> int:
    from pulumi import automation as auto

    try:
        stack = _select(run, project_dir)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    # The flip lives only in a temporary copy of the stack file: a preview never changes the stack's config, even
    # when it is killed half-way.
    with tempfile.TemporaryDirectory(prefix="raptorflow-failover-") as folder:
        flipped = config_file_copy(run.settings.stack_file, {PROMOTED_KEY: run.promote}, Path(folder))
        try:
            stack.preview(on_output=print, config_file=str(flipped))
        except auto.errors.CommandError as exc:
            print(f"error: pulumi preview failed: {last_error_line(exc)}", file=sys.stderr)
            return EXIT_PULUMI_FAILED
    run.step("pulumi preview finished (nothing applied; pass --yes to apply)")
    if run.settings.vercel_project:
        run.step(f"with --yes, Vercel project {run.settings.vercel_project}'s production deployment is redeployed "
                 "after the update")
    run.print_report()
    return EXIT_HEALTHY


def _apply(run: _Run, timeout_seconds: float, interval_seconds: float, project_dir: Path) -> int:
    from pulumi import automation as auto

    try:
        stack = _select(run, project_dir)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    api = None
    if run.settings.vercel_project:
        try:
            api = VercelApi(vercel_token(os.environ, stack), run.settings.vercel_team, api_url())
        except VercelError as exc:
            print(f"error: {exc}; nothing was changed", file=sys.stderr)
            return EXIT_SETUP
    value = "true" if run.promote else "false"
    run.flipping = True
    try:
        stack.set_config(PROMOTED_KEY, auto.ConfigValue(value=value))
    except auto.errors.CommandError as exc:
        print(f"error: {_flip_failed(exc, run.settings.stack_file)}", file=sys.stderr)
        return EXIT_SETUP
    run.step(f"config {PROMOTED_KEY}={value}")
    try:
        outcome = stack.up(on_output=print)
    except auto.errors.CommandError as exc:
        print(f"error: pulumi up failed: {last_error_line(exc)}; {PROMOTED_KEY}={value} stays set in the stack "
              "config - fix the cause and run the same command again", file=sys.stderr)
        return EXIT_PULUMI_FAILED
    run.step("pulumi up finished")
    deadline = time.monotonic() + timeout_seconds  # one budget for the redeploy and the health wait
    if api is not None:
        try:
            _redeploy(run, api, deadline, interval_seconds)
        except VercelError as exc:
            run.print_report()
            print(f"error: the Vercel redeploy failed: {exc}; {PROMOTED_KEY}={value} is applied - fix the cause and "
                  "run the same command again", file=sys.stderr)
            return EXIT_REDEPLOY_FAILED
    reported = outcome.outputs.get("failoverHostnames")
    hostnames = [str(host) for host in (reported.value if reported else None) or []]
    if not hostnames:
        run.print_report()
        print("error: the update reported no failoverHostnames, so no health endpoint was checked; check the "
              f"stack's outputs (`pulumi stack output --stack {run.stack_name}`) - the flip is applied", file=sys.stderr)
        return EXIT_NO_HOSTNAMES
    urls = [f"https://{host}{run.settings.health_path}" for host in hostnames]
    results = wait_healthy(urls, max(0.0, deadline - time.monotonic()), interval_seconds)
    for result in results:
        run.step(f"{result.url} healthy after {result.healthy_after_seconds:.1f} s"
                 if result.healthy_after_seconds is not None
                 else f"{result.url} NOT healthy within {timeout_seconds:.0f} s (last: {result.last_status})")
    run.print_report()
    return EXIT_HEALTHY if all(r.healthy_after_seconds is not None for r in results) else EXIT_UNHEALTHY


def _redeploy(run: _Run, api: VercelApi, deadline: float, interval_seconds: float) -> None:
    """Redeploy the project's production deployment and wait until the new one is READY (VercelError if not)."""
    assert run.settings.vercel_project is not None
    source = production_deployment(api, run.settings.vercel_project)
    new = redeploy(api, run.settings.vercel_project, source)
    run.redeploying = new.id
    requested = time.monotonic()
    run.step(f"redeploy requested: Vercel deployment {new.id} of production deployment {source.id}")
    wait_ready(api, new.id, deadline, interval_seconds)
    run.step(f"deployment {new.id} READY after {time.monotonic() - requested:.1f} s")
