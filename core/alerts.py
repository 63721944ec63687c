"""The alert catalog: every alert the program creates, once - severity, meaning, first steps, condition figures.

Each entry's slug is the `raptorflow-alert` label of its alert policies and the
anchor of its section in docs/runbooks/alerts.md. The runbook's sections are
generated from this catalog (`python -m tools.config_reference`) and every
alert's documentation is built from the same entry, so what an on-call engineer
reads in the page and in the runbook cannot drift apart. Changing a threshold
or a step is an edit here (and its test).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.contracts import Command, ExitCode, LogField, exit_sentence, failure_names

# The plan's severities: how fast someone must respond, and Cloud Monitoring's own severity for each.
SEVERITIES: dict[str, dict[str, str]] = {
    "P0": {"cloud": "CRITICAL", "respond": "15 minutes"},
    "P1": {"cloud": "ERROR", "respond": "1 hour"},
    "P2": {"cloud": "WARNING", "respond": "4 hours"},
    "P3": {"cloud": "WARNING", "respond": "24 hours"},
}
INCIDENT_CHANNEL = "#incidents"
ALERT_AUTO_CLOSE_SECONDS = 1_800
"""An incident closes itself this long after its condition stops holding."""
ALERT_NOTIFICATION_RATE_LIMIT_SECONDS = 300
"""Log-match alerts notify at most once per this period, so a burst of log lines pages once."""
UPTIME_FAILED_PERIODS = 2
"""An uptime alert fires once its condition held this many check periods (its `duration`)."""


@dataclass(frozen=True)
class AlertKind:
    """One kind of alert: what it means, how urgent, what to do first, and its condition's figures."""

    slug: str
    """The `raptorflow-alert` label and the runbook anchor."""
    title: str
    """Heading of the runbook section."""
    severity: str
    """P0-P3 while the watched thing serves traffic (or always, for kinds that do not depend on it)."""
    meaning: str
    steps: tuple[str, ...]
    log_match: bool = False
    """A log-match condition: notifications are rate-limited."""
    threshold: float = 0
    """The condition's threshold: failures "more than" it, or successes "fewer than" it in the window."""
    window_seconds: int = 300
    """Alignment period (threshold conditions) or evaluation interval (PromQL conditions)."""
    standby_severity: str | None = None
    """Severity when the watched thing is the site not serving traffic (uptime)."""
    standby_meaning: str | None = None
    condition: str = "threshold"
    """`threshold` (a metric compared per window), `absence` (a PromQL count of successes below the threshold) or
    `log` (a log-match condition)."""
    aligner: str = "ALIGN_DELTA"
    """Threshold conditions: how each series is aligned per window."""
    reducer: str = "REDUCE_SUM"
    """Threshold conditions: how the aligned series are combined."""
    group_by: tuple[str, ...] = ()
    """Threshold conditions: the fields the reducer groups by."""
    comparison: str = "COMPARISON_GT"
    """Threshold conditions: fires when the reduced value is greater than the threshold."""

    def severity_for(self, serves_traffic: bool = True) -> str:
        return self.severity if serves_traffic or self.standby_severity is None else self.standby_severity

    def meaning_for(self, serves_traffic: bool = True) -> str:
        return self.meaning if serves_traffic or self.standby_meaning is None else self.standby_meaning

    def documentation(self, runbook_base_url: str, serves_traffic: bool = True,
                      filled: dict[str, str] | None = None) -> str:
        """The alert policy's documentation: severity, meaning, first steps and the runbook link; `filled`
        replaces placeholders such as `<host>` in the steps with what this alert watches."""
        severity = self.severity_for(serves_traffic)
        steps = list(self.steps)
        for placeholder, value in (filled or {}).items():
            steps = [step.replace(f"<{placeholder}>", value) for step in steps]
        return "\n".join([
            f"**{severity}** - respond within {SEVERITIES[severity]['respond']}; post in {INCIDENT_CHANNEL}.",
            "",
            self.meaning_for(serves_traffic),
            "",
            "First steps:",
            *(f"{number}. {step}" for number, step in enumerate(steps, 1)),
            "",
            f"Runbook: {runbook_base_url}/alerts.md#{self.slug}",
        ])

    def runbook_section(self) -> str:
        """The section of docs/runbooks/alerts.md, headed by the slug (its anchor)."""
        severity = self.severity if self.standby_severity is None else (
            f"{self.severity} while it serves traffic, {self.standby_severity} otherwise")
        lines = [f"## {self.slug}", "", f"**{self.title}** - severity {severity}.", "", self.meaning]
        if self.standby_meaning:
            lines += ["", f"Otherwise: {self.standby_meaning}"]
        lines += ["", *(f"{number}. {step}" for number, step in enumerate(self.steps, 1))]
        return "\n".join(lines)


CATALOG: dict[str, AlertKind] = {kind.slug: kind for kind in (
    AlertKind(
        "backup-failed", "A scheduled database backup failed", "P1",
        "A scheduled backup (`db-backup-full`, `db-backup-schema`) exited non-zero: no new backup exists for "
        "that run.",
        ("Open the execution's logs (`gcloud run jobs executions list --job <job> --region <region>`); the JSON "
         f"line's `{LogField.FAILURE}` and `{LogField.EXIT_CODE}` name the cause: "
         f"{failure_names((ExitCode.DATABASE_UNREACHABLE, ExitCode.UPLOAD_FAILED, ExitCode.DUMP_FAILED))}.",
         "Database unreachable: check Supabase status and that the `db-backup-database-url` secret's latest "
         "version is current (`pulumi config set --secret databaseUrl ...` and `pulumi up`).",
         f"Re-run: `gcloud run jobs execute <job> --region <region> --wait`; `python -m backup_job {Command.LIST} "
         "--bucket <bucket> --prefix supabase` then shows the new backup first."),
    ),
    AlertKind(
        "restore-check-failed", "The monthly restore check failed", "P1",
        "A restore of the newest full backup (into a throwaway database the check creates on the scratch server "
        "and drops) did not verify: " + exit_sentence(Command.RESTORE_CHECK, (
            ExitCode.VERIFICATION_MISMATCH, ExitCode.NOT_FOUND, ExitCode.USAGE, ExitCode.TERMINATED)) + ".",
        ("Read the log line's `message`: which table, which checksum.",
         "Run it by hand (safe to repeat; it never writes the scratch database itself): `python -m backup_job "
         f"{Command.RESTORE_CHECK} --bucket <bucket> --prefix supabase`; `python -m backup_job {Command.LIST}` "
         "shows invalid backups.",
         "Until it passes, treat the backups as unproven: take a manual backup and check it."),
    ),
    AlertKind(
        "dns-export-failed", "The daily DNS zone export failed", "P1",
        "The export of the failover zone from Cloudflare (BIND) into the dump replica exited non-zero: the newest "
        "zone copy is older than a day.",
        ("Open the execution's logs; "
         + exit_sentence(Command.EXPORT_DNS, (ExitCode.EXPORT_FAILED, ExitCode.UPLOAD_FAILED, ExitCode.USAGE)) + ".",
         "Check the `cloudflareExportToken` secret is a current read-only DNS token for the zone.",
         "Re-run: `gcloud run jobs execute db-backup-dns-export --region <region> --wait`."),
    ),
    AlertKind(
        "backup-age", "No recent successful backup", "P1",
        "No successful run of a backup kind within its schedule's longest gap plus the margin (30 h for the daily "
        "full dump by default): the recovery point is slipping. Fires also when none ever succeeded.",
        ("Check the Cloud Scheduler job ran (`gcloud scheduler jobs describe <job>`): paused? failing to start "
         "(permission on the Run job)?",
         "Look for a `backup-failed` alert with the cause.",
         "Take one now: `gcloud run jobs execute db-backup-full --region <region> --wait`."),
        threshold=1, condition="absence",
    ),
    AlertKind(
        "transfer-failed", "A cross-region copy failed", "P1",
        "Storage Transfer Service could not copy objects into the EU replica (`db-dumps`, `user-files`).",
        ("Console > Storage Transfer > the job > the last operation's error breakdown.",
         "Check the transfer service agent still holds `objectViewer` + `legacyBucketReader` on the source and "
         "`objectCreator` + `objectViewer` + `legacyBucketReader` on the replica (`make plan` shows them).",
         "Run the job now from the console once fixed and watch it complete."),
        log_match=True, condition="log",
    ),
    AlertKind(
        "transfer-behind", "A cross-region copy is behind", "P1",
        "The replica has received no new object for longer than the transfer schedule plus the margin allows.",
        ("Check the transfer job is enabled and its last run's status.",
         "Check the source received new objects at all (a quiet day for user files is legitimate).",
         "Run the job now and confirm objects are copied."),
        threshold=1, condition="absence",
    ),
    AlertKind(
        "uptime", "A health endpoint is failing", "P0",
        "A health endpoint failed from more than one checker region, and it serves traffic now (the active "
        "site's targets, the public names): users are affected.",
        ("`curl -v https://<host>/health` from two networks.",
         "Check the origin's deployment and its database connectivity.",
         "If the active site is down for good: `docs/runbooks/failover.md`."),
        threshold=1, window_seconds=1_200, standby_severity="P2",
        aligner="ALIGN_NEXT_OLDER", reducer="REDUCE_COUNT_FALSE", group_by=("resource.label.*",),
        standby_meaning="The endpoint belongs to the site that would take over on failover: failover would not "
                        "help right now.",
    ),
    AlertKind(
        "backup-tampering", "Backup storage deleted or changed", "P0",
        "A backup bucket was deleted or updated (retention, protection), or a backup key version was scheduled "
        "for destruction. Outside a reviewed `pulumi up`, treat it as a security incident.",
        ("Find the principal and method in the audit log entry linked from the incident; match it against a "
         "reviewed change.",
         "If unexpected: revoke the principal, then restore the settings from the stack (`pulumi up`) - the "
         "retention policy keeps objects meanwhile.",
         "For a key: `gcloud kms keys versions restore <version> --key <key> --keyring <ring> --location <region>` "
         "within the destruction delay."),
        log_match=True, condition="log",
    ),
)}

RUNBOOK_HEADER = f"""# Runbook: alerts

Every alert names its severity in its title. Respond within: {', '.join(
    f"**{name}** {level['respond']}" for name, level in SEVERITIES.items())}. Post in `{INCIDENT_CHANNEL}`
when you start and when you finish. Each section is generated from `core/alerts.py` (the same text each
alert's documentation carries): edit it there and run `python -m tools.config_reference`.
"""


def runbook() -> str:
    """docs/runbooks/alerts.md, from the catalog."""
    return RUNBOOK_HEADER + "".join(f"\n{kind.runbook_section()}\n" for kind in CATALOG.values())
