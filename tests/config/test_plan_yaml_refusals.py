"""What a stack file may not hold, refused in one line naming the file and the key: deep nesting, tags beyond the
YAML 1.2 core schema, and scalars the Pulumi CLI would turn into something else than their text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tools.offline import ROOT
from tools.stack_yaml import MAX_NESTING, StackFileError, load_yaml_mapping


def _load(folder: Path, config_lines: str) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Pulumi.dr.yaml"
    path.write_text("config:\n" + config_lines)
    return load_yaml_mapping(path)


def _refusal(folder: Path, config_lines: str) -> str:
    with pytest.raises(StackFileError) as caught:
        _load(folder, config_lines)
    message = str(caught.value)
    assert "\n" not in message, "one line"
    return message


def _plan_refusal(run_cli, tmp_path: Path, extra_config: str) -> str:
    """stderr of `tools.plan dr` over the repo's dr stack file with `extra_config` lines added under `config:`."""
    path = tmp_path / "Pulumi.dr.yaml"
    path.write_text((ROOT / "Pulumi.dr.yaml").read_text() + extra_config)
    result = run_cli("tools.plan", "dr", "--stack-file", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {path}: "), result.stderr
    return result.stderr


@pytest.mark.parametrize("value", [
    "[" * 1000 + "]" * 1000,
    "{a: " * 1000 + "1" + "}" * 1000,
    "".join(f"\n{' ' * (level + 4)}k{level}:" for level in range(1000)) + " 1",
], ids=["flow-lists", "flow-maps", "block-maps"])
def test_a_value_nested_1000_deep_is_one_error_naming_file_and_key(run_cli, tmp_path, value):
    # PyYAML's composer recurses once per level: this was "program error (RecursionError)", naming nothing.
    stderr = _plan_refusal(run_cli, tmp_path, f"  raptorflow-dr:deep: {value}\n")
    assert ": raptorflow-dr:deep" in stderr and f"more than {MAX_NESTING} levels" in stderr


@settings(deadline=None)  # PyYAML's scanner keeps a possible key per open flow level: 1000 levels take ~0.5 s
@given(depth=st.integers(1, 1200), as_map=st.booleans())
@example(depth=MAX_NESTING - 2, as_map=False)
@example(depth=MAX_NESTING - 1, as_map=True)
@example(depth=1000, as_map=False)
def test_nesting_loads_up_to_the_limit_and_is_refused_past_it(tmp_path_factory, depth, as_map):
    # The document's mapping and `config:` are two levels; the value adds `depth`.
    value: Any = 1
    for _ in range(depth):
        value = {"a": value} if as_map else [value]
    text = ("{a: " if as_map else "[") * depth + "1" + ("}" if as_map else "]") * depth
    folder = tmp_path_factory.getbasetemp() / "nesting"
    if depth + 2 <= MAX_NESTING:
        assert _load(folder, f"  raptorflow-dr:deep: {text}\n")["config"]["raptorflow-dr:deep"] == value
    else:
        message = _refusal(folder, f"  raptorflow-dr:deep: {text}\n")
        assert message.startswith("Pulumi.dr.yaml: raptorflow-dr:deep") and "(line 2)" in message, message


def test_a_binary_value_is_one_error_naming_file_and_key(run_cli, tmp_path):
    # PyYAML made `!!binary` bytes, which the program then met as the text "b'standby'".
    stderr = _plan_refusal(run_cli, tmp_path, "  raptorflow-dr:labels: {team: !!binary cGxhdGZvcm0=}\n")
    assert "raptorflow-dr:labels.team: the tag !!binary is not accepted in stack files" in stderr


@pytest.mark.parametrize("tagged, tag", [
    ("!!binary c3RhbmRieQ==", "!!binary"),
    ("!!set {standby}", "!!set"),
    ("!!omap [a: 1]", "!!omap"),
    ("!!pairs [a: 1]", "!!pairs"),
    ("!!timestamp 2001-12-14", "!!timestamp"),
    ("!!python/tuple [1]", "!!python/tuple"),
    ("!standby x", "!standby"),
    ("! standby", "!"),
    ("!!map standby", "!!map"),
    ("!!str {a: 1}", "!!str"),
], ids=["binary", "set", "omap", "pairs", "timestamp", "python", "local", "non-specific", "map-on-scalar",
        "str-on-map"])
def test_tags_beyond_the_core_schema_are_refused_naming_the_key(tmp_path, tagged, tag):
    message = _refusal(tmp_path, f"  raptorflow-dr:site: {tagged}\n")
    assert message.startswith(f"Pulumi.dr.yaml: raptorflow-dr:site: the tag {tag} is not accepted"), message
    assert "!!str, !!int, !!float, !!bool, !!null, !!seq, !!map" in message


@pytest.mark.parametrize("tagged, cli_error", [
    ("!!int yes", "cannot decode !!str `yes` as a !!int"),
    ("!!bool 1", "cannot decode !!int `1` as a !!bool"),
    ("!!float abc", "cannot decode !!str `abc` as a !!float"),
    ("!!null x", "cannot decode !!str `x` as a !!null"),
    ("!!int 1.5", "cannot decode !!float `1.5` as a !!int"),
], ids=["int-yes", "bool-1", "float-abc", "null-x", "int-float"])
def test_an_explicit_core_tag_the_text_does_not_fit_is_the_clis_error(tmp_path, tagged, cli_error):
    message = _refusal(tmp_path, f"  raptorflow-dr:labels:\n    team: {tagged}\n")
    assert message.startswith(f"Pulumi.dr.yaml: raptorflow-dr:labels.team: {cli_error}"), message


def test_explicit_core_tags_read_as_yaml_v3_reads_them(tmp_path):
    config = _load(tmp_path, "  raptorflow-dr:x: {a: !!str 010, b: !!float 5, c: !!int '12', d: !!int 0X1F,"
                             " e: !!bool TRUE, f: !!null '', g: !!seq [1], h: !!map {k: v}}\n")["config"]
    assert config["raptorflow-dr:x"] == {"a": "010", "b": 5.0, "c": 12, "d": 31, "e": True, "f": None, "g": [1],
                                         "h": {"k": "v"}}
    assert isinstance(config["raptorflow-dr:x"]["b"], float)


@pytest.mark.parametrize("text", ["2001-12-14", "2001-1-2", "2001-12-14T21:59:43.10-05:00", "2001-12-14t21:59:43Z",
                                  "2001-12-14 21:59:43.10"])
def test_an_unquoted_timestamp_is_refused_with_how_to_quote_it(tmp_path, text):
    # yaml.v3 reads these as time.Time; the CLI hands the program Go's rendering ("2001-12-14 00:00:00 +0000 UTC").
    message = _refusal(tmp_path, f"  raptorflow-dr:labels:\n    since: {text}\n")
    assert message.startswith(f"Pulumi.dr.yaml: raptorflow-dr:labels.since: `{text}` is a timestamp"), message
    assert f"quote it ('{text}')" in message


@pytest.mark.parametrize("text", ["2001-12-14 21:59:43.10 -5", "2001-13-01", "2001-02-29", "2001-12-14T21:59:43",
                                  "2001-12-14 21:59:43Z"])
def test_what_yaml_v3_does_not_take_as_a_timestamp_is_a_string(tmp_path, text):
    # PyYAML's 1.1 timestamps take more (a "-5" zone, a missing zone after T) or fail constructing an invalid date.
    assert _load(tmp_path, f"  raptorflow-dr:x: {text}\n")["config"]["raptorflow-dr:x"] == text


@pytest.mark.parametrize("text", [".inf", "-.Inf", "+.INF", ".nan", ".NaN"])
def test_infinity_and_nan_are_refused(tmp_path, text):
    # The CLI passes config on as JSON (Go's json.Marshal refuses them); PyYAML gave the program "inf".
    message = _refusal(tmp_path, f"  raptorflow-dr:primary:\n    databaseDumps:\n      retentionDays: {text}\n")
    assert message.startswith(f"Pulumi.dr.yaml: raptorflow-dr:primary.databaseDumps.retentionDays: `{text}` is a "
                              "float the Pulumi CLI cannot pass on"), message


def test_a_merge_key_is_refused_naming_where_and_a_plain_double_angle_value_is_a_string(tmp_path):
    message = _refusal(tmp_path, "  raptorflow-dr:labels:\n    <<: {team: platform}\n")
    assert message.startswith("Pulumi.dr.yaml: raptorflow-dr:labels: `<<` (a YAML merge key)"), message
    assert _load(tmp_path, "  raptorflow-dr:x: <<\n")["config"]["raptorflow-dr:x"] == "<<"
