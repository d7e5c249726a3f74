#!/usr/bin/env python3
"""Benchmark: an RDB backup through Lifeboat's BackupOperator vs plain `redis-cli --rdb`, same run.

    .venv/bin/python bench/redis_rdb_backup.py [--mb 150] [--runs 5]

Starts a private redis-server (127.0.0.1, free port, password, in a temp folder -- not the devstack's),
fills it with ~--mb MiB of keys (mostly incompressible strings, plus hashes, lists, sets and zsets),
then, --runs times each, alternating who goes first:

  plain     redis-cli --rdb <file>                     (what an operator would type)
  lifeboat  BackupOperator(kind="rdb").execute(ctx)    (the task the backup DAG runs: INFO checks,
            redis-cli --rdb - streamed into the staging file, its sha256 and a scratch redis-server
            loading it as it arrives (exact counts + key-sample digest), upload to a file://
            repository, manifest written last)

and prints the medians and the overhead ratio lifeboat/plain, with where the extra time goes.
Everything it started is stopped and its temp folder deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import (
    inventory,
    phase_timer,
    print_phases,
    print_ratio,
    quiet_disk,
    record,
    run_backup_operator,
    wait_serving,
)

from lifeboat.net import free_port

INVENTORY = inventory("redis", '{{rdb: {{schedule: "15 * * * *"}}}}', "{{sample_size: 1000}}")


def start_server(tmp: Path, password: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    data = tmp / "live"
    data.mkdir()
    conf = tmp / "live.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f'bind 127.0.0.1\nport {port}\ndir "{data}"\nlogfile "{tmp / "live.log"}"\nsave ""\n'
                 f"appendonly no\nrequirepass {password}\nrepl-diskless-sync-delay 0\n")
    proc = subprocess.Popen(["redis-server", str(conf)])
    import redis

    c = redis.Redis(port=port, password=password)
    wait_serving("bench redis-server", proc, c.ping, tmp / "live.log", 20)
    return proc, port


def fill(port: int, password: str, mib: int) -> dict:
    import redis

    c = redis.Redis(port=port, password=password)
    rnd = os.urandom
    target = mib * 1024 * 1024
    strings = int(target * 0.8) // 1024
    p = c.pipeline(transaction=False)
    for i in range(strings):
        p.set(f"str:{i}", rnd(1000))
        if i % 2000 == 1999:
            p.execute()
    for i in range(int(target * 0.07) // (50 * 100)):
        p.hset(f"hash:{i}", mapping={f"f{j}": rnd(100) for j in range(50)})
    p.execute()
    for i in range(int(target * 0.07) // (100 * 100)):
        p.rpush(f"list:{i}", *[rnd(100) for _ in range(100)])
    p.execute()
    for i in range(int(target * 0.03) // (100 * 60)):
        p.sadd(f"set:{i}", *[rnd(40) for _ in range(100)])
        p.zadd(f"zset:{i}", {rnd(40): j for j in range(100)})
        p.set(f"ttl:{i}", "x", ex=86400)
    p.execute()
    return {"keys": c.dbsize(), "used_memory": c.info("memory")["used_memory"]}


def need_tools(*tools: str) -> None:
    for tool in tools:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not on PATH (apt-get install redis-server redis-tools)")


def use_server(tmp: Path, port: int, password: str) -> None:
    """Point Lifeboat at the bench server: an Airflow env in `tmp`, the connection, the inventory."""
    os.environ.update({
        "AIRFLOW_HOME": str(tmp / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW_CONN_LIFEBOAT_BENCH_REDIS": f"redis://:{password}@127.0.0.1:{port}/0",
        "LIFEBOAT_INVENTORY": str(tmp / "inventory.yaml"),
    })
    (tmp / "inventory.yaml").write_text(INVENTORY.format(tmp=tmp))


@contextlib.contextmanager
def bench_redis(prefix: str) -> Iterator[tuple[Path, int, str]]:
    """A temp folder with a private password-protected redis-server that Lifeboat is pointed at
    (use_server): yields (folder, port, password); the server stopped and the folder deleted afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    password = secrets.token_urlsafe(18)
    proc = None
    try:
        proc, port = start_server(tmp, password)
        use_server(tmp, port, password)
        yield tmp, port, password
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=150, help="approximate dataset size in MiB (default 150)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    need_tools("redis-server", "redis-cli", "redis-check-rdb")

    with bench_redis("lifeboat-bench-redis-") as (tmp, port, password):
        t = time.monotonic()
        facts = fill(port, password, args.mb)
        print(f"filled {facts['keys']} keys, used_memory {facts['used_memory'] / 1048576:.0f} MiB "
              f"in {time.monotonic() - t:.1f}s")

        from lifeboat.datastores.redis import engine as engine_mod

        phases: dict[str, list[float]] = {"stream (file + sha256 + scratch load)": [], "upload (copy)": [],
                                          "wait for load + counts + sample": []}

        timed = phase_timer(phases)
        R = engine_mod.RedisDatastore
        R._stream_rdb = timed("stream (file + sha256 + scratch load)", R._stream_rdb)
        from lifeboat.datastores.redis.server import ScratchRedis

        real_wait = ScratchRedis.wait_fed
        real_survey = R._survey

        def wait_and_survey(self, scratch, load_seconds, staging):
            return real_survey(self, scratch, load_seconds, staging)

        ScratchRedis.wait_fed = timed("wait for load + counts + sample", real_wait)
        R._survey = timed("wait for load + counts + sample", wait_and_survey)
        from lifeboat.repository import Repository

        Repository.put_artifact = timed("upload (copy)", Repository.put_artifact)

        plain, lifeboat, sizes, ids = [], [], [], []
        base = datetime(2030, 1, 1, tzinfo=UTC)
        env = {**os.environ, "REDISCLI_AUTH": password}
        for i in range(args.runs):
            def run_plain(i: int = i) -> None:
                out = tmp / f"plain-{i}.rdb"
                quiet_disk()
                t = time.monotonic()
                subprocess.run(["redis-cli", "-p", str(port), "--rdb", str(out)], env=env, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                plain.append(time.monotonic() - t)
                sizes.append(out.stat().st_size)
                out.unlink()

            def run_lifeboat(i: int = i) -> None:
                result, secs = run_backup_operator("redis", "rdb", base + timedelta(hours=i), f"bench-{i}")
                lifeboat.append(secs)
                ids.append(result["backup_id"])

            # alternate who goes first, so a drift of the machine's load does not favour one side
            for side in (run_plain, run_lifeboat) if i % 2 == 0 else (run_lifeboat, run_plain):
                side()
            print(f"run {i + 1}: plain {plain[-1]:.2f}s  lifeboat {lifeboat[-1]:.2f}s  ({ids[-1]})")

        p, lb = statistics.median(plain), statistics.median(lifeboat)
        print(f"\nRDB {statistics.median(sizes) / 1048576:.0f} MiB, {facts['keys']} keys, medians of {args.runs} runs:")
        print(f"  plain redis-cli --rdb      {p:6.2f}s")
        print(f"  BackupOperator (rdb)       {lb:6.2f}s   (redis-cli --rdb, then, side by side:)")
        print_phases(phases, args.runs, 34)
        print_ratio("lifeboat/plain", plain, lifeboat)
        record("redis_rdb_backup", "backup", lb / p, args.runs, native=plain, ours=lifeboat,
               native_label="redis-cli --rdb", size_mb=round(statistics.median(sizes) / 1048576, 1),
               seconds_native=p, seconds_lifeboat=lb, keys=facts["keys"])
        return 0


if __name__ == "__main__":
    sys.exit(main())
