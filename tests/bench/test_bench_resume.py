"""`python -m bench --resume FILE`: a long run in pieces. A second run with the same FILE and settings takes the
sizes the first one finished and runs only the rest; a FILE made with other settings, or that is no record, is
refused with exit 2 and one line."""

from __future__ import annotations

import json

import pytest

from bench import resume
from bench.backup_throughput import main

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
