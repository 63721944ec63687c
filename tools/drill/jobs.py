"""The project's own backup job, run in a site as its Cloud Run job runs it: the plan's arguments and
environment, its secret read from a mounted file, its one JSON log line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backup_job import storage as layout
from core.contracts import Command, JobEnv, LogField
from tools.drill import build, cloudflare, plans, storage
from tools.drill.world import MISSED, DrillError, World, in_namespace, in_site, run

JOB_TIMEOUT_SECONDS = 1800.0


@dataclass
class Jobs:
    """Runs the plans' jobs in the drill's world."""

    world: World
    progress: Callable[[str], None]

    def run(self, site: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
        """`python -m backup_job ARGS` in the site, with the plan's environment; its JSON log line."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "STORAGE_EMULATOR", "CLOUDFLARE"))}
        environment.update(env, STORAGE_EMULATOR_HOST=storage.url(site), BACKUP_STORAGE_RETRY_SECONDS="10")
        result = run(in_namespace(site, [sys.executable, "-m", "backup_job", *args]), env=environment,
                     timeout=JOB_TIMEOUT_SECONDS, check=False, cwd=build.project_root())
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        log = json.loads(lines[-1]) if lines else {LogField.EXIT_CODE: result.returncode, LogField.MESSAGE: "no log line"}
        log[LogField.EXIT_CODE] = result.returncode
        return log

    def environment(self, plan: dict[str, Any], job: str, secret: tuple[str, str, str]) -> tuple[list[str], dict[str, str]]:
        """The plan's args and environment for `job`, with its secret file variable pointing at a drill file."""
        args, env = plans.job_environment(plan, job)
        variable, name, value = secret
        path = self.world.secret_file(name, value)
        env = {k: v for k, v in env.items() if not k.endswith("_FILE")}
        env[variable] = str(path)
        return args, env

    def backup(self, site: str, plan: dict[str, Any], database_url: str, why: str) -> dict[str, Any]:
        """The plan's scheduled full backup job, run now; its log line with the bucket, prefix and start time."""
        self.progress(f"{site}: backup_job {' '.join(plans.job_environment(plan, 'db-backup-full')[0])} ({why})")
        args, env = self.environment(plan, "db-backup-full", (JobEnv.DATABASE_URL.file, f"{site}-backup.url", database_url))
        log = self.run(site, args, env)
        if log[LogField.EXIT_CODE] != 0:
            raise DrillError(MISSED, f"the {site} backup failed (exit {log[LogField.EXIT_CODE]}): "
                                     f"{log.get(LogField.MESSAGE, '')}")
        log["bucket"], log["prefix"] = env[JobEnv.BUCKET], env.get(JobEnv.PREFIX, "")
        manifest = in_site(site, lambda: layout.read_manifest(storage.client(site).bucket(log["bucket"]), log["object"]))
        log["startedAt"] = manifest["startedAt"]
        return log

    def export_dns(self, plan: dict[str, Any], token: str) -> dict[str, Any]:
        """The plan's export-dns job against the Cloudflare API stand-in; its log line with the bucket and prefix."""
        args, env = self.environment(plan, "db-backup-dns-export", (JobEnv.CLOUDFLARE_API_TOKEN.file, "cloudflare.token", token))
        env["CLOUDFLARE_API_BASE_URL"] = cloudflare.base_url()
        log = self.run("eu", args, env)
        if log[LogField.EXIT_CODE] != 0:
            raise DrillError(MISSED, f"{Command.EXPORT_DNS} failed (exit {log[LogField.EXIT_CODE]}): "
                                     f"{log.get(LogField.MESSAGE, '')}")
        log["bucket"], log["prefix"] = env[JobEnv.BUCKET], env.get(JobEnv.PREFIX, "")
        self.progress(f"eu: backup_job export-dns stored {log['object']} ({log['records']} records)")
        return log

    def restore(self, plan: dict[str, Any], target_url: str, tables: list[str], mode: str | None) -> dict[str, Any]:
        """The plan's restore settings: `backup_job restore` from the EU replica bucket into `target_url` (run in the
        EU, where the dump is); `mode` a flag of `restore --table`, or None for the job's default."""
        _, env = self.environment(plan, "db-backup-restore-check",
                                  (JobEnv.TARGET_DATABASE_URL.file, "restore-target.url", target_url))
        args = [Command.RESTORE.value, *[a for t in tables for a in ("--table", t)], *([mode] if mode else [])]
        return self.run("eu", args, env)
