"""The stack config model: every key a stack file may set, validated once, split by domain.

`Pulumi.<stack>.yaml` holds the project's keys under the `raptorflow-dr:`
namespace (structured values are objects, as `pulumi config set --path` writes
them). `load_stack_config` reads them from the Pulumi runtime, validates them
against `StackConfig` and raises `ConfigError` - a `pulumi.RunError`, so the
engine and the offline plan print it without a traceback - naming the stack
file, the key and what is allowed.

- `base`: the namespace, `ConfigError`, the base model, checks several sections share;
- `storage`, `backups`, `failover`, `monitoring`, `recovery`, `vault`: one domain's sections each;
- `stack`: `StackConfig`, the whole of one site, and the rules across sections;
- `secrets`: which secrets a stack needs and where the model holds them;
- `loading` and `errors`: reading raw values and rendering what is wrong.
"""

from .backups import BackupSchedule, DatabaseBackupSettings, DnsExportSettings, RestoreCheckSettings
from .base import NAMESPACE, ConfigError
from .failover import FailoverHostname, FailoverSettings, LoadBalancerSettings, SecretSiteValues, VercelSettings
from .loading import load_stack_config, missing_secrets, parse_stack_config
from .monitoring import MonitoringSettings
from .recovery import RecoverySettings
from .secrets import RequiredSecret, required_secrets, secret_keys_of_model
from .stack import StackConfig
from .storage import (
    BackupBucketSettings,
    DatabaseDumpBucketSettings,
    DatabaseDumpReplicaSettings,
    TransferSettings,
    UserFilesReplicaSettings,
)
from .vault import ConfigVaultSettings

__all__ = [
    "NAMESPACE", "BackupBucketSettings", "BackupSchedule", "ConfigError", "ConfigVaultSettings",
    "DatabaseBackupSettings", "DatabaseDumpBucketSettings", "DatabaseDumpReplicaSettings", "DnsExportSettings",
    "FailoverHostname", "FailoverSettings", "LoadBalancerSettings", "MonitoringSettings", "RecoverySettings",
    "RequiredSecret", "RestoreCheckSettings", "SecretSiteValues", "StackConfig", "TransferSettings",
    "UserFilesReplicaSettings", "VercelSettings", "load_stack_config", "missing_secrets", "parse_stack_config",
    "required_secrets", "secret_keys_of_model",
]
