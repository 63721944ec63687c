"""What a site's monitoring watches: the records each part of the program hands SiteMonitoring.

A part says what exists - a scheduled run of the backup job, the transfer jobs of a replica, an endpoint, a
guarded bucket and its key - and SiteMonitoring gives each its alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from . import defaults


@dataclass(frozen=True)
class BackupWatch:
    """A scheduled run of the backup job: a backup of one kind, the restore check, or the DNS export."""

    job_name: pulumi.Input[str]
    kind: str  # a backup kind, or the job's role: restore-check | dns-export
    label: str  # how alerts name it: "full backup", "restore check", ...
    interval_hours: float  # longest gap between two scheduled runs
    failure_alert: str  # the catalog entry of a failed run
    command: str  # the job's subcommand (core.contracts.Command), as its log line names it
    age_alert: bool = True  # whether a missing success alerts at all (not for the monthly restore check)
    active: bool = True  # False for a paused standby schedule: its age alert stays disabled until promoted
    created: pulumi.Input[str] | None = None  # when the job was created (RFC 3339): no age alert before it is due


@dataclass(frozen=True)
class TransferWatch:
    """The Storage Transfer Service jobs that keep one replica: the daily sync and, where on, event-driven
    replication. With replication on, the daily job finds nothing left to copy, so copies count from either."""

    job_names: tuple[pulumi.Input[str], ...]
    slug: str
    interval_hours: float
    created: pulumi.Input[str] | None = None  # when the daily job was created (RFC 3339): no alert before it is due


@dataclass(frozen=True)
class UptimeTarget:
    """An HTTPS endpoint whose `/health` must answer 200."""

    host: str
    slug: str
    serves_traffic: bool  # the active site's targets and the public hostnames page P0; the other site's P2
    validate_ssl: bool = True
    # The name the origin serves, sent as the Host header when `host` is an IP address: a check of a bare IP
    # sends the IP as Host, and a name-based origin answers it with an error, which would page P0.
    host_header: str | None = None


@dataclass(frozen=True)
class GuardedStorage:
    """A backup bucket and its key: deleting or loosening them is a P0."""

    bucket_name: pulumi.Input[str]
    kms_key_id: pulumi.Input[str]


@dataclass(kw_only=True)
class Watched:
    """What a site's monitoring watches; each part of the program says what it wants watched in one of these."""

    backups: list[BackupWatch] = field(default_factory=list)
    transfers: list[TransferWatch] = field(default_factory=list)
    uptime: list[UptimeTarget] = field(default_factory=list)
    guarded: list[GuardedStorage] = field(default_factory=list)
    health_path: str = defaults.HEALTH_PATH
    """Path of the health endpoint on every uptime target."""

    def add(self, other: Watched) -> None:
        """Also watch what `other` holds (its health path, where it names one of its own)."""
        self.backups.extend(other.backups)
        self.transfers.extend(other.transfers)
        self.uptime.extend(other.uptime)
        self.guarded.extend(other.guarded)
        if other.health_path != defaults.HEALTH_PATH:
            self.health_path = other.health_path
