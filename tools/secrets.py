"""Set every secret a stack needs and lacks, in one command, without a secret ever reaching a screen or argv.

    python -m tools.secrets STACK [--list] [--project-dir DIR]

Which secrets a stack needs follows from what it builds (`required_secrets` in
components/config/secrets.py: the database URLs with `databaseBackup`, the Slack
token with a Slack channel, one per secret setting, ...). This reads the stack
file as the Pulumi CLI does, lists what is missing, and - unless `--list` - asks
for each value and hands it to `pulumi config set --secret [--path]` on standard
input, so it never appears in a process list, a shell history or a log. At a
terminal the prompt does not echo; from a pipe it reads one value per line, in
the order `--list` prints (a line may end in CRLF, and a byte-order mark before
the first is dropped: a file saved on Windows gives the same values). An empty answer skips that key. Run it again at any
time: it only asks for what is still missing.

Exit codes: 0 every secret the stack needs is set; 1 some are still missing
(with `--list`: the list is not empty); 2 the stack file or its config is
invalid; 3 the Pulumi CLI is missing, has no such stack, or refused a value;
130 interrupted (values already set stay set).
"""

from __future__ import annotations

import argparse
import getpass
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pulumi.automation import LocalWorkspace, PulumiCommand

from tools.offline import ROOT
from tools.stack_files import StackFileError, read_stack_config

EXIT_OK, EXIT_MISSING, EXIT_CONFIG, EXIT_CLI, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class CliError(Exception):
    """The Pulumi CLI is missing or refused a command; the message is safe to print."""


def missing(stack: str, project_dir: Path) -> list:
    """The secrets `stack` needs and its stack file lacks (RequiredSecret items, in a stable order)."""
    from components.config import missing_secrets

    values, _ = read_stack_config(stack, project_dir)
    return missing_secrets(values)


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
    parser = argparse.ArgumentParser(prog="python -m tools.secrets", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", metavar="STACK", help="stack name, e.g. prod")
    parser.add_argument("--list", action="store_true", help="only list the missing secrets and how to set them")
    parser.add_argument("--project-dir", type=Path, default=ROOT, metavar="DIR",
                        help="folder of Pulumi.yaml and the stack files (default: this repo)")
    args = parser.parse_args(argv)
    try:
        needed = missing(args.stack, args.project_dir)
    except StackFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if not needed:
        print(f"stack {args.stack}: every secret it needs is set")
        return EXIT_OK
    if args.list:
        print(f"stack {args.stack} lacks {len(needed)} secret(s):")
        for secret in needed:
            print(f"  {secret.command(args.stack)}    # {secret.purpose}")
        return EXIT_MISSING
    try:
        cli = pulumi_cli()
        check_stack(cli, args.stack, args.project_dir)
        ask, skipped = _reader(), []
        for secret in needed:
            value = ask(f"{secret.path} ({secret.purpose}): ")
            if not value:
                skipped.append(secret.path)
                continue
            set_secret(cli, args.stack, secret.path, value, args.project_dir)
            print(f"set {secret.path}")
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CLI
    except (KeyboardInterrupt, EOFError):
        print("\ninterrupted: the secrets set so far stay set; run again to set the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    if skipped:
        print(f"stack {args.stack}: still missing {', '.join(skipped)}", file=sys.stderr)
        return EXIT_MISSING
    print(f"stack {args.stack}: every secret it needs is set")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
