"""Drill records as a hash chain (tools/drill/records.py): records written into a copy of docs/drills/ in a
temporary folder, then tampered with one at a time; `python -m tools.drill verify` names the record. No root."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tools.drill import filing, records
from tools.offline import ROOT
from tools.readiness import assess_plans, drill_warnings, render_readiness

DRILLS = ROOT / "docs" / "drills"
LEGACY = sorted(md for md in DRILLS.glob("*.md") if not md.with_suffix(".json").exists())
"""The records that predate the chain (Markdown alone): the chain's anchor is the newest of them."""
START = datetime(2026, 12, 2, 13, 30, 5, tzinfo=UTC)
PLANS = {"prod": {"stack": "prod"}, "dr": {"stack": "dr"}, "promoted": {"stack": "dr", "promoted": True}}


def _scenario(name: str, assessment: str, rto: float, rpo: float) -> dict:
    return {"scenario": name, "assessment": assessment, "measuredRtoSeconds": rto / 10, "planClockRtoSeconds": rto,
            "decisionSeconds": 900.0, "estimatedRtoSeconds": 3000.0, "measuredRpoSeconds": rpo, "targetRpoSeconds": 900.0}


def _file(folder: Path, index: int, rto: float = 600.0) -> tuple[Path, Path]:
    when = START + timedelta(days=index)
    world = {"startedAt": when.strftime("%Y-%m-%d %H:%M UTC"), "commit": f"c0ffee{index}"}
    return filing.write(folder, f"# Recovery drill {index}\n", [_scenario("regional-outage", "regionalOutage", rto, 2.0)],
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
    markdown, record = filing.write(chain, "# Recovery drill\n", [], {"commit": "c0ffee9"}, {}, {},
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


def test_two_records_in_one_second_get_distinct_names_and_none_is_filed_before_the_newest(run_cli, chain: Path):
    newest = START + timedelta(days=2)
    _file(chain, 2)
    names = _names(chain)
    assert names[-2:] == [f"{newest:%Y-%m-%d-%H%M%S}.json", f"{newest:%Y-%m-%d-%H%M%S}-1.json"], names
    assert _verify(run_cli, chain).returncode == records.EXIT_INTACT
    with pytest.raises(ValueError, match="a record is filed after the newest one"):
        _file(chain, 0)


def test_readiness_shows_the_newest_drill_and_warns_when_it_is_past_the_cadence(chain: Path, prod_plan, dr_plan):
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


def test_stray_files_are_not_records_and_a_late_dated_markdown_alone_is_named(run_cli, chain: Path):
    (chain / "README.md").write_text("# Drill records\n")
    (chain / "notes.md").write_text("notes\n")
    result = _verify(run_cli, chain)
    assert result.returncode == records.EXIT_INTACT, result.stderr
    assert f"after the anchor {LEGACY[-1].name}" in result.stdout, "a README.md is neither a record nor the anchor"
    late = chain / "2026-12-09-notes.md"
    late.write_text("late\n")
    result = _verify(run_cli, chain)
    assert result.returncode == records.EXIT_BROKEN
    assert result.stderr.startswith(f"verify: chain broken at {late.name} has no JSON record"), result.stderr


def test_a_chained_json_without_its_markdown_is_named(run_cli, chain: Path):
    markdown, record = _chained(chain)[1]
    markdown.unlink()
    result = _verify(run_cli, chain)
    assert result.returncode == records.EXIT_BROKEN
    assert result.stderr.startswith(f"verify: chain broken at {record.name} has no Markdown record"), result.stderr


def _reseal(record: Path, change) -> None:
    document = json.loads(record.read_text())
    change(document)
    document.pop("sha256")
    document["sha256"] = records.sha256(records.canonical(document))
    record.write_text(json.dumps(document, indent=2, sort_keys=True))


@pytest.mark.parametrize("damage, said", [
    ("fifo", "is not a regular file"), ("device", "is not a regular file"), ("directory", "is not a regular file"),
    ("huge", "larger than 4 MB"), ("deep", "nested too deeply"), ("list", "is not a JSON object"),
    ("not-utf8", "cannot be read"), ("previous-string", "its link says str"), ("previous-list", "its link says list"),
    ("markdown-name", "it names its Markdown 'other.md'")])
def test_verify_prints_one_line_for_an_unreadable_or_misshapen_record(run_cli, chain: Path, damage: str, said: str):
    markdown, record = _chained(chain)[1]
    if damage in ("fifo", "device", "directory"):
        markdown.unlink()
        {"fifo": lambda: os.mkfifo(markdown), "device": lambda: markdown.symlink_to("/dev/zero"),
         "directory": markdown.mkdir}[damage]()
    elif damage == "huge":
        record.write_bytes(b" " * (records.MAX_RECORD_BYTES + 1) + b"{}")
    elif damage == "deep":
        record.write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "list":
        record.write_text("[]")
    elif damage == "not-utf8":
        record.write_bytes(b"\xff\xfe{}")
    elif damage == "markdown-name":
        _reseal(record, lambda d: d.update(markdown="other.md"))
    else:
        _reseal(record, lambda d: d.update(previous="x" if damage == "previous-string" else [1]))
    result = _verify(run_cli, chain)
    broken = damage.startswith(("previous", "markdown"))
    assert result.returncode == (records.EXIT_BROKEN if broken else records.EXIT_USAGE)
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_the_read_cap_holds_a_records_size(tmp_path: Path):
    path = tmp_path / "record.json"
    path.write_bytes(b"x" * records.MAX_RECORD_BYTES)
    assert len(records.read(path)) == records.MAX_RECORD_BYTES
    path.write_bytes(b"x" * (records.MAX_RECORD_BYTES + 1))
    with pytest.raises(records.Unreadable, match="larger than"):
        records.read(path)


@pytest.mark.parametrize("change, why", [
    (lambda d: d.update(scenarios="abc"), "its scenarios are not a list of objects"),
    (lambda d: d.update(scenarios=["x"]), "its scenarios are not a list of objects"),
    (lambda d: d.update(scenarios={"a": 1}), "its scenarios are not a list of objects"),
    (lambda d: d["scenarios"][0].update(assessment=["x"]), "is not a name"),
    (lambda d: d["scenarios"][0].update(planClockRtoSeconds="400"), "its planClockRtoSeconds is '400'"),
    (lambda d: d["scenarios"][0].update(decisionSeconds="900"), "its decisionSeconds is '900'"),
    (lambda d: d["scenarios"][0].update(measuredRpoSeconds="1"), "its measuredRpoSeconds is '1'"),
    (lambda d: d["scenarios"][0].update(measuredRpoSeconds=float("nan")), "its measuredRpoSeconds is 'nan'"),
    (lambda d: d.update(startedAt="yesterday"), "its startedAt 'yesterday' is not a date"),
    (None, "Expecting")])
def test_a_misshapen_record_is_skipped_by_the_readiness_table_with_a_warning(chain: Path, prod_plan, dr_plan,
                                                                                change, why: str):
    record = _chained(chain)[-1][1]
    if change is None:
        record.write_text("{")
    else:
        _reseal(record, change)
    drills = records.last_drills(chain)
    assert drills["regionalOutage"].date == (START + timedelta(days=1)).strftime("%Y-%m-%d"), "the record before"
    assessments = assess_plans([prod_plan, dr_plan])
    assert any("regional outage" in line for line in render_readiness(assessments, ["prod", "dr"], drills))
    warnings = drill_warnings(assessments, drills, START.date() + timedelta(days=3))
    skipped = [w for w in warnings if w.startswith(f"warning: skipped the drill record {records.FOLDER}/{record.name}")]
    assert len(skipped) == 1 and why in skipped[0], warnings


def test_a_failed_drill_neither_fills_the_columns_nor_resets_the_cadence(chain: Path, prod_plan, dr_plan):
    newest = _chained(chain)[-1][1]
    _reseal(newest, lambda d: d["scenarios"][0].update(met=False, failure="promote exited 4", measuredRpoSeconds=0))
    drills = records.last_drills(chain)
    last_met = (START + timedelta(days=1)).strftime("%Y-%m-%d")
    failed = (START + timedelta(days=2)).strftime("%Y-%m-%d")
    assert drills["regionalOutage"].date == last_met and drills["regionalOutage"].rpo_seconds == 2.0
    assert drills["regionalOutage"].failed == failed
    assessments = assess_plans([prod_plan, dr_plan])
    warnings = drill_warnings(assessments, drills, START.date() + timedelta(days=94))
    assert (f"warning: regional outage: the drill of {failed} FAILED; the last drill that met them was on "
            f"{last_met}") in warnings, warnings
    assert any(w.startswith(f"warning: regional outage was last drilled on {last_met}, 93 days ago") for w in warnings)
    for record in _chained(chain)[:2]:
        _reseal(record[1], lambda d: d["scenarios"][0].update(met=False))
    drills = records.last_drills(chain)
    assert "regionalOutage" not in drills
    warnings = drill_warnings(assessments, drills, START.date() + timedelta(days=3))
    assert any("never drilled" in w and "regional outage" in w for w in warnings)
    assert any(w.endswith("FAILED; no drill of it has met its objectives") for w in warnings), warnings


def test_a_record_dated_in_the_future_is_a_warning(chain: Path, prod_plan, dr_plan):
    record = _chained(chain)[-1][1]
    _reseal(record, lambda d: d.update(startedAt="2027-06-01 10:00 UTC"))
    warnings = drill_warnings(assess_plans([prod_plan, dr_plan]), records.last_drills(chain), START.date())
    assert (f"warning: the drill record {records.FOLDER}/{record.name} is dated 2027-06-01, after today "
            f"({START.date()})") in warnings, warnings

