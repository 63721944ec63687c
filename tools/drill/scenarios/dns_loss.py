"""dns-loss: every record of the zone deleted through the Cloudflare API; restored from the newest export-dns
zone file, imported through the same API. Measured against the regional outage's RTO objective (without DNS,
users reach neither site), with no model estimate and no rows at stake.
"""

from __future__ import annotations

import hashlib
import time

from backup_job import storage as layout
from core.contracts import EXPORT_LOG_KIND
from tools.drill import storage
from tools.drill.harness import RECOVERY_TIMEOUT_SECONDS, Drill, Scenario
from tools.drill.report import ScenarioResult, Yardstick
from tools.drill.world import MISSED, DrillError, in_site

NAME = "dns-loss"


def run(drill: Drill) -> ScenarioResult:
    """Delete the zone's records; restore them from the latest export-dns zone file."""
    before = drill.zone.cloudflare.listing()
    incident = time.monotonic()
    for record in before:
        drill.zone.call("DELETE", f"/{record['id']}")
    gone = drill.zone.answers(drill.zone.planned)
    drill.progress(f"{NAME}: {len(before)} records deleted through the API; "
                   f"{sum(not a['matches'] for a in gone)} of {len(gone)} planned names no longer answer")
    bucket, prefix = drill.dns_export["bucket"], drill.dns_export["prefix"]

    def latest_zone() -> tuple[str, bytes]:
        backup = layout.newest(storage.client("eu").bucket(bucket), prefix, EXPORT_LOG_KIND)
        data = storage.client("eu").bucket(bucket).blob(backup.object).download_as_bytes()
        if hashlib.sha256(data).hexdigest() != backup.manifest["sha256"]:
            raise DrillError(MISSED, f"{backup.object} does not match its manifest's sha256")
        return backup.object, data
    zone_object, zone = in_site("eu", latest_zone, timeout=60)
    drill.zone.call("POST", "/import", zone)
    dns_seconds = None
    deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        after = drill.zone.answers(drill.zone.planned)
        if all(a["matches"] for a in after):
            dns_seconds = time.monotonic() - incident
            break
        time.sleep(0.05)
    restored = {(r["name"], r["type"], r["content"], r["ttl"], bool(r.get("proxied"))) for r in drill.zone.cloudflare.listing()}
    lost_records = [r for r in before if (r["name"], r["type"], r["content"], r["ttl"], bool(r.get("proxied")))
                    not in restored]
    check = drill.verify(drill.us)
    return ScenarioResult(
        NAME, dns_seconds, 0, 0.0, check.ok and not lost_records and dns_seconds is not None,
        f"{len(before)} records deleted and restored from {zone_object} through the API; every planned name "
        f"answered correctly {dns_seconds if dns_seconds is None else round(dns_seconds, 2)} s after the deletion",
        {"zoneExport": zone_object, "recordsDeleted": len(before), "recordsLost": lost_records,
         "firstCorrectAnswerSeconds": dns_seconds, "answersAfter": drill.zone.answers(drill.zone.planned),
         "ledger": check.to_json()})


SCENARIO = Scenario(NAME, run, Yardstick("regionalOutage", estimated=False, rpo_objective=False))
