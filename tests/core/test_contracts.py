"""The contracts between the layers (core/contracts.py): what each side derives from one name, and that the backup
job's image carries the module."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from backup_job.cli import build_parser
from core import contracts
from core.alerts import CATALOG
from core.contracts import (
    BUCKET_ROLES,
    DATABASE_DUMPS,
    USER_FILES,
    BackupKind,
    Command,
    ExitCode,
    JobRun,
    argv_command,
    argv_option,
    exit_sentence,
    run_job_uri,
    run_kind,
    started_job,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("run", [JobRun(Command.BACKUP, kind) for kind in BackupKind]
                         + [JobRun(Command.RESTORE_CHECK, BackupKind.FULL), JobRun(Command.EXPORT_DNS, zone_id="z-1")],
                         ids=lambda run: " ".join(run.argv))
def test_the_job_parses_every_command_line_the_program_writes(run):
    parsed = build_parser().parse_args([*run.argv, "--bucket", "b"])
    assert parsed.command == run.command, f"{run.argv} runs another command"
    assert getattr(parsed, "kind", None) == run.kind, f"{run.argv} takes another kind"
    assert argv_command(run.argv) == run.command and argv_option(run.argv, contracts.KIND_OPTION) == run.kind


def test_a_jobs_labels_say_what_its_command_line_runs():
    for kind in BackupKind:
        run = JobRun(Command.BACKUP, kind)
        assert run.labels == {contracts.Label.JOB_COMMAND: "backup", contracts.Label.BACKUP_KIND: kind.value}
    assert JobRun(Command.EXPORT_DNS, zone_id="z").labels == {contracts.Label.JOB_COMMAND: "export-dns"}


def test_the_job_knows_every_command_and_kind_of_the_contract():
    usage = build_parser().format_usage()
    assert "{" + ",".join(command.value for command in Command) + "}" in usage, usage


def test_run_kinds_name_the_backups_by_kind_and_a_restore_check_of_the_default_kind_by_its_command():
    assert run_kind(Command.BACKUP, BackupKind.FULL) == "backup full"
    assert run_kind(Command.RESTORE_CHECK, BackupKind.FULL) == run_kind(Command.RESTORE_CHECK) == "restore-check"
    assert run_kind(Command.RESTORE_CHECK, BackupKind.SCHEMA) == "restore-check schema"


def test_a_scheduler_target_names_the_job_it_starts_and_nothing_else_does():
    uri = run_job_uri("p-1", "europe-west1", "db-backup-full")
    assert started_job(uri) == "db-backup-full"
    assert started_job(uri.removesuffix(":run")) is None, "only the run method starts a job"
    assert started_job(None) is None


@pytest.mark.parametrize("role, key, label, prefix, replica", [
    (DATABASE_DUMPS, "databaseDumps", "database-dumps", "db-dumps", "db-dumps-replica"),
    (USER_FILES, "userFiles", "user-files", "user-files", "user-files-replica"),
])
def test_a_bucket_role_derives_its_config_key_label_and_resource_names_from_its_name(role, key, label, prefix, replica):
    assert (role.config_key, role.label, role.prefix, role.replica_prefix) == (key, label, prefix, replica)


def test_only_the_dumps_keep_a_state_prefix_of_their_own():
    assert [role.name for role in BUCKET_ROLES if role.state_prefix] == [DATABASE_DUMPS.name], \
        "a state prefix is the exception for names the engine already holds"


def test_every_exit_code_has_a_meaning_and_every_failure_a_label():
    assert set(contracts.EXIT_MEANINGS) == set(ExitCode)
    assert contracts.failure_label(ExitCode.FAILED) == "unexpected"
    assert contracts.failure_label(ExitCode.NOT_FOUND) == "not_found"


def test_an_exit_sentence_reads_each_code_with_its_meaning_for_the_command():
    sentence = exit_sentence(Command.RESTORE_CHECK, (ExitCode.VERIFICATION_MISMATCH, ExitCode.TERMINATED))
    assert sentence == (f"exit {int(ExitCode.VERIFICATION_MISMATCH)} is "
                        f"{contracts.EXIT_MEANINGS[ExitCode.VERIFICATION_MISMATCH]}; {int(ExitCode.TERMINATED)} "
                        f"{contracts.COMMAND_EXIT_MEANINGS[Command.RESTORE_CHECK][ExitCode.TERMINATED]}")


@pytest.mark.parametrize("slug, command", [("restore-check-failed", Command.RESTORE_CHECK),
                                           ("dns-export-failed", Command.EXPORT_DNS)])
def test_the_runbook_says_what_each_exit_code_it_names_means_as_the_contract_does(slug, command):
    text = " ".join([CATALOG[slug].meaning, *CATALOG[slug].steps])
    named = re.findall(r"(?:exit |; )(\d+) ", text)
    assert named, f"{slug} names no exit code"
    for number in named:
        meaning = contracts.exit_meaning(ExitCode(int(number)), command)
        assert re.search(rf"(exit {number} is|; {number}) {re.escape(meaning)}", text), f"{slug}: exit {number}"


def _core_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    found |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    return {name for name in found if name == "core" or name.startswith("core.")}


def test_the_backup_jobs_image_carries_every_core_module_the_job_imports():
    imported = set().union(*(_core_imports(path) for path in (ROOT / "backup_job").glob("*.py")))
    assert imported == {"core.contracts"}, "the job shares only the contracts with the program"
    pending = list(imported)
    while pending:  # and what those import in turn
        found = _core_imports(ROOT / f"{pending.pop().replace('.', '/')}.py") - imported
        imported |= found
        pending += found
    dockerfile = (ROOT / "backup_job" / "Dockerfile").read_text()
    copied = {source for line in dockerfile.splitlines() if line.startswith("COPY ")
              for source in line.split()[1:-1]}
    for module in imported:
        assert f"{module.replace('.', '/')}.py" in copied, f"backup_job/Dockerfile does not copy {module}"
    assert "core/__init__.py" in copied, "backup_job/Dockerfile does not copy core/__init__.py"


@pytest.mark.parametrize("name", ["contracts.py", "resource_types.py"])
def test_the_contracts_import_the_standard_library_alone(name):
    tree = ast.parse((ROOT / "core" / name).read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert modules - {"__future__", "core"} <= set(sys.stdlib_module_names), \
        "the backup job's image has only the standard library"


def test_the_program_writes_the_job_name_the_pack_reads_back():
    text = f'resource.labels.{contracts.job_name_match("db-backup-full")} AND x="y" {contracts.job_name_match("z")}'
    assert contracts.watched_jobs(text) == ["db-backup-full", "z"]
    assert re.fullmatch(r'[a-z_]+="db-backup-full"', contracts.job_name_match("db-backup-full"))
