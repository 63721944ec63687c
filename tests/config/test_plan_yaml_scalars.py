"""Stack files' scalars read as the Pulumi CLI reads them: gopkg.in/yaml.v3's YAML 1.2 resolution, not PyYAML's 1.1.

The CLI loads `Pulumi.<stack>.yaml` with gopkg.in/yaml.v3 (pulumi/pulumi sdk/go/common/encoding/marshal.go, called by
`LoadProjectStackBytes` in sdk/go/common/workspace/loaders.go); which type a plain scalar gets is decided by
yaml.v3's `resolve` (resolve.go). Every row below is read differently by PyYAML's YAML 1.1 SafeLoader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tools.offline import ROOT
from tools.stack_files import StackFileError, config_string, dump_yaml, load_yaml_mapping, read_stack_config


def _read_value(folder: Path, text: str) -> Any:
    """The value of `raptorflow-dr:x: TEXT` in a stack file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Pulumi.dr.yaml"
    path.write_text(f"config:\n  raptorflow-dr:x: {text}\n")
    return load_yaml_mapping(path)["config"]["raptorflow-dr:x"]


def _same(found: Any, expected: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True in Python; not in a stack file)."""
    if type(found) is not type(expected):
        return False
    if isinstance(expected, dict):
        return found.keys() == expected.keys() and all(_same(found[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return len(found) == len(expected) and all(_same(f, e) for f, e in zip(found, expected, strict=True))
    return bool(found == expected)


# text, value yaml.v3 gives (PyYAML 1.1 gives something else for each).
CLI_READINGS = [
    ("12:30", "12:30"),                    # PyYAML: sexagesimal 750
    ("1:20:30", "1:20:30"),                # PyYAML: 4830
    ("190:20:30.15", "190:20:30.15"),      # PyYAML: sexagesimal float
    ("on", "on"), ("off", "off"), ("yes", "yes"), ("no", "no"),   # PyYAML: booleans
    ("On", "On"), ("NO", "NO"), ("Yes", "Yes"), ("OFF", "OFF"),
    ("=", "="),                            # PyYAML: the 1.1 `value` type, which SafeLoader cannot construct
    ("0o14", 12),                          # YAML 1.2 octal; PyYAML: the string "0o14"
    ("0O14", 12), ("-0o17", -15),          # Go's ParseInt(s, 0, 64) takes either case and a sign
    ("0X1F", 31), ("0B101", 5),            # PyYAML: strings (its 1.1 regexes know lower-case prefixes only)
    ("0b-1", -1), ("0o+7", 7),             # resolve.go's 0b/0o fallbacks parse the rest with ParseInt
    ("1e3", 1000.0), ("-2E-2", -0.02),     # PyYAML: strings (its 1.1 floats need a dot and a signed exponent)
    ("08", 8.0),                           # not octal, so ParseInt fails; yamlStyleFloat matches: a float
    ("1.0e+999", "1.0e+999"),              # ParseFloat's range error leaves a string; PyYAML: inf
    ("18446744073709551616", 1.8446744073709552e19),  # beyond uint64: a float; PyYAML: an int
    ("-9223372036854775809", -9.223372036854776e18),  # below int64: a float
]


@pytest.mark.parametrize("text, value", CLI_READINGS, ids=[text for text, _ in CLI_READINGS])
def test_plain_scalars_read_as_the_pulumi_cli_reads_them(tmp_path, text, value):
    assert _same(_read_value(tmp_path, text), value), f"{text!r}: yaml.v3 reads {value!r}"


def test_a_stack_file_of_mixed_scalars_reads_as_the_cli_reads_it(tmp_path):
    # Agreements with YAML 1.1 kept (010 is still octal: yaml.v3 keeps 1.1 octals "for compatibility"),
    # differences taken, quoting always a string, keys resolved the same way as values.
    text = """config:
  raptorflow-dr:x:
    legacyOctal: 010
    zero: 0
    hex: 0x1F
    underscores: 1_000
    binary: -0b101
    float: 1.5
    dotFloat: .5
    bool: True
    nothing: ~
    empty:
    time: 02:00
    quotedTime: "12:30"
    quotedInt: '010'
    on: is a string key
    yes: [y, n, off]
"""
    path = tmp_path / "Pulumi.dr.yaml"
    path.write_text(text)
    assert _same(load_yaml_mapping(path)["config"]["raptorflow-dr:x"], {
        "legacyOctal": 8, "zero": 0, "hex": 31, "underscores": 1000, "binary": -5, "float": 1.5, "dotFloat": 0.5,
        "bool": True, "nothing": None, "empty": None, "time": "02:00", "quotedTime": "12:30", "quotedInt": "010",
        "on": "is a string key", "yes": ["y", "n", "off"],
    })


def test_yes_is_not_a_boolean_for_a_declared_boolean_key(tmp_path):
    # Pulumi.yaml declares `promoted` a boolean; the CLI reads `yes` as a string and refuses the stack.
    (tmp_path / "Pulumi.yaml").write_text("name: raptorflow-dr\nconfig:\n  promoted:\n    type: boolean\n"
                                          "    default: false\n")
    (tmp_path / "Pulumi.dr.yaml").write_text("config:\n  raptorflow-dr:promoted: yes\n")
    with pytest.raises(StackFileError, match="configuration key 'promoted' must be of type 'boolean'"):
        read_stack_config("dr", tmp_path)


def test_an_unquoted_time_of_day_plans(run_cli, tmp_path):
    # `startTimeUtc: 12:30` is the string "12:30" to the CLI; PyYAML made it 750 and the plan refused it.
    text = (ROOT / "Pulumi.dr.yaml").read_text().replace('startTimeUtc: "03:00"', "startTimeUtc: 12:30")
    path = tmp_path / "Pulumi.dr.yaml"
    path.write_text(text)
    result = run_cli("tools.plan", "dr", "--stack-file", str(path))
    assert result.returncode == 0, result.stderr
    assert "schedule.startTimeOfDay.hours: 12" in result.stdout
    assert "schedule.startTimeOfDay.minutes: 30" in result.stdout


@pytest.mark.parametrize("value, text", [
    (8.0, "8"), (1e20, "100000000000000000000"), (1.8446744073709552e19, "18446744073709552000"),
    ({"days": 30.0, "ratio": 0.5}, '{"days": 30, "ratio": 0.5}'),
], ids=["integral-float", "1e20", "beyond-uint64", "nested"])
def test_floats_reach_the_program_as_go_writes_them(value, text):
    # The CLI hands a config value over as Go's json.Marshal writes it: an integral float64 has no ".0", so the
    # program's JSON decoding sees an int (`retentionDays: 30.0` passes a strict int field, as under the CLI).
    assert config_string(value) == text


def test_an_empty_value_reaches_the_program_as_null(tmp_path):
    # `raptorflow-dr:x:` is null; the CLI hands it over as JSON ("null"), the plan handed the program "None".
    assert config_string(_read_value(tmp_path, "")) == "null"


# ---------------------------------------------------------------- properties over generated values

_BASES = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2, "0": 8, "": 10}


def _digits(n: int, base: int) -> str:
    return {16: f"{n:x}", 8: f"{n:o}", 2: f"{n:b}", 10: f"{n:d}"}[base]


@given(n=st.integers(-(2**63), 2**63 - 1), prefix=st.sampled_from(sorted(_BASES)),
       underscores=st.lists(st.integers(1, 40), max_size=4), plus=st.booleans())
@example(n=12, prefix="0o", underscores=[], plus=False)
@example(n=31, prefix="0X", underscores=[], plus=False)
def test_integers_in_every_notation_go_accepts_read_back(tmp_path_factory, n, prefix, underscores, plus):
    # yaml.v3 drops every "_" and hands the rest to strconv.ParseInt(s, 0, 64): a sign, then 0x/0o/0b (either
    # case) or a leading 0 for octal.
    base = _BASES[prefix]
    if prefix == "0" and n == 0:
        prefix = ""
    sign = "-" if n < 0 else ("+" if plus else "")
    text = f"{sign}{prefix}{_digits(abs(n), base)}"
    for position in sorted(underscores, reverse=True):  # after the first character, which picks the resolver
        position = min(position, len(text))
        text = text[:position] + "_" + text[position:]
    value = _read_value(tmp_path_factory.getbasetemp() / "ints", text)
    assert _same(value, n), f"{text!r} read as {value!r}"


_YAML11_BOOLEANS = ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"]


@given(st.one_of(
    st.tuples(st.integers(1, 999), st.lists(st.integers(0, 59), min_size=1, max_size=3)).map(
        lambda parts: ":".join([str(parts[0]), *(f"{p:02d}" for p in parts[1])])),
    st.sampled_from(_YAML11_BOOLEANS),
))
@example("12:30")
@example("on")
def test_yaml_1_1_only_scalars_stay_strings(tmp_path_factory, text):
    # Sexagesimal numbers and yes/no/on/off were dropped in YAML 1.2; yaml.v3 reads them as strings.
    assert _same(_read_value(tmp_path_factory.getbasetemp() / "yaml11", text), text)


_PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn"), blacklist_characters="\ufeff\u2028\u2029")
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(_PRINTABLE, max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(_PRINTABLE, max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(_JSON_VALUES)
@example(1e20)
@example({"retention": 5e-324, "on": [True, None]})
def test_json_written_into_a_stack_file_reads_back_as_the_same_value(tmp_path_factory, value):
    # JSON is YAML 1.2 (flow style); yaml.v3 reads a JSON value as that value. PyYAML's 1.1 floats need a dot,
    # so it reads `1e+20` as a string.
    found = _read_value(tmp_path_factory.getbasetemp() / "json", json.dumps(value, ensure_ascii=False))
    assert _same(found, value), found


@given(st.dictionaries(st.text(_PRINTABLE, max_size=8), _JSON_VALUES, max_size=4))
@example({"a": "0o14", "b": "1e3", "c": "08", "d": "0X1F", "<<": "2001-12-14", "on": "12:30"})
def test_a_stack_file_written_with_dump_yaml_reads_back_as_written(tmp_path_factory, config):
    # yaml.safe_dump leaves "0o14", "1e3", "08" and "0X1F" unquoted: the CLI would read numbers.
    folder = tmp_path_factory.getbasetemp() / "dump"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Pulumi.dr.yaml").write_text(dump_yaml({"config": config}))
    assert _same(load_yaml_mapping(folder / "Pulumi.dr.yaml"), {"config": config})
