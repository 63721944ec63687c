"""Config keys as the Pulumi CLI reads them: one key, however it is spelled, is set once per stack file.

The CLI namespaces a bare key with the project's name (`stackConfigNamespacedWithProject` in pulumi/pulumi
sdk/go/common/workspace/loaders.go), then parses each key with `config.ParseKey`
(sdk/go/common/resource/config/key.go), which also takes `<namespace>:config:<name>` for `<namespace>:<name>`.
Two spellings of one key land in a Go map: which value wins depends on map iteration order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.offline import ROOT, apply_override
from tools.stack_files import StackFileError, read_stack_config


def _root(folder: Path, config_lines: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Pulumi.yaml").write_text("name: raptorflow-dr\n")
    (folder / "Pulumi.dr.yaml").write_text("config:\n" + config_lines)
    return folder


@pytest.mark.parametrize("first, second, key", [
    ("raptorflow-dr:promoted", "promoted", "raptorflow-dr:promoted"),
    ("promoted", "raptorflow-dr:config:promoted", "raptorflow-dr:promoted"),
    ("raptorflow-dr:config:promoted", "raptorflow-dr:promoted", "raptorflow-dr:promoted"),
    ("gcp:project", "gcp:config:project", "gcp:project"),
], ids=["namespaced-and-bare", "bare-and-compat", "compat-and-namespaced", "provider-compat"])
def test_one_key_spelled_twice_in_a_stack_file_is_refused_naming_both(tmp_path, first, second, key):
    root = _root(tmp_path, f"  {first}: false\n  {second}: true\n")
    with pytest.raises(StackFileError) as caught:
        read_stack_config("dr", root)
    assert str(caught.value).startswith(f"Pulumi.dr.yaml: {key} is set twice, as `{first}` and `{second}`"), \
        str(caught.value)


def test_a_stack_file_spelling_promoted_twice_fails_the_plan_in_one_line(run_cli, tmp_path):
    # The red team's case: the plan promoted the standby (the last spelling won), the CLI picks either.
    text = (ROOT / "Pulumi.dr.yaml").read_text().replace(
        "  raptorflow-dr:promoted: false\n", "  raptorflow-dr:promoted: false\n  promoted: true\n")
    path = tmp_path / "Pulumi.dr.yaml"
    path.write_text(text)
    result = run_cli("tools.plan", "dr", "--stack-file", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: {path}: raptorflow-dr:promoted is set twice, as `raptorflow-dr:promoted` and `promoted`: the "
        "Pulumi CLI reads both as raptorflow-dr:promoted and keeps either value (Go's map order decides); keep one")


@pytest.mark.parametrize("key", ["raptorflow-dr:a:b", "a:b:c:d", "gcp:conf:project"])
def test_a_key_the_cli_cannot_parse_is_refused_with_its_reason(tmp_path, key):
    root = _root(tmp_path, f"  {key}: x\n")
    with pytest.raises(StackFileError, match=f"could not parse {key} as a configuration key "
                                             r"\(configuration keys should be of the form `<namespace>:<name>`\)"):
        read_stack_config("dr", root)


def test_set_reads_the_compat_spelling_as_the_key_it_names(tmp_path):
    # `pulumi config set raptorflow-dr:config:promoted true` sets raptorflow-dr:promoted; so does --set, over the
    # file's own (bare) spelling - a --set overriding the file is what it is for.
    values, _ = read_stack_config("dr", _root(tmp_path, "  promoted: false\n"))
    apply_override(values, "raptorflow-dr:config:promoted=true")
    assert values == {"raptorflow-dr:promoted": True}


_NAMES = st.from_regex(r"k[A-Za-z0-9]{0,12}", fullmatch=True)
_VALUES = st.one_of(st.booleans(), st.integers(-1000, 1000), st.text(st.characters(codec="ascii",
                                                                                   categories=("L", "N")), max_size=8))


@given(name=_NAMES, namespace=st.sampled_from(["raptorflow-dr", "gcp"]),
       spellings=st.lists(st.sampled_from(["bare", "namespaced", "compat"]), min_size=1, max_size=2, unique=True),
       value=_VALUES)
def test_every_spelling_is_the_same_key_and_two_are_refused(tmp_path_factory, name, namespace, spellings, value):
    written = {"bare": name, "namespaced": f"{namespace}:{name}", "compat": f"{namespace}:config:{name}"}
    if namespace != "raptorflow-dr" and "bare" in spellings:
        spellings = [s for s in spellings if s != "bare"] or ["namespaced"]
    lines = "".join(f"  {written[s]}: {json.dumps(value)}\n" for s in spellings)
    root = _root(tmp_path_factory.getbasetemp() / "spellings", lines)
    if len(spellings) == 1:
        values, _ = read_stack_config("dr", root)
        assert values == {f"{namespace}:{name}": value}
    else:
        with pytest.raises(StackFileError) as caught:
            read_stack_config("dr", root)
        message = str(caught.value)
        assert f"{namespace}:{name} is set twice" in message
        assert all(f"`{written[s]}`" in message for s in spellings), message
