"""STAND-IN for Storage Transfer Service: copies objects US -> EU as the dr plan's transfer jobs say.

It applies each job's own `transferOptions` - `overwriteWhen` (NEVER: an object that exists in the sink
is never replaced; DIFFERENT: only when its checksum differs; ALWAYS), `deleteObjectsUniqueInSink` and
`deleteObjectsFromSourceAfterTransfer` - and runs on the drill's compressed clock: an event-driven job
(`replicationSpec`) looks for new objects every `poll_seconds`, a scheduled one every repeat interval
divided by the time scale. It runs in the EU namespace (the standby side pulls the copies), so it stops
copying the moment the US site is cut. Every pass is bounded; failures are counted, not raised.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.api_core import exceptions as gcs_errors
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from tools.drill import storage as emulators
from tools.drill.world import enter

MAX_OBJECTS_PER_PASS = 10_000
# A cut site must not hold a pass for the client's default two minutes.
RETRY = DEFAULT_RETRY.with_timeout(5.0)
TIMEOUT_SECONDS = 5.0  # per request and socket read, not per object


@dataclass
class TransferStats:
    """What the stand-in did, for the report and the tests."""

    copied: list[str] = field(default_factory=list)
    kept_existing: list[str] = field(default_factory=list)  # in the sink already, not replaced (overwriteWhen)
    deleted_in_sink: list[str] = field(default_factory=list)
    deleted_in_source: list[str] = field(default_factory=list)
    failures: int = 0
    copied_at: dict[str, float] = field(default_factory=dict)  # object -> monotonic time of its copy


def sync(job: dict[str, Any], source: storage.Client, sink: storage.Client, stats: TransferStats,
         spool: Path) -> None:
    """One pass of one transfer job from `source`'s bucket to `sink`'s, applying the job's options."""
    options = job["options"]
    overwrite = options.get("overwriteWhen", "DIFFERENT")
    source_blobs = {b.name: b for b in source.list_blobs(job["source"], max_results=MAX_OBJECTS_PER_PASS,
                                                                         retry=RETRY, timeout=TIMEOUT_SECONDS)}
    sink_blobs = {b.name: b for b in sink.list_blobs(job["sink"], max_results=MAX_OBJECTS_PER_PASS,
                                                                 retry=RETRY, timeout=TIMEOUT_SECONDS)}
    for name in sorted(source_blobs):
        existing = sink_blobs.get(name)
        if existing is not None and (overwrite == "NEVER" or
                                     (overwrite == "DIFFERENT" and existing.md5_hash == source_blobs[name].md5_hash)):
            if name not in stats.kept_existing and name not in stats.copied:
                stats.kept_existing.append(name)
            continue
        path = spool / "object"
        source.bucket(job["source"]).blob(name).download_to_filename(str(path), retry=RETRY, timeout=TIMEOUT_SECONDS)
        target = sink.bucket(job["sink"]).blob(name)
        try:
            if existing is None:
                target.upload_from_filename(str(path), if_generation_match=0, retry=RETRY, timeout=TIMEOUT_SECONDS)
            else:
                target.upload_from_filename(str(path), retry=RETRY, timeout=TIMEOUT_SECONDS)
        except gcs_errors.PreconditionFailed:
            stats.kept_existing.append(name)  # created in the sink meanwhile: never replaced
            continue
        finally:
            path.unlink(missing_ok=True)
        stats.copied.append(name)
        stats.copied_at[name] = time.monotonic()
        if options.get("deleteObjectsFromSourceAfterTransfer"):
            source.bucket(job["source"]).blob(name).delete()
            stats.deleted_in_source.append(name)
    if options.get("deleteObjectsUniqueInSink"):
        for name in sorted(set(sink_blobs) - set(source_blobs)):
            sink.bucket(job["sink"]).blob(name).delete()
            stats.deleted_in_sink.append(name)


class TransferStandIn(threading.Thread):
    """STAND-IN for the dr stack's transfer jobs, running in the EU namespace until stopped."""

    def __init__(self, jobs: list[dict[str, Any]], spool: Path, poll_seconds: float, time_scale: float,
                 max_seconds: float) -> None:
        super().__init__(name="rfdr-transfer-stand-in", daemon=True)
        self.jobs, self.spool, self.poll_seconds = jobs, spool, poll_seconds
        self.time_scale, self.max_seconds = time_scale, max_seconds
        self.stats = TransferStats()
        self.halt = threading.Event()
        self.passes = 0

    def period(self, job: dict[str, Any]) -> float:
        """Seconds between passes of `job` on the drill's clock."""
        return self.poll_seconds if job["eventDriven"] else float(job.get("repeatSeconds", 86400)) / self.time_scale

    def run(self) -> None:
        """Pass over the jobs on their periods until stopped or `max_seconds` pass."""
        enter("eu")
        source, sink = emulators.client("us"), emulators.client("eu")
        started = time.monotonic()
        due = {job["name"]: started for job in self.jobs}
        self.spool.mkdir(exist_ok=True)
        while not self.halt.is_set() and time.monotonic() - started < self.max_seconds:
            for job in self.jobs:
                if time.monotonic() >= due[job["name"]]:
                    try:
                        sync(job, source, sink, self.stats, self.spool)
                    except (gcs_errors.GoogleAPICallError, gcs_errors.RetryError, OSError, ValueError):
                        self.stats.failures += 1  # the US is unreachable or an object vanished: next pass
                    due[job["name"]] = time.monotonic() + self.period(job)
            self.passes += 1
            self.halt.wait(min(self.poll_seconds, 1.0))

    def wait_for(self, names: list[str], timeout: float) -> float | None:
        """Seconds until every object in `names` was copied (or existed), or None after `timeout`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if all(n in self.stats.copied or n in self.stats.kept_existing for n in names):
                return time.monotonic() - started
            time.sleep(0.1)
        return None

    def stop(self) -> None:
        """Stop after the current pass."""
        self.halt.set()
        self.join(2 * TIMEOUT_SECONDS)
