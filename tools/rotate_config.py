"""Stack config as `python -m tools.rotate` reads and writes it: through the Pulumi CLI, values never on argv.

Reading: `pulumi config --show-secrets --json --stack S`, flattened to full dotted keys
(`raptorflow-dr:vercelSecretValues.KEY.primary`) with their values and whether they are secret. Writing a secret:
tools.secrets' `set_secret` (`pulumi config set --secret [--path]`, the value on standard input). A plain value
(`rotation:step`) with `--plaintext`, a removal with `pulumi config rm`.

The rotation's journal is kept in the first stack's config, under the `rotation` namespace (not the program's:
the program never reads it, and it travels with the stack as the other secrets do):

    rotation:incident                 the incident the rotation belongs to (plain)
    rotation:step                     the last step finished (plain); `done` when the rotation finished
    rotation:databasePassword         the new password, set before the ALTER ROLE (secret)
    rotation:previousDatabasePassword the password it replaces, to find every holder on a second run (secret)
    rotation:alteredAt                when the ALTER ROLE ran (sessions older than it are ended)
    rotation:rolledTokens             `STACK/KEY` of each Cloudflare token rolled, so none is rolled twice
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.secrets import CliError, set_secret

if TYPE_CHECKING:
    from pulumi.automation import PulumiCommand

NAMESPACE = "rotation"
INCIDENT, STEP = f"{NAMESPACE}:incident", f"{NAMESPACE}:step"
NEW_PASSWORD, OLD_PASSWORD = f"{NAMESPACE}:databasePassword", f"{NAMESPACE}:previousDatabasePassword"
ALTERED_AT, ROLLED = f"{NAMESPACE}:alteredAt", f"{NAMESPACE}:rolledTokens"
CLI_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Entry:
    """One config value: a leaf of a map under its dotted key."""

    key: str
    value: str
    secret: bool


def _flatten(key: str, value: Any, secret: bool, into: dict[str, Entry]) -> None:
    if isinstance(value, dict):
        for name, item in value.items():
            _flatten(f"{key}.{name}", item, secret, into)
    elif value is not None and not isinstance(value, list):
        into[key] = Entry(key, str(value), secret)


class StackConfig:
    """One stack's config through the Pulumi CLI `cli`, run in `project_dir`."""

    def __init__(self, cli: PulumiCommand, stack: str, project_dir: Path) -> None:
        self.cli, self.stack, self.project_dir = cli, stack, project_dir

    def _run(self, *args: str, tail: tuple[str, ...] = ()) -> str:
        argv = [self.cli.command, *args, "--stack", self.stack, "--non-interactive", *tail]
        try:
            result = subprocess.run(argv, text=True, stdin=subprocess.DEVNULL, capture_output=True, cwd=self.project_dir,
                                    timeout=CLI_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise CliError(f"pulumi {args[0]} {args[1] if len(args) > 1 else ''} did not answer within "
                           f"{CLI_TIMEOUT_SECONDS} s") from None
        except OSError as exc:  # the CLI or the project folder went missing, or cannot be run
            raise CliError(f"cannot run pulumi {args[0]} in {self.project_dir}: {exc.strerror}") from None
        if result.returncode != 0:
            said = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise CliError(f"pulumi {' '.join(a for a in args[:2] if not a.startswith('--'))} --stack {self.stack} "
                           f"failed (exit {result.returncode}): {said[:300]}")
        return result.stdout

    def read(self) -> dict[str, Entry]:
        """Every config value, by full dotted key (secrets in plain text: never print one)."""
        try:
            listing = json.loads(self._run("config", "--show-secrets", "--json"))
        except ValueError:
            raise CliError(f"pulumi config --json --stack {self.stack} printed no JSON") from None
        entries: dict[str, Entry] = {}
        for key, item in listing.items():
            value = item.get("objectValue", item.get("value")) if isinstance(item, dict) else item
            _flatten(key, value, bool(isinstance(item, dict) and item.get("secret")), entries)
        return entries

    def set_secret(self, key: str, value: str) -> None:
        """`pulumi config set --secret [--path] KEY`, the value on standard input."""
        set_secret(self.cli, self.stack, key, value, self.project_dir)

    def set_plain(self, key: str, value: str) -> None:
        """`pulumi config set --plaintext KEY -- VALUE` (never a secret)."""
        self._run("config", "set", key, "--plaintext", tail=("--", value))

    def remove(self, key: str) -> None:
        """`pulumi config rm [--path] KEY`."""
        self._run("config", "rm", *(["--path"] if "." in key else []), key)
