"""The custom IAM roles the program defines, shared by the components that create and grant them and the policy
pack that checks them.

A custom role's id ends in the stack's build generation (`deploy.generation`: `...G1`): a deleted custom role
can be undeleted for 7 days, and its id cannot be taken by a new role until up to 37 days after the delete
(https://cloud.google.com/iam/docs/creating-custom-roles#deleting-custom-role; the pulumi-gcp IAMCustomRole
docs). A rebuild after a teardown adds one to the generation and so never collides with the roles it deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class CustomRole:
    """A custom role: the base of its id and exactly the permissions it holds."""

    base_id: str
    permissions: tuple[str, ...]
    title: str
    purpose: str

    def role_id(self, generation: int) -> str:
        """The role's id in build `generation` (custom role ids: 3-64 of [a-zA-Z0-9_.])."""
        return f"{self.base_id}G{generation}"

    def names(self, role: str) -> bool:
        """Whether `role` (an id, or `projects/P/roles/ID`) is this role, in any generation."""
        return re.search(rf"(^|/){re.escape(self.base_id)}G\d+$", role) is not None


# What the standby's transfer agent needs to set up change notifications on a source bucket, and nothing more
# (https://cloud.google.com/storage-transfer/docs/cross-bucket-replication).
TRANSFER_SOURCE_NOTIFIER = CustomRole(
    "raptorflowTransferSourceNotifier", ("storage.buckets.get", "storage.buckets.update"),
    "raptorflow-dr: set up change notifications for cross-region replication", "change notifications",
)
# What `gcloud run jobs execute --wait` needs besides running the job: it polls the execution it started
# (run.executions.get, and .list to find it), which roles/run.jobsExecutorWithOverrides lacks
# (https://cloud.google.com/run/docs/reference/iam/roles; viewing executions takes a role "on your Cloud Run
# job": https://cloud.google.com/run/docs/managing/job-executions). Granted on each backup job to
# `manualRunners`. Not run.operations.get: operations live under the location, not the job, so a grant on the
# job could not cover them (the v1 run call `gcloud` makes returns the execution itself, no operation).
BACKUP_RUN_WATCHER = CustomRole(
    "raptorflowBackupRunWatcher", ("run.executions.get", "run.executions.list"),
    "raptorflow-dr: follow a backup job's execution until it ends", "following a backup run",
)
CUSTOM_ROLES = (TRANSFER_SOURCE_NOTIFIER, BACKUP_RUN_WATCHER)
