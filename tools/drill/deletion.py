"""The data-deletion scenario's accounting (the plan's scenario 4): rows deleted by mistake, merged back from a dump.

Which deleted rows the dump held is derived, not guessed from clocks: the workload's one client writes one row
at a time, so ledger ids grow in commit order, and a dump's snapshot holds exactly the table's first rows by
id - as many as the merge read from the dump (its `inDump`). Every row of the dump was still in the table
when the DELETE ran (earlier scenarios only ever bring this same dump back), so the dump's rows are the
`inDump` smallest ids among the rows there now and the rows the DELETE returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from tools.drill.workload import Ack

# The mistake: a cleanup whose WHERE clause matches every DELETE_EVERY-th client row, so it hits rows written
# long before the dump, rows written while it ran and rows written after it, while the app keeps writing.
DELETE_EVERY = 3
PREDICATE = f"client_seq % {DELETE_EVERY} = 0"  # as the report shows it
COLUMNS = "id, client_seq, payload, site, committed_at"


@dataclass(frozen=True)
class Row:
    """A ledger row as the database holds it."""

    id: int
    seq: int
    payload: str
    site: str
    committed_at: datetime


def hit(seq: int) -> bool:
    """Whether the mistaken DELETE matches the client's row `seq`."""
    return seq % DELETE_EVERY == 0


def mistaken_delete(connection: psycopg.Connection) -> dict[int, Row]:
    """Run the mistaken DELETE (committed on return, the connection being in autocommit); the rows it deleted."""
    statement = sql.SQL("DELETE FROM ledger WHERE client_seq % {} = 0 RETURNING {}").format(
        sql.Literal(DELETE_EVERY), sql.SQL(COLUMNS))
    return {row.seq: row for row in (Row(*r) for r in connection.execute(statement).fetchall())}


def ledger_rows(connection: psycopg.Connection) -> dict[int, Row]:
    """client_seq -> row, for every row of the ledger."""
    rows = connection.execute(sql.SQL("SELECT {} FROM ledger").format(sql.SQL(COLUMNS))).fetchall()
    return {row.seq: row for row in (Row(*r) for r in rows)}


@dataclass
class MergeAccount:
    """What a merge brought back of the deleted rows, against what the dump held (client sequence numbers)."""

    deleted: list[int]
    dumped: list[int]  # deleted rows the dump held: the merge must bring back exactly these
    back: list[int]  # deleted rows in the table after the merge
    changed: list[int] = field(default_factory=list)  # back, but not as the DELETE returned them
    dumped_not_back: list[int] = field(default_factory=list)
    back_not_dumped: list[int] = field(default_factory=list)
    altered: list[int] = field(default_factory=list)  # rows not deleted whose id, site or commit time moved

    @property
    def ok(self) -> bool:
        """Every dumped deleted row back as it was, nothing else brought or changed."""
        return not (self.changed or self.dumped_not_back or self.back_not_dumped or self.altered)

    def to_json(self) -> dict[str, Any]:
        """For the report's evidence (lists cut to 50)."""
        return {"deleted": len(self.deleted), "deletedInDump": len(self.dumped), "deletedBack": len(self.back),
                "changed": self.changed[:50], "dumpedNotBack": self.dumped_not_back[:50],
                "backNotDumped": self.back_not_dumped[:50], "altered": self.altered[:50]}


def account(deleted: Mapping[int, Row], after: Mapping[int, Row], in_dump: int,
            acks: Mapping[int, Ack]) -> MergeAccount:
    """Compare the table `after` the merge with the rows the DELETE returned, the dump's row count and the
    workload's acknowledgements (for the rows the DELETE left alone: the merge must not touch them)."""
    ids = sorted({r.id for r in after.values()} | {r.id for r in deleted.values()})
    # A dump holding more rows than the table ever had means the derivation's premise is broken: none is dumped,
    # and every row brought back shows up as not dumped.
    boundary = ids[in_dump - 1] if 0 < in_dump <= len(ids) else None
    dumped = {seq for seq, row in deleted.items() if boundary is not None and row.id <= boundary}
    back = {seq for seq in deleted if seq in after}
    altered = [seq for seq, row in sorted(after.items()) if seq not in deleted and seq in acks
               and (row.id, row.site, row.committed_at) != (acks[seq].id, acks[seq].site, acks[seq].committed_at)]
    return MergeAccount(sorted(deleted), sorted(dumped), sorted(back),
                        changed=sorted(seq for seq in back if after[seq] != deleted[seq]),
                        dumped_not_back=sorted(dumped - back), back_not_dumped=sorted(back - dumped), altered=altered)
