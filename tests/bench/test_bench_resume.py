"""`python -m bench --resume FILE`: a long run in pieces. A second run with the same FILE and settings takes the
sizes the first one finished, and the runs it finished of a size it did not, and runs only the rest; a FILE made
with other settings, or that is no record, is refused with exit 2 and one line."""

from __future__ import annotations

import dataclasses
import json
import statistics

import pytest

from bench import backup_throughput, report, resume
from bench.backup_throughput import main
from bench.harness import Outcome
from bench.measure import Run

ARGS = ["--datasets", "random", "--tools", "job", "--json"]


def test_a_resumed_run_takes_the_kept_sizes_and_runs_only_the_rest(tmp_path, capsys):
    record = tmp_path / "run.json"
    assert main([*ARGS, "--repeat", "1", "--sizes-mb", "2", "--resume", str(record)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert {row["sizeMb"] for row in first} == {2}
    kept = json.loads(record.read_text())
    assert kept["settings"]["repeat"] == 1 and kept["settings"]["tools"] == ["job"] and kept["rows"] == first
    assert kept["settings"]["code"] == resume.code() and "backup_job@" in kept["settings"]["code"], "the code measured"

    assert main([*ARGS, "--repeat", "1", "--sizes-mb", "2,3", "--resume", str(record)]) == 0
    said = capsys.readouterr()
    second = json.loads(said.out)
    assert [row for row in second if row["sizeMb"] == 2] == first, "the kept size ran again"
    assert {row["sizeMb"] for row in second} == {2, 3}
    assert f"random 2 MB: {len(first)} rows from {record}" in said.err
    assert "filling a random database for a ~2 MB dump" not in said.err
    assert json.loads(record.read_text())["rows"] == second

    with pytest.raises(SystemExit) as refused:
        main([*ARGS, "--repeat", "2", "--sizes-mb", "2", "--resume", str(record)])
    assert refused.value.code == 2
    assert "was made with other settings (repeat 1 there, 2 here): use another file" in capsys.readouterr().err


def test_a_file_that_is_no_record_is_refused_and_left_alone(tmp_path, capsys):
    other = tmp_path / "notes.json"
    other.write_text("[1, 2, 3]")
    with pytest.raises(SystemExit) as refused:
        main([*ARGS, "--repeat", "1", "--sizes-mb", "2", "--resume", str(other)])
    assert refused.value.code == 2 and "is not a record of this benchmark" in capsys.readouterr().err
    assert other.read_text() == "[1, 2, 3]"


def test_a_run_stopped_inside_a_size_keeps_its_finished_runs_and_the_next_runs_only_the_missing_ones(
        tmp_path, capsys, monkeypatch):
    """Stopped (SIGTERM, Ctrl-C) in the second of two runs at one size: FILE keeps the first run's measurements;
    the next run fills the database again, runs every tool once more and reports the medians of both runs."""
    record, real = tmp_path / "run.json", backup_throughput._runners
    measured: dict[str, list] = {}
    stop = {"at": 2}  # the upload floor's second call is stopped

    def counted(bench, relay):
        def wrap(tool, runner):
            def run():
                if tool == report.UPLOAD and len(measured.get(tool, [])) + 1 == stop["at"]:
                    raise KeyboardInterrupt
                outcome = runner()
                measured.setdefault(tool, []).append(outcome)
                return outcome
            return run
        return {tool: wrap(tool, runner) for tool, runner in real(bench, relay).items()}

    monkeypatch.setattr(backup_throughput, "_runners", counted)
    args = [*ARGS, "--repeat", "2", "--sizes-mb", "2", "--resume", str(record)]
    assert main(args) == 130
    capsys.readouterr()
    kept = json.loads(record.read_text())
    assert kept["rows"] == [] and len(kept["runs"]) == 1, "the first run, not the stopped one"
    assert resume._outcomes(kept["runs"][0]["outcomes"]) == {tool: runs[0] for tool, runs in measured.items()}, \
        "every figure of every tool's first run, exactly"
    first = {tool: len(outcomes) for tool, outcomes in measured.items()}

    stop["at"] = 0
    assert main(args) == 0
    said = capsys.readouterr()
    assert f"random 2 MB: 1 of 2 runs from {record}" in said.err
    assert "run 1/2" not in said.err and said.err.count(f"run 2/2: {report.JOB}\n") == 1
    assert all(len(measured[tool]) == first[tool] + 1 for tool in measured), "each tool ran once more"
    rows = {row["tool"]: row for row in json.loads(said.out)}
    job = rows[report.JOB]
    assert job["runs"] == 2
    kept_and_new = [measured[report.JOB][0], measured[report.JOB][-1]]  # not the job of the run that was stopped
    assert job["backupSeconds"] == round(statistics.median(o.backup.seconds for o in kept_and_new), 2)
    assert job["ratioToPgDumpFc"] is not None and rows[report.UPLOAD]["runs"] == 2
    after = json.loads(record.read_text())
    assert after["runs"] == [] and after["rows"] == list(rows.values()), "the size's rows replace its runs"


def test_runs_are_kept_by_size_and_a_finished_size_replaces_only_its_own(tmp_path):
    path, settings = tmp_path / "run.json", {"repeat": 3, "tools": ["job"], "jobs": 2, "code": "c"}
    record = resume.Record(path, settings)
    first = Outcome(backup=Run(1.5, cpu_by_program={"pg_dump": 0.5}), stored_bytes=7, mode="parallel",
                    extra={"restore-check": Run(2.0)})
    record.keep_run("app", 200, {"backup_job": first})
    record.keep_run("app", 600, {"backup_job": Outcome(error="failed")})
    record.keep_run("app", 200, {"backup_job": Outcome(restore=Run(3.0))})
    again = resume.Record(path, settings)
    assert [runs["backup_job"] for runs in again.runs_of("app", 200)] == [first, Outcome(restore=Run(3.0))]
    again.keep([{"dataset": "app", "sizeMb": 200, "tool": "backup_job"}])
    final = resume.Record(path, settings)
    assert final.runs_of("app", 200) == [] and final.finished("app", 200)
    assert final.runs_of("app", 600) == [{"backup_job": Outcome(error="failed")}], "the other size's run stays"


def test_an_earlier_record_without_runs_loads_and_a_run_it_cannot_read_is_refused_in_one_line(tmp_path):
    path, settings = tmp_path / "run.json", {"repeat": 1, "tools": ["job"], "jobs": 2, "code": "c"}
    path.write_text(json.dumps({"settings": settings, "rows": [{"dataset": "random", "sizeMb": 2}]}))
    assert resume.Record(path, settings).finished("random", 2)
    run = {"backup": {**dataclasses.asdict(Run(1.0)), "seconds": "fast"}, "restore": None, "stored_bytes": 1,
           "extra": {}, "error": None, "mode": "single"}
    path.write_text(json.dumps({"settings": settings, "rows": [],
                                "runs": [{"dataset": "random", "sizeMb": 2, "outcomes": {"backup_job": run}}]}))
    with pytest.raises(resume.Mismatch, match=r"holds a run this benchmark cannot read .TypeError: 'fast' is no"):
        resume.Record(path, settings)
    for broken in ('{"settings": [], "rows": []}', '{"settings": {}, "rows": 3}', '[1]'):
        path.write_text(broken)
        with pytest.raises(resume.Mismatch, match="is not a record of this benchmark"):
            resume.Record(path, settings)
