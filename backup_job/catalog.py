"""What a backup holds, by identity: read from the database's catalog in the dump's own snapshot.

The manifest of every backup carries this catalog, so a restore names tables by
the database's own identity - their OIDs, which the dump's table of contents
carries too - never by matching text:

- `relations`: every table, partition, view, materialized view, sequence and
  index outside the system schemas, with its OID, schema, name and kind; a
  table also has its columns (name, type as `format_type` writes it with
  every user type schema-qualified, NOT NULL, generated, identity), its key
  (the primary key, else the narrowest unique index over NOT NULL columns
  without expressions or a predicate), its row-level-security switches, each
  column's default (and the relations the default uses, such as another
  table's sequence) and, for a partition, its parent; an index has its
  definition.
- `tableObjects`: constraints, triggers, policies and rules of those tables
  by OID, table OID, name and definition (DEFINITIONS), so a table restore
  can tell which of them the target still has unchanged.
- `schemas`: the schemas' OIDs and names.
- `roles`: every role the dump grants to (ACLs of schemas, relations,
  columns, functions, types, large objects and default privileges) or names
  in a row-level-security policy or as a default-privilege owner; `owners`:
  every role that owns a dumped object. A restore checks them before it
  writes anything.

`tableRowCounts` (keyed `schema.table`) stays for the tools that read it; the
row counts are also on each table of the catalog, which is exact where a
dot in a name makes the text key ambiguous.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import psycopg

from backup_job.errors import ExitCode, JobError, printable

CATALOG_FORMAT = 1

# Schemas of the system, never dumped as user objects.
_USER_NAMESPACE = """n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"""
_NOT_EXTENSION_MEMBER = """NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                   AND d.objid = c.oid AND d.deptype = 'e')"""

_RELATIONS = f"""
SELECT c.oid::bigint, n.nspname, c.relname, c.relkind::text,
       (SELECT i.inhparent::bigint FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition),
       CASE WHEN c.relkind IN ('r', 'p') THEN (
           SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                            a.attgenerated <> '', a.attidentity::text, pg_get_expr(d.adbin, d.adrelid),
                                            (SELECT json_agg(DISTINCT u.refobjid::bigint) FROM pg_depend u
                                             WHERE u.classid = 'pg_attrdef'::regclass AND u.objid = d.oid
                                               AND u.refclassid = 'pg_class'::regclass AND u.refobjid <> c.oid))
                           ORDER BY a.attnum)
           FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) END,
       CASE WHEN c.relkind IN ('r', 'p') THEN (
           SELECT json_agg(a.attname ORDER BY k.ord)
           FROM (SELECT x.indkey, x.indnkeyatts FROM pg_index x
                 WHERE x.indrelid = c.oid AND x.indisunique AND x.indpred IS NULL AND x.indexprs IS NULL
                   AND NOT EXISTS (SELECT 1 FROM unnest(x.indkey::int2[]) AS u(attnum)
                                   JOIN pg_attribute na ON na.attrelid = c.oid AND na.attnum = u.attnum
                                   WHERE NOT na.attnotnull)
                 ORDER BY x.indisprimary DESC, x.indnkeyatts, x.indexrelid LIMIT 1) best
           CROSS JOIN LATERAL unnest((best.indkey::int2[])[0:best.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum) END,
       json_build_array(c.relrowsecurity, c.relforcerowsecurity),
       CASE WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid) END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I') AND {_USER_NAMESPACE} AND {_NOT_EXTENSION_MEMBER}
ORDER BY n.nspname, c.relname
"""  # noqa: S608 - constant SQL fragments, no input

# How a table's own constraint, trigger, policy or rule `o` is defined, as the server writes it (with
# search_path = pg_catalog, every name qualified); NULL for one it inherits from a parent table, which the
# parent's definition makes. A table restore compares these with the target's to tell a changed object.
DEFINITIONS = {
    "pg_constraint": "CASE WHEN o.conislocal AND o.conparentid = 0 THEN pg_get_constraintdef(o.oid) END",
    "pg_trigger": "CASE WHEN o.tgparentid = 0 THEN pg_get_triggerdef(o.oid) || ' ' || o.tgenabled::text END",
    "pg_policy": """concat_ws(' ', o.polcmd::text, o.polpermissive,
                       (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END, ','
                                          ORDER BY 1) FROM unnest(o.polroles) r),
                       'USING', pg_get_expr(o.polqual, o.polrelid), 'CHECK', pg_get_expr(o.polwithcheck, o.polrelid))""",
    "pg_rewrite": "pg_get_ruledef(o.oid) || ' ' || o.ev_enabled::text",
}

_TABLE_OBJECTS = f"""
SELECT 'pg_constraint', o.oid::bigint, o.conrelid::bigint, o.conname, {DEFINITIONS["pg_constraint"]}
  FROM pg_constraint o
  JOIN pg_class c ON c.oid = o.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_NAMESPACE}
UNION ALL
SELECT 'pg_trigger', o.oid::bigint, o.tgrelid::bigint, o.tgname, {DEFINITIONS["pg_trigger"]} FROM pg_trigger o
  JOIN pg_class c ON c.oid = o.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE NOT o.tgisinternal AND {_USER_NAMESPACE}
UNION ALL
SELECT 'pg_policy', o.oid::bigint, o.polrelid::bigint, o.polname, {DEFINITIONS["pg_policy"]} FROM pg_policy o
  JOIN pg_class c ON c.oid = o.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_NAMESPACE}
UNION ALL
SELECT 'pg_rewrite', o.oid::bigint, o.ev_class::bigint, o.rulename, {DEFINITIONS["pg_rewrite"]} FROM pg_rewrite o
  JOIN pg_class c ON c.oid = o.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE o.rulename <> '_RETURN' AND {_USER_NAMESPACE}
ORDER BY 1, 2
"""  # noqa: S608 - constant SQL fragments, no input

_SCHEMAS = f"SELECT n.oid::bigint, n.nspname FROM pg_namespace n WHERE {_USER_NAMESPACE} ORDER BY 2"  # noqa: S608 - constant SQL fragments

# Grantees of every ACL a dump carries, policy roles and default-privilege owners (oid 0, PUBLIC, is no role).
_ROLES = f"""
SELECT coalesce(json_agg(r.rolname ORDER BY r.rolname), '[]') FROM pg_roles r WHERE r.oid IN (
  SELECT a.grantee FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
    aclexplode(c.relacl) a WHERE c.relacl IS NOT NULL AND a.grantee <> c.relowner AND {_USER_NAMESPACE}
  UNION SELECT (aclexplode(a.attacl)).grantee FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attacl IS NOT NULL AND {_USER_NAMESPACE}
  UNION SELECT a.grantee FROM pg_namespace n, aclexplode(n.nspacl) a
    WHERE n.nspacl IS NOT NULL AND a.grantee <> n.nspowner AND {_USER_NAMESPACE}
  UNION SELECT a.grantee FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(p.proacl) a
    WHERE p.proacl IS NOT NULL AND a.grantee <> p.proowner AND {_USER_NAMESPACE}
  UNION SELECT a.grantee FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace, aclexplode(t.typacl) a
    WHERE t.typacl IS NOT NULL AND a.grantee <> t.typowner AND {_USER_NAMESPACE}
  UNION SELECT a.grantee FROM pg_largeobject_metadata m, aclexplode(m.lomacl) a
    WHERE m.lomacl IS NOT NULL AND a.grantee <> m.lomowner
  UNION SELECT a.grantee FROM pg_foreign_server s, aclexplode(s.srvacl) a WHERE s.srvacl IS NOT NULL AND a.grantee <> s.srvowner
  UNION SELECT a.grantee FROM pg_foreign_data_wrapper w, aclexplode(w.fdwacl) a
    WHERE w.fdwacl IS NOT NULL AND a.grantee <> w.fdwowner
  UNION SELECT a.grantee FROM pg_language l, aclexplode(l.lanacl) a WHERE l.lanacl IS NOT NULL AND a.grantee <> l.lanowner
  UNION SELECT u.umuser FROM pg_user_mappings u
  UNION SELECT (aclexplode(d.defaclacl)).grantee FROM pg_default_acl d
  UNION SELECT d.defaclrole FROM pg_default_acl d
  UNION SELECT unnest(o.polroles) FROM pg_policy o)
"""  # noqa: S608 - constant SQL fragments, no input

_OWNERS = f"""
SELECT coalesce(json_agg(r.rolname ORDER BY r.rolname), '[]') FROM pg_roles r WHERE r.oid IN (
  SELECT c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_NAMESPACE}
  UNION SELECT n.nspowner FROM pg_namespace n WHERE {_USER_NAMESPACE}
  UNION SELECT p.proowner FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_USER_NAMESPACE}
  UNION SELECT t.typowner FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {_USER_NAMESPACE}
  UNION SELECT m.lomowner FROM pg_largeobject_metadata m)
"""  # noqa: S608 - constant SQL fragments, no input


def read_catalog(connection: psycopg.Connection) -> dict[str, Any]:
    """The catalog of what a dump taken in this connection's snapshot holds (see the module docstring)."""
    relations = []
    for oid, schema, name, kind, parent, columns, key, security, index in connection.execute(_RELATIONS).fetchall():
        relation: dict[str, Any] = {"oid": oid, "schema": schema, "name": name, "kind": kind}
        if kind in ("r", "p"):
            relation.update(parent=parent, key=key, rowSecurity=security[0], forceRowSecurity=security[1], columns=[
                {"name": c[0], "type": c[1], "notNull": c[2], "generated": c[3], "identity": c[4], "default": c[5],
                 "defaultUses": c[6] or []} for c in columns or []
            ])
        elif index is not None:
            relation["definition"] = index
        relations.append(relation)
    objects = [{"catalog": catalog, "oid": oid, "table": table, "name": name, "definition": definition}
               for catalog, oid, table, name, definition in connection.execute(_TABLE_OBJECTS).fetchall()]
    schemas = [{"oid": oid, "name": name} for oid, name in connection.execute(_SCHEMAS).fetchall()]
    roles = connection.execute(_ROLES).fetchone()
    owners = connection.execute(_OWNERS).fetchone()
    assert roles is not None and owners is not None  # an aggregate always returns one row
    return {"format": CATALOG_FORMAT, "relations": relations, "tableObjects": objects, "schemas": schemas,
            "roles": roles[0], "owners": owners[0]}


def sql_name(schema: str, name: str) -> str:
    """`schema.name` as SQL writes it, and as `--table` takes it: each part bare when it is a plain lower-case
    word, else quoted, so the text names exactly one table."""
    return f"{_quoted(schema)}.{_quoted(name)}"


def display(schema: str, name: str) -> str:
    """`sql_name` for a message or a log line: characters that are not printable are escaped (`\\x0a`), so a
    name can never move a terminal's cursor or split a log line."""
    return printable(sql_name(schema, name))


def quote(identifier: str) -> str:
    """One identifier, as `display` shows it."""
    return printable(_quoted(identifier))


def _quoted(identifier: str) -> str:
    plain = identifier and (identifier[0].islower() or identifier[0] == "_") and identifier.isascii() and all(
        ch.islower() or ch.isdigit() or ch in "_$" for ch in identifier)
    return identifier if plain else '"' + identifier.replace('"', '""') + '"'


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class TableName:
    """A `--table` argument as SQL reads it: `[schema.]table`, each part bare (folded to lower case) or quoted."""

    schema: str | None
    name: str

    @classmethod
    def parse(cls, text: str) -> TableName:
        """Parse `text`; a malformed name is JobError(USAGE)."""
        parts: list[str] = []
        i = 0
        while True:
            if i < len(text) and text[i] == '"':
                end, part = i + 1, []
                while True:
                    close = text.find('"', end)
                    if close < 0:
                        raise JobError(ExitCode.USAGE, f"--table {text!r}: unterminated quoted name")
                    part.append(text[end:close])
                    if text[close + 1:close + 2] == '"':
                        part.append('"')
                        end = close + 2
                        continue
                    i = close + 1
                    break
                parts.append("".join(part))
            else:
                dot = text.find(".", i)
                word = text[i:] if dot < 0 else text[i:dot]
                if not word or '"' in word:
                    raise JobError(ExitCode.USAGE, f"--table {text!r} is not [SCHEMA.]TABLE (quote names that "
                                                   "hold dots, quotes or capitals: 'public.\"My Table\"')")
                parts.append(word.translate(_ASCII_LOWER))  # PostgreSQL folds only A-Z
                i = len(text) if dot < 0 else dot
            if i == len(text):
                break
            if text[i] != ".":
                raise JobError(ExitCode.USAGE, f"--table {text!r} is not [SCHEMA.]TABLE")
            i += 1
        if len(parts) > 2 or not all(parts):
            raise JobError(ExitCode.USAGE, f"--table {text!r} is not [SCHEMA.]TABLE")
        return cls(parts[0], parts[1]) if len(parts) == 2 else cls(None, parts[0])


class Catalog:
    """A manifest's catalog, with look-ups by OID and by name."""

    def __init__(self, data: dict[str, Any]):
        self.relations = {r["oid"]: r for r in data["relations"]}
        self.objects = {(o["catalog"], o["oid"]): o for o in data["tableObjects"]}
        self.schemas = {s["oid"]: s["name"] for s in data["schemas"]}
        self.tables = [r for r in self.relations.values() if r["kind"] in ("r", "p")]  # and partitioned ones
        self._children: dict[int, list[dict[str, Any]]] = {}
        for table in self.tables:
            if table.get("parent") is not None:
                self._children.setdefault(table["parent"], []).append(table)

    def partitions(self, oid: int) -> list[dict[str, Any]]:
        """Every partition below table `oid`, leaves and intermediate ones."""
        found, todo = [], [oid]
        while todo:
            children = self._children.get(todo.pop(), [])
            found += children
            todo += [c["oid"] for c in children]
        return found

    def resolve(self, wanted: TableName) -> dict[str, Any]:
        """The one table `wanted` names; JobError(USAGE) naming close matches when none or several do."""
        matches = [t for t in self.tables if t["name"] == wanted.name
                   and (wanted.schema is None or t["schema"] == wanted.schema)]
        if len(matches) == 1:
            return matches[0]
        shown = display(wanted.schema, wanted.name) if wanted.schema else quote(wanted.name)
        if matches:
            raise JobError(ExitCode.USAGE, f"--table {shown} is ambiguous: "
                                           f"{', '.join(display(t['schema'], t['name']) for t in matches)}; name the schema")
        names = {display(t["schema"], t["name"]): t for t in self.tables}
        close = difflib.get_close_matches(display(wanted.schema or "public", wanted.name), names, n=5, cutoff=0.5)
        close += [n for n, t in names.items() if t["name"] == wanted.name and n not in close]
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise JobError(ExitCode.USAGE, f"--table {shown} is not a table in this backup{hint}")
