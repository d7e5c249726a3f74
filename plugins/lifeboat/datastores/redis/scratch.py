"""The Redis restore-test target: the backup copied into a private folder, loaded by a scratch
redis-server, its key counts and sampled keys compared with the manifest."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lifeboat.datastores.base import ScratchTarget
from lifeboat.datastores.redis import host
from lifeboat.datastores.redis.sample import SAMPLE_FILE, SAMPLE_FORMAT_V1, compare_counts, compare_samples
from lifeboat.datastores.redis.server import ScratchRedis
from lifeboat.drills import DrillRecorder
from lifeboat.errors import Refused, RestoreFailed
from lifeboat.records import Manifest

if TYPE_CHECKING:  # the engine passes itself in; no import at run time
    from lifeboat.datastores.redis.engine import RedisDatastore

DISK_HEADROOM = 16 * 1024 * 1024


def prechecks(ds: RedisDatastore, m: Manifest, root: Path) -> str:
    """Free space for the copy (and a rewrite of a loaded AOF) and memory for the dataset, or Refused."""
    need = sum(a.size for a in m.artifacts) + DISK_HEADROOM
    if m.kind == "aof":
        need += sum(a.size for a in m.artifacts)  # redis may rewrite the copied AOF once loaded
    free = host.free_bytes(root.parent)
    if free < need:
        raise Refused(f"scratch folder {root}: {host.mib(free)} free on its filesystem, the {m.kind} backup {m.id} "
                      f"needs {host.mib(need)} (artifacts + headroom). Nothing was started; free space or move the "
                      "inventory's workdir")
    detail = f"disk: {host.mib(need)} needed, {host.mib(free)} free"
    mem_need = int(m.native.get("used_mem") or 0)
    avail = host.memory_check(ds.options.memory_check, ds.name, mem_need, f"restoring {m.id}")
    if avail is not None:
        detail += f"; memory: ~{host.mib(mem_need)} needed, {host.mib(avail)} available"
    return detail


def compare_sample(m: Manifest, root: Path, server: ScratchRedis) -> str:
    """The sampled keys in the loaded server against sample.json: type, canonical value, expiry."""
    sample = m.native.get("sample") or {}
    if not sample.get("size"):
        return "no keys were sampled at backup time"
    doc = json.loads((root / sample.get("artifact", SAMPLE_FILE)).read_text())
    expected = doc["entries"]
    if doc.get("format") == SAMPLE_FORMAT_V1:  # names stored hashed only: find them by a full SCAN
        got = server.survey({e["k"] for e in expected})
    else:  # v2: read exactly the sampled keys by name
        got = server.lookup(expected)
    problems, expired = compare_samples(expected, got, int(time.time() * 1000))
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        raise RestoreFailed(f"{len(problems)} of {len(expected)} sampled keys differ from the backup: "
                            + "; ".join(problems[:5]) + more)
    return (f"{len(expected) - expired} sampled keys identical (type, canonical value, expiry)"
            + (f", {expired} expired since the backup" if expired else "")
            + f"; digest {sample['digest'][:16]}…")


class RedisScratch(ScratchTarget):
    teardown_step = "tear down scratch redis-server"

    def __init__(self, ds: RedisDatastore, m: Manifest, drill: DrillRecorder):
        self.ds, self.m = ds, m
        self.root = ds.scratch_dir(drill.drill.id)
        self.server = ScratchRedis(ds, self.root, int(m.native.get("databases", ds.options.databases)))

    def precheck(self, drill: DrillRecorder) -> None:
        with drill.step("safety: scratch target is not the live server") as s:
            self.server.guard()
            s.detail = f"{self.root} (under {self.server.area}), port {self.server.port}"
        with drill.step("pre-checks: scratch disk space and memory") as s:
            s.detail = prechecks(self.ds, self.m, self.root)

    def restore(self, drill: DrillRecorder) -> None:
        m = self.m
        with drill.step(f"fetch {m.kind} from repository") as s:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root.mkdir(parents=True)
            check = self.ds.ctx.repo.fetch_then_check(m, self.root)
            s.detail = f"{len(m.artifacts)} files copied into {self.root}; sha256 checked while redis-server loads"
        with drill.step("start scratch redis-server and load; sha256 of the copy") as s:
            # the copy is hashed on one core while redis loads it on the other; a digest that differs
            # fails this step before anything reads the loaded data (Redis checks the RDB's CRC64 too)
            with ThreadPoolExecutor(1, thread_name_prefix="lifeboat-sha256") as pool:
                digests = pool.submit(check)
                try:
                    secs = self.server.start(m.kind, m.native.get("aof_filename", "appendonly.aof"),
                                             m.native.get("aof_dirname"))
                finally:
                    checked = digests.result()
            s.detail = f"127.0.0.1:{self.server.port}, loaded in {secs:.2f}s from {self.root}; {checked}"

    def verify(self, drill: DrillRecorder) -> None:
        with drill.step("key counts") as s:
            got = self.server.keyspace()
            problems, notes = compare_counts(self.m.counts, got)
            if problems:
                raise RestoreFailed("key counts differ from the backup's manifest: " + "; ".join(problems))
            s.detail = ", ".join(f"{k}={v}" for k, v in got.items()) + ("; " + "; ".join(notes) if notes else "")

    def after_ready(self, drill: DrillRecorder) -> None:
        # Outside the RTO clock: inside it the loaded bytes were already proven to be the backup's (the
        # sha256 of every byte, Redis's CRC64 as it loads) and complete (exact key counts); the sample is a
        # second look at the same bytes, key by key (~50 ms per 1000 keys), that no recovery waits for
        # before serving. A differing key still fails the drill.
        with drill.step("sampled keys digest") as s:
            s.detail = compare_sample(self.m, self.root, self.server)

    def newest_heartbeat(self) -> datetime | None:
        return self.server.heartbeat()

    def heartbeat_detail(self, hb: datetime | None) -> str:
        return hb.isoformat() if hb else f"no {self.ds.options.heartbeat_key} key in the restored data"

    def teardown(self) -> str:
        self.server.destroy()
        return f"stopped 127.0.0.1:{self.server.port}, removed {self.root}"
