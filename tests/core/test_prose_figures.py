"""Hand-written prose that states one of the plan's figures states the figure the code holds.

The generated text (README's key and policy tables, the stack-config schema, the alert runbook) is kept current
by `python -m tools.config_reference` and its tests. This covers the sentences written by hand: in README.md and
docs/, and the model and catalog texts those generated tables carry word for word. Each statement is a sentence
with its figures as fields, filled from where the figure is defined (core/limits.py, components/defaults.py,
core/alerts.py, a stack file, the plans): a changed figure fails here and names the sentence to update.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import pytest

from components import defaults
from core import limits
from core.alerts import SEVERITIES, UPTIME_FAILED_PERIODS
from core.schedule import max_interval_hours
from tools.drill.records import last_drills
from tools.offline import ROOT, Plan
from tools.readiness import DRILLS, assess_plans, measured_figures, model_figures, render_figures, render_readiness


class Statement(NamedTuple):
    """A sentence of `path` (whitespace as one space) that states figures: `sentence` with `{field}`s filled
    from `figures`. `written_in` names where the words are edited when that is not `path` itself (a model's
    description or the alert catalog, rendered into a generated section)."""

    path: str
    sentence: str
    figures: dict[str, Any]
    written_in: str | None = None


def _duration(minutes: float) -> str:
    """Minutes as the prose writes them: '15 min', '2 h'."""
    return f"{minutes / 60:g} h" if minutes >= 60 else f"{minutes:g} min"


def _short(respond: str) -> str:
    """A severity's response time as README shortens it: '15 minutes' -> '15 min', '1 hour' -> '1 h'."""
    return re.sub(r" hours?$", " h", re.sub(r" minutes?$", " min", respond))


DUMPS, FILES = limits.RETENTION_DAYS["database-dumps"], limits.RETENTION_DAYS["user-files"]
OUTAGE_RTO, OUTAGE_RPO = limits.OBJECTIVES["regionalOutage"]["rtoMinutes"], limits.OBJECTIVES["regionalOutage"]["rpoMinutes"]
assert OUTAGE_RTO is not None and OUTAGE_RPO is not None, "the regional outage has both objectives"
DAY_HOURS = limits.SECONDS_PER_DAY // 3600
MODEL = "its description in components/config/ (the generated tables render it)"

STATEMENTS = {
    "readme-stacks-dump-retention": Statement(
        "README.md", "the database-dump bucket ({days}-day retention", {"days": DUMPS}),
    "readme-stacks-replica-retention": Statement(
        "README.md", "replicas of prod's database-dump bucket ({dumps} days) and user-files bucket ({files} days)",
        {"dumps": DUMPS, "files": FILES}),
    "readme-vercel-redeploy": Statement(
        "README.md", "`VERCEL_REDEPLOY_MINUTES` in `core/limits.py`, assumed {minutes} min",
        {"minutes": limits.VERCEL_REDEPLOY_MINUTES}),
    "readme-detect-term": Statement(
        "README.md", "({period} s + {timeout} s + {duration} s = {minutes:g} min in the plan)",
        {"period": limits.UPTIME_PERIOD_SECONDS, "timeout": limits.UPTIME_TIMEOUT_SECONDS,
         "duration": UPTIME_FAILED_PERIODS * limits.UPTIME_PERIOD_SECONDS,
         "minutes": round((limits.UPTIME_PERIOD_SECONDS * (1 + UPTIME_FAILED_PERIODS) + limits.UPTIME_TIMEOUT_SECONDS)
                          / 60, 1)}),
    "readme-drill-cadence": Statement(
        "README.md", "(`DRILL_CADENCE_DAYS` in `core/limits.py`, {days} days)", {"days": limits.DRILL_CADENCE_DAYS}),
    "drill-doc-cadence": Statement(
        "docs/drill.md", "the plan's quarterly cadence ({days} days", {"days": limits.DRILL_CADENCE_DAYS}),
    "readme-outage-rpo": Statement(
        "README.md", "cannot meet the regional outage's {minutes}-minute RPO", {"minutes": OUTAGE_RPO}),
    "readme-image-cleanup": Statement(
        "README.md", "The repository keeps the {keep} newest versions, deletes untagged ones after {days} days",
        {"keep": defaults.IMAGE_KEEP_VERSIONS, "days": defaults.IMAGE_UNTAGGED_DELETE_DAYS}),
    "readme-iam-propagation": Statement(
        "README.md", "wait `deploy.iamPropagationSeconds` ({seconds}) after their grants",
        {"seconds": limits.IAM_PROPAGATION_SECONDS}),
    "readme-key-rotation": Statement(
        "README.md", "a key ring and a key rotating every {days} days", {"days": defaults.KMS_ROTATION_DAYS_DEFAULT}),
    "readme-severities": Statement(
        "README.md", "Alerts, each with the plan's severity ({levels};",
        {"levels": ", ".join(f"{name} {_short(level['respond'])}" for name, level in SEVERITIES.items())}),
    "readme-model-dump-retention": Statement(
        "README.md", "The bucket of database dumps (the plan keeps them {days} days)", {"days": DUMPS}, MODEL),
    "readme-model-files-retention": Statement(
        "README.md", "The standby site's copy of the user-files bucket (the plan keeps it {days} days)",
        {"days": FILES}, MODEL),
    "readme-model-soft-delete": Statement(
        "README.md", "Days a deleted object can still be restored ({low}-{high})",
        {"low": limits.SOFT_DELETE_DAYS_MIN, "high": limits.SOFT_DELETE_DAYS_MAX}, MODEL),
    "readme-model-key-rotation": Statement(
        "README.md", "Days between automatic key rotations (at most {days})", {"days": limits.KMS_ROTATION_DAYS_MAX},
        MODEL),
    "readme-model-ttl": Statement(
        "README.md", "DNS-only records: {low}-{high} seconds (default {default})",
        {"low": limits.DNS_TTL_MIN_SECONDS, "high": limits.DNS_TTL_MAX_SECONDS,
         "default": defaults.DNS_TTL_DEFAULT_SECONDS}, MODEL),
    "failover-runbook-objective": Statement(
        "docs/runbooks/failover.md", "Objective: **RTO {rto}, RPO {rpo}**",
        {"rto": _duration(OUTAGE_RTO), "rpo": _duration(OUTAGE_RPO)}),
    "failover-runbook-severity": Statement(
        "docs/runbooks/failover.md", "Severity **P0**: respond within {respond}", {"respond": SEVERITIES["P0"]["respond"]}),
    "failover-runbook-vercel-redeploy": Statement(
        "docs/runbooks/failover.md", "(`VERCEL_REDEPLOY_MINUTES` in `core/limits.py`, {minutes} minutes)",
        {"minutes": limits.VERCEL_REDEPLOY_MINUTES}),
    "benchmarks-restore-default": Statement(
        "docs/benchmarks.md", "restoreMbPerSecond` (default {rate} MB/s, components/defaults.py)",
        {"rate": limits.RESTORE_MB_PER_SECOND}),
    "benchmarks-restore-taken": Statement(
        "docs/benchmarks.md", "so the model now takes {rate} MB/s", {"rate": limits.RESTORE_MB_PER_SECOND}),
    "alerts-runbook-backup-age": Statement(
        "docs/runbooks/alerts.md", "({hours} h for the daily full dump by default)",
        {"hours": DAY_HOURS + limits.BACKUP_AGE_MARGIN_HOURS}, "the backup-age entry of core/alerts.py"),
}


def _text(path: str) -> str:
    return " ".join((ROOT / path).read_text().split())


def _assert_states(statement: Statement) -> None:
    expected = statement.sentence.format(**statement.figures)
    where = statement.written_in or statement.path
    assert expected in _text(statement.path), (
        f"{statement.path} no longer says {expected!r}: a figure changed at its source; update the sentence "
        f"{statement.sentence!r} in {where}")


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_the_prose_states_the_figure_the_code_holds(name):
    _assert_states(STATEMENTS[name])


def _time_of_day(cron: str) -> str:
    """HH:MM of a daily cron ('0 2 * * *' -> '02:00')."""
    minute, hour = cron.split()[:2]
    return f"{int(hour):02d}:{int(minute):02d}"


def test_the_prose_states_the_plans_schedules_and_ttls(prod_plan: Plan, dr_plan: Plan):
    """The figures a stack file sets or keeps: the backup and export times, the DNS-only record's TTL."""
    full = prod_plan.named("db-backup-full-schedule").inputs["schedule"]
    schema = prod_plan.named("db-backup-schema-schedule").inputs["schedule"]
    export = dr_plan.named("db-backup-dns-export-schedule").inputs["schedule"]
    api_ttl = int(dr_plan.named("dns-api-record").inputs["ttl"])
    copy_seconds = int(dr_plan.named("user-files-replica-transfer").inputs["schedule"]["repeatInterval"].removesuffix("s"))
    for statement in (
        Statement("README.md", "(full {full} UTC, schema-only {schema} UTC, restore check monthly)",
                  {"full": _time_of_day(full), "schema": _time_of_day(schema)}),
        Statement("README.md", "the daily Cloudflare zone export ({time} UTC)", {"time": _time_of_day(export)}),
        Statement("README.md", "Check the first scheduled backup ran** (after {time} UTC", {"time": _time_of_day(full)}),
        Statement("README.md", "# prod: corruption RPO {hours:g} h, NOT MET", {"hours": max_interval_hours(full)}),
        Statement("README.md", "# outage RPO {hours} h", {"hours": copy_seconds // 3600}),
        Statement("docs/runbooks/failover.md", "(DNS-only, TTL {seconds} s;", {"seconds": api_ttl}),
        Statement("docs/runbooks/failover.md", "DNS-only names take up to `ttlSeconds` ({seconds} s)", {"seconds": api_ttl}),
        Statement("docs/drill.md", "(`api`, TTL {seconds} s in the dr plan)", {"seconds": api_ttl}),
    ):
        _assert_states(statement)


def test_the_readme_shows_the_readiness_make_plan_prints(prod_plan: Plan, dr_plan: Plan):
    """README's readiness table is what `make plan` prints for the repo's stack files: objectives, estimates and
    what binds them, from the plan's figures, and the last drill of each scenario from docs/drills/."""
    measured = measured_figures(DRILLS)
    printed = [*render_readiness(assess_plans([prod_plan, dr_plan], measured), ["prod", "dr"], last_drills(DRILLS)),
               *render_figures(model_figures([prod_plan, dr_plan], measured))]
    readme = (ROOT / "README.md").read_text().splitlines()
    assert printed[0] in readme, f"README shows no readiness table headed {printed[0]!r}"
    start = readme.index(printed[0])
    assert readme[start:start + len(printed)] == printed, (
        "README's readiness table differs from what `python -m tools.plan prod dr` prints: paste the new table")
