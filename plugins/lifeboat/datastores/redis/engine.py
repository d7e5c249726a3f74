"""The Redis engine: RDB over the replication protocol, consistent AOF copies, heartbeat."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import re
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lifeboat.clients import redis as redisclient
from lifeboat.datastores.base import Taken
from lifeboat.datastores.redis import host
from lifeboat.datastores.redis.aof import AofCopy
from lifeboat.datastores.redis.feed import SyncFeed
from lifeboat.datastores.redis.options import RedisOptions
from lifeboat.datastores.redis.rdb import read_rdb_aux
from lifeboat.datastores.redis.recovery import RedisRecovery
from lifeboat.datastores.redis.sample import (
    SAMPLE_FILE,
    SAMPLE_FORMAT,
    SAMPLE_METHOD,
    SCAN_ALL_UP_TO,
    sample_digest,
)
from lifeboat.datastores.redis.scratch import RedisScratch, prechecks
from lifeboat.datastores.redis.server import RDB_FILE, ScratchRedis
from lifeboat.datastores.redis.verify import RedisChecks
from lifeboat.datastores.regional import RegionalDatastore
from lifeboat.drills import DrillRecorder
from lifeboat.durations import seconds
from lifeboat.errors import CommandFailed, LifeboatError, Refused
from lifeboat.records import Check, Manifest, utcnow
from lifeboat.storage.local import WritebackAhead
from lifeboat.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)
EOF_MARK = 40  # CONFIG_RUN_ID_SIZE: the end mark of a diskless replication transfer
# what each step (file, sha256, feed) is handed at once: redis-cli writes ~20-35 KiB at a time, and one
# write + hash + send per MiB instead of per write cut this process's CPU from ~1.0 s to ~0.3 s at 147 MiB
STREAM_CHUNK = 1 << 20
FORK_FIELDS = ("rdb_bgsave_in_progress", "aof_rewrite_in_progress", "module_fork_in_progress")


class RedisDatastore(RegionalDatastore[RedisOptions]):
    engine = "redis"
    restore_series = "rdb"

    # -- plumbing --------------------------------------------------------------------------------
    def client(self, db: int = 0, region: str | None = None):
        """A checked redis.Redis for the live server; auth and network errors name the connection."""
        return redisclient.client(self.endpoint(region), db)

    def _cli(self, *args: str, timeout: float | None = None):
        argv, env = redisclient.cli(self.endpoint(), self.options.cli_bin)
        return self.ctx.runner.run([*argv, *args], env=env, timeout=timeout)

    def _tool_version(self, tool: str) -> str:
        try:
            return self.ctx.runner.run([tool, "--version"], capture=True, quiet=True, check=False).stdout.strip()
        except OSError:
            return "unknown"

    def _wait_not_busy(self, client, fields: tuple[str, ...], what: str) -> dict:
        """INFO persistence once no fork of `fields` runs; Refused after busy_wait (nothing was changed)."""
        def persistence() -> tuple[dict, list[str]]:
            info = client.info("persistence")
            busy = [f for f in fields if int(info.get(f, 0) or 0)]
            if busy:
                log.info("waiting for %s to finish before %s ...", ", ".join(busy), what)
            return info, busy

        try:
            return wait_until(f"no fork before {what}", persistence, seconds(self.options.busy_wait), 0.5,
                              done=lambda s: not s[1])[0]
        except WaitTimeout as exc:
            ep = self.endpoint()
            raise Refused(
                f"Redis behind Airflow connection {ep.conn_id!r} ({redisclient.address(ep)}) is busy: "
                f"{', '.join(f'{b}:1' for b in exc.last[1])} (INFO persistence) -- a BGSAVE/BGREWRITEAOF is already "
                f"running; not starting {what} on top of it (waited {self.options.busy_wait}, options.busy_wait). "
                "Nothing was changed on the server; the next run will try again") from None

    def _live_facts(self, client) -> dict[str, Any]:
        server, memory, repl = client.info("server"), client.info("memory"), client.info("replication")
        ks = client.info("keyspace")
        max_db = max((int(k[2:]) for k in ks if k.startswith("db")), default=0)
        return {"redis_version": str(server.get("redis_version", "")), "used_memory": int(memory.get("used_memory", 0)),
                "role": repl.get("role"), "master_repl_offset": int(repl.get("master_repl_offset", 0) or 0),
                "master_replid": repl.get("master_replid"), "databases": max(max_db + 1, self.options.databases)}

    # -- backup ----------------------------------------------------------------------------------
    def _take(self, kind: str, backup_id: str, staging: Path) -> Taken:
        return self._take_rdb(backup_id, staging) if kind == "rdb" else self._take_aof(backup_id, staging)

    def _take_rdb(self, backup_id: str, staging: Path) -> Taken:
        client = self.client()
        self._wait_not_busy(client, FORK_FIELDS, "an RDB snapshot")
        live = self._live_facts(client)
        host.memory_check(self.options.memory_check, self.name, live["used_memory"],
                          f"loading backup {backup_id} for its manifest")
        rdb = staging / RDB_FILE
        # The snapshot streams into the staging file, its sha256 and a scratch redis-server at once
        # (feed.py): the exact counts and the key sample come from Redis loading these very bytes.
        root = self.scratch_dir(f"{backup_id}-inspect")
        scratch = ScratchRedis(self, root, live["databases"])
        scratch.guard()
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        feed = SyncFeed(seconds(self.options.restore_timeout))
        try:
            feed.start()
            scratch.start_fed(feed)
            with ThreadPoolExecutor(1, thread_name_prefix="lifeboat-redis-backup") as pool:
                versions = pool.submit(self._tool_versions)  # two tiny processes while the snapshot streams
                digest = self._stream_rdb(rdb, staging, feed)
                try:
                    aux = read_rdb_aux(rdb)
                except (OSError, ValueError) as exc:
                    raise CommandFailed([self.options.cli_bin, "--rdb", "-"], 0,
                                        f"the stream redis-cli wrote is not a usable RDB: {exc}") from None
                # Upload (a file:// repository on the same filesystem takes the staging file over: fsync +
                # rename; the digest was taken while streaming) and the survey of the loaded snapshot side by side.
                upload = pool.submit(self.ctx.repo.put_artifact, self.name, backup_id, RDB_FILE, rdb, digest,
                                     move=True)
                snap = self._survey(scratch, scratch.wait_fed(feed), staging)
                artifacts = [upload.result(),
                             self.ctx.repo.put_artifact(self.name, backup_id, SAMPLE_FILE, staging / SAMPLE_FILE)]
                tools = versions.result()
        finally:
            feed.close()
            scratch.destroy()
        ctime = aux.get("ctime")
        return Taken(
            position={
                "snapshot_at": datetime.fromtimestamp(int(ctime), UTC).isoformat() if ctime else None,
                "repl_id": aux.get("repl-id"),
                "repl_offset": int(aux["repl-offset"]) if aux.get("repl-offset", "").lstrip("-").isdigit() else None,
                "live_master_repl_offset_before": live["master_repl_offset"],
                "heartbeat_at": snap["heartbeat_at"],
            },
            artifacts=artifacts, counts=snap["counts"],
            tools={**tools, "redis": live["redis_version"]},
            native={
                "tool": "redis-cli --rdb", "file": RDB_FILE, "rdb_version": aux.get("rdb-version"),
                "rdb_redis_ver": aux.get("redis-ver"), "used_mem": int(aux.get("used-mem", 0) or 0),
                "live_used_memory": live["used_memory"], "databases": live["databases"],
                "load_seconds": snap["load_seconds"], "sample": snap["sample"],
            },
            restore_hint=(f"copy {RDB_FILE} into an empty folder D; redis-server --dir D --dbfilename {RDB_FILE} "
                          "--appendonly no --port <free port> (docs/datastores/redis.md)"),
        )

    def _tool_versions(self) -> dict[str, str]:
        return {"redis-cli": self._tool_version(self.options.cli_bin),
                "scratch redis-server": self._tool_version(self.options.server_bin)}

    def _explain_cli_failure(self, exc: CommandFailed, staging: Path) -> LifeboatError:
        tail = exc.output_tail or ""
        if re.search(r"NOAUTH|WRONGPASS|AUTH failed|NOPERM", tail, re.I):
            return redisclient.conn_error(self.endpoint(), RuntimeError(tail.strip().splitlines()[-1]))
        if re.search(r"No space left|Error writing", tail, re.I) or host.free_bytes(staging) < 1024 * 1024:
            return CommandFailed(exc.argv, exc.returncode,
                                 f"staging folder {staging} ran out of space while writing the RDB "
                                 f"({host.mib(host.free_bytes(staging))} free): {tail[-500:]}", exc.timed_out)
        return exc

    def _stream_rdb(self, rdb: Path, staging: Path, feed: SyncFeed) -> str:
        """`redis-cli --rdb -` into `rdb`, the feed and a sha256 at once; returns the digest."""
        argv, env = redisclient.cli(self.endpoint(), self.options.cli_bin)
        argv = [*argv, "--rdb", "-"]
        proc = self.ctx.runner.open_stdout(argv, env=env)
        stdout, stderr = proc.stdout, proc.stderr
        assert stdout is not None and stderr is not None
        err: list[bytes] = []
        reader = threading.Thread(target=lambda: err.append(stderr.read()), daemon=True)
        reader.start()
        timer = threading.Timer(seconds(self.options.backup_timeout), proc.kill)
        timer.start()
        h = hashlib.sha256()

        def write(out, data: bytes | memoryview) -> None:
            out.write(data)
            h.update(data)
            feed.put(data)
            ahead.wrote(len(data))

        try:
            with open(rdb, "wb") as out, WritebackAhead(out.fileno()) as ahead:
                # Streaming to stdout, redis-cli cannot cut the server's 40-byte end mark off a diskless
                # transfer as it does for a file: the last bytes are held back until we know.
                held = b""
                while chunk := stdout.read(STREAM_CHUNK):  # full chunks; short only at the end
                    if len(chunk) > EOF_MARK:  # the common case: no copy of the chunk, only of its tail
                        if held:
                            write(out, held)
                        mv = memoryview(chunk)
                        write(out, mv[:-EOF_MARK])
                        held = chunk[-EOF_MARK:]
                    else:
                        both = held + chunk
                        if len(both) > EOF_MARK:
                            write(out, both[:-EOF_MARK])
                        held = both[-EOF_MARK:]
                rc = proc.wait()
                reader.join(timeout=10)
                if "until EOF marker" not in b"".join(err).decode(errors="replace"):
                    write(out, held)  # a `$<length>` transfer: no mark, the bytes are the RDB's own
                # not fsynced: the staging file is not the durable copy -- the repository's is (written
                # atomically and fsynced by put_artifact), and a crash before the manifest leaves no backup;
                # its pages were written back while it streamed (WritebackAhead), so that fsync is short
        except OSError as exc:
            proc.kill()
            raise CommandFailed(argv, -1, f"staging folder {staging} ran out of space while writing the RDB "
                                          f"({host.mib(host.free_bytes(staging))} free): {exc}"
                                if exc.errno == errno.ENOSPC else f"writing {rdb}: {exc}") from None
        finally:
            timer.cancel()
            rc = proc.wait()
            reader.join(timeout=10)
        tail = b"".join(err).decode(errors="replace")
        if rc != 0:
            raise self._explain_cli_failure(CommandFailed(argv, rc, tail[-2000:], rc == -9), staging)
        log.info("redis-cli --rdb: %s", tail.strip().splitlines()[-1] if tail.strip() else "done")
        feed.finish()
        return h.hexdigest()

    def _inspect(self, staging: Path, mode: str, databases: int, backup_id: str,
                 aof_filename: str = "appendonly.aof") -> dict[str, Any]:
        """Load the AOF copy once in a private scratch server: exact counts, heartbeat, key sample."""
        root = self.scratch_dir(f"{backup_id}-inspect")
        scratch = ScratchRedis(self, root, databases)
        scratch.guard()
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        try:
            shutil.copytree(staging / self.options.aof_dirname, root / self.options.aof_dirname)
            return self._survey(scratch, scratch.start(mode, aof_filename), staging)
        finally:
            scratch.destroy()

    def _survey(self, scratch: ScratchRedis, load_seconds: float, staging: Path) -> dict[str, Any]:
        """Exact counts, heartbeat and the key sample of a loaded snapshot; sample.json into staging."""
        counts = scratch.keyspace()
        entries = scratch.sample(self.options.sample_size)
        hb = scratch.heartbeat()
        digest = sample_digest(entries)
        (staging / SAMPLE_FILE).write_text(json.dumps({
            "format": SAMPLE_FORMAT,
            "method": SAMPLE_METHOD.format(n=SCAN_ALL_UP_TO * self.options.sample_size),
            "k": self.options.sample_size, "digest": digest, "entries": entries}, indent=0))
        return {"counts": counts, "heartbeat_at": hb.isoformat() if hb else None,
                "load_seconds": round(load_seconds, 3),
                "sample": {"size": len(entries), "digest": digest, "artifact": SAMPLE_FILE}}

    def _take_aof(self, backup_id: str, staging: Path) -> Taken:
        opts = self.options
        data_dir = opts.data_dir_for(self.region)
        if not data_dir:
            raise Refused(f"datastores.{self.name}.options.data_dir: not set -- the aof kind copies the primary's "
                          "appendonlydir and needs its data directory as this runner sees it (host access)")
        aofdir = Path(data_dir) / opts.aof_dirname
        client = self.client()
        ep = self.endpoint()
        if not int(client.info("persistence").get("aof_enabled", 0)):
            raise Refused(f"Redis behind Airflow connection {ep.conn_id!r} ({redisclient.address(ep)}) has appendonly "
                          "off (INFO persistence aof_enabled:0): there is no AOF to back up")
        manifests = sorted(aofdir.glob("*.manifest")) if aofdir.is_dir() else []
        if len(manifests) != 1:
            raise Refused(f"datastores.{self.name}.options.data_dir: {aofdir} has "
                          f"{'no' if not manifests else len(manifests)} AOF manifest file(s) (*.manifest); is it "
                          f"the primary's `dir` + `{opts.aof_dirname}` of {ep.conn_id!r} as this runner sees it?")
        manifest_path = manifests[0]
        aof_filename = manifest_path.name[: -len(".manifest")]
        live = self._live_facts(client)
        dest = staging / opts.aof_dirname
        copier = AofCopy(self.ctx.runner, opts.check_aof_bin, f"{data_dir}/{opts.aof_dirname}",
                         self._wait_not_busy)
        files, trimmed, copied = copier.copy(client, manifest_path, dest)
        host.memory_check(opts.memory_check, self.name, live["used_memory"],
                          f"loading backup {backup_id} for its manifest")
        snap = self._inspect(staging, "aof", live["databases"], backup_id, aof_filename)
        return Taken(
            position={"copied_at": copied.isoformat(), "aof_files": [f["file"] for f in files],
                      "last_incr_bytes": files[-1]["bytes"], "trimmed_partial_tail_bytes": trimmed,
                      "live_master_repl_offset": live["master_repl_offset"], "heartbeat_at": snap["heartbeat_at"]},
            counts=snap["counts"],
            tools={"redis": live["redis_version"], "redis-check-aof": self._tool_version(opts.check_aof_bin)},
            native={"tool": "copy of appendonlydir", "aof_dirname": opts.aof_dirname,
                    "aof_filename": aof_filename, "manifest_file": manifest_path.name,
                    "live_used_memory": live["used_memory"], "used_mem": live["used_memory"],
                    "databases": live["databases"], "load_seconds": snap["load_seconds"], "sample": snap["sample"]},
            source=ep.describe() + f" dir={data_dir}",
            restore_hint=(f"copy {opts.aof_dirname}/ into an empty folder D; redis-server --dir D "
                          f"--appendonly yes --appenddirname {opts.aof_dirname} --appendfilename "
                          f"{aof_filename} --port <free port> (docs/datastores/redis.md)"),
        )

    # -- verification ----------------------------------------------------------------------------
    def checks(self, m: Manifest, batch: Any, deep: bool) -> list[Check]:
        tools = RedisChecks(self.ctx.runner, self.options.check_rdb_bin, self.options.check_aof_bin,
                            self.options.aof_dirname, seconds(self.options.backup_timeout), self.ctx.repo.artifact_url)
        with self.ctx.repo.local_copy(m, self.ctx.workdir / "verify" / m.id) as local:
            return [tools.rdb(m, local) if m.kind == "rdb" else tools.aof(m, local), tools.sample_file(m, local)]

    # -- restore test ----------------------------------------------------------------------------
    def scratch_target(self, manifest: Manifest, target: str, drill: DrillRecorder) -> RedisScratch:
        self.latest_only(target, "Redis backups are snapshots; restore tests take the chosen backup as it is "
                                 "('latest'). Pick an older snapshot by backup id instead")
        return RedisScratch(self, manifest, drill)

    # -- recovery --------------------------------------------------------------------------------
    def ping(self) -> str:
        c = self.client()
        try:
            return f"{c.info('replication').get('role')}, answers PING"
        finally:
            c.close()

    def backup_time(self, m: Manifest) -> datetime:
        at = m.position.get("snapshot_at") or m.position.get("copied_at")
        return datetime.fromisoformat(at) if at else m.finished_at

    def recovery_target(self, manifest: Manifest, target: str, *, into: str, tag: str) -> RedisRecovery:
        if into != "new":
            raise Refused(f"{self.name}: a Redis recovery goes into a new redis-server (then repoint the services); "
                          "loading a file into the live server is a manual step (docs/datastores/redis.md)")
        return RedisRecovery(self, manifest, tag)

    def recovery_backup(self, target: str) -> Manifest:
        """The newest RDB or AOF backup from at or before `target` (verified preferred)."""
        from lifeboat.catalog import Catalog
        from lifeboat.errors import BackupNotFound

        target_time = self.target_time(target)
        cat = Catalog(self.ctx.repo)
        backups = sorted((m for m in cat.backups(self.name)
                          if target_time is None or self.backup_time(m) <= target_time), key=self.backup_time)
        if not backups:
            raise BackupNotFound(f"{self.name}: no RDB or AOF backup"
                                 + (f" from before {target_time.isoformat()}" if target_time else "")
                                 + " in the catalog")
        vmap = cat.verification_map(self.name)
        verified = [m for m in backups if vmap.get(m.id) is not None and vmap[m.id].ok]
        return (verified or backups)[-1]

    def recovery_range(self):
        from lifeboat.datastores.base import RecoveryRange

        snaps = sorted((self.backup_time(m), m.id) for m in self.ctx.repo.manifests(self.name))
        return RecoveryRange(self.name, continuous=False, until=snaps[-1][0] if snaps else None, snapshots=snaps,
                             detail=f"{len(snaps)} RDB/AOF backups (RDB ctime, AOF copy time)")

    def prechecks(self, m: Manifest, root: Path) -> str:
        """What a restore test checks before it starts anything (free disk, memory)."""
        return prechecks(self, m, root)

    # -- heartbeat -------------------------------------------------------------------------------
    def heartbeat(self) -> datetime:
        now = utcnow()
        self.client(self.options.heartbeat_db).set(self.options.heartbeat_key, now.isoformat())
        return now
