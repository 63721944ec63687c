"""The steps of `python -m tools.rotate` (its docstring says what each does) and the journal behind them."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime

import psycopg

from tools import rotate_database as database
from tools import rotate_tokens as tokens
from tools import rotate_versions as versions
from tools.operator import CannotSelect, last_error_line, select_stack, stack_plan
from tools.rotate_config import ALTERED_AT, INCIDENT, NEW_PASSWORD, OLD_PASSWORD, ROLLED, STEP, Entry, StackConfig
from tools.rotate_manual import manual_keys, report
from tools.secrets import Signals, pulumi_cli
from tools.stack_yaml import PROJECT

EXIT_OK, EXIT_UNVERIFIED, EXIT_SETUP, EXIT_PULUMI, EXIT_REDEPLOY, EXIT_LOCKED_OUT, EXIT_VERSIONS = 0, 1, 2, 3, 4, 5, 6
EXIT_INTERRUPTED = 130
STEPS = ("journal", "alter-role", "store", "roll-tokens", "up", "redeploy", "verify", "disable-old-versions", "done")
DATABASE_URL = f"{PROJECT}:databaseUrl"
VERCEL_VALUES = f"{PROJECT}:vercelSecretValues."
STARTED = "started"  # the journal's step while its first writes are made: nothing else has changed yet
PAUSE_VARIABLE, PAUSE_SECONDS = "RFDR_ROTATE_PAUSE_BEFORE", 300.0


class Failed(Exception):
    """A step failed: the exit code and one line to print."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Rotation:
    """One run: the stacks' config, the journal in the first, and what it did."""

    def __init__(self, args: argparse.Namespace, signals: Signals) -> None:
        self.args, self.signals = args, signals
        self.step_now = "journal"
        self.rotated: list[str] = []
        self.earlier = ""
        self.values: set[str] = set()
        self.new = ""

    # ---------------------------------------------------------------- output

    def say(self, line: str, error: bool = False) -> None:
        """Print one line (to stderr when `error`), without any value the stacks hold."""
        for value in sorted(self.values, key=len, reverse=True):
            line = line.replace(value, "[secret]")
        print(line, file=sys.stderr if error else sys.stdout, flush=True)

    def _pause(self, step: str) -> None:
        if os.environ.get(PAUSE_VARIABLE) == step:  # FOR TESTS, see the module docstring
            print(f"pausing before {step}", flush=True)
            time.sleep(PAUSE_SECONDS)

    # ---------------------------------------------------------------- the run

    def run(self) -> int:
        cli = pulumi_cli()
        self.stacks = [StackConfig(cli, name, self.args.project_dir) for name in self.args.stacks]
        self.config = {stack.stack: stack.read() for stack in self.stacks}
        self.values = {e.value for entries in self.config.values() for e in entries.values() if e.secret and e.value}
        journal = self.config[self.stacks[0].stack]
        incident, done = self._value(journal, INCIDENT), self._value(journal, STEP)
        if incident == self.args.incident and done == "done":
            self.say(f"incident {incident}: the rotation finished already; nothing to do (a new --incident starts another)")
            return EXIT_OK
        if done == STARTED:  # the journal's first writes were cut short: nothing else changed, so start over
            incident, done = None, None
        if incident not in (None, self.args.incident) and done not in (None, "done"):
            raise Failed(EXIT_SETUP, f"the rotation of incident {incident} is unfinished (last step: {done}); finish it "
                                     f"with `--incident {incident}` first")
        resumed = incident == self.args.incident and done in STEPS
        first = STEPS.index(done) + 1 if resumed and done else 0
        if resumed:
            self.earlier = f"(steps up to {done}: in an earlier run of this incident, as it printed)"
            self.say(f"incident {incident}: resuming after step {done}")
        new, old = self._journal(journal, resumed)
        self.new = new
        try:
            target = database.login(self._value(journal, DATABASE_URL) or "")
        except database.DatabaseError as exc:
            raise Failed(EXIT_SETUP, f"stack {self.stacks[0].stack} databaseUrl: {exc}") from None
        for step in STEPS[max(first, 1):]:
            self.step_now = step
            self._pause(step)
            getattr(self, "_" + step.replace("-", "_"))(target, old, new)
            self._record(step)
        self._report()
        return EXIT_OK

    @staticmethod
    def _value(entries: dict[str, Entry], key: str) -> str | None:
        entry = entries.get(key)
        return entry.value if entry else None

    def _note(self, key: str, value: str, secret: bool = False) -> None:
        """Set a journal key in the first stack's config (a signal waits until it is written)."""
        with self.signals.deferred(key):
            (self.stacks[0].set_secret if secret else self.stacks[0].set_plain)(key, value)
        self.config[self.stacks[0].stack][key] = Entry(key, value, secret)

    def _record(self, step: str) -> None:
        self._note(STEP, step)
        self.say(f"step {step}: finished")

    def _journal(self, journal: dict[str, Entry], resumed: bool) -> tuple[str, str]:
        """The new and old passwords: the journal's, or new ones stored before anything else changes."""
        new, old = self._value(journal, NEW_PASSWORD), self._value(journal, OLD_PASSWORD)
        if resumed and new and old:
            self.values |= {new, old}
            return new, old
        url = self._value(journal, DATABASE_URL)
        if not url:
            raise Failed(EXIT_SETUP, f"stack {self.stacks[0].stack} holds no databaseUrl: no database password to rotate")
        try:
            old = database.password_of(url) if database.login(url) else ""
        except database.DatabaseError as exc:
            raise Failed(EXIT_SETUP, f"stack {self.stacks[0].stack} databaseUrl: {exc}") from None
        if len(old) < database.MIN_PASSWORD_LENGTH:
            raise Failed(EXIT_SETUP, f"the password in databaseUrl is shorter than {database.MIN_PASSWORD_LENGTH} "
                                     "characters: its holders cannot be told apart from other values; rotate it by hand")
        new = database.new_password()
        self.values |= {new, old}
        self._pause("journal")
        # The step first: a run cut off between these two writes leaves `started` (start over), never a new
        # incident beside the previous incident's `done` (which would read as this rotation finished).
        self._note(STEP, STARTED)
        self._note(INCIDENT, self.args.incident)
        self._note(OLD_PASSWORD, old, secret=True)
        self._note(NEW_PASSWORD, new, secret=True)
        self._record("journal")
        return new, old

    # ---------------------------------------------------------------- the steps

    def _alter_role(self, target: database.Login, old: str, new: str) -> None:
        if self._accepts(target, new):
            self.say(f"database: {target.user}@{target.host} takes the new password already (ALTER ROLE done before)")
            return
        if not self._accepts(target, old):
            self._forget(INCIDENT, STEP)  # nothing but the journal changed: the next run, of any incident, starts anew
            raise Failed(EXIT_LOCKED_OUT, f"the database at {target.host} refuses {target.user} with both the old and "
                                          "the new password: reset it in the database's console (Supabase: Project "
                                          "Settings -> Database -> Reset password), put it in databaseUrl, run again")
        try:
            altered = database.alter_password(target, old, new)
        except psycopg.Error as exc:  # e.g. a role not allowed to change its own password
            raise Failed(EXIT_LOCKED_OUT, f"ALTER ROLE {target.user} failed ({type(exc).__name__}); nothing changed") from None
        self._note(ALTERED_AT, altered.isoformat())
        self.rotated.append(f"database password of {target.user}@{target.host} (ALTER ROLE, SCRAM-SHA-256 verifier)")
        self.say(f"database: ALTER ROLE {target.user} to the new password")

    def _accepts(self, target: database.Login, password: str) -> bool:
        try:
            return database.accepts(target, password)
        except database.DatabaseError as exc:
            raise Failed(EXIT_LOCKED_OUT, str(exc)) from None

    def _store(self, target: database.Login, old: str, new: str) -> None:
        for stack in self.stacks:
            for entry in list(self.config[stack.stack].values()):
                if not entry.secret or entry.key.startswith("rotation:"):
                    continue
                value = database.replaced(entry.value, old, new)
                if value is None:
                    continue
                self.values.add(value)
                with self.signals.deferred(entry.key):
                    stack.set_secret(entry.key, value)
                self.config[stack.stack][entry.key] = Entry(entry.key, value, True)
                self.rotated.append(f"stack {stack.stack}: {entry.key.removeprefix(PROJECT + ':')}")
                self.say(f"stack {stack.stack}: {entry.key.removeprefix(PROJECT + ':')} holds the new password")

    def _rolled(self) -> set[str]:
        """`STACK/KEY` of each token this incident rolled (the journal's list)."""
        return set(filter(None, (self._value(self.config[self.stacks[0].stack], ROLLED) or "").split(",")))

    def _roll_tokens(self, target: database.Login, old: str, new: str) -> None:
        self.rotated += tokens.roll_held(self.stacks, self.config, self._rolled(), self.signals, self.say,
                                         self.values)

    def _holders(self, stack: str, new: str, prefix: str = "") -> list[str]:
        return [e.key for e in self.config[stack].values()
                if e.secret and new in e.value and e.key.startswith(prefix) and not e.key.startswith("rotation:")]

    def _up(self, target: database.Login, old: str, new: str) -> None:
        from pulumi import automation as auto

        for stack in self.stacks:
            if not self._holders(stack.stack, new) and not any(m.startswith(f"{stack.stack}/") for m in self._rolled()):
                continue
            try:
                handle = select_stack(stack.stack, self.args.project_dir)
                handle.up(on_output=lambda line: self.say(line.rstrip("\n")))
            except CannotSelect as exc:
                raise Failed(EXIT_PULUMI, str(exc)) from None
            except auto.errors.CommandError as exc:
                raise Failed(EXIT_PULUMI, f"pulumi up --stack {stack.stack} failed: {last_error_line(exc)}") from None
            self.say(f"stack {stack.stack}: pulumi up finished")

    def _redeploy(self, target: database.Login, old: str, new: str) -> None:
        from tools.failover_switch import SetupError, read_settings
        from tools.vercel_deploy import TOKEN_VARIABLE, VercelApi, VercelError, api_url, production_deployment, redeploy, wait_ready
        from tools.vercel_deploy import token as vercel_token

        for stack in self.stacks:
            if not self._holders(stack.stack, new, VERCEL_VALUES):
                continue
            try:
                settings = read_settings(stack.stack, self.args.project_dir)
                if not settings.vercel_project:
                    continue
                token = os.environ.get(TOKEN_VARIABLE) or vercel_token(os.environ, select_stack(stack.stack,
                                                                                                self.args.project_dir))
                api = VercelApi(token, settings.vercel_team, api_url())
                source = production_deployment(api, settings.vercel_project)
                started = time.monotonic()
                deployment = redeploy(api, settings.vercel_project, source)
                self.say(f"stack {stack.stack}: Vercel redeploy requested: deployment {deployment.id} of {source.id}")
                wait_ready(api, deployment.id, started + self.args.timeout_seconds, self.args.interval_seconds)
            except (SetupError, CannotSelect, VercelError) as exc:
                raise Failed(EXIT_REDEPLOY, f"the Vercel redeploy of stack {stack.stack} failed: {exc}") from None
            self.rotated.append(f"stack {stack.stack}: Vercel production redeployed ({deployment.id})")
            self.say(f"stack {stack.stack}: deployment {deployment.id} READY after {time.monotonic() - started:.1f} s")

    def _verify(self, target: database.Login, old: str, new: str) -> None:
        if not self._accepts(target, new):
            raise Failed(EXIT_UNVERIFIED, f"the database refuses {target.user} with the new password")
        if self._accepts(target, old):
            raise Failed(EXIT_UNVERIFIED, f"the database still accepts {target.user} with the OLD password")
        altered = self._value(self.config[self.stacks[0].stack], ALTERED_AT) or ""
        try:
            before = datetime.fromisoformat(altered) if altered else datetime.now(UTC)
            ended = database.terminate_old_sessions(target, new, before)
        except (ValueError, psycopg.Error) as exc:
            raise Failed(EXIT_UNVERIFIED, f"could not end the sessions opened before the ALTER ROLE: "
                                          f"{type(exc).__name__}") from None
        self.say(f"database: the new password logs in, the old one is refused; {ended} session(s) opened before the "
                 "change ended")

    def _disable_old_versions(self, target: database.Login, old: str, new: str) -> None:
        try:
            client = versions.api()
        except versions.VersionsError as exc:
            raise Failed(EXIT_VERSIONS, str(exc)) from None
        for stack in self.stacks:
            try:
                plan = stack_plan(stack.stack, self.args.project_dir)
                disabled = versions.disable_all(client, ((r.type, r.inputs) for r in plan.resources))
            except CannotSelect as exc:
                raise Failed(EXIT_SETUP, str(exc)) from None
            except versions.VersionsError as exc:
                raise Failed(EXIT_VERSIONS, str(exc)) from None
            for name in disabled:
                self.rotated.append(f"Secret Manager {name} disabled")
                self.say(f"Secret Manager: {name} disabled (a newer version is in use)")

    def _done(self, target: database.Login, old: str, new: str) -> None:
        """The journal says done first (a second run then changes nothing), then forgets the passwords."""
        self._note(STEP, "done")
        self._forget()

    def _forget(self, *keys: str) -> None:
        """Remove `keys` and the journal's passwords, time and tokens from the first stack's config."""
        for key in (*keys, NEW_PASSWORD, OLD_PASSWORD, ALTERED_AT, ROLLED):
            if key in self.config[self.stacks[0].stack]:
                with self.signals.deferred(key):
                    self.stacks[0].remove(key)

    def _report(self) -> None:
        manual = manual_keys(self.config, self.new, self._rolled())
        for line in report(self.args.incident, [line for line in (self.earlier, *self.rotated) if line], manual):
            self.say(line)
