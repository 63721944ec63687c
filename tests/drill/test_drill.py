"""The recovery drill (`python -m tools.drill`): a small drill of every scenario, run for real.

One small drill runs once (tests/drill/conftest.py); the tests check what a reviewer checks in its report against
sources the drill does not control: the promoted plan (planned here again), the workload's WAL positions, the
restore command's own counts and refusal, the backup's start time, the failover tool's own report, and the
machine's namespaces, processes and folders afterwards. Every test that runs a drill or takes the drill lock is
in this file: `make test` runs the files on two workers, and only one drill runs at a time.
"""

from __future__ import annotations

import json
import os
import signal
from datetime import datetime

import pytest

from core.contracts import ResourceType
from core.recovery_model import APPLY, DETECT, PROPAGATE, REDEPLOY, RESTORE
from tests.drill.runs import MARKS, drill, start_and_wait_for_the_world, world_processes
from tools.drill import deletion, monitor, plan_cache, promotion, vercel
from tools.drill.__main__ import parser
from tools.drill.scenarios import ORDER, SCENARIOS
from tools.drill.workload import lsn
from tools.drill.world import ADDRESSES, NAMESPACES, NETNS_ETC, Lock, existing_namespaces, leftover_folders
from tools.failover import diff_plans
from tools.failover_switch import EXIT_REDEPLOY_FAILED

pytestmark = MARKS

# 75-120 s on 2 cores shared with other work (the P0 page, the failover command and the redeploy included).
SMALL_DRILL_SECONDS = 180


def test_a_small_drill_recovers_every_scenario_within_its_objectives(small_drill):
    result = small_drill["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(small_drill["scenarios"]) == list(SCENARIOS)
    for name, scenario in small_drill["scenarios"].items():
        assert scenario["met"], f"{name}: {scenario['explanation']} {scenario['failure']} {scenario['modelFindings']}"
        assert scenario["measuredRtoSeconds"] is not None and scenario["measuredRtoSeconds"] <= scenario["targetRtoSeconds"]
        if scenario["targetRpoSeconds"] is not None:
            assert scenario["measuredRpoSeconds"] <= scenario["targetRpoSeconds"], name
    assert small_drill["seconds"] < SMALL_DRILL_SECONDS, f"the small drill took {small_drill['seconds']:.0f} s"


def test_each_scenario_reports_measured_estimated_and_target_figures(small_drill):
    required = {"scenario", "measuredRtoSeconds", "estimatedRtoSeconds", "targetRtoSeconds", "lostRows",
                "measuredRpoSeconds", "targetRpoSeconds", "met"}
    estimated = {s.name for s in ORDER if s.yardstick.estimated}
    for name, scenario in small_drill["scenarios"].items():
        assert required <= set(scenario), f"{name} lacks {required - set(scenario)}"
        if name in estimated:
            assert scenario["estimatedRtoSeconds"] is not None, f"{name}: the model's estimate is missing"
    markdown = small_drill["markdown"]
    assert "| scenario | RTO measured | RTO est. | RTO target |" in markdown
    assert all(f"| {name} |" in markdown for name in SCENARIOS)


def test_every_scenario_checks_the_recovered_ledger_and_loses_nothing_unexplained(small_drill):
    for name, scenario in small_drill["scenarios"].items():
        ledger = scenario["evidence"]["ledger"]
        assert ledger["ok"] and ledger["checksumOk"], f"{name}: {ledger}"
        assert ledger["missing"] == [] and ledger["foreign"] == [], f"{name}: {ledger}"
        assert ledger["rows"] > 0, f"{name}: the recovered ledger is empty"
    for name in ("data-deletion", "table-drop", "database-corruption"):
        evidence = small_drill["scenarios"][name]["evidence"]
        assert evidence["lostUnexplained"] == [], name
        assert small_drill["scenarios"][name]["lostRows"] == len(evidence["lostExplained"]), name


def test_regional_outage_loses_exactly_the_writes_after_the_replicas_replayed_wal(small_drill):
    scenario = small_drill["scenarios"]["regional-outage"]
    evidence = scenario["evidence"]
    replayed = lsn(evidence["replayLsn"])
    assert scenario["lostRows"] == len(evidence["lostSeqs"])
    for row in evidence["lostAcked"]:
        assert lsn(row["lsnAfter"]) > replayed, f"row {row['seq']} was replayed yet is missing in the EU"
    for row in evidence["keptAckedTail"]:
        assert lsn(row["lsnBefore"]) < replayed, f"row {row['seq']} committed after the replayed WAL yet is in the EU"
    assert evidence["lostUnexplained"] == []
    assert evidence["firstEuBackup"].startswith("supabase/full/"), "the promoted standby's first backup was taken"


def test_dns_answers_after_promotion_are_the_promoted_plans_records(small_drill, make_plan):
    promoted = make_plan("dr", "raptorflow-dr:promoted=true")
    answers = {(a["name"], a["type"]): a for a in small_drill["scenarios"]["regional-outage"]["evidence"]["dnsAfterPromotion"]}
    records = promoted.of_type(ResourceType.DNS_RECORD)
    assert records, "the dr plan has DNS records"
    for record in records:
        inputs = record.inputs
        answer = answers[(inputs["name"], inputs["type"])]["answer"]
        content = inputs["content"] + "." if inputs["type"] == "CNAME" else inputs["content"]
        ttl = 300 if inputs["proxied"] else int(inputs["ttl"])
        assert answer is not None, f"{inputs['name']} has no answer after promotion"
        assert (answer["content"], answer["ttl"]) == (content, ttl), f"{inputs['name']}: {answer}"


def test_dns_loss_is_restored_from_the_export_dns_zone_file(small_drill):
    evidence = small_drill["scenarios"]["dns-loss"]["evidence"]
    assert evidence["zoneExport"].startswith("cloudflare/dns/") and evidence["zoneExport"].endswith(".zone")
    assert evidence["recordsDeleted"] > 0 and evidence["recordsLost"] == []
    assert all(a["matches"] for a in evidence["answersAfter"])


def test_data_deletion_merges_back_exactly_the_deleted_rows_the_dump_held(small_drill):
    evidence = small_drill["scenarios"]["data-deletion"]["evidence"]
    merge = evidence["merge"]
    assert merge["mode"] == "merge"
    assert evidence["deletedBeforeDumpBegan"] > 0 and evidence["deletedAfterDumpBegan"] > 0, \
        "the mistaken DELETE hits rows from before the dump and after it began"
    assert merge["restored"] == merge["deletedInDump"] == merge["deletedBack"] > 0, merge
    assert merge["deletedInDump"] >= evidence["deletedBeforeDumpBegan"], "a row written before the dump is in it"
    assert merge["restored"] + merge["skipped"] == merge["inDump"], merge
    assert (merge["changed"], merge["dumpedNotBack"], merge["backNotDumped"]) == ([], [], []), merge
    assert merge["altered"] == [], "the merge touched rows the DELETE left alone"


def test_data_deletion_loses_only_deleted_rows_written_after_the_dump_began(small_drill):
    scenario = small_drill["scenarios"]["data-deletion"]
    evidence, merge = scenario["evidence"], scenario["evidence"]["merge"]
    assert scenario["lostRows"] == merge["deleted"] - merge["deletedInDump"] > 0, merge
    assert evidence["lostUnexplained"] == []
    dump_started = datetime.fromisoformat(evidence["dumpStartedAt"].replace("Z", "+00:00"))
    for seq, acked in evidence["lostAckedAt"].items():
        assert deletion.hit(int(seq)), f"row {seq} is lost but the DELETE did not match it"
        assert datetime.fromisoformat(acked) >= dump_started, f"row {seq} was acknowledged before the dump began"


def test_data_deletion_keeps_the_app_writing_and_a_second_merge_restores_nothing(small_drill):
    evidence = small_drill["scenarios"]["data-deletion"]["evidence"]
    writes = evidence["writesDuringRecovery"]
    assert writes["acknowledged"] > 0 and writes["failed"] == 0, writes
    assert evidence["secondMerge"]["exitCode"] == 0 and evidence["secondMerge"]["restored"] == 0, evidence["secondMerge"]


def test_table_drop_recreates_the_table_and_a_restore_without_replace_is_refused(small_drill):
    evidence = small_drill["scenarios"]["table-drop"]["evidence"]
    assert evidence["restore"]["mode"] == "replace" and evidence["restore"]["rows"] > 0, evidence["restore"]
    refused = evidence["refusedWithoutReplace"]
    assert refused["exitCode"] == 2 and "--replace" in refused["message"]


def test_the_drill_never_prints_a_database_url_or_password(small_drill):
    output = small_drill["result"].stdout + small_drill["result"].stderr + small_drill["markdown"]
    assert "postgresql://" not in output and "password=" not in output


def test_the_drill_leaves_no_namespace_process_or_folder(small_drill):
    assert small_drill["result"].returncode == 0
    assert existing_namespaces() == []
    assert leftover_folders() == []
    assert not list(NETNS_ETC.glob("rfdr-*")), "the namespaces' resolv.conf is removed with them"


def test_a_killed_drill_leaves_a_world_that_the_next_run_removes(small_drill, drill_plans):
    process = start_and_wait_for_the_world(drill_plans)
    folders = leftover_folders()
    process.kill()
    process.wait(30)
    assert existing_namespaces() and folders, "a killed drill leaves its world behind"
    assert (NETNS_ETC / NAMESPACES["net"] / "resolv.conf").exists(), "the killed drill's resolver file is left"
    cleaned = drill("--clean", timeout=120)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (NETNS_ETC / NAMESPACES["net"]).exists(), "--clean removes the namespaces' /etc files"
    assert "removed what a killed drill left: namespace rfdr-us" in cleaned.stderr
    assert existing_namespaces() == [] and leftover_folders() == []
    assert all(world_processes(folder) == [] for folder in folders), "no process of the old world survives"


def test_sigterm_tears_the_world_down_and_exits_130(small_drill, drill_plans):
    process = start_and_wait_for_the_world(drill_plans)
    folders = leftover_folders()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    assert existing_namespaces() == [] and leftover_folders() == []
    assert all(world_processes(folder) == [] for folder in folders)


def test_a_second_drill_is_refused_while_one_runs():
    lock = Lock()
    lock.acquire()
    try:
        result = drill("--clean", timeout=60)
    finally:
        lock.release()
    assert result.returncode == 2 and "another drill is running" in result.stderr


def test_regional_outage_promotes_through_the_failover_tool_and_its_health_report(small_drill, make_plan):
    commands = small_drill["scenarios"]["regional-outage"]["commands"]
    assert len(commands) == 1 and commands[0]["command"].startswith(" ".join(promotion.COMMAND) + " "), commands
    assert commands[0]["exitCode"] == 0, commands[0]["report"][-2000:]
    report = commands[0]["report"]
    hostnames = make_plan("dr", "raptorflow-dr:promoted=true").outputs["failoverHostnames"]
    assert hostnames, "the promoted plan reports failover hostnames"
    for host in hostnames:
        assert f"https://{host}/health healthy after" in report, f"{host} was not checked over HTTPS: {report[-1500:]}"
    assert "redeploy requested" in report and "READY after" in report


def test_the_update_applied_exactly_what_tools_failover_diff_says_promotion_changes(small_drill, make_plan):
    # The diff planned again here by `tools.failover diff`'s own code.
    diff = diff_plans(make_plan("dr"), make_plan("dr", "raptorflow-dr:promoted=true"))
    assert diff.safe and diff.changed
    applied = small_drill["scenarios"]["regional-outage"]["evidence"]["applied"]
    assert sorted((c["type"], c["name"]) for c in applied) == sorted((c.type, c.name) for c in diff.changed)
    for change in applied:
        planned = next(c for c in diff.changed if (c.type, c.name) == (change["type"], change["name"]))
        assert change["inputs"] == sorted({key.split(".")[0] for key in planned.changes}), change


def test_the_eu_app_keeps_the_us_database_until_the_redeploy(small_drill):
    evidence = small_drill["scenarios"]["regional-outage"]["evidence"]
    redeploy, health = evidence["redeploy"], evidence["euAppHealth"]
    assert redeploy["throughApi"] and redeploy["state"] == "READY", redeploy
    assert (redeploy["servingDatabaseHost"], redeploy["databaseHost"]) == (ADDRESSES["us"], ADDRESSES["eu"]), \
        "after the flip the app still served the deployment naming the US database"
    assert health["afterPromotion"]["httpStatus"] == 503, health
    assert health["afterPromotion"]["deployment"] == redeploy["replacing"], health
    assert health["afterRedeploy"]["httpStatus"] == 200, health
    assert health["afterRedeploy"]["deployment"] == redeploy["id"], health


def test_regional_outage_times_every_term_it_measures(small_drill, make_plan):
    scenario = small_drill["scenarios"]["regional-outage"]
    terms = {t["term"]: t for t in scenario["terms"]}
    for term in (DETECT, RESTORE, APPLY, REDEPLOY, PROPAGATE):
        assert terms[term]["measuredSeconds"] is not None and terms[term]["measuredSeconds"] >= 0, terms[term]
    scale = parser().get_default("time_scale")
    # Detection is all compressed waiting.
    assert terms[DETECT]["planClockSeconds"] == pytest.approx(terms[DETECT]["measuredSeconds"] * scale, rel=0.05, abs=1)
    # Of the client's DNS wait only the TTL is compressed; any wait beyond it counts as measured.
    ttl = next(r.inputs["ttl"] for r in make_plan("dr", "raptorflow-dr:promoted=true").of_type(ResourceType.DNS_RECORD)
               if r.inputs["name"] == scenario["evidence"]["writesThrough"])
    waited = terms[PROPAGATE]["measuredSeconds"]
    assert terms[PROPAGATE]["planClockSeconds"] == pytest.approx(
        min(waited * scale, ttl) + max(0.0, waited - ttl / scale), rel=0.05, abs=1)
    assert scenario["decisionSeconds"] > 0
    page = scenario["evidence"]["page"]
    assert page["severity"] == "p0" and page["firstFailureToPageSeconds"] > 0, page


def test_broken_stand_ins_fail_the_regional_outage_naming_the_terms(drill_plans):
    # FOR TESTS, the fault knobs of docs/drill.md: the monitor holds each alert's condition 4x the plan's duration
    # before paging (detection more than 2x slower than the model's term), and redeploys through the Vercel API
    # never finish.
    result = drill("--scenario", "regional-outage", "--size-mb", "1", "--json",
                   env={**os.environ, vercel.FAULT_VARIABLE: vercel.NEVER_READY, monitor.FAULT_VARIABLE: "4",
                        plan_cache.VARIABLE: str(drill_plans)})
    assert result.returncode == 1, result.stderr[-3000:]
    scenario = json.loads(result.stdout)[0]
    assert not scenario["met"] and scenario["commands"][0]["exitCode"] == EXIT_REDEPLOY_FAILED, scenario["commands"]
    assert scenario["failure"].startswith("term redeploy: "), scenario["failure"]
    assert "the Vercel redeploy failed" in scenario["failure"] and "was not READY in time" in scenario["failure"]
    detect = next(t for t in scenario["terms"] if t["term"] == "detect")
    assert detect["planClockSeconds"] > 2 * detect["modelledSeconds"], detect
    assert any(f.startswith("term detect: ") and "more than 2x the model's" in f for f in scenario["modelFindings"]), \
        scenario["modelFindings"]
    assert "drill: regional-outage NOT MET: term redeploy: " in result.stderr
    assert "postgresql://" not in result.stdout + result.stderr
