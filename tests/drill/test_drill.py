"""The recovery drill (`python -m tools.drill`): a small drill of every scenario, run for real.

One small drill runs once per session (tests/drill/conftest.py); the tests check what a reviewer checks in its report against
sources the drill does not control: the promoted plan (planned here again), the workload's WAL positions,
the restore command's own counts and refusal, the backup's start time, and the machine's namespaces,
processes and folders afterwards.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest

from core.contracts import ResourceType
from tests.drill.runs import MARKS, drill
from tools.drill import deletion, plans, transfer
from tools.drill.scenarios import ORDER, SCENARIOS
from tools.drill.workload import lsn
from tools.drill.world import NAMESPACES, NETNS_ETC, Lock, existing_namespaces, leftover_folders
from tools.offline import ROOT

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


def test_transfer_stand_in_applies_the_plans_options_never_overwriting_or_deleting(emulator, make_plan, tmp_path):
    from google.cloud import storage

    jobs = plans.transfer_jobs(make_plan("dr").to_json())
    job = next(j for j in jobs if j["eventDriven"])
    assert job["options"]["overwriteWhen"] == "NEVER" and not job["options"]["deleteObjectsUniqueInSink"]
    gcs = storage.Client()
    source, sink = gcs.create_bucket(f"src-{os.getpid()}-{time.time_ns()}"), gcs.create_bucket(f"snk-{time.time_ns()}")
    source.blob("a.dump").upload_from_string(b"new")
    source.blob("b.dump").upload_from_string(b"b")
    sink.blob("a.dump").upload_from_string(b"old")
    job = {**job, "source": source.name, "sink": sink.name}
    stats = transfer.TransferStats()
    transfer.sync(job, gcs, gcs, stats, tmp_path)
    assert sink.blob("a.dump").download_as_bytes() == b"old", "an existing copy is never replaced"
    assert stats.kept_existing == ["a.dump"] and stats.copied == ["b.dump"]
    source.blob("b.dump").delete()
    transfer.sync(job, gcs, gcs, stats, tmp_path)
    assert sink.blob("b.dump").exists(), "a deletion at the source never reaches the copy"
    transfer.sync({**job, "options": {**job["options"], "overwriteWhen": "ALWAYS"}}, gcs, gcs, stats, tmp_path)
    assert sink.blob("a.dump").download_as_bytes() == b"new", "the options decide, not the stand-in"


def _start_and_wait_for_the_world() -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "tools.drill", "--scenario", "dns-loss"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = subprocess.run(["ip", "netns", "pids", "rfdr-us"], capture_output=True, text=True).stdout.split()
        if pids and process.poll() is None:
            return process
        time.sleep(0.2)
    process.kill()
    pytest.fail("the drill's world did not come up within 60 s")


def _world_processes(folder: Path) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in text:
            found.append(text)
    return found


def test_a_killed_drill_leaves_a_world_that_the_next_run_removes(small_drill):
    process = _start_and_wait_for_the_world()
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
    assert all(_world_processes(folder) == [] for folder in folders), "no process of the old world survives"


def test_sigterm_tears_the_world_down_and_exits_130(small_drill):
    process = _start_and_wait_for_the_world()
    folders = leftover_folders()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    assert existing_namespaces() == [] and leftover_folders() == []
    assert all(_world_processes(folder) == [] for folder in folders)


def test_usage_errors_exit_2_with_one_line():
    for args, expected in ((["--size-mb", "0"], "between 1 and 100000"), (["--scenario", "flood"], "invalid choice")):
        result = drill(*args, timeout=60)
        assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


def test_a_second_drill_is_refused_while_one_runs():
    lock = Lock()
    lock.acquire()
    try:
        result = drill("--clean", timeout=60)
    finally:
        lock.release()
    assert result.returncode == 2 and "another drill is running" in result.stderr


# Read any file and search any folder, and nothing more: what `nobody` needs to run this checkout's Python from a
# private folder (a clone under /root, mode 700), kept across the change of user in the ambient set.
READ_ANYWHERE = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    """`argv` run from the checkout as the unprivileged user `nobody`, wherever the checkout and the venv live.

    Neither a clone in a private folder nor a venv or interpreter under one is readable by nobody, so the process
    keeps CAP_DAC_READ_SEARCH: it reads the checkout, writes nothing of root's, and is not root (its uids are
    nobody's, which is what the drill checks). Where setpriv cannot keep that capability (a container whose
    bounding set lacks it), plain nobody runs a world-readable copy of the checkout's files; the test is skipped
    only if plain nobody cannot run the interpreter with its packages either."""
    nobody = pwd.getpwnam("nobody")
    drop = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    result = subprocess.run([*drop, *READ_ANYWHERE, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60)
    if not result.stderr.startswith("setpriv:"):
        return result
    refused = result.stderr.strip().splitlines()[0]
    copy = Path(tempfile.mkdtemp(prefix="raptorflow-as-nobody-"))
    try:
        copy.chmod(0o755)
        shutil.copytree(ROOT, copy / "checkout", ignore=shutil.ignore_patterns(".*", "__pycache__"))
        result = subprocess.run([*drop, *argv], cwd=copy / "checkout", capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(copy)
    if "Permission denied" in result.stderr or "No module named" in result.stderr:
        said = result.stderr.strip().splitlines()[-1]
        pytest.skip(f"nobody cannot run {sys.executable} with its packages ({said}), and setpriv cannot keep "
                    f"CAP_DAC_READ_SEARCH for it ({refused})")
    return result


def test_without_root_the_drill_says_so_and_exits_2():
    result = as_nobody(sys.executable, "-m", "tools.drill")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "needs root" in lines[0], result.stderr
