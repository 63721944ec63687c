"""A custom-format archive's table of contents, read exactly, and pg_restore's SQL output, split exactly.

`pg_restore --list --verbose` prints one line per entry, `DUMPID; TABLEOID OID
DESC NAMESPACE TAG OWNER`, followed by `;	depends on: ID ...`. The names at the
end are printed unquoted, so a name with a space is ambiguous there; nothing
here reads them. An entry is known by its dump id, its catalog id (the OID of
the object in the dumped database, which the manifest's catalog also records)
and the dump ids it depends on. Its type (DESC) is one of pg_dump's fixed
words; where a namespace could continue a shorter type ("TABLE" in a schema
named "DATA x"), the catalog id settles it: a table is a pg_class row, its data
is not.

pg_restore writes an archive's table of contents first and its data after it,
so the listing, and the SQL of entries that carry no data, need only the
archive's first bytes (`head`): a table restore reads the whole dump once, for
the rows, whatever its size.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from backup_job.errors import ExitCode, JobError

PG_CLASS, PG_ATTRDEF, PG_CONSTRAINT, PG_REWRITE, PG_TRIGGER, PG_POLICY = 1259, 2604, 2606, 2618, 2620, 3256
CATALOG_NAMES = {PG_CONSTRAINT: "pg_constraint", PG_TRIGGER: "pg_trigger", PG_POLICY: "pg_policy",
                 PG_REWRITE: "pg_rewrite"}

# pg_dump's entry types, and the catalog (tableoid) each is recorded under; 0 for entries that are no catalog row.
_TYPES = {
    "TABLE": PG_CLASS, "VIEW": PG_CLASS, "MATERIALIZED VIEW": PG_CLASS, "SEQUENCE": PG_CLASS, "INDEX": PG_CLASS,
    "FOREIGN TABLE": PG_CLASS, "TABLE DATA": 0, "MATERIALIZED VIEW DATA": 0, "TABLE ATTACH": 0, "INDEX ATTACH": 0,
    "SEQUENCE OWNED BY": 0, "SEQUENCE SET": 0, "ROW SECURITY": 0, "ACL": 0, "COMMENT": 0, "SECURITY LABEL": 0,
    "DEFAULT": PG_ATTRDEF, "CONSTRAINT": PG_CONSTRAINT, "CHECK CONSTRAINT": PG_CONSTRAINT,
    "FK CONSTRAINT": PG_CONSTRAINT, "TRIGGER": PG_TRIGGER, "POLICY": PG_POLICY, "RULE": PG_REWRITE,
    "DEFAULT ACL": 826, "SCHEMA": 2615, "EXTENSION": 3079, "FUNCTION": 1255, "PROCEDURE": 1255, "AGGREGATE": 1255,
    "TYPE": 1247, "DOMAIN": 1247, "SHELL TYPE": 1247, "BLOB": 2613, "BLOBS": 0, "BLOB METADATA": 0,
    "LARGE OBJECT": 2613, "PUBLICATION": 6104, "PUBLICATION TABLE": 6106, "PUBLICATION TABLES IN SCHEMA": 6237,
    "EVENT TRIGGER": 3466, "STATISTICS": 3381, "DATABASE": 1262, "DATABASE PROPERTIES": 0, "ENCODING": 0,
    "STDSTRINGS": 0, "SEARCHPATH": 0,
}
_BY_LENGTH = sorted(_TYPES, key=len, reverse=True)
_LINE = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")
_DEPENDS = re.compile(r"^;\s+depends on:((?: \d+)*)\s*$")
DATA_TYPES = ("TABLE DATA", "BLOBS", "BLOB", "LARGE OBJECT")  # entries whose rows follow the table of contents


@dataclass(frozen=True)
class Entry:
    """One table-of-contents entry."""

    dump_id: int
    catalog: tuple[int, int]  # (tableoid, oid) of the dumped object; (0, 0) where none
    kind: str  # pg_dump's DESC
    depends: tuple[int, ...] = ()

    @property
    def oid(self) -> int:
        """The object's OID in the dumped database (a TABLE DATA entry carries its table's)."""
        return self.catalog[1]


def _kind(tableoid: int, rest: str) -> str:
    """The entry type at the start of `rest`, the longest one that agrees with the entry's catalog; "" for a type
    this module does not know (nothing selects such an entry by its type). The names after it are never read."""
    candidates = [k for k in _BY_LENGTH if rest == k or rest.startswith(k + " ")]
    agreeing = [k for k in candidates if _TYPES[k] == tableoid]
    return (agreeing or candidates or [""])[0]


def parse_listing(text: str) -> dict[int, Entry]:
    """`pg_restore --list --verbose` output as entries by dump id, in the archive's order."""
    entries: dict[int, Entry] = {}
    last: Entry | None = None
    for line in text.splitlines():
        if (match := _LINE.match(line)) is not None:
            dump_id, tableoid, oid = int(match[1]), int(match[2]), int(match[3])
            last = Entry(dump_id, (tableoid, oid), _kind(tableoid, match[4]))
            entries[dump_id] = last
        elif last is not None and (depends := _DEPENDS.match(line)) is not None:
            last = Entry(last.dump_id, last.catalog, last.kind, tuple(int(d) for d in depends[1].split()))
            entries[last.dump_id] = last
    return entries


def use_list(entries: Iterable[Entry]) -> str:
    """A `pg_restore --use-list` file selecting `entries` (pg_restore reads the dump id of each line)."""
    return "".join(f"{entry.dump_id}; {entry.catalog[0]} {entry.catalog[1]} {entry.kind}\n" for entry in entries)


@dataclass
class Toc:
    """The table of contents of one archive, and its dependants graph."""

    entries: dict[int, Entry]
    dependants: dict[int, list[int]] = field(default_factory=dict)
    _by_object: dict[tuple[str, int], Entry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in self.entries.values():
            self._by_object.setdefault((entry.kind, entry.oid), entry)
            for dep in entry.depends:
                self.dependants.setdefault(dep, []).append(entry.dump_id)

    def of_kind(self, *kinds: str) -> list[Entry]:
        """Entries of these types, in archive order."""
        return [e for e in self.entries.values() if e.kind in kinds]

    def find(self, kind: str, oid: int) -> Entry | None:
        """The entry of `kind` for the object with this OID."""
        return self._by_object.get((kind, oid))

    def depending_on(self, dump_ids: Iterable[int]) -> list[Entry]:
        """Entries that depend directly on any of `dump_ids`."""
        found: dict[int, Entry] = {}
        for dump_id in dump_ids:
            for dependant in self.dependants.get(dump_id, []):
                found[dependant] = self.entries[dependant]
        return list(found.values())


def run_pg_restore(command: list[str], data: bytes, what: str) -> bytes:
    """Run pg_restore reading `data` on stdin; its stdout, or JobError(DUMP_FAILED) with its message."""
    result = subprocess.run(command, input=data, capture_output=True)
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip()[-1000:]
        raise JobError(ExitCode.DUMP_FAILED, f"pg_restore could not {what}: {detail}")
    return result.stdout


_RESTRICT = re.compile(rb"^\\restrict ([A-Za-z0-9]+)\n", re.M)


def script(sql_text: bytes) -> str:
    """pg_restore's SQL output as one script a driver can run: without psql's `\\restrict` guard lines.

    pg_restore (15.14 and later) opens its output with `\\restrict KEY` and closes it with `\\unrestrict KEY`,
    psql meta-commands with a random key; only lines with that exact key are dropped.
    """
    match = _RESTRICT.search(sql_text)
    if match is not None:
        key = match[1]
        sql_text = sql_text.replace(b"\\restrict " + key + b"\n", b"", 1).replace(b"\\unrestrict " + key + b"\n", b"")
    return sql_text.decode()


class CopyBlock:
    """The rows of one `COPY ... FROM stdin;` block of pg_restore's output, as they stream."""

    def __init__(self, lines: Iterator[bytes]):
        self._lines = lines
        self.done = False

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The block's rows (COPY text format, newline-terminated), in chunks of about `size` bytes."""
        buffer: list[bytes] = []
        held = 0
        for line in self._lines:
            if line == b"\\.\n":
                self.done = True
                break
            buffer.append(line)
            held += len(line)
            if held >= size:
                yield b"".join(buffer)
                buffer, held = [], 0
        if buffer:
            yield b"".join(buffer)
        if not self.done:
            raise JobError(ExitCode.DUMP_FAILED, "pg_restore's output ended inside a table's rows")


def copy_blocks(stream: Iterable[bytes]) -> Iterator[CopyBlock]:
    """The COPY blocks of pg_restore's data-only SQL output, in order; each must be read before the next.

    Outside a block pg_restore writes only its own comments (names in them have their line breaks replaced),
    SET lines and blank lines, so a block starts at the first line that begins with `COPY `. Its header ends
    at the first ` FROM stdin;` that is not inside a quoted name (an even number of `"` before it: a quote
    inside a quoted name is doubled), and its rows end at the line `\\.`, which a row cannot be (COPY's text
    format escapes a backslash).
    """
    lines = iter(stream)
    for line in lines:
        if not line.startswith(b"COPY "):
            continue
        header = line
        while not (header.endswith(b" FROM stdin;\n") and header.count(b'"') % 2 == 0):
            more = next(lines, None)
            if more is None:
                raise JobError(ExitCode.DUMP_FAILED, "pg_restore's output ended inside a COPY statement")
            header += more
        block = CopyBlock(lines)
        yield block
        if not block.done:
            for _ in block.chunks():
                pass
