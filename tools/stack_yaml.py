"""YAML as the Pulumi CLI reads a stack file (gopkg.in/yaml.v3's YAML 1.2 scalars, strictly; what it refuses and
why: tools/stack_files.py's docstring), and `dump_yaml`, which writes what the CLI reads back as written."""

from __future__ import annotations

import math
import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

PROJECT = "raptorflow-dr"
# The expanded size a stack file may reach; aliases are refused, so this only bounds honest files.
MAX_STACK_FILE_BYTES = 1_000_000
# Mappings and lists nested in a stack file, counting the document's own mapping and `config:`. The plan's config
# nests a few levels; PyYAML's composer recurses once per level (1000 levels were a RecursionError), the CLI's
# yaml.v3 stops at 10000.
MAX_NESTING = 64


class StackFileError(Exception):
    """A stack file (or Pulumi.yaml) that the Pulumi CLI would refuse, or a malformed override."""


# ---------------------------------------------------------------- scalars as gopkg.in/yaml.v3 resolves them

_TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL, TIMESTAMP = (_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp"))
MAP, SEQ = _TAG + "map", _TAG + "seq"
CORE_TAGS = "!!str, !!int, !!float, !!bool, !!null, !!seq, !!map"
# yaml.v3's resolveTable: the first character of a plain scalar picks what it may be (none of these: a string).
_HINTS = {**dict.fromkeys("+-", "S"), **dict.fromkeys("0123456789", "D"), **dict.fromkeys("yYnNtTfFoO~", "M"), ".": "."}
# yaml.v3's resolveMap: the words it knows (no yes/no/on/off: those are YAML 1.1).
_WORDS: dict[str, tuple[str, Any]] = {
    **dict.fromkeys(("true", "True", "TRUE"), (BOOL, True)),
    **dict.fromkeys(("false", "False", "FALSE"), (BOOL, False)),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), (NULL, None)),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), (FLOAT, math.nan)),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), (FLOAT, math.inf)),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), (FLOAT, -math.inf)),
}
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_FLOAT = re.compile(r"[0-9._eE+-]+")
_DIGITS = {2: frozenset("01"), 8: frozenset("01234567"), 10: frozenset("0123456789"),
           16: frozenset("0123456789abcdefABCDEF")}
_INT64 = 2**63
_UINT64 = 2**64
# yaml.v3's timestamp layouts (Go time.Parse): 2006-1-2T15:4:5.999999999Z07:00 (T or t), 2006-1-2 15:4:5.999999999,
# 2006-1-2. Month, day, hour, minute and second take one or two digits; a fraction any number.
_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})(?:[.,][0-9]+)?"
    r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?)?"
)


def _go_parse_uint(text: str, base: int) -> int | None:
    """strconv.ParseUint(text, base, 64): base 0 reads a 0b/0o/0x prefix (either case), or a leading 0 as octal."""
    if not text:
        return None
    if base == 0:
        base = 10
        if text[0] == "0":
            prefix = text[1:2].lower() if len(text) >= 3 else ""
            base = {"b": 2, "o": 8, "x": 16}.get(prefix, 8)
            text = text[2:] if prefix in ("b", "o", "x") else text[1:]
            if not text:  # "0" (and "00"): octal with no digits left is 0
                return 0
    if not set(text) <= _DIGITS[base]:
        return None
    value = int(text, base)
    return value if value < _UINT64 else None


def _go_parse_int(text: str, base: int) -> int | None:
    """strconv.ParseInt(text, base, 64): an optional sign, then ParseUint, within int64."""
    sign = text[:1]
    magnitude = _go_parse_uint(text[1:] if sign in ("+", "-") else text, base)
    if magnitude is None:
        return None
    value = -magnitude if sign == "-" else magnitude
    return value if -_INT64 <= value < _INT64 else None


def _go_parse_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64) for the decimal forms yaml.v3 hands it; None where Go errs (out of range)."""
    if not _GO_FLOAT.fullmatch(text):
        return None
    try:
        value = float(text)  # Python's float() and Go's ParseFloat agree on these forms, underscores included
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _go_timestamp(text: str) -> bool:
    """Whether yaml.v3's parseTimestamp takes `text` (one of its layouts, a real date and time)."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return False
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not (1 <= month <= 12 and 1 <= day <= days[month - 1]):
        return False
    if match["sep"] is None:
        return True
    if (match["zone"] is None) != (match["sep"] == " "):  # T/t needs a zone, a space takes none
        return False
    return int(match["h"]) < 24 and int(match["mi"]) < 60 and int(match["s"]) < 60


def go_yaml_resolve(text: str, tag: str | None = None) -> tuple[str, Any]:
    """(tag, value) of a scalar as yaml.v3's `resolve` gives them: `tag` None for a plain scalar, else its explicit
    core tag (the resolved tag may differ from it: the CLI then refuses, except an int read as a float)."""
    if tag == STR:
        return STR, text
    hint = _HINTS.get(text[:1]) if text else "N"
    if hint is None:
        return STR, text
    if text in _WORDS:
        return _WORDS[text]
    if hint == ".":
        value = _go_parse_float(text)
        if value is not None:
            return FLOAT, value
    elif hint in ("D", "S"):
        if tag in (None, TIMESTAMP) and _go_timestamp(text):
            return TIMESTAMP, text
        plain = text.replace("_", "")
        number = _go_parse_int(plain, 0)
        if number is None:
            number = _go_parse_uint(plain, 0)
        if number is not None:
            return INT, number
        if _YAML_STYLE_FLOAT.fullmatch(plain):
            value = _go_parse_float(plain)
            if value is not None:
                return FLOAT, value
        # resolve.go's fallbacks: the rest after 0b/0o goes to ParseInt (which takes a sign), then ParseUint.
        for prefix, base in (("0b", 2), ("0o", 8)):
            if plain.startswith(prefix):
                number = _go_parse_int(plain[2:], base)
                if number is None:
                    number = _go_parse_uint(plain[2:], base)
            elif plain.startswith("-" + prefix):
                number = _go_parse_int("-" + plain[3:], base)
            if number is not None:
                return INT, number
    return STR, text


def _construct_core_scalar(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """An int, float, bool or null node's value as yaml.v3 reads its text (an explicit !!float takes an int)."""
    value = go_yaml_resolve(node.value, node.tag)[1]
    return float(value) if node.tag == FLOAT else value


def _short_tag(tag: str) -> str:
    return ("!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag)[:60]


def _shown_text(text: str) -> str:
    """A scalar's text for a one-line message."""
    text = text if len(text) <= 60 else text[:57] + "..."
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _Refusal(yaml.YAMLError):
    """What a stack file may not hold, with where: the message after the file's name."""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, resolving scalars as gopkg.in/yaml.v3 does; refusing duplicate keys, aliases, nesting
    deeper than MAX_NESTING, tags beyond the YAML 1.2 core schema and scalars the CLI would not pass on as written."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._where: list[str | int | None] = []  # the path being composed (None: the root, or a key)
        self._depth = 0

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            # implicit[0]: a plain scalar without a tag; anything quoted (or a block scalar) is a string.
            return go_yaml_resolve(value)[0] if implicit[0] else STR
        return super().resolve(kind, value, implicit)

    def _refuse(self, reason: str, mark: Any, advice: str) -> _Refusal:
        parts = [part for part in self._where if part is not None]
        if len(parts) > 1 and parts[0] == "config":
            parts = [namespaced(str(parts[1])), *parts[2:]]
        where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(parts[:7]))
        where += "..." if len(parts) > 7 else ""
        line = f" (line {mark.line + 1})" if mark is not None else ""
        return _Refusal(f"{where + ': ' if where else ''}{reason}{line}; {advice}")

    def _check(self, event: yaml.Event, is_key: bool) -> None:
        """Refuse what yaml.v3 would read otherwise than as written, or what the plan does not take."""
        tag = getattr(event, "tag", None)
        no_tag = "write the value without the tag: of the tags, the plan takes the YAML 1.2 core schema's " + CORE_TAGS
        if not isinstance(event, yaml.ScalarEvent):
            expected = MAP if isinstance(event, yaml.MappingStartEvent) else SEQ
            if tag is not None and tag != expected:
                kind = "a mapping" if expected == MAP else "a list"
                accepted = "accepted on " + kind if tag in (STR, INT, FLOAT, BOOL, NULL, MAP, SEQ) else \
                    "accepted in stack files"
                raise self._refuse(f"the tag {_short_tag(tag)} is not {accepted}", event.start_mark, no_tag)
            return
        if (tag is None and not event.implicit[0]) or tag == STR:
            return  # quoted, a block scalar, or !!str: the text
        if tag is None:
            if is_key and event.value == "<<":
                raise self._refuse("`<<` (a YAML merge key) is not accepted in stack files: the Pulumi CLI merges "
                                   "the mapping it names", event.start_mark, "write the keys out")
            resolved, value = go_yaml_resolve(event.value)
        elif tag in (INT, FLOAT, BOOL, NULL):
            resolved, value = go_yaml_resolve(event.value, tag)
            if resolved != tag and not (tag == FLOAT and resolved == INT):
                raise self._refuse(f"cannot decode {_short_tag(resolved)} `{_shown_text(event.value)}` as a "
                                   f"{_short_tag(tag)} (the Pulumi CLI's error)", event.start_mark,
                                   "give a value of that type, or no tag")
        else:
            accepted = "accepted on a scalar" if tag in (MAP, SEQ) else "accepted in stack files"
            raise self._refuse(f"the tag {_short_tag(tag)} is not {accepted}", event.start_mark, no_tag)
        if resolved == TIMESTAMP:
            raise self._refuse(f"`{event.value}` is a timestamp to the Pulumi CLI, which hands the program Go's "
                               "rendering of it (such as '2001-12-14 00:00:00 +0000 UTC'), not this text",
                               event.start_mark, f"quote it ('{event.value}') to keep the text")
        if resolved == FLOAT and not math.isfinite(value):
            raise self._refuse(f"`{event.value}` is a float the Pulumi CLI cannot pass on (it hands config over as "
                               "JSON, which has no infinity or NaN)", event.start_mark,
                               "give a number, or quote it to keep the text")

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not accepted in stack files", event.start_mark
            )
        event = self.peek_event()
        collection = isinstance(event, yaml.CollectionStartEvent)
        self._where.append(index.value if isinstance(index, yaml.ScalarNode) else index)
        self._depth += collection
        try:
            if self._depth > MAX_NESTING:
                raise self._refuse(f"nests more than {MAX_NESTING} levels deep", event.start_mark,
                                   f"stack config nests a few levels; the plan reads at most {MAX_NESTING}")
            self._check(event, is_key=isinstance(parent, yaml.MappingNode) and index is None)
            return super().compose_node(parent, index)
        finally:
            self._depth -= collection
            self._where.pop()

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, f"keys must be strings; got {key!r}", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


for _core in (INT, FLOAT, BOOL, NULL):
    _StrictLoader.add_constructor(_core, _construct_core_scalar)


class _CliDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting every string that yaml.v3 would read as something else (PyYAML's own leaves
    `0o14`, `1e3`, `08` and `0X1F` plain: the CLI reads them as numbers) and a `<<` (a merge key to the CLI)."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return _TAG + "merge" if value == "<<" else go_yaml_resolve(value)[0]
        return STR if kind is yaml.ScalarNode else super().resolve(kind, value, implicit)


def dump_yaml(document: Any) -> str:
    """`document` as YAML that the Pulumi CLI (and load_yaml_mapping) reads back as the same values, keys in their
    order: for tools that rewrite a stack file (`yaml.safe_dump` writes strings the CLI reads as numbers)."""
    return yaml.dump(document, Dumper=_CliDumper, sort_keys=False, allow_unicode=True)


def load_yaml_mapping(path: Path, shown: str | None = None) -> dict[str, Any]:
    """The mapping in `path`, read strictly; StackFileError naming the file (as `shown`) otherwise."""
    shown = shown or path.name
    raw = path.read_bytes()
    if len(raw) > MAX_STACK_FILE_BYTES:
        raise StackFileError(f"{shown} is {len(raw)} bytes; stack files here stay under {MAX_STACK_FILE_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StackFileError(f"{shown} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _Refusal as exc:
        raise StackFileError(f"{shown}: {exc}") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{shown} is not valid YAML: {' '.join(str(exc).split())}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise StackFileError(f"{shown} must hold a mapping at the top (e.g. `config:`), not a {type(document).__name__}")
    return document


def namespaced(key: str) -> str:
    """`key` as the CLI reads it: with the project's namespace when it has none (`stackConfigNamespacedWithProject`
    in sdk/go/common/workspace/loaders.go), and `ns:config:name` as `ns:name` (`config.ParseKey`'s old form)."""
    if ":" not in key:
        return f"{PROJECT}:{key}"
    namespace, *middle, name = key.split(":")
    return f"{namespace}:{name}" if middle == ["config"] else key
