"""The names the layers agree on: what the backup job is told and says, what the program labels and records,
and what the policy pack, the recovery model and the tools look for.

Each value is written here once and every side imports it, so a rename breaks at import time, not as an alert
that never fires or an "unbounded RPO" at run time. tests/core/test_contract_literals.py fails when a module
writes one of these values itself.

Standard library only: the backup job imports this module in its own container (backup_job/Dockerfile copies
it), and the policy pack in its own virtualenv.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

# The type tokens are a table of their own (core/resource_types.py), part of the contract all the same.
from core.resource_types import ResourceType as ResourceType

# ------------------------------------------------------------------ the backup job's command line


class Command(enum.StrEnum):
    """The backup job's subcommands: `python -m backup_job COMMAND ...`."""

    BACKUP = "backup"
    RESTORE_CHECK = "restore-check"
    RESTORE = "restore"
    EXPORT_DNS = "export-dns"
    LIST = "list"


DATA_COMMANDS: Final = frozenset({Command.LIST})
"""Commands whose stdout is data (a listing): their failure is one `error:` line on stderr, not the log line."""


SCHEDULED_COMMANDS: Final = (Command.BACKUP, Command.RESTORE_CHECK, Command.EXPORT_DNS)
"""The subcommands the program runs as scheduled Cloud Run jobs."""


class BackupKind(enum.StrEnum):
    """What a database backup holds: `full` (data and schema) or `schema` (schema only)."""

    FULL = "full"
    SCHEMA = "schema"


KIND_OPTION: Final = "--kind"
"""The option that picks a backup's kind (`backup`), or the kind of backup to pick (`restore-check`, `restore`)."""
BUCKET_OPTION: Final = "--bucket"
"""The option that names the bucket (else the job's BACKUP_BUCKET)."""
ZONE_OPTION: Final = "--zone-id"
"""The option that names the Cloudflare zone `export-dns` exports."""


class JobEnv(enum.StrEnum):
    """Environment variables the program sets on a job (or an operator on a run) and the backup job reads."""

    BUCKET = "BACKUP_BUCKET"
    PREFIX = "BACKUP_PREFIX"
    DATABASE_URL = "DATABASE_URL"
    SCRATCH_DATABASE_URL = "SCRATCH_DATABASE_URL"
    TARGET_DATABASE_URL = "TARGET_DATABASE_URL"
    CLOUDFLARE_API_TOKEN = "CLOUDFLARE_API_TOKEN"

    @property
    def file(self) -> str:
        """The variable naming a file that holds the value instead (a mounted secret): `<NAME>_FILE`."""
        return f"{self.value}_FILE"


def job_argv(command: Command, kind: BackupKind | None = None, *, zone_id: str | None = None) -> list[str]:
    """The arguments a scheduled job passes the backup job: `backup --kind KIND`, `restore-check --kind KIND`,
    `export-dns --zone-id ZONE`. Components build every job's command line here, never by hand."""
    argv = [command.value]
    if kind is not None:
        argv += [KIND_OPTION, BackupKind(kind).value]
    if zone_id is not None:
        argv += [ZONE_OPTION, zone_id]
    return argv


def run_kind(command: str, kind: str | None = None) -> str:
    """What a run of the backup job does, as one key (the plan's cadence limits are by it): `backup full`,
    `backup schema`, `restore-check` (of a full backup, its default), `restore-check schema`, `export-dns`."""
    checks_other_kind = command == Command.RESTORE_CHECK and kind not in (None, BackupKind.FULL)
    if (command == Command.BACKUP and kind) or checks_other_kind:
        return f"{command} {kind}"
    return str(command)


@dataclass(frozen=True)
class JobRun:
    """What a scheduled job has the backup job do: its command line, and the labels that say so in the plan."""

    command: Command
    kind: BackupKind | None = None
    """The backup's kind (`backup`), or the kind of backup to check (`restore-check`)."""
    zone_id: str | None = None
    """The zone to export (`export-dns`)."""

    @property
    def argv(self) -> list[str]:
        """The job's arguments."""
        return job_argv(self.command, self.kind, zone_id=self.zone_id)

    @property
    def labels(self) -> dict[str, str]:
        """The job's labels: its command and kind (the recovery model finds the full backup by them)."""
        return job_labels(self.command, self.kind)


def argv_option(argv: Iterable[object], option: str) -> str | None:
    """The value a command line gives `option`: the last one, as argparse takes it; `--option=value` counts too."""
    arguments = [str(a) for a in argv]
    found = None
    for index, argument in enumerate(arguments):
        if argument == option and index + 1 < len(arguments):
            found = arguments[index + 1]
        elif argument.startswith(option + "="):
            found = argument.split("=", 1)[1]
    return found


def argv_command(argv: Iterable[object]) -> str | None:
    """The subcommand a command line runs (its first argument), if any."""
    arguments = list(argv)
    return arguments[0] if arguments and isinstance(arguments[0], str) else None


# ------------------------------------------------------------------ how a run ends: exit codes


class ExitCode(enum.IntEnum):
    """Why a run ended. Anything but OK means no new complete backup exists (EXIT_MEANINGS says each)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    DATABASE_UNREACHABLE = 3
    UPLOAD_FAILED = 4
    VERIFICATION_MISMATCH = 5
    DUMP_FAILED = 6
    NOT_FOUND = 7
    EXPORT_FAILED = 8
    ROW_COUNT_FAILED = 9
    TERMINATED = 10
    RESTORE_REFUSED = 11


EXIT_MEANINGS: Final[dict[ExitCode, str]] = {
    ExitCode.OK: "success",
    ExitCode.FAILED: "an unexpected error (a bug): see the log line",
    ExitCode.USAGE: "bad arguments or configuration (also: no room to spool the dump for restore --jobs N)",
    ExitCode.DATABASE_UNREACHABLE: "a failed connection or login, a read-only restore target, or a table lock not "
                                   "had in time",
    ExitCode.UPLOAD_FAILED: "an upload Cloud Storage refused or lost, or an unreadable bucket",
    ExitCode.VERIFICATION_MISMATCH: "a checksum, size or row-count mismatch with the manifest, or a download that "
                                    "arrived damaged",
    ExitCode.DUMP_FAILED: "pg_dump or pg_restore failing after connecting",
    ExitCode.NOT_FOUND: "no complete backup",
    ExitCode.EXPORT_FAILED: "a failed Cloudflare zone export (Cloudflare unreachable, the token refused) or a zone "
                            "with no records",
    ExitCode.ROW_COUNT_FAILED: "a database failure while the job counted rows for the manifest",
    ExitCode.TERMINATED: "a SIGTERM (Cloud Run's task timeout, or a cancel): the line says what was left",
    ExitCode.RESTORE_REFUSED: "a refused table restore: it would leave rows referencing missing keys; nothing was "
                              "changed",
}
"""What each exit code means, for any command: a phrase that reads after `exit N is`."""

COMMAND_EXIT_MEANINGS: Final[dict[Command, dict[ExitCode, str]]] = {
    Command.RESTORE_CHECK: {
        ExitCode.USAGE: "a scratch role that may not create databases (or bad arguments)",
        ExitCode.TERMINATED: "the task timed out",
    },
    Command.EXPORT_DNS: {
        ExitCode.USAGE: "no Cloudflare token or an unreadable token file (or bad arguments)",
        ExitCode.UPLOAD_FAILED: "a zone file the bucket refused or lost",
    },
}
"""What an exit code means for one command, where that says more than EXIT_MEANINGS."""

_FAILURE_LABELS: Final = {ExitCode.FAILED: "unexpected"}


def failure_label(code: ExitCode) -> str:
    """The log line's `failure` of a run that ended with `code` (the code's name, lower-case, but `unexpected`)."""
    return _FAILURE_LABELS.get(code, code.name.lower())


def failure_names(codes: Iterable[ExitCode]) -> str:
    """`` `database_unreachable` (3), ... ``: the log line's `failure` and `exitCode` of each of `codes`."""
    return ", ".join(f"`{failure_label(code)}` ({int(code)})" for code in codes)


def exit_meaning(code: ExitCode, command: Command | None = None) -> str:
    """What `code` means when `command` ends with it."""
    return COMMAND_EXIT_MEANINGS.get(command, {}).get(code, EXIT_MEANINGS[code]) if command else EXIT_MEANINGS[code]


def exit_sentence(command: Command, codes: Iterable[ExitCode]) -> str:
    """`exit 5 is ..., 7 ...`: what the given exit codes of `command` mean, for a runbook or an alert."""
    first, *rest = codes
    return f"exit {int(first)} is {exit_meaning(first, command)}" + "".join(
        f"; {int(code)} {exit_meaning(code, command)}" for code in rest)


# ------------------------------------------------------------------ the job's log line


LOG_EVENT: Final = "raptorflow.backup"
"""The `event` of the backup job's one last log line: log-based metrics count the lines that carry it."""


class LogField(enum.StrEnum):
    """Fields of the backup job's last log line (a JSON object on stdout, `jsonPayload` in Cloud Logging)."""

    SEVERITY = "severity"
    EVENT = "event"
    COMMAND = "command"
    RESULT = "result"
    EXIT_CODE = "exitCode"
    FAILURE = "failure"
    MESSAGE = "message"
    KIND = "kind"
    DURATION_SECONDS = "durationSeconds"


class Result(enum.StrEnum):
    """The log line's `result`."""

    SUCCESS = "success"
    FAILURE = "failure"


EXPORT_LOG_KIND: Final = "dns"
"""The `kind` of an `export-dns` run: in its log line and its manifest, and in its objects' names, by which a
restore of the zone finds the newest (a database backup's is its BackupKind)."""


def payload(field: LogField) -> str:
    """Where Cloud Logging keeps the log line's `field`: `jsonPayload.FIELD`."""
    return f"jsonPayload.{field.value}"


def payload_match(field: LogField, value: str) -> str:
    """A Cloud Logging filter term matching the log line's `field`: `jsonPayload.FIELD="VALUE"`."""
    return f'{payload(field)}="{value}"'


SUCCESS_LINES: Final = (payload_match(LogField.EVENT, LOG_EVENT), payload_match(LogField.RESULT, Result.SUCCESS))
"""The filter terms of the job's success lines (a log-based metric of successes needs both)."""

BACKUP_SUCCESS_METRIC: Final = "raptorflow_backup_success"
"""The log-based metric counting the job's success lines, by `kind` and `command`."""

JOB_NAME_LABEL: Final = "job_name"
"""The label naming a Cloud Run job: in Cloud Run's metrics (`resource.labels.job_name`) and in a PromQL selector."""


def job_name_match(name: str) -> str:
    """What an alert condition's filter or query says when it watches Cloud Run job `name`: `job_name="NAME"`."""
    return f'{JOB_NAME_LABEL}="{name}"'


_JOB_NAME_MATCH = re.compile(re.escape(JOB_NAME_LABEL) + r'="([^"]*)"')


def watched_jobs(condition: str) -> list[str]:
    """The Cloud Run jobs an alert condition's text watches (its `job_name="NAME"` terms)."""
    return _JOB_NAME_MATCH.findall(condition)


# ------------------------------------------------------------------ labels and backup bucket roles


class Label(enum.StrEnum):
    """Label keys one layer sets and another reads."""

    ENVIRONMENT = "environment"
    """Every labelled resource: the stack's environment (required in the stack config)."""
    MANAGED_BY = "managed-by"
    """Every labelled resource: what manages it."""
    BACKUP_ROLE = "backup-role"
    """A backup bucket: what it backs up (a BucketRole's label), or `access-logs` for its log bucket."""
    SOURCE_REGION = "source-region"
    """A replica bucket: the region of the bucket it copies."""
    REPLICA_REGION = "replica-region"
    """A primary's backup bucket: the region its replica is kept in."""
    JOB_COMMAND = "job-command"
    """A Cloud Run job of the backup job: the subcommand it runs (a Command)."""
    BACKUP_KIND = "backup-kind"
    """A Cloud Run job of the backup job that takes or checks a database backup: the kind (a BackupKind)."""
    SEVERITY = "severity"
    """An alert policy: its severity, `p0`..`p3`."""
    ALERT = "raptorflow-alert"
    """An alert policy: its kind (the alert catalog's slug)."""
    TARGET = "raptorflow-target"
    """An alert policy or uptime check: what it watches."""


def job_labels(command: Command, kind: BackupKind | None = None) -> dict[str, str]:
    """The labels that say what a Cloud Run job of the backup job runs (the recovery model reads them)."""
    return {Label.JOB_COMMAND.value: command.value, **({Label.BACKUP_KIND.value: kind.value} if kind else {})}


@dataclass(frozen=True)
class BucketRole:
    """What a backup bucket backs up. One name, from which the rest is derived: the stack config's key
    (camelCase: `userFiles`), the `backup-role` label value (the name) and its resources' logical names."""

    name: str
    """`user-files`: the label value, and the root of the config key."""
    state_prefix: str | None = None
    """The prefix of its resources' logical names when it is not the name. The one exception is the dumps
    bucket's `db-dumps`: logical names are the engine's state identity, and renaming them would replace the
    buckets."""

    @property
    def config_key(self) -> str:
        """The stack config's key: the name in camelCase (`user-files` -> `userFiles`)."""
        head, *rest = self.name.split("-")
        return head + "".join(part.capitalize() for part in rest)

    @property
    def label(self) -> str:
        """The `backup-role` label value of its buckets."""
        return self.name

    @property
    def prefix(self) -> str:
        """The prefix of its resources' logical names (`db-dumps`, `user-files`)."""
        return self.state_prefix or self.name

    @property
    def replica_prefix(self) -> str:
        """The prefix of its replica's logical names on the standby site (`user-files-replica`)."""
        return f"{self.prefix}-replica"


DATABASE_DUMPS: Final = BucketRole("database-dumps", state_prefix="db-dumps")
USER_FILES: Final = BucketRole("user-files")
BUCKET_ROLES: Final = (DATABASE_DUMPS, USER_FILES)
"""Every backup bucket role, the dumps first."""
ACCESS_LOG_ROLE: Final = "access-logs"
"""The `backup-role` label of a backup bucket's access-log bucket (it is no backup itself)."""


def bucket_role(label: object) -> BucketRole | None:
    """The backup bucket role a `backup-role` label value names, or None."""
    return next((role for role in BUCKET_ROLES if role.label == label), None)


# ------------------------------------------------------------------ how a schedule starts a job


def run_job_uri(project: str, region: str, job: str) -> str:
    """The Run Admin API call a Cloud Scheduler job makes to start Cloud Run job `job`."""
    return f"https://run.googleapis.com/v2/projects/{project}/locations/{region}/jobs/{job}:run"


_RUN_JOB_URI = re.compile(r"/jobs/([^/:]+):run$")


def started_job(uri: object) -> str | None:
    """The Cloud Run job a Cloud Scheduler job's target `uri` starts (run_job_uri's `job`), or None."""
    found = _RUN_JOB_URI.search(uri) if isinstance(uri, str) else None
    return found[1] if found else None
