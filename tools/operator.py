"""What the operator commands share (tools.failover, tools.failback, tools.adopt, tools.image, tools.rotate,
tools.secrets): the argparse of failover and failback (a usage error on one line; `--stack` and seconds
arguments), a SIGTERM that ends the CLI they started too, the one line of a CLI failure worth printing, and a
temporary copy of a stack file with some settings changed, for a run that must never change the real one. It
loads no Pulumi SDK itself: a command that plans nothing (tools.failback) starts without it."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import signal
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tools.stack_yaml import PROJECT

if TYPE_CHECKING:  # the plan's types only: an operator command that plans nothing loads no Pulumi SDK
    from tools.offline import Plan

_NAME_PART = re.compile(r"^[A-Za-z0-9_.-]+$")
# Signals that end an operator command as Ctrl-C does: `kill`, and a closed terminal or SSH session.
STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
# The `deploy` section of the stack config (adopting, rebuild, teardown, generation).
DEPLOY_KEY = f"{PROJECT}:deploy"


class Interrupted(BaseException):
    """SIGTERM or SIGHUP: unwind so that every `finally` runs (temporary config files go), like Ctrl-C."""


def children() -> list[int]:
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


def on_sigterm(signum: int, frame: Any) -> None:
    """The SIGTERM (and SIGHUP) handler: pass SIGTERM on to the CLI, as a terminal would (it cancels its
    operation and exits, so nothing keeps running after this process), then unwind."""
    for pid in children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    raise Interrupted()


@contextlib.contextmanager
def stoppable(handler: Callable[[int, Any], None] = on_sigterm,
              signals: tuple[signal.Signals, ...] = STOPPING_SIGNALS) -> Iterator[None]:
    """While it lasts, `handler` takes `signals` (by default: SIGTERM and SIGHUP end the command like Ctrl-C, and
    end the CLI it started too); the previous handlers come back after, however it ends."""
    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


def short_name(stack: str) -> str:
    """The stack's own name in `stack`, `org/stack` or `org/project/stack`: what its stack file is named after.
    ValueError (one line) for another form, or a stack of another project."""
    parts = stack.split("/")
    if not 1 <= len(parts) <= 3 or not all(_NAME_PART.match(part) for part in parts):
        raise ValueError(f"'{stack}' is not a stack name: STACK, ORG/STACK or ORG/PROJECT/STACK "
                         "(letters, digits, '-', '_', '.')")
    if len(parts) == 3 and parts[1] != PROJECT:
        raise ValueError(f"'{stack}' is a stack of project {parts[1]}, not of {PROJECT}")
    return parts[-1]


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (--help shows the usage)\n")


def stack_argument(text: str) -> str:
    """argparse type of a `--stack`: STACK, ORG/STACK or ORG/PROJECT/STACK of this project."""
    try:
        short_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def seconds_argument(positive: bool) -> Callable[[str], float]:
    """argparse type of a duration in seconds: finite, >= 0 (> 0 when `positive`)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(f"'{text}' is not a finite number of seconds {'> 0' if positive else '>= 0'}")
        return value

    return parse


class CannotSelect(Exception):
    """What stops a command before it changes anything - no Pulumi CLI, no such stack, a stack of another
    project, a missing or invalid stack file: one line to print, exit 2."""


def stack_plan(stack_name: str, project_dir: Path, overrides: tuple[str, ...] = ()) -> Plan:
    """The offline plan of `stack_name` from its stack file in `project_dir` (the program of this repository),
    or CannotSelect saying in one line why there is none."""
    from components.config import ConfigError
    from tools.offline import StackFileError, plan_stack

    try:
        short = short_name(stack_name)
    except ValueError as exc:
        raise CannotSelect(str(exc)) from None
    stack_file = project_dir / f"Pulumi.{short}.yaml"
    if not stack_file.is_file():
        raise CannotSelect(f"no stack file Pulumi.{short}.yaml in {project_dir}")
    try:
        return plan_stack(short, overrides, stack_file=stack_file)
    except (StackFileError, ConfigError) as exc:
        raise CannotSelect(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the program's config errors are RunErrors with a readable message
        raise CannotSelect(f"stack {stack_name}: {str(exc).strip().splitlines()[-1]}") from None


def select_stack(stack_name: str, project_dir: Path) -> Any:
    """The stack through the Automation API, or CannotSelect saying why not in one line."""
    from pulumi import automation as auto

    try:
        return auto.select_stack(stack_name=stack_name, work_dir=str(project_dir))
    except FileNotFoundError:
        raise CannotSelect("the Pulumi CLI is not installed (or not on PATH): https://www.pulumi.com/docs/install/"
                           ) from None
    except auto.errors.CommandError as exc:
        raise CannotSelect(f"cannot select stack {stack_name}: {last_error_line(exc)}") from None


def last_error_line(exc: BaseException) -> str:
    """The error line the CLI printed that says most (the Automation API's CommandError holds `code:`/`stdout:`/
    `stderr:`): the last one that names a cause, not the CLI's closing `error: update failed`."""
    lines = [line.strip().removeprefix("stderr:").removeprefix("stdout:").strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if "error" in line.lower()]
    generic = re.compile(r"^error: (update|preview|destroy|refresh) failed\.?$", re.IGNORECASE)
    telling = [line for line in errors if not generic.match(line)]
    return (telling or errors or lines or [type(exc).__name__])[-1][:300]


def config_file_copy(stack_file: Path, settings: Mapping[str, Any], folder: Path) -> Path:
    """A copy of `stack_file` in `folder` whose config has `settings` (full keys, `raptorflow-dr:promoted`); a
    mapping value is merged into the key's mapping. Whichever spelling the file uses for a key is replaced, and
    the copy is written so that the CLI reads every other value back as the file had it."""
    from tools.stack_yaml import dump_yaml, load_yaml_mapping, namespaced

    document = load_yaml_mapping(stack_file)
    config = dict(document.get("config") or {})
    for key, value in settings.items():
        spellings = [k for k in config if namespaced(str(k)) == key]
        current = config.get(spellings[0]) if spellings else None
        for spelling in spellings:
            del config[spelling]
        merged = {**current, **value} if isinstance(current, dict) and isinstance(value, Mapping) else value
        config[key] = dict(merged) if isinstance(merged, Mapping) else merged
    copy = folder / stack_file.name
    copy.write_text(dump_yaml({**document, "config": config}))
    return copy
