"""The data-deletion scenario's accounting (tools.drill.deletion), on rows built here: no database, no root.

A ledger of nine rows whose dump held the first six; the mistaken DELETE removed every third row (3, 6, 9);
the app then wrote rows 10 and 11. A correct merge brings back 3 and 6 as they were and nothing else.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tools.drill.deletion import Row, account, hit
from tools.drill.workload import Ack

START = datetime(2026, 12, 1, tzinfo=UTC)
IN_DUMP = 6


def _row(seq: int) -> Row:
    # ids run ahead of client sequence numbers (a failed insert still takes an id), in the same order
    return Row(seq + 100, seq, f"payload-{seq}", "us", START + timedelta(seconds=seq))


def _ack(row: Row) -> Ack:
    moment = row.committed_at + timedelta(milliseconds=5)
    return Ack(row.seq, row.id, row.site, "raptorflow", row.committed_at, "0/0", "0/0", moment.timestamp(), moment)


def _world() -> tuple[dict[int, Row], dict[int, Row], dict[int, Ack]]:
    """(deleted, the table after a correct merge, acknowledgements)."""
    rows = {seq: _row(seq) for seq in range(1, 12)}
    deleted = {seq: rows[seq] for seq in range(1, 10) if hit(seq)}
    after = {seq: row for seq, row in rows.items() if seq != 9}
    return deleted, after, {seq: _ack(row) for seq, row in rows.items()}


def test_the_mistake_hits_rows_before_and_after_the_dump():
    deleted, _, _ = _world()
    assert sorted(deleted) == [3, 6, 9]


def test_a_correct_merge_brings_back_exactly_the_deleted_rows_the_dump_held():
    deleted, after, acks = _world()
    result = account(deleted, after, IN_DUMP, acks)
    assert result.ok, result
    assert result.dumped == [3, 6] and result.back == [3, 6]
    assert result.to_json()["deletedInDump"] == 2 and result.to_json()["deleted"] == 3


def test_a_dumped_deleted_row_that_did_not_come_back_is_reported():
    deleted, after, acks = _world()
    del after[6]
    result = account(deleted, after, IN_DUMP, acks)
    assert not result.ok and result.dumped_not_back == [6]


def test_a_row_brought_back_with_other_content_is_reported():
    deleted, after, acks = _world()
    after[3] = replace(after[3], payload="tampered")
    result = account(deleted, after, IN_DUMP, acks)
    assert not result.ok and result.changed == [3]


def test_a_row_back_that_the_dump_did_not_hold_is_reported():
    deleted, after, acks = _world()
    after[9] = deleted[9]
    result = account(deleted, after, IN_DUMP, acks)
    assert not result.ok and result.back_not_dumped == [9]


def test_a_row_the_delete_left_alone_keeps_the_id_site_and_time_the_app_acknowledged():
    deleted, after, acks = _world()
    after[10] = replace(after[10], id=999)
    result = account(deleted, after, IN_DUMP, acks)
    assert not result.ok and result.altered == [10]


def test_a_dump_larger_than_the_table_ever_was_counts_no_row_as_dumped():
    deleted, after, acks = _world()
    result = account(deleted, after, 50, acks)
    assert result.dumped == [] and result.back_not_dumped == [3, 6] and not result.ok
