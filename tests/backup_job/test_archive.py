"""Reading pg_restore's listing and SQL output exactly, whatever the names in them hold."""

from __future__ import annotations

from backup_job.archive import copy_blocks, parse_listing, script


def test_an_entry_type_is_read_by_its_catalog_where_a_schema_name_could_continue_it():
    """`TABLE` in a schema named `DATA x` prints like `TABLE DATA`: the catalog id (a table is a pg_class row,
    its rows are not) says which it is; the names after the type are never read."""
    listing = """216; 1259 16395 TABLE DATA x orders owner
;	depends on: 12 13
3380; 0 16395 TABLE DATA public orders x owner
;	depends on: 216
3222; 2604 16398 DEFAULT public orders id owner
3223; 826 16400 DEFAULT ACL public DEFAULT PRIVILEGES FOR TABLES owner
1; 0 0 SOME FUTURE TYPE a b
"""
    entries = parse_listing(listing)
    assert [(e.dump_id, e.kind, e.oid, e.depends) for e in entries.values()] == [
        (216, "TABLE", 16395, (12, 13)), (3380, "TABLE DATA", 16395, (216,)), (3222, "DEFAULT", 16398, ()),
        (3223, "DEFAULT ACL", 16400, ()), (1, "", 0, ()),
    ]


def test_copy_blocks_end_where_pg_restore_ends_them_not_where_a_name_or_row_looks_like_it():
    output = [
        b"--\n", b"-- Data for Name: t FROM stdin; Type: TABLE DATA\n", b"SET x = 1;\n",
        b'COPY public."t FROM stdin;\n', b'""x" (a) FROM stdin;\n',
        b"COPY a row that looks like a header\n", b"\\\\.\n", b"\\.\n",
        b"\n", b"COPY public.u (b) FROM stdin;\n", b"\\.\n",
    ]
    rows = [b"".join(block.chunks()) for block in copy_blocks(output)]
    assert rows == [b"COPY a row that looks like a header\n\\\\.\n", b""]


def test_script_drops_only_the_restrict_lines_of_its_own_key():
    text = b"\\restrict K1\nSELECT '\\restrict K2';\n\\unrestrict K2\nCREATE TABLE t ();\n\\unrestrict K1\n"
    assert script(text) == "SELECT '\\restrict K2';\n\\unrestrict K2\nCREATE TABLE t ();\n"
