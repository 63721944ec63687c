"""Set every secret a stack needs and lacks, in one command, without a secret ever reaching a screen or argv.

    python -m tools.secrets STACK [--list] [--project-dir DIR]

Which secrets a stack needs follows from what it builds (`required_secrets` in
components/config/secrets.py: the database URLs with `databaseBackup`, the Slack
token with a Slack channel, one per secret setting, ...). This reads the stack
file as the Pulumi CLI does, lists what is missing, and - unless `--list` - asks
for each value and hands it to `pulumi config set --secret [--path]` on standard
input, so it never appears in a process list, a shell history or a log.

A secret the stack needs that the stack file holds as a plain value (not
`secure:`) does not count as set: the command refuses the file before asking for
anything (exit 2), naming each such key with the `pulumi config set --secret`
command that replaces it - never its value, which should be rotated if the file
was ever committed. `tools.plan` and `pulumi preview` refuse such a file too.

At a terminal the prompt does not echo; from a pipe it reads one value per line,
in the order `--list` prints (a line may end in CRLF, and a byte-order mark
before the first is dropped: a file saved on Windows gives the same values). An
empty answer skips that key. Run it again at any time: it only asks for what is
still missing. Before it says every secret is set, it reads the stack file again.

Exit codes:
  0    every secret the stack needs is set (the stack file, read again, holds
       each as a `secure:` value);
  1    some are still missing (with `--list`: the list is not empty);
  2    the stack file or its config is invalid, or holds a secret in plain text;
  3    the Pulumi CLI is missing, has no such stack, refused a value, or said it
       set one that the stack file, read again, does not hold (each is named);
  130  interrupted by SIGINT (Ctrl-C), SIGTERM or SIGHUP: one line says which
       secrets were set, and they stay set. A signal that comes while the CLI
       writes a value takes effect once it is written, so the stack file is never
       left half-written (a second signal does not wait).
"""

from __future__ import annotations

import argparse
import getpass
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulumi.automation import LocalWorkspace, PulumiCommand

from core.paths import lookup
from tools.offline import ROOT
from tools.operator import stoppable
from tools.stack_files import PROJECT, StackFileError, load_yaml_mapping, namespaced, read_stack_config

if TYPE_CHECKING:
    from components.config import RequiredSecret

EXIT_OK, EXIT_MISSING, EXIT_CONFIG, EXIT_CLI, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class CliError(Exception):
    """The Pulumi CLI is missing or refused a command; the message is safe to print."""


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP (or the end of a terminal's input): stop asking; what was set stays set."""

    def __init__(self, how: str, setting: str | None = None):
        super().__init__(how)
        self.how, self.setting = how, setting


class Signals:
    """The handler of SIGINT, SIGTERM and SIGHUP: raise Interrupted - except while the CLI writes the stack
    file, which a signal would cut half-way (the child is killed when `subprocess.run` unwinds): then the signal
    waits until the value is set. A second signal meanwhile does not wait."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.setting: str | None = None
        self.pending: str | None = None

    def __call__(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self.setting is None or self.pending is not None:
            raise Interrupted(name, self.setting)
        self.pending = name

    @contextmanager
    def deferred(self, path: str) -> Iterator[None]:
        """Hold a signal while `path` is being set; raise it once that is done."""
        self.setting = path
        try:
            yield
        finally:
            self.setting = None
        if self.pending is not None:
            raise Interrupted(self.pending)

    def installed(self) -> AbstractContextManager[None]:
        return stoppable(self, self.SIGNALS)


def _is_ciphertext(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def missing(stack: str, project_dir: Path) -> list[RequiredSecret]:
    """The secrets `stack` needs and its stack file lacks, in the order of `required_secrets`; StackFileError when
    the stack file or its config is invalid, or holds a secret it needs in plain text (never shown)."""
    from pydantic import ValidationError

    from components.config import StackConfig, missing_secrets, required_secrets
    from components.config.errors import describe
    from components.config.loading import own_values

    values, secret_keys = read_stack_config(stack, project_dir)
    try:
        config = StackConfig.model_validate(own_values(values))
    except ValidationError as exc:
        raise StackFileError(f"invalid stack config in Pulumi.{stack}.yaml:\n  "
                             + "\n  ".join(describe(error, secret_keys) for error in exc.errors())) from None
    lacking = {secret.path for secret in missing_secrets(values)}
    document = load_yaml_mapping(project_dir / f"Pulumi.{stack}.yaml")
    prefix = f"{PROJECT}:"
    raw = {namespaced(key).removeprefix(prefix): value for key, value in (document.get("config") or {}).items()
           if namespaced(key).startswith(prefix)}
    needed = required_secrets(config)
    # Set means a ciphertext at the key (or around it: a secret map set whole); anything else is plain text.
    plain = [secret for secret in needed if secret.path not in lacking
             and not _is_ciphertext(lookup(raw, secret.path, stop=_is_ciphertext))]
    if plain:
        raise StackFileError(
            f"Pulumi.{stack}.yaml holds {len(plain)} secret(s) in plain text, which do not count as set (values not "
            "shown; rotate any that was ever committed):\n  " + "\n  ".join(
                f"{prefix}{secret.path}: is plain text, not a `secure:` value; replace it with "
                f"`{secret.command(stack)}`" for secret in plain))
    return [secret for secret in needed if secret.path in lacking]


def pulumi_cli() -> PulumiCommand:
    """The Pulumi CLI, found and version-checked by the Automation API (it runs `pulumi version`)."""
    try:
        return PulumiCommand()
    except (OSError, subprocess.CalledProcessError):
        raise CliError("the pulumi CLI is not on PATH (https://www.pulumi.com/docs/install/); "
                       "nothing was set") from None


def check_stack(cli: PulumiCommand, stack: str, project_dir: Path) -> None:
    """Refuse a stack the backend does not have: `pulumi config set` would otherwise offer to create it."""
    try:
        workspace = LocalWorkspace(work_dir=str(project_dir), pulumi_command=cli)
        names = {summary.name for summary in workspace.list_stacks()}
    except Exception as exc:  # noqa: BLE001 - the CLI's own failure (not logged in, no backend), shown in one line
        first = (str(exc).strip().splitlines() or ["no answer"])[-1]
        raise CliError(f"the pulumi CLI could not list stacks: {first[:300]}") from None
    if stack not in names and not any(name.endswith(f"/{stack}") for name in names):
        raise CliError(f"the current backend has no stack '{stack}'; create it with `pulumi stack init {stack}`")


def set_secret(cli: PulumiCommand, stack: str, path: str, value: str, project_dir: Path) -> None:
    """`pulumi config set --secret [--path] PATH` with the value on standard input."""
    command = [cli.command, "config", "set", "--secret", *(["--path"] if "." in path else []), path,
               "--stack", stack, "--non-interactive"]
    result = subprocess.run(command, input=value, text=True, capture_output=True, cwd=project_dir, check=False)
    if result.returncode != 0:
        said = (result.stderr.replace(value, "[secret]").strip().splitlines() or ["no message"])[-1]
        raise CliError(f"pulumi config set {path} failed (exit {result.returncode}): {said[:300]}")


def _reader() -> Callable[[str], str]:
    """How values are read: a prompt that does not echo at a terminal, one line per value from a pipe."""
    if sys.stdin.isatty():
        return lambda prompt: getpass.getpass(prompt)

    first = True

    def from_pipe(_prompt: str) -> str:
        # A line ends with LF or, from a Windows file, CRLF; a file saved as UTF-8 by Notepad starts with a BOM.
        nonlocal first
        line = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        line, first = (line.removeprefix("\ufeff") if first else line), False
        return line

    return from_pipe


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.secrets`."""
    parser = argparse.ArgumentParser(prog="python -m tools.secrets", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", metavar="STACK", help="stack name, e.g. prod")
    parser.add_argument("--list", action="store_true", help="only list the missing secrets and how to set them")
    parser.add_argument("--project-dir", type=Path, default=ROOT, metavar="DIR",
                        help="folder of Pulumi.yaml and the stack files (default: this repo)")
    args = parser.parse_args(argv)
    signals = Signals()
    done: list[str] = []
    try:
        with signals.installed():
            return _run(args, signals, done)
    except Interrupted as exc:
        for number in Signals.SIGNALS:  # the message is the last thing this does: nothing may cut it
            signal.signal(number, signal.SIG_IGN)
        lead = "\n" if sys.stderr.isatty() else ""  # after a prompt at a terminal
        if exc.setting:
            print(f"{lead}interrupted by {exc.how} while setting {exc.setting}: run this again (it asks again for "
                  f"{exc.setting} if it was not set)", file=sys.stderr)
        elif done:
            print(f"{lead}interrupted by {exc.how}: the secrets set so far stay set ({', '.join(done)}); run this "
                  "again to set the rest", file=sys.stderr)
        else:
            print(f"{lead}interrupted by {exc.how}: nothing was set; run this again", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, signals: Signals, done: list[str]) -> int:
    """What `main` does, with the signal handlers installed; `done` collects the keys set."""
    stack, stack_file = args.stack, f"Pulumi.{args.stack}.yaml"
    try:
        needed = missing(stack, args.project_dir)
    except StackFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if not needed:
        print(f"stack {stack}: every secret it needs is set")
        return EXIT_OK
    if args.list:
        print(f"stack {stack} lacks {len(needed)} secret(s):")
        for secret in needed:
            print(f"  {secret.command(stack)}    # {secret.purpose}")
        return EXIT_MISSING
    try:
        cli = pulumi_cli()
        check_stack(cli, stack, args.project_dir)
        ask = _reader()
        for secret in needed:
            value = ask(f"{secret.path} ({secret.purpose}): ")
            if not value:
                continue
            with signals.deferred(secret.path):
                set_secret(cli, stack, secret.path, value, args.project_dir)
                done.append(secret.path)
                print(f"set {secret.path}", flush=True)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CLI
    except EOFError:  # Ctrl-D at a prompt
        raise Interrupted("the end of input") from None
    # The CLI's success is not the proof: the stack file, read again, must hold each value as a ciphertext.
    try:
        left = [secret.path for secret in missing(stack, args.project_dir)]
    except StackFileError as exc:
        print(f"error: after setting {', '.join(done) or 'nothing'}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    unstored = [path for path in left if path in done]
    if unstored:
        print(f"error: stack {stack}: `pulumi config set --secret` succeeded, but {args.project_dir / stack_file}, "
              f"read again, does not hold {', '.join(unstored)}; check which stack file the CLI writes, then run "
              "this again", file=sys.stderr)
        return EXIT_CLI
    if left:
        print(f"stack {stack}: still missing {', '.join(left)}", file=sys.stderr)
        return EXIT_MISSING
    print(f"stack {stack}: every secret it needs is set")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
