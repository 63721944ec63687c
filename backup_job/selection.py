"""Which archive entries a table restore runs: a table's own, and the dependants the target lost with it.

An entry belongs to a table when it is reached from the table's TABLE entry
through the archive's own dependency graph (backup_job.archive), never by its
name. Whether the target already has an object is asked of the target by the
dumped object's schema, table and name, which the manifest's catalog records
by OID (backup_job.catalog).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from backup_job import archive
from backup_job.catalog import Catalog, display
from backup_job.errors import ExitCode, JobError

# Entries that belong to a table, followed from its TABLE entry through the archive's dependencies.
OWN_KINDS = frozenset({
    "TABLE ATTACH", "DEFAULT", "CONSTRAINT", "CHECK CONSTRAINT", "FK CONSTRAINT", "INDEX", "INDEX ATTACH", "TRIGGER",
    "POLICY", "ROW SECURITY", "RULE", "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET", "ACL", "COMMENT",
    "SECURITY LABEL", "STATISTICS",
})

# What an existing table may lack of its own: not its sequences (they exist with it) nor its partitions.
IN_PLACE_KINDS = OWN_KINDS - {"SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET", "TABLE ATTACH"}

DEPENDANT_KINDS = frozenset({"VIEW", "MATERIALIZED VIEW"})

VIEW_PARTS = frozenset({"MATERIALIZED VIEW DATA", "ACL", "COMMENT", "SECURITY LABEL", "INDEX", "TRIGGER", "RULE"})

# Statements that set, rather than create: run again on a table that has them, they change nothing.
RESTATED_KINDS = frozenset({"DEFAULT", "ROW SECURITY", "ACL", "COMMENT", "SECURITY LABEL"})

NAMED_OBJECT_KINDS = {"CONSTRAINT": "pg_constraint", "CHECK CONSTRAINT": "pg_constraint",
                      "FK CONSTRAINT": "pg_constraint", "TRIGGER": "pg_trigger", "POLICY": "pg_policy",
                      "RULE": "pg_rewrite"}

_LIVE_OBJECT = {
    "pg_constraint": "SELECT 1 FROM pg_constraint o WHERE o.conrelid = %s AND o.conname = %s",
    "pg_trigger": "SELECT 1 FROM pg_trigger o WHERE o.tgrelid = %s AND o.tgname = %s",
    "pg_policy": "SELECT 1 FROM pg_policy o WHERE o.polrelid = %s AND o.polname = %s",
    "pg_rewrite": "SELECT 1 FROM pg_rewrite o WHERE o.ev_class = %s AND o.rulename = %s",
}


def live_relation(connection: psycopg.Connection, schema: str, name: str) -> tuple[int, str] | None:
    row = connection.execute("SELECT c.oid::bigint, c.relkind::text FROM pg_class c JOIN pg_namespace n "
                             "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                             (schema, name)).fetchone()
    return (row[0], row[1]) if row else None


@dataclass
class Item:
    """One requested table: what the dump has of it and where its rows go."""

    table: dict[str, Any]
    leaves: list[dict[str, Any]]  # the relations that hold its rows: itself, or its leaf partitions
    live_oid: int | None = None
    destination: sql.Composable | None = None

    @property
    def name(self) -> str:
        return display(self.table["schema"], self.table["name"])

    @property
    def expected_rows(self) -> int | None:
        counts = [leaf.get("rows") for leaf in self.leaves]
        return None if any(c is None for c in counts) else sum(int(c) for c in counts if c is not None)


class Selection:
    """The entries of one archive that a table restore into the target of `connection` runs."""

    def __init__(self, connection: psycopg.Connection, toc: archive.Toc, catalog: Catalog):
        self.connection, self.toc, self.catalog = connection, toc, catalog
        self.position = {dump_id: i for i, dump_id in enumerate(toc.entries)}
        self.not_recreated: dict[int, list[str]] = {}
        """By recreated table OID: its dependants the target lost with it that cannot come back, and why."""

    def _closure(self, start: Iterable[archive.Entry], kinds: frozenset[str]) -> dict[int, archive.Entry]:
        chosen = {e.dump_id: e for e in start}
        frontier = list(chosen)
        while frontier:
            found = [e for e in self.toc.depending_on(frontier) if e.kind in kinds and e.dump_id not in chosen]
            chosen.update((e.dump_id, e) for e in found)
            frontier = [e.dump_id for e in found]
        return chosen

    def _table_entries(self, table: dict[str, Any]) -> list[archive.Entry]:
        oids = [table["oid"], *(p["oid"] for p in self.catalog.partitions(table["oid"]))]
        found = [self.toc.find("TABLE", oid) for oid in oids]
        if any(entry is None for entry in found):
            raise JobError(ExitCode.VERIFICATION_MISMATCH, f"the dump lacks {display(table['schema'], table['name'])}, "
                                                           "which its manifest lists")
        return [e for e in found if e is not None]

    def _live_oid(self, dumped_oid: int) -> int | None:
        """The target's OID of the relation the dump had as `dumped_oid` (by its schema and name), if it has one."""
        relation = self.catalog.relations.get(dumped_oid)
        live = relation and live_relation(self.connection, relation["schema"], relation["name"])
        return live[0] if live else None

    def _exists(self, entry: archive.Entry, recreated: set[int]) -> bool:
        """Whether the target already has the object of `entry` (by the dumped object's schema, table and name)."""
        if entry.kind in NAMED_OBJECT_KINDS:
            obj = self.catalog.objects.get((NAMED_OBJECT_KINDS[entry.kind], entry.oid))
            if obj is None or obj["table"] in recreated:
                return False
            table = self._live_oid(obj["table"])
            query = _LIVE_OBJECT[NAMED_OBJECT_KINDS[entry.kind]]
            return table is not None and self.connection.execute(query, (table, obj["name"])).fetchone() is not None
        return entry.catalog[0] == archive.PG_CLASS and self._live_oid(entry.oid) is not None

    def _name(self, entry: archive.Entry) -> str:
        relation = self.catalog.relations.get(entry.oid)
        return display(relation["schema"], relation["name"]) if relation else f"dump entry {entry.dump_id}"

    def _lacking(self, entry: archive.Entry, recreated: set[int], chosen: dict[int, archive.Entry]) -> list[str]:
        """The relations `entry` depends on that the target lacks and that are neither recreated nor chosen."""
        needed = [self.toc.entries[d] for d in entry.depends if d in self.toc.entries]
        return list(dict.fromkeys(self._name(n) for n in needed
                                  if n.kind in ("TABLE", "VIEW", "MATERIALIZED VIEW") and n.oid not in recreated
                                  and n.dump_id not in chosen and self._live_oid(n.oid) is None))

    def _tables_present(self, entry: archive.Entry, recreated: set[int]) -> bool:
        """Whether every table `entry` depends on is in the target, or being recreated."""
        tables = [self.toc.entries[d] for d in entry.depends if d in self.toc.entries]
        return all(self._live_oid(t.oid) is not None for t in tables if t.kind == "TABLE" and t.oid not in recreated)

    def definitions(self, recreate: list[dict[str, Any]], in_place: list[dict[str, Any]]) -> list[archive.Entry]:
        """The non-data entries to run: everything of recreated tables and their lost dependants; what in-place
        tables lack; in archive order."""
        recreated = {p["oid"] for table in recreate for p in [table, *self.catalog.partitions(table["oid"])]}
        chosen: dict[int, archive.Entry] = {}
        for table in recreate:
            own = self._closure(self._table_entries(table), OWN_KINDS)
            views = self._closure(own.values(), DEPENDANT_KINDS | VIEW_PARTS)
            kept_views = set()
            for entry in sorted(views.values(), key=lambda e: self.position[e.dump_id]):
                if entry.kind in DEPENDANT_KINDS and self._exists(entry, recreated):
                    kept_views.add(entry.dump_id)
                    continue
                if entry.kind in DEPENDANT_KINDS:
                    lacking = self._lacking(entry, recreated, chosen)
                    if lacking:  # it also needs a relation the target lacks and this restore does not bring
                        kept_views.add(entry.dump_id)
                        self.not_recreated.setdefault(table["oid"], []).append(
                            f"{entry.kind.lower()} {self._name(entry)} (needs {', '.join(lacking)})")
                        continue
                if entry.kind in NAMED_OBJECT_KINDS and (self._exists(entry, recreated)
                                                         or not self._tables_present(entry, recreated)):
                    continue
                chosen[entry.dump_id] = entry
            # Parts of a view the target still has belong to that view, not to this restore.
            for entry in list(chosen.values()):
                if entry.kind in VIEW_PARTS and any(d in kept_views for d in entry.depends):
                    chosen.pop(entry.dump_id)
        for table in in_place:
            own = self._closure(self._table_entries(table), IN_PLACE_KINDS)
            added: set[int] = set()
            for entry in own.values():
                if entry.kind == "TABLE":
                    continue
                if entry.kind in RESTATED_KINDS:
                    chosen[entry.dump_id] = entry
                elif entry.kind == "INDEX ATTACH":
                    if any(d in added for d in entry.depends):
                        chosen[entry.dump_id] = entry
                elif not self._exists(entry, set()) and self._tables_present(entry, set()):
                    chosen[entry.dump_id] = entry
                    added.add(entry.dump_id)
        return sorted(chosen.values(), key=lambda e: self.position[e.dump_id])
