"""Stack files in the layout before the per-site sections keep working: their keys move where they now belong.

Before the `primary` and `standby` sections, a site's own keys (`userFilesBucket`, `prodStack`, `failover`,
...) sat at the top level, and `databaseBackup.schedules` was a list of `{kind, cron}`. `migrated` turns such
raw config into today's layout before validation, so the plan and the resources are the same; `flat_layout`
names what a stack file still has in the old places, for the warning that asks to move it (README: "Migrating
a stack file to the per-site sections").
"""

from __future__ import annotations

from typing import Any

from .site_sections import SITE_SECTIONS, site_of_key


def flat_layout(own: dict[str, Any]) -> list[str]:
    """Where raw config `own` (the project's keys, decoded) uses the old layout: `key -> section.key` lines."""
    sites = site_of_key()
    found = [f"{key} -> {sites[key]}.{key}" for key in own if key in sites]
    schedules = (own.get("databaseBackup") or {}).get("schedules") if isinstance(own.get("databaseBackup"), dict) else None
    if isinstance(schedules, list):
        found.append("databaseBackup.schedules (a list) -> databaseBackup.schedules.KIND (a mapping by kind)")
    return found


def _schedules_by_kind(entries: list[Any]) -> Any:
    """The old list of `{kind, cron}` as the mapping by kind (anything else is left for validation to name)."""
    mapping: dict[str, Any] = {}
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"kind", "cron"} or not isinstance(entry["kind"], str):
            return entries
        if entry["kind"] in mapping:
            raise ValueError(f"databaseBackup.schedules lists the kind {entry['kind']!r} twice; one schedule per kind")
        mapping[entry["kind"]] = entry["cron"]
    return mapping


def migrated(data: Any) -> Any:
    """Raw config `data` in today's layout: top-level site keys moved into their section, a schedule list made a
    mapping. A key set both in the old place and in its section is refused: which one is meant is not known."""
    if not isinstance(data, dict):
        return data
    sites = site_of_key()
    result = {key: value for key, value in data.items() if key not in sites}
    for key, value in data.items():
        if key not in sites:
            continue
        site = sites[key]
        section = result.get(site) if site in result else {}
        if not isinstance(section, dict):
            return data  # validation names the section that is not a mapping
        if key in section:
            raise ValueError(f"`{key}` is set twice: at the top level (the layout before per-site sections) and "
                             f"under `{site}`; keep `{site}.{key}` and remove the top-level key (a `--set` path "
                             "counts too: give it in the layout the stack file uses)")
        result[site] = {**section, key: value}
    backup = result.get("databaseBackup")
    if isinstance(backup, dict) and isinstance(backup.get("schedules"), list):
        result["databaseBackup"] = {**backup, "schedules": _schedules_by_kind(backup["schedules"])}
    return result


def misplaced_section(data: Any) -> str | None:
    """Why raw config `data` (today's layout) holds the other site's section, or None: `site: standby` with a
    `primary` section (or the reverse), named with the keys it holds."""
    site = data.get("site") if isinstance(data, dict) else None
    if not isinstance(site, str) or site not in SITE_SECTIONS:
        return None
    other = next(name for name in SITE_SECTIONS if name != site)
    section = data.get(other)
    if section is None:
        return None
    keys = ", ".join(f"`{other}.{key}`" for key in section) if isinstance(section, dict) and section else f"`{other}`"
    why = (": the dr stack owns the traffic switch so that it can fail over while the primary region is down, and "
           "exactly one stack may own a DNS name") if other == "standby" else ""
    return f"{keys} belong to a {other} stack; a {site} stack must not set them{why}"


def primary_stack_reference(own: dict[str, Any]) -> str | None:
    """The primary stack a standby's raw config (the project's keys, decoded) reads, in either layout; None for a
    primary (validation refuses a `standby` section there)."""
    data = migrated(own)
    if data.get("site") != "standby":
        return None
    standby = data.get("standby")
    reference = standby.get("prodStack") if isinstance(standby, dict) else None
    return str(reference) if reference else None
