"""Every operator command's `--help` is its whole usage: what it does, its options and its exit codes, so an
operator mid-incident reads the meaning of an exit code where they ran the command."""

from __future__ import annotations

import contextlib
import importlib
import io

import pytest

COMMANDS = ["tools.failover", "tools.failback", "tools.rotate", "tools.pitr", "tools.secrets", "tools.adopt",
            "tools.image"]


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("module", COMMANDS)
def test_help_shows_the_whole_usage_with_every_exit_code(module: str):
    command = importlib.import_module(module)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as ended:
        command.main(["--help"])
    assert ended.value.code == 0
    doc = command.__doc__ or ""
    assert "Exit codes" in doc, f"{module}'s usage documents no exit codes"
    exit_codes = _words(doc.split("Exit codes", 1)[1])
    assert exit_codes in _words(out.getvalue()), f"{module} --help does not show its exit codes"
    assert _words(doc.split("\n\n")[1]) in _words(out.getvalue()), f"{module} --help shows only its first paragraph"


@pytest.mark.parametrize("module", ["tools.failback", "tools.pitr"])
def test_a_command_that_plans_nothing_starts_without_the_pulumi_sdk(module: str):
    """Failback and PITR never run the program: they start in a fraction of the SDK's import time (mid-incident,
    and again on every rerun)."""
    import subprocess
    import sys

    from tools.offline import ROOT

    loaded = subprocess.run([sys.executable, "-c", f"import sys, {module}; print(sorted(sys.modules))"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=True).stdout
    assert "'pulumi'" not in loaded and "'components.config'" not in loaded, f"{module} loads the Pulumi SDK"
