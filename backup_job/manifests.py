"""What makes a manifest usable: its fields, their shapes, and its format with the dump's compression.

Format 1 is every manifest before zstd (and a zone export's); format 2 a dump compressed by the job with zstd
(backup_job.codec). Anything else - a field missing or of the wrong shape, another object named - makes the
backup invalid (backup_job.storage).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from backup_job import codec

FORMATS = tuple(sorted(set(codec.FORMAT_OF.values())))
# Fields every manifest has, and their JSON types.
MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "format": int, "object": str, "kind": str, "sha256": str, "sizeBytes": int, "finishedAt": str,
}


def problem(manifest: Any, dump_name: str) -> str | None:
    """Why `manifest` cannot describe the dump `dump_name`, or None when it can."""
    if not isinstance(manifest, dict):
        return "is not a JSON object"
    for field, kind in MANIFEST_FIELDS.items():
        value = manifest.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"lacks a valid `{field}`"
    if manifest["format"] not in FORMATS:
        return f"has format {manifest['format']}, not one of {', '.join(map(str, FORMATS))}"
    if wrong := codec.problem(manifest):
        return wrong
    if manifest["object"] != dump_name:
        return f"describes {manifest['object'][:200]}, not {dump_name}"
    if not re.fullmatch(r"[0-9a-f]{64}", manifest["sha256"]) or manifest["sizeBytes"] < 0:
        return "has no usable sha256 or size"
    try:
        finished = datetime.fromisoformat(manifest["finishedAt"].replace("Z", "+00:00"))
    except ValueError:
        return "has no usable finishedAt"
    if finished.tzinfo is None:
        return "has a finishedAt without a time zone"
    counts = manifest.get("tableRowCounts")
    if counts is not None and (not isinstance(counts, dict) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values())):
        return "has tableRowCounts that are not counts by table"
    if "catalog" in manifest and not isinstance(manifest["catalog"], dict):
        return "has a catalog that is not an object"
    return _tables_problem(manifest)


def _tables_problem(manifest: dict[str, Any]) -> str | None:
    """A parallel backup's table objects (backup_job.by_table): each named under the dump, with its checksum, its
    sizes stored and decompressed, the table it fills and that table's columns, each table once (a table listed
    twice would have its rows loaded twice)."""
    mode = manifest.get("mode", "single")
    if mode == "single":
        return None
    tables = manifest.get("tables")
    if mode != "parallel" or codec.of(manifest) != codec.ZSTD or not isinstance(tables, list):
        return f"has mode {str(mode)[:20]!r} without zstd table objects"
    oids = set()
    for table in tables:
        if not (isinstance(table, dict) and _count(table.get("oid"))
                and table.get("object") == f"{manifest['object']}.tables/{table['oid']}.zst"
                and re.fullmatch(r"[0-9a-f]{64}", str(table.get("sha256")))
                and _count(table.get("sizeBytes")) and _count(table.get("copyBytes"))
                and all(isinstance(table.get(field), str) for field in _TABLE_NAMES)
                and isinstance(table.get("columns"), list) and all(isinstance(c, str) for c in table["columns"])):
            return ("lists a table object without its OID, name under the dump, sha256, sizes, table or column "
                    "names")
        if table["oid"] in oids:
            return f"lists the table object of OID {table['oid']} twice"
        oids.add(table["oid"])
    return None


# A table object's table, by schema and name (dict keys of by_table's manifest entry, checked as text).
_TABLE_NAMES = {"schema": str, "name": str}


def _count(value: Any) -> bool:
    """Whether a JSON value is a count: an integer (not a boolean) at least 0."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
