"""Filing a drill's record (tools/drill/filing.py) and the drill command's handling of --record and --markdown
(tools/drill/__main__.py) with the drill replaced by one that ran: no root, no world, no lock."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tools.drill import filing
from tools.offline import ROOT

PLANS = {"prod": {"stack": "prod"}, "dr": {"stack": "dr"}, "promoted": {"stack": "dr", "promoted": True}}


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch):
    path = tmp_path / "record.md"
    path.write_text("old\n")

    def fail(source, target):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(filing.os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        filing.replace_atomically(path, "new\n")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["record.md"]


def test_provenance_names_the_commit_and_whether_the_tree_differs():
    provenance = filing.provenance(ROOT)
    assert set(provenance) == {"commit", "uncommittedChanges"} and isinstance(provenance["uncommittedChanges"], bool)
    assert re.fullmatch(r"[0-9a-f]{7,40}", provenance["commit"]), provenance


class _FakeDrill:
    """A drill that ran: one regional outage met, no root, no world."""

    def __init__(self, options, progress):
        self.plans = type("Plans", (), {"prod": PLANS["prod"], "dr": PLANS["dr"], "promoted": PLANS["promoted"]})

    def run(self):
        from tools.drill.harness import Outcome
        from tools.drill.report import ScenarioResult

        result = ScenarioResult("regional-outage", None, 0, 0.0, True, "recovered")
        return Outcome([result], {"databaseMb": 16, "durationSeconds": 1.0, "timeScale": 60.0,
                                  "startedAt": "2026-12-02 14:00 UTC", "commit": "c0ffee0",
                                  "uncommittedChanges": True}, {})

    def teardown(self):
        pass


@pytest.fixture
def fake_drill(monkeypatch):
    """tools.drill's main with the drill replaced by _FakeDrill; the list records each drill started."""
    import tools.drill.__main__ as cli

    started: list[object] = []
    # main() drops STORAGE_EMULATOR_HOST from its own environment (each site names its emulator): put the test
    # process's back afterwards, for the tests that run next on this worker.
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setattr(cli, "preflight", lambda: None)
    monkeypatch.setattr(cli, "clean_stale", lambda: [])
    monkeypatch.setattr(cli, "Lock", lambda: type("Lock", (), {"acquire": lambda s: None, "release": lambda s: None})())

    def drill(*args):
        started.append(args)
        return _FakeDrill(*args)
    monkeypatch.setattr(cli, "Drill", drill)
    return cli, started


@pytest.mark.parametrize("option", ["--record", "--markdown"])
def test_an_unwritable_record_or_markdown_is_refused_before_the_drill_starts(fake_drill, tmp_path: Path, capsys,
                                                                              option: str):
    cli, started = fake_drill
    target = tmp_path / "missing" / "deeper" / ("drills" if option == "--record" else "report.md")
    assert cli.main([option, str(target)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert not started and err.startswith(f"error: {option} {target}") and len(err.strip().splitlines()) == 1, err


def test_the_report_is_printed_before_the_record_is_filed_and_a_failed_filing_is_one_line(
        fake_drill, tmp_path: Path, capsys, monkeypatch):
    from tools.drill.report import ScenarioResult

    cli, _started = fake_drill
    monkeypatch.setattr(ScenarioResult, "met", property(lambda self: True))
    folder = tmp_path / "drills"
    assert cli.main(["--record", str(folder), "--json"]) == cli.EXIT_MET
    filed = json.loads(next(folder.glob("*.json")).read_text())
    assert filed["uncommittedChanges"] is True and filed["commit"] == "c0ffee0", "as read when the drill started"
    capsys.readouterr()
    printed_before: list[str] = []

    def fail(*args, **kwargs):
        printed_before.append(capsys.readouterr().out)
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(cli.filing, "write", fail)
    assert cli.main(["--record", str(folder), "--json"]) == cli.EXIT_MISSED
    assert json.loads(printed_before[0])[0]["scenario"] == "regional-outage", "the report is out before the filing"
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert lines == ["error: the drill's report above could not be filed: [Errno 30] Read-only file system"]
