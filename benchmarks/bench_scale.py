"""Benchmark: the workflow up to the deduplicated triples at a larger catalogue.

Runs ``snakemake dedup_triplets clusters`` (data, the clusters stage with its 2-D map, triplet
shards, deduplication)
with ``dataset.synthetic.scale`` set to ``--scale``, in a fresh copy of the
project so that the repository's results/ is never touched, and prints for every
job its wall time (Snakemake's benchmark file) and its peak memory (the larger of
Snakemake's sampled max RSS and the peak the job logs on exit: Snakemake samples
every 30 s after the first 15 s and can miss a peak), then the whole run's wall
time and the peak memory of all its processes together (sampled every 0.5 s).

Goal at scale 10 (77,420 items): everything up to the deduplicated triples in at
most 5 minutes and 8 GB on two cores.

    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --scale 10
    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --scale 100 --memory-limit-gb 12 --timeout-min 30

``--memory-limit-gb`` caps the address space of every process of the run, so a
job that would need more fails with a MemoryError instead of pushing a shared
machine out of memory. ``--tiles N`` stands in for a generator too slow or too
big at this scale: it generates N independent markets at scale/N each (seeds
seed..seed+N-1, ids prefixed by the market) and joins them into the raw data
set, so Snakemake's ``generate_data`` does not run (all tiles are held in
memory: use it with a small ``--embedding-dim``).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PROJECT_PARTS = ("Snakefile", "workflow", "config", "src", "envs", "profiles")
#: The deduplicated triples, and the clusters rule so that the 2-D map (which no shard waits for) counts too.
TARGETS = ("dedup_triplets", "clusters")
GOAL_SCALE = 10.0
GOAL_SECONDS = 300.0
GOAL_MB = 8000.0
#: Written by curatornet.logs when a job exits.
PEAK_LINE = re.compile(r"peak memory of this process: (\d+) MB(?: \(max RSS\), CPU time ([\d.]+) s)?")
FAILED_RULE = re.compile(r"Error in rule (\w+):")
#: The last line of a Python traceback, e.g. numpy's "...MemoryError: Unable to allocate 6.3 GiB ...".
EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception)\b: .*$", re.MULTILINE)


@dataclass
class JobFigures:
    stage: str  # the folder of the benchmark file: data, clusters, triplets, ...
    job: str
    seconds: float
    snakemake_max_rss_mb: float | None
    logged_peak_mb: float | None
    cpu_seconds: float | None = None  # user + system time the job logged on exit

    @property
    def peak_mb(self) -> float | None:
        values = [v for v in (self.snakemake_max_rss_mb, self.logged_peak_mb) if v is not None]
        return max(values) if values else None


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            shutil.copy2(source, dest / part)
    return dest


def overlay_config(scale: float, embedding_dim: int | None) -> dict:
    synthetic: dict = {"scale": scale}
    if embedding_dim is not None:
        synthetic["embedding_dim"] = embedding_dim
    return {"dataset": {"synthetic": synthetic}}


def write_tiled_raw(raw_dir: Path, scale: float, tiles: int, embedding_dim: int, seed: int) -> None:
    """The raw data set as ``tiles`` independent markets at ``scale / tiles`` each (see the module docstring).

    The markets' embedding matrices go into the release file as they are (no
    joined copy), so this holds the catalogue's embeddings once.
    """
    import numpy as np
    import pandas as pd

    from curatornet.data.layout import RAW_EMBEDDINGS, RAW_INVENTORY, RAW_PURCHASES
    from curatornet.data.synthetic import SyntheticDataset, generate, parameters_for, public_release_frames
    from curatornet.io import atomic_path, write_csv

    inventories, purchases, ids, matrices = [], [], [], []
    for tile in range(tiles):
        data = generate(parameters_for("default", scale / tiles, embedding_dim), seed + tile)
        prefix = f"m{tile}-"
        items = data.items.assign(item_id=prefix + data.items["item_id"], artist_id=prefix + data.items["artist_id"])
        bought = data.purchases.assign(
            item_id=prefix + data.purchases["item_id"], user_id=prefix + data.purchases["user_id"]
        )
        inventory, sales = public_release_frames(SyntheticDataset(items, bought, data.embeddings, None, None))
        inventories.append(inventory)
        purchases.append(sales)
        ids.extend(items["item_id"])
        matrices.append(data.embeddings)
        print(f"  market {tile + 1}/{tiles}: {len(items):,} items, {len(bought):,} purchases", flush=True)
        del data
    write_csv(pd.concat(inventories, ignore_index=True), raw_dir / RAW_INVENTORY)
    write_csv(pd.concat(purchases, ignore_index=True), raw_dir / RAW_PURCHASES)
    rows = np.empty((len(ids), 2), dtype=object)  # the release format: [item_id, vector] rows
    rows[:, 0] = ids
    rows[:, 1] = [vector for matrix in matrices for vector in matrix]
    with atomic_path(raw_dir / RAW_EMBEDDINGS) as tmp, open(tmp, "wb") as handle:
        np.save(handle, rows, allow_pickle=True)


def read_benchmark_tsv(path: Path) -> tuple[float, float | None]:
    """(seconds, max_rss MB or None) of a Snakemake benchmark file (first repeat)."""
    with open(path, newline="") as handle:
        row = next(csv.DictReader(handle, delimiter="\t"))
    rss = row.get("max_rss", "NA")
    return float(row["s"]), (None if rss in ("", "NA", "-") else float(rss))


def logged_usage(log_file: Path) -> tuple[float | None, float | None]:
    """(peak MB, CPU seconds) a job logged on exit (None where absent)."""
    if not log_file.is_file():
        return None, None
    matches = list(PEAK_LINE.finditer(log_file.read_text(errors="replace")))
    if not matches:
        return None, None
    last = matches[-1]  # the job's exit line
    return float(last.group(1)), (float(last.group(2)) if last.group(2) else None)


def logged_peak_mb(log_file: Path) -> float | None:
    return logged_usage(log_file)[0]


def collect_figures(workdir: Path) -> list[JobFigures]:
    """One row per benchmark file under benchmarks/results/, with the peak from the job's log beside it."""
    root = workdir / "benchmarks" / "results"
    rows = []
    for tsv in sorted(root.rglob("*.tsv"), key=lambda p: p.stat().st_mtime):
        relative = tsv.relative_to(root).with_suffix("")
        seconds, rss = read_benchmark_tsv(tsv)
        peak, cpu = logged_usage(workdir / "logs" / relative.with_suffix(".log"))
        rows.append(JobFigures(relative.parts[0], relative.name, seconds, rss, peak, cpu))
    return rows


class TreeMemorySampler(threading.Thread):
    """Peak of the summed RSS of a process and all its descendants, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        import psutil

        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_mb = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stopped.is_set():
            total = 0
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            for process in processes:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass  # a process that ended between listing and sampling
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self.stopped.wait(self.interval)


def data_size(workdir: Path) -> str:
    """The prepared data set's size, from results/data/stats.csv."""
    stats_file = workdir / "results" / "data" / "stats.csv"
    if not stats_file.is_file():
        return "data set not prepared"
    with open(stats_file, newline="") as handle:
        stats = {row["statistic"]: row["value"] for row in csv.DictReader(handle)}
    names = ("inventory_items", "artists", "users", "purchase_rows")
    return ", ".join(f"{float(stats[n]):,.0f} {n.replace('_', ' ')}" for n in names if n in stats)


def unfinished_jobs(workdir: Path, rows: list[JobFigures]) -> list[Path]:
    """Logs of jobs that started but wrote no benchmark file (failed or killed)."""
    finished = {(r.stage, r.job) for r in rows}
    logs = sorted((workdir / "logs").rglob("*.log")) if (workdir / "logs").is_dir() else []
    return [p for p in logs if (p.parent.name, p.stem) not in finished]


def limit_address_space(gigabytes: float | None):
    if not gigabytes:
        return None
    limit = int(gigabytes * 2**30)
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def fmt_mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def print_report(rows: list[JobFigures], wall: float, tree_peak_mb: float, scale: float, ok: bool) -> None:
    print(
        f"\n{'stage':10s} {'job':24s} {'wall s':>8s} {'CPU s':>8s} {'peak MB':>9s} {'(snakemake':>11s} {'job log)':>9s}"
    )
    for row in rows:
        print(
            f"{row.stage:10s} {row.job:24s} {row.seconds:8.1f} {fmt_s(row.cpu_seconds):>8s} {fmt_mb(row.peak_mb):>9s} "
            f"{fmt_mb(row.snakemake_max_rss_mb):>11s} {fmt_mb(row.logged_peak_mb):>9s}"
        )
    print()
    for stage in dict.fromkeys(r.stage for r in rows):
        jobs = [r for r in rows if r.stage == stage]
        peaks = [r.peak_mb for r in jobs if r.peak_mb is not None]
        cpu = sum(r.cpu_seconds or 0.0 for r in jobs)
        print(
            f"stage {stage:18s} {sum(r.seconds for r in jobs):8.1f} s of job time, {cpu:8.1f} s of CPU, "
            f"largest job peak {fmt_mb(max(peaks) if peaks else None)} MB"
        )
    job_peaks = [r.peak_mb for r in rows if r.peak_mb is not None]
    largest_job = max(job_peaks) if job_peaks else 0.0
    print(f"sum of job times          {sum(r.seconds for r in rows):8.1f} s")
    cpu = sum(r.cpu_seconds or 0.0 for r in rows)
    print(f"sum of job CPU times      {cpu:8.1f} s (a busy machine stretches wall time, not this)")
    print(f"total wall time           {wall:8.1f} s (snakemake start to end, jobs in parallel where they can)")
    print(f"peak memory, all processes {tree_peak_mb:,.0f} MB (sampled every 0.5 s); largest job {largest_job:,.0f} MB")
    if ok and scale == GOAL_SCALE:
        peak = max(tree_peak_mb, largest_job)
        met = wall <= GOAL_SECONDS and peak <= GOAL_MB
        print(
            f"goal at scale {GOAL_SCALE:g} (<= {GOAL_SECONDS:.0f} s, <= {GOAL_MB:,.0f} MB): "
            f"{'met' if met else 'NOT met'} ({wall:.0f} s, {peak:,.0f} MB)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=GOAL_SCALE, help="dataset.synthetic.scale (default 10)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--embedding-dim", type=int, default=None, help="default: the config's (2048)")
    parser.add_argument("--config", type=Path, nargs="*", default=[], help="more config files, applied in order")
    parser.add_argument("--memory-limit-gb", type=float, default=None, help="address-space cap of every process")
    parser.add_argument("--tiles", type=int, default=0, help="join this many independent markets (see above)")
    parser.add_argument("--seed", type=int, default=42, help="first market's seed with --tiles")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed afterwards")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument("--timeout-min", type=float, default=None, help="stop the run after this many minutes")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="curatornet-bench-scale-"))
    copy_project(workdir)
    overlay = overlay_config(args.scale, args.embedding_dim)
    (workdir / "bench_scale.yaml").write_text(yaml.safe_dump(overlay))
    configs = [str(p.resolve()) for p in args.config] + ["bench_scale.yaml"]
    print(f"scale {args.scale:g}, {args.cores} cores, working folder {workdir}")
    print(f"config: config/config.yaml + {' + '.join(configs)}: {overlay}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    if args.tiles:
        dim = args.embedding_dim or 2048
        print(f"raw data: {args.tiles} markets at scale {args.scale / args.tiles:g} (generate_data will not run)")
        start = time.perf_counter()
        write_tiled_raw(workdir / "results" / "data" / "raw", args.scale, args.tiles, dim, args.seed)
        print(f"  written in {time.perf_counter() - start:.1f} s (not counted below)")

    command = [sys.executable, "-m", "snakemake", *TARGETS, "--cores", str(args.cores), "--configfile", *configs]
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    with open(workdir / "bench_scale.snakemake.log", "w") as output:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_address_space(args.memory_limit_gb),
            start_new_session=True,  # its own process group: a timeout stops the jobs too
        )
        sampler = TreeMemorySampler(process.pid)
        sampler.start()
        timed_out = False
        try:
            code = process.wait(timeout=None if args.timeout_min is None else args.timeout_min * 60)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGTERM)
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                code = process.wait()
        sampler.stopped.set()
        sampler.join()
    wall = time.perf_counter() - started
    rows = collect_figures(workdir)
    print_report(rows, wall, sampler.peak_mb, args.scale, code == 0)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"data: {data_size(workdir)}")
    if timed_out:
        print(f"\nSTOPPED after {args.timeout_min:g} minutes (--timeout-min); jobs running then are listed below")
    if code != 0:
        text = (workdir / "bench_scale.snakemake.log").read_text(errors="replace")
        failed = FAILED_RULE.findall(text)
        print(f"\nsnakemake FAILED (exit {code}) in rule(s) {', '.join(dict.fromkeys(failed)) or '?'}")
        for log_file in unfinished_jobs(workdir, rows):
            peak = logged_peak_mb(log_file)
            print(
                f"--- {log_file.relative_to(workdir)} (no benchmark file; logged peak {fmt_mb(peak)} MB), last lines:"
            )
            print("\n".join(log_file.read_text(errors="replace").splitlines()[-12:]))
        errors = list(dict.fromkeys(m.group(0) for m in EXCEPTION_LINE.finditer(text)))
        print("--- errors in the snakemake output:\n" + "\n".join(errors[-5:] or ["(none found)"]))
    if args.keep or args.workdir:
        print(f"kept {workdir} (snakemake's output: bench_scale.snakemake.log)")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
