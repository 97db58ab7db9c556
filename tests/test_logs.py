"""Every failure of a job reaches its log file: bad input as one line, anything else with its traceback."""

from __future__ import annotations

import pytest

from curatornet.errors import InputError
from curatornet.logs import logged_job


def test_bad_input_is_one_line_in_the_log(tmp_path, capsys):
    log_file = tmp_path / "logs" / "job.log"
    with pytest.raises(SystemExit) as exit_info, logged_job(log_file):
        raise InputError("data/items.parquet", "item_id", "x1", "duplicate item id")
    assert exit_info.value.code == 1
    lines = log_file.read_text().splitlines()
    assert len(lines) == 1, lines
    assert "ERROR" in lines[0]
    assert "file 'data/items.parquet', field 'item_id': duplicate item id (value: 'x1')" in lines[0]
    assert "Traceback" not in capsys.readouterr().err


def test_an_unexpected_failure_leaves_its_traceback_in_the_log(tmp_path):
    log_file = tmp_path / "job.log"
    with pytest.raises(SystemExit), logged_job(log_file) as log:
        log.info("started")
        {}["missing"]
    text = log_file.read_text()
    assert "started" in text
    assert "Traceback (most recent call last)" in text and "KeyError: 'missing'" in text


def test_a_job_that_succeeds_keeps_its_log(tmp_path):
    log_file = tmp_path / "job.log"
    with logged_job(log_file) as log:
        log.info("wrote %s", "out.parquet")
    assert "wrote out.parquet" in log_file.read_text()
