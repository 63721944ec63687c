"""Drill records as a hash chain (tools/drill/records.py): records written into a copy of docs/drills/ in a
temporary folder, then tampered with one at a time; `python -m tools.drill verify` names the record. No root."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tools.drill import records
from tools.offline import ROOT
from tools.readiness import drill_warnings, render_readiness

DRILLS = ROOT / "docs" / "drills"
LEGACY = sorted(md for md in DRILLS.glob("*.md") if not md.with_suffix(".json").exists())
"""The records that predate the chain (Markdown alone): the chain's anchor is the newest of them."""
START = datetime(2026, 12, 2, 13, 30, 5, tzinfo=UTC)
PLANS = {"prod": {"stack": "prod"}, "dr": {"stack": "dr"}, "promoted": {"stack": "dr", "promoted": True}}


def _scenario(name: str, assessment: str, rto: float, rpo: float) -> dict:
    return {"scenario": name, "assessment": assessment, "measuredRtoSeconds": rto / 10, "planClockRtoSeconds": rto,
            "decisionSeconds": 900.0, "estimatedRtoSeconds": 3000.0, "measuredRpoSeconds": rpo}


def _file(folder: Path, index: int, rto: float = 600.0) -> tuple[Path, Path]:
    when = START + timedelta(days=index)
    world = {"startedAt": when.strftime("%Y-%m-%d %H:%M UTC"), "commit": f"c0ffee{index}"}
    return records.write(folder, f"# Recovery drill {index}\n", [_scenario("regional-outage", "regionalOutage", rto, 2.0)],
                         world, {}, records.plan_digests(PLANS), now=when)


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    """docs/drills/' records older than the chain, copied, with three chained records filed after them."""
    folder = tmp_path / "drills"
    folder.mkdir()
    for legacy in LEGACY:
        shutil.copy(legacy, folder)
    for index in range(3):
        _file(folder, index, rto=600.0 + index)
    return folder


def _verify(run_cli, folder: Path):
    return run_cli("tools.drill", "verify", str(folder))


def _names(folder: Path) -> list[str]:
    return [record.name for record in records.chain(folder)]


def _chained(folder: Path) -> list[tuple[Path, Path]]:
    """(Markdown, JSON) of each chained record, in chain order."""
    return [(record.markdown, record.json) for record in records.chain(folder) if record.json is not None]


def test_an_intact_chain_verifies(run_cli, chain: Path):
    result = _verify(run_cli, chain)
    assert result.returncode == records.EXIT_INTACT, result.stderr
    assert f"3 chained records in {chain} after the anchor {LEGACY[-1].name} (older than the chain), chain intact" in (
        result.stdout)


def test_a_drill_run_with_uncommitted_changes_says_so(chain: Path):
    markdown, record = records.write(chain, "# Recovery drill\n", [], {"commit": "c0ffee9"}, {}, {},
                                     now=START + timedelta(days=9), uncommitted=True)
    assert json.loads(record.read_text())["uncommittedChanges"] is True
    assert "- commit: `c0ffee9` with uncommitted changes" in markdown.read_text()
    assert json.loads(_chained(chain)[0][1].read_text())["uncommittedChanges"] is False


def test_each_record_links_to_the_one_before_and_the_first_to_the_legacy_anchor(chain: Path):
    chained = _chained(chain)
    first = json.loads(chained[0][1].read_text())
    assert LEGACY, "docs/drills/ holds the record that predates the chain"
    assert first["previous"] == {"record": LEGACY[-1].name, "sha256": records.sha256(LEGACY[-1].read_bytes())}
    second = json.loads(chained[1][1].read_text())
    assert second["previous"]["sha256"] == records.sha256(chained[0][1].read_bytes())
    assert second["plans"] == records.plan_digests(PLANS) and set(second["plans"]) == {"prod", "dr", "promoted"}
    markdown = chained[1][0].read_text()
    assert f"previous record: {chained[0][1].name}, sha256 `{second['previous']['sha256']}`" in markdown
    assert "- commit: `c0ffee1`" in markdown


@pytest.mark.parametrize("tamper", ["markdown", "json", "json-resealed"])
def test_a_tampered_record_is_named(run_cli, chain: Path, tamper: str):
    markdown, record = _chained(chain)[1]
    if tamper == "markdown":
        markdown.write_text(markdown.read_text().replace("Recovery drill 1", "Recovery drill 1 (all met)"))
        named = markdown.name
    else:
        document = json.loads(record.read_text())
        document["scenarios"][0]["planClockRtoSeconds"] = 60.0
        if tamper == "json-resealed":  # sealed again: its own sha256 matches, the next record's link does not
            document.pop("sha256")
            document["sha256"] = records.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
        record.write_text(json.dumps(document, indent=2, sort_keys=True))
        named = record.name if tamper == "json" else _names(chain)[-1]
    result = _verify(run_cli, chain)
    assert result.returncode == records.EXIT_BROKEN
    assert result.stderr.startswith(f"verify: chain broken at {named}:"), result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_changed_anchor_or_a_removed_record_breaks_the_link(run_cli, chain: Path):
    chained = _chained(chain)
    for path in chained[1]:
        path.unlink()
    result = _verify(run_cli, chain)
    assert result.returncode == records.EXIT_BROKEN and f"at {chained[2][1].name}: its link says" in result.stderr
    anchor = chain / LEGACY[-1].name
    anchor.write_text(anchor.read_text() + "\nedited\n")
    result = _verify(run_cli, chain)
    assert result.returncode == records.EXIT_BROKEN and f"at {chained[0][1].name}: its link says" in result.stderr


def test_verify_of_no_folder_is_a_usage_error(run_cli, tmp_path: Path):
    result = _verify(run_cli, tmp_path / "nowhere")
    assert result.returncode == records.EXIT_USAGE and result.stderr.startswith("error: ")


def test_a_record_is_never_overwritten(chain: Path):
    with pytest.raises(FileExistsError):
        _file(chain, 0)


def test_readiness_shows_the_newest_drill_and_warns_when_it_is_past_the_cadence(chain: Path, prod_plan, dr_plan):
    from tools.readiness import assess_plans

    drills = records.last_drills(chain)
    newest = drills["regionalOutage"]
    assert newest.date == (START + timedelta(days=2)).strftime("%Y-%m-%d")
    assert newest.rto_seconds == 602.0 + 900.0 and newest.rpo_seconds == 2.0
    assessments = assess_plans([prod_plan, dr_plan])
    row = next(line for line in render_readiness(assessments, ["prod", "dr"], drills) if "regional outage" in line)
    assert re.search(rf"  met +{newest.date} +25 min +2 s  RPO: ", row), f"plan clock + decision = 25 min: {row}"
    fresh = drill_warnings(assessments, drills, START.date() + timedelta(days=30))
    assert not [w for w in fresh if "regional outage was last drilled" in w]
    stale = drill_warnings(assessments, drills, START.date() + timedelta(days=200))
    assert any(w.startswith(f"warning: regional outage was last drilled on {newest.date}, 198 days ago") for w in stale)
    assert any("never drilled" in w and "security breach" in w for w in stale)


def test_the_repositorys_own_drill_records_form_an_intact_chain(run_cli):
    result = _verify(run_cli, DRILLS)
    assert result.returncode == records.EXIT_INTACT, result.stderr
    assert "chain intact" in result.stdout
