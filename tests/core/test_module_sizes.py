"""No module of the repo is over MAX_MODULE_BYTES: past that a module holds more than one responsibility, and a
reader needs more than one sitting to hold it. Split it by responsibility (one scenario, one fault family, one
component per module), not by line count.

Every .py file under the project root counts - program, components, core, policies, job, tools, bench and tests
- except the virtualenvs, git's folder and the tools' caches (tests/project_files.py).
"""

from __future__ import annotations

from pathlib import Path

from tests.project_files import ROOT, project_modules

MAX_MODULE_BYTES = 16 * 1024


def modules() -> list[Path]:
    """Every .py file of the project, by path."""
    return project_modules()


def test_no_module_is_over_the_size_limit():
    over = [(path.relative_to(ROOT).as_posix(), path.stat().st_size) for path in modules()
            if path.stat().st_size > MAX_MODULE_BYTES]
    assert not over, (f"modules over {MAX_MODULE_BYTES} bytes; split each by responsibility: "
                      + ", ".join(f"{name} ({size} bytes)" for name, size in over))


def test_the_scan_covers_every_layer_and_skips_the_virtualenv():
    names = {path.relative_to(ROOT).as_posix() for path in modules()}
    for expected in ("__main__.py", "backup_job/cli.py", "bench/harness.py", "components/sites.py", "core/contracts.py",
                     "policies/raptorflow_policies/_plan.py", "tools/drill/harness.py", "tests/core/test_module_sizes.py"):
        assert expected in names, f"{expected} is not scanned"
    assert not any(name.startswith(".venv/") for name in names), "the virtualenv is not the project's"


def test_a_virtualenv_anywhere_in_the_tree_is_not_scanned(tmp_path):
    # The first `pulumi preview --policy-pack policies` creates policies/venv, with the SDKs' own large modules.
    (tmp_path / "policies" / "venv" / "lib").mkdir(parents=True)
    (tmp_path / "policies" / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "policies" / "venv" / "lib" / "resource.py").write_text("x = 1\n" * 10_000)
    (tmp_path / "policies" / "rule.py").write_text("x = 1\n")
    assert [p.relative_to(tmp_path).as_posix() for p in project_modules(tmp_path)] == ["policies/rule.py"]
