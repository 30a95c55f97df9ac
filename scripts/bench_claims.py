#!/usr/bin/env python3
"""Claim throughput of the job log: N claimer processes (each its own engine, as workstations
have) take and finish empty jobs until none is left, on PostgreSQL (SELECT ... FOR UPDATE SKIP
LOCKED) and on SQLite (the conditional UPDATE). Prints claims per second and the double claims
(a job claimed by two claimers; must be 0). A benchmark, not a test.

    .venv/bin/python scripts/bench_claims.py                      # 3 and 8 claimers, 10,000 jobs
    .venv/bin/python scripts/bench_claims.py --claimers 3 --jobs 2000 --pg-url postgresql+psycopg://...

Without --pg-url a throw-away PostgreSQL server is started in a temporary folder (Debian's
initdb and pg_ctl, as the tests do; run as `nobody` when run as root).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "daemon"), str(REPO)]

from mattectl.store.repository import JobRepository, JobResult, NewJob  # noqa: E402


def fill(target: Path | str, folder: str, jobs: int) -> None:
    repo = JobRepository.open(target)
    try:
        for n in range(jobs):
            repo.add(NewJob(folder, Path(f"/in/{n}.jpg"), f"{n}.jpg", f"{n:064x}", 1, 1))
    finally:
        repo.close()


def claimer(target: Path | str, folder: str, name: str, start, results) -> None:
    repo = JobRepository.open(target)
    worker = f"{name}:1:w0"
    claimed = []
    start.wait()
    while (job := repo.claim(worker, [folder])) is not None:
        repo.finish(job.id, worker, JobResult())
        claimed.append(job.id)
    repo.close()
    results.put((name, claimed, time.perf_counter()))


def run(target: Path | str, claimers: int, jobs: int) -> dict[str, float]:
    """One run on a folder of its own (a PostgreSQL database keeps the runs before)."""
    folder = f"bench-{claimers}-{time.time_ns()}"
    fill(target, folder, jobs)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(claimers + 1)
    results = context.Queue()
    procs = [context.Process(target=claimer, args=(target, folder, f"host{i}", start, results))
             for i in range(claimers)]
    for proc in procs:
        proc.start()
    start.wait()
    began = time.perf_counter()
    found = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
    ended = max(at for _, _, at in found)
    ids = Counter(i for _, claimed, _ in found for i in claimed)
    repo = JobRepository.open(target, writer=False)
    try:
        left = sum(v for k, v in repo.counts().get(folder, {}).items() if k != "done")
    finally:
        repo.close()
    return {"claims": sum(ids.values()), "jobs": len(ids),
            "double": sum(n - 1 for n in ids.values()), "not_done": left,
            "seconds": ended - began, "per_s": sum(ids.values()) / (ended - began)}


def postgres_url(keep: list) -> str:
    from tests import pgserver

    bin_dir = pgserver.binaries()
    if bin_dir is None:
        sys.exit("no PostgreSQL binaries (initdb, pg_ctl): install Debian's postgresql, or "
                 "pass --pg-url")
    server = pgserver.start(bin_dir)
    keep.append((bin_dir, server))
    return server.url("postgres")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claimers", type=int, nargs="+", default=[3, 8])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--pg-url", help="an empty PostgreSQL database (its tables are made)")
    options = parser.parse_args()
    servers: list = []
    try:
        base = options.pg_url or postgres_url(servers)
        print(f"{'database':<11}{'claimers':>9}{'claims':>8}{'double':>8}{'left':>6}"
              f"{'seconds':>9}{'claims/s':>10}")
        for claimers in options.claimers:
            for database in ("postgresql", "sqlite"):
                with tempfile.TemporaryDirectory() as tmp:
                    if database == "sqlite":
                        target: Path | str = Path(tmp) / "jobs.sqlite3"
                    else:
                        target = base
                    r = run(target, claimers, options.jobs)
                print(f"{database:<11}{claimers:>9}{r['claims']:>8.0f}{r['double']:>8.0f}"
                      f"{r['not_done']:>6.0f}{r['seconds']:>9.2f}{r['per_s']:>10.0f}",
                      flush=True)
    finally:
        if servers:
            from tests import pgserver

            for bin_dir, server in servers:
                pgserver.stop(bin_dir, server)


if __name__ == "__main__":
    main()
