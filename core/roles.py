"""The custom IAM roles the program defines, shared by the components that create and grant them and the policy
pack that checks them.

A custom role's id ends in the stack's build generation (`deploy.generation`: `...G1`): IAM keeps a deleted
custom role's id for 7 days (undeletable) and purges it after up to 37 more, and no new role may take the id
meanwhile (https://cloud.google.com/iam/docs/creating-custom-roles#deleting-custom-role). A rebuild after a
teardown adds one to the generation and so never collides with the roles it deleted.
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
# What `gcloud run jobs execute --wait` needs besides running the job: it polls the execution and its operation
# (run.executions.get/list, run.operations.get), which roles/run.jobsExecutorWithOverrides lacks
# (https://cloud.google.com/run/docs/reference/iam/roles). Granted on each backup job to `manualRunners`.
BACKUP_RUN_WATCHER = CustomRole(
    "raptorflowBackupRunWatcher", ("run.executions.get", "run.executions.list", "run.operations.get"),
    "raptorflow-dr: follow a backup job's execution until it ends", "following a backup run",
)
CUSTOM_ROLES = (TRANSFER_SOURCE_NOTIFIER, BACKUP_RUN_WATCHER)
