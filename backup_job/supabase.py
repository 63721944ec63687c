"""Restoring into a Supabase project: its managed schemas keep their definitions and get their rows.

A Supabase project already has its managed schemas (the Supabase CLI's
`InternalSchemas`, which `supabase db dump` leaves out of a schema dump), but
their rows - every user in `auth.users` - must come back, as the CLI's
documented migration brings them (roles, schema, then data with
`session_replication_role = replica`).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import psycopg
from google.cloud import storage

from backup_job import archive, codec, stream
from backup_job import storage as layout
from backup_job.catalog import Catalog
from backup_job.dump import pg_binary

# Schemas a Supabase project creates and manages itself (the Supabase CLI's `InternalSchemas`, which
# `supabase db dump` leaves out of a schema dump): into a Supabase project their definitions are never recreated.
MANAGED_SCHEMAS = (
    "auth", "extensions", "pgbouncer", "realtime", "_realtime", "storage", "_analytics", "supabase_functions",
    "supabase_migrations", "cron", "dbdev", "graphql", "graphql_public", "net", "pgsodium", "pgsodium_masks",
    "pgtle", "repack", "tiger", "tiger_data", "topology", "vault", "_supavisor", "pgmq",
)

# Of those, the schemas and tables whose rows stay the project's own (what `supabase db dump --data-only`
# excludes): platform state and migration history. The rows of the others (auth, storage, ...) are restored.
MANAGED_WITHOUT_DATA = ("extensions", "pgbouncer", "realtime", "_realtime", "cron", "dbdev", "graphql",
                        "graphql_public", "net", "pgsodium", "pgsodium_masks", "pgtle", "repack", "tiger",
                        "tiger_data", "topology", "vault", "pgmq")

MANAGED_TABLES_WITHOUT_DATA = (("auth", "schema_migrations"), ("storage", "migrations"),
                               ("supabase_functions", "migrations"))



def managed_without_rows(schema: str, table: str) -> bool:
    """Whether a table's rows stay the project's own (never restored into a Supabase project)."""
    return schema in MANAGED_WITHOUT_DATA or (schema, table) in MANAGED_TABLES_WITHOUT_DATA


def is_supabase(connection: psycopg.Connection, target_kind: str) -> bool:
    """Whether the target is a Supabase project: as told, or (`auto`) when it has the table `auth.users`, which
    every Supabase project has and a plain PostgreSQL has not until something creates it."""
    if target_kind != "auto":
        return target_kind == "supabase"
    row = connection.execute("SELECT to_regclass('auth.users') IS NOT NULL").fetchone()
    return bool(row and row[0])


def managed_list(blob: storage.Blob, backup: layout.Backup) -> str:
    """A --use-list of the dump without the definitions of Supabase's managed schemas, keeping their rows."""
    head, listing = stream.read_head(blob, codec.of(backup.manifest))
    toc = archive.Toc(archive.parse_listing(listing))

    def selected(*selectors: str) -> set[int]:
        # pg_restore's --schema and --table select by the entry's namespace and name, compared exactly.
        found = archive.run_pg_restore([pg_binary("pg_restore"), "--list", *selectors], head, "list entries")
        return set(archive.parse_listing(found.decode(errors="replace")))

    managed = selected(*(f"--schema={name}" for name in MANAGED_SCHEMAS))
    no_data = selected(*(f"--schema={name}" for name in MANAGED_WITHOUT_DATA))
    for schema, table in MANAGED_TABLES_WITHOUT_DATA:
        no_data |= selected(f"--schema={schema}", f"--table={table}")
    names = _schema_names(toc, head, backup)
    skipped = {d for d in managed if toc.entries[d].kind not in ("TABLE DATA", "SEQUENCE SET") or d in no_data}
    skipped |= {d for d, name in names.items() if name in MANAGED_SCHEMAS}
    # A comment, grant or label of a skipped definition is the project's too.
    skipped |= {e.dump_id for e in toc.depending_on(skipped) if e.kind in ("ACL", "COMMENT", "SECURITY LABEL")}
    return archive.use_list(e for e in toc.entries.values() if e.dump_id not in skipped)


def _schema_names(toc: archive.Toc, head: bytes, backup: layout.Backup) -> dict[int, str]:
    """The names of the dump's SCHEMA entries by dump id: from the manifest's catalog by OID, or, for a backup
    from before catalogs, from pg_restore's own `CREATE SCHEMA` statements, one per entry in archive order."""
    entries = toc.of_kind("SCHEMA")
    if isinstance(backup.manifest.get("catalog"), dict):
        schemas = Catalog(backup.manifest["catalog"]).schemas
        return {e.dump_id: schemas[e.oid] for e in entries if e.oid in schemas}
    with tempfile.TemporaryDirectory(prefix="raptorflow-restore-") as work:
        listing = Path(work) / "schemas.list"
        listing.write_text(archive.use_list(entries))
        text = archive.script(archive.run_pg_restore(
            [pg_binary("pg_restore"), "--file=-", f"--use-list={listing}"], head, "read the schema entries"))
    names = [n[1:-1].replace('""', '"') if n.startswith('"') else n
             for n in re.findall(r'^CREATE SCHEMA ("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*);$', text, re.M)]
    return {e.dump_id: name for e, name in zip(entries, names, strict=False)} if len(names) == len(entries) else {}

