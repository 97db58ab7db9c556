"""Every failure of a job reaches its log file (bad input as one line, anything else with its traceback),
and every job's log ends with its peak memory, in the form benchmarks/bench_scale.py reads."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from curatornet.errors import InputError
from curatornet.logs import logged_job

REPO = Path(__file__).resolve().parents[1]


def load_bench_scale():
    spec = importlib.util.spec_from_file_location("bench_scale", REPO / "benchmarks" / "bench_scale.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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


def test_a_job_logs_its_peak_memory_on_exit_and_the_benchmark_reads_it(tmp_path):
    log_file = tmp_path / "logs" / "data" / "job.log"
    job = (
        "import numpy as np\n"
        "from curatornet.logs import setup_logging\n"
        f"setup_logging({str(log_file)!r}).info('working')\n"
        "block = np.ones(300 * 2**20 // 8)  # 300 MB, touched\n"
    )
    subprocess.run([sys.executable, "-c", job], check=True, capture_output=True, timeout=120)
    lines = log_file.read_text().splitlines()
    assert "working" in lines[0] and "peak memory of this process" in lines[-1]
    peak, cpu = load_bench_scale().logged_usage(log_file)
    assert 300 <= peak < 2000 and cpu > 0


def test_the_benchmark_pairs_snakemake_benchmark_files_with_job_logs(tmp_path):
    bench = load_bench_scale()
    (tmp_path / "benchmarks/results/clusters").mkdir(parents=True)
    (tmp_path / "benchmarks/results/clusters/clusters.tsv").write_text(
        "s\th:m:s\tmax_rss\tmax_vms\n12.5\t0:00:12\t900.0\t1500.0\n"
    )
    (tmp_path / "logs/clusters").mkdir(parents=True)
    (tmp_path / "logs/clusters/clusters.log").write_text(
        "x INFO curatornet: peak memory of this process: 2345 MB (max RSS), CPU time 20.5 s\n"
    )
    (tmp_path / "logs/triplets").mkdir(parents=True)
    (tmp_path / "logs/triplets/sample_d1_basket.log").write_text("started\n")
    rows = bench.collect_figures(tmp_path)
    assert [(r.stage, r.job, r.seconds, r.snakemake_max_rss_mb, r.peak_mb, r.cpu_seconds) for r in rows] == [
        ("clusters", "clusters", 12.5, 900.0, 2345.0, 20.5)
    ]
    assert [p.name for p in bench.unfinished_jobs(tmp_path, rows)] == ["sample_d1_basket.log"]
