"""No module writes a contract value itself: core/contracts.py (with its table of type tokens,
core/resource_types.py) names it once and everyone imports the name.

Every .py file of the program, the job, the core, the policy pack, the tools and the benchmarks is parsed with
`ast`; a string constant (or a literal part of an f-string) that equals a contract value, or contains a
distinctive one, is reported with its line. Documentation (a string statement: docstrings, attribute
docstrings) may name them. Words that are also plain words (`full`, `schema`, `list`...) count only where they
are not a subscript or a dict key: `table["schema"]` is a column of a catalog row, not a backup kind; the label
keys `environment` and `severity` are also ordinary property names and are not checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core import contracts
from tests.project_files import project_modules

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("backup_job", "components", "core", "policies", "tools", "bench")
CONTRACTS = (ROOT / "core" / "contracts.py", ROOT / "core" / "resource_types.py")

# Label keys that are also the names of ordinary properties (a log line's or an alert policy's `severity`).
PLAIN_LABELS = frozenset({contracts.Label.ENVIRONMENT, contracts.Label.SEVERITY})
# Values that are distinctive wherever they appear, even inside a longer text.
DISTINCTIVE: frozenset[str] = frozenset({
    contracts.LOG_EVENT,
    contracts.BACKUP_SUCCESS_METRIC,
    f"{contracts.JOB_NAME_LABEL}=",
    *(f"jsonPayload.{field.value}" for field in contracts.LogField),
    *(label.value for label in contracts.Label if "-" in label.value),
    *(token.value for token in contracts.ResourceType),
})
# Values that are a contract only when they are the whole string.
WHOLE: frozenset[str] = frozenset({
    *(command.value for command in contracts.Command),
    *(kind.value for kind in contracts.BackupKind),
    *(label.value for label in contracts.Label if label not in PLAIN_LABELS),
    *(value for role in contracts.BUCKET_ROLES
      for value in (role.name, role.config_key, role.label, role.prefix, role.replica_prefix)),
    contracts.ACCESS_LOG_ROLE,
    contracts.KIND_OPTION, contracts.BUCKET_OPTION, contracts.ZONE_OPTION,
    contracts.LogField.EXIT_CODE.value,
    contracts.JobEnv.BUCKET.value, contracts.JobEnv.PREFIX.value, *(variable.file for variable in contracts.JobEnv),
    *(contracts.run_kind(contracts.Command.BACKUP, kind) for kind in contracts.BackupKind),
})
# Whole values that are also ordinary words: a subscript or a dict key holding one is no contract value.
PLAIN_WORDS: frozenset[str] = frozenset(value for value in WHOLE if value.isalpha() and value.islower())


def _documentation(tree: ast.AST) -> set[int]:
    """ids of the string constants that are statements of their own: docstrings and attribute docstrings."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def _word_positions(tree: ast.AST) -> set[int]:
    """ids of the string constants used as a subscript, a dict key, a subcommand of the module's own command line
    (`commands.add_parser("restore")`), or a word of another program's command line (a list or tuple that starts with
    a program name other than a contract value: `["ip", "netns", "list"]`)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            found.add(id(node.slice))
        elif isinstance(node, ast.Dict):
            found.update(id(key) for key in node.keys if isinstance(key, ast.Constant))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_parser"
              and node.args and isinstance(node.args[0], ast.Constant)):
            found.add(id(node.args[0]))  # a subcommand of the module's own command line (`tools.pitr restore`)
        elif (isinstance(node, (ast.List, ast.Tuple)) and node.elts and isinstance(node.elts[0], ast.Constant)
              and isinstance(node.elts[0].value, str) and node.elts[0].value not in WHOLE):
            found.update(id(element) for element in node.elts[1:] if isinstance(element, ast.Constant))
    return found


def contract_literals(source: str) -> list[tuple[int, str]]:
    """(line, value) of every contract value a module's source writes itself."""
    tree = ast.parse(source)
    documentation, words = _documentation(tree), _word_positions(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in documentation:
            continue
        text = node.value
        if text in WHOLE and not (text in PLAIN_WORDS and id(node) in words):
            found.append((node.lineno, text))
        else:
            found.extend((node.lineno, value) for value in sorted(DISTINCTIVE) if value in text)
    return sorted(set(found))


def _scanned() -> list[Path]:
    files = [ROOT / "__main__.py"]
    for folder in SCANNED:
        files += project_modules(ROOT / folder)
    return [path for path in files if path not in CONTRACTS]


def _param(path: Path) -> object:
    return pytest.param(path, id=path.relative_to(ROOT).as_posix())


@pytest.mark.parametrize("path", [_param(path) for path in _scanned()])
def test_module_writes_no_contract_value_itself(path):
    found = contract_literals(path.read_text())
    assert not found, (f"{path.relative_to(ROOT)} writes contract values itself; import them from core.contracts: "
                       + ", ".join(f"line {line}: {value!r}" for line, value in found))


def test_a_planted_literal_is_caught_and_documentation_is_not(tmp_path):
    module = tmp_path / "planted.py"
    module.write_text(
        '"""Reads the `backup-role` label."""\n'
        'ROLE = "backup-role"\n'
        'QUERY = f\'resource.labels.job_name="{ROLE}"\'\n'
        'KIND = "full"\n'
        'COLUMN = row["schema"]\n'
        'NAMESPACES = ["ip", "netns", "list"]\n'
        'ARGV = ["list", "--bucket", "b"]\n'
        'EVENT = f"{ROLE} raptorflow.backup"\n'
        'LIMIT = 3\n'
        '"""An attribute docstring naming gcp:storage/bucket:Bucket."""\n'
    )
    assert contract_literals(module.read_text()) == [
        (2, "backup-role"), (3, "job_name="), (4, "full"), (7, "--bucket"), (7, "list"), (8, "raptorflow.backup")]


def test_the_scan_covers_the_layers():
    names = {path.relative_to(ROOT).as_posix() for path in _scanned()}
    for expected in ("__main__.py", "backup_job/errors.py", "components/scheduled_backup.py", "core/alerts.py",
                     "policies/raptorflow_policies/_plan.py", "tools/plan.py"):
        assert expected in names, f"{expected} is not scanned"
    assert not {"core/contracts.py", "core/resource_types.py"} & names, "the contracts are where the values live"


def test_a_subcommand_of_another_tool_is_a_word_but_the_same_word_as_an_argument_is_not():
    assert contract_literals('commands.add_parser("restore", help="x")\n') == []
    assert contract_literals('run(["python", "-m", "backup_job"], "restore")\n') == [(1, "restore")]
