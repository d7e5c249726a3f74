"""Redis failover: primary/replica replication between the regions' servers.

* **promote**: `REPLICAOF NO ONE` on the replica; a server whose role is already `master` is left
  alone. When the old primary still answers, the replica first catches up with its replication
  offset (up to `catchup_timeout`).
* **fence**: `CLIENT PAUSE <fence_pause> WRITE` on the old primary (reads still served, writes wait;
  the pause ends by itself after `fence_pause` or with the failback's `CLIENT UNPAUSE`). Unreachable:
  recorded. Not persistent: a restarted old primary accepts writes again -- fail back soon.
* **rebuild_as_standby**: `REPLICAOF <new primary>` (+ `CONFIG SET masterauth` from the new primary's
  connection), `CLIENT UNPAUSE`, wait for `master_link_status:up` and the initial sync.
* **caught_up**: link up, no sync in progress, replica offset within `max_lag_bytes` of the primary.

With `config_rewrite: true` the new roles are written to redis.conf (`CONFIG REWRITE`) so they survive
a restart; off by default because the devstack (and config management in production) owns redis.conf.
Heartbeats: the key the heartbeat DAG writes (datastores.redis.options.heartbeat_key).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from pydantic import Field

from lifeboat.clients import redis as redisclient
from lifeboat.durations import DurationStr, seconds
from lifeboat.errors import Refused, RestoreFailed
from lifeboat.failover.base import FailoverDatastore, FailoverOptions
from lifeboat.failover.facts import CaughtUp, EngineFacts, Replication, Role, first_line
from lifeboat.waiting import WaitTimeout, wait_until


class RedisFailoverOptions(FailoverOptions):
    fence_pause: DurationStr = "24h"
    catchup_timeout: DurationStr = "30s"
    sync_timeout: DurationStr = "5m"
    max_lag_bytes: int = Field(default=1024 * 1024, ge=0)
    replication_hosts: dict[str, str] = Field(
        default={}, description="region -> host:port a replica in the other region reaches the primary at "
                                "(default: the connection's host and port)")
    config_rewrite: bool = False


class RedisFailover(FailoverDatastore[RedisFailoverOptions]):
    engine = "redis"
    describe_fence = "CLIENT PAUSE WRITE on the old primary"
    describe_promote = "REPLICAOF NO ONE on the replica (after catching up with the old primary's offset)"
    describe_rebuild = "REPLICAOF <new primary> (full resync), CLIENT UNPAUSE"

    def _seconds(self, opt: str) -> float:
        return seconds(getattr(self.options, opt))

    def _client(self, region: str, db: int = 0):
        return redisclient.client(self.endpoint(region), db, socket_timeout=10, connect_timeout=5, retries=0,
                                  label=self.where(region))

    def _info(self, region: str, section: str = "replication") -> dict[str, Any]:
        c = self._client(region)
        try:
            return c.info(section)
        finally:
            c.close()

    def role(self, region: str) -> Role:
        try:
            info = self._info(region)
        except Exception as exc:
            return Role(reachable=False, error=first_line(exc))
        facts = Role(reachable=True, role="primary" if info.get("role") == "master" else "standby",
                     replid=info.get("master_replid"), offset=info.get("master_repl_offset"))
        if info.get("role") != "master":
            facts.replication = Replication(host=info.get("master_host"), port=info.get("master_port"),
                                            status=info.get("master_link_status"),
                                            sync_in_progress=bool(info.get("master_sync_in_progress")),
                                            offset=info.get("slave_repl_offset"))
        else:
            facts.replicas = info.get("connected_slaves", 0)
        return facts

    def newest_heartbeat(self, region: str) -> datetime | None:
        c = self._client(region, self.engine_options.heartbeat_db)
        try:
            raw = c.get(self.engine_options.heartbeat_key)
        finally:
            c.close()
        if raw is None:
            return None
        try:
            return datetime.fromisoformat(raw.decode())
        except ValueError:
            return None

    def engine_preflight(self, target_region: str, source_region: str, target: Role, source: Role) -> EngineFacts:
        out = EngineFacts()
        mem_t = self._info(target_region, "memory")
        capacity = {"used_memory": mem_t.get("used_memory"), "maxmemory": mem_t.get("maxmemory")}
        if source.reachable:
            capacity["source_used_memory"] = self._info(source_region, "memory").get("used_memory")
            if mem_t.get("maxmemory") and capacity["source_used_memory"] > mem_t["maxmemory"]:
                out.warnings.append(f"{target_region}: maxmemory {mem_t['maxmemory']} is below the primary's "
                                    "used_memory")
        out.capacity = capacity
        rep = target.replication or Replication()
        if target.role == "standby":
            out.link = rep.status
            if source.live_primary:
                out.replication_lag_bytes = max(0, int(source.offset or 0) - int(rep.offset or 0))
            else:
                out.replication_lag_bytes = None
                out.warnings.append(f"old primary {source_region} unreachable: lag unknown (replica offset "
                                    f"{rep.offset})")
        return out

    def identity(self, facts: Role) -> str:
        return f"replid {facts.replid}"

    def fence_primary(self, old_region: str, facts: Role) -> str:
        ms = int(self._seconds("fence_pause") * 1000)
        c = self._client(old_region)
        try:
            c.execute_command("CLIENT", "PAUSE", ms, "WRITE")
            offset = c.info("replication").get("master_repl_offset")
        finally:
            c.close()
        return (f"fenced {self.where(old_region)}: CLIENT PAUSE WRITE for {self.options.fence_pause}; "
                f"replication offset {offset}")

    def promote_standby(self, target_region: str) -> str:
        c = self._client(target_region)
        try:
            c.execute_command("REPLICAOF", "NO", "ONE")
            if self.options.config_rewrite:
                c.execute_command("CONFIG", "REWRITE")
            role = c.info("replication").get("role")
        finally:
            c.close()
        if role != "master":
            raise RestoreFailed(f"{self.where(target_region)} reports role {role} after REPLICAOF NO ONE")
        return f"promoted {self.where(target_region)} with REPLICAOF NO ONE"

    def _replica_offset(self, region: str) -> int:
        rep = self.role(region).replication
        return int(rep.offset or 0) if rep else 0

    def catch_up(self, target_region: str, source_region: str, source: Role) -> tuple[bool, str]:
        offset = int(source.offset or 0)
        try:
            wait_until(f"the replica to reach offset {offset}", lambda: self._replica_offset(target_region),
                       self._seconds("catchup_timeout"), 0.2, done=lambda got: got >= offset)
        except WaitTimeout as exc:
            return False, f"replica at offset {exc.last}, old primary at {offset} after {self.options.catchup_timeout}"
        return True, f"replica caught up with the old primary's offset {offset} before promoting"

    def verify(self, region: str) -> str:
        r = self.role(region)
        if r.role != "primary":
            raise RestoreFailed(f"{self.where(region)} is not a writable primary: {r.role or r.error}")
        token = secrets.token_hex(8)
        key = f"lifeboat:failover:probe:{region}"
        c = self._client(region)
        try:
            c.set(key, token, ex=3600)
        finally:
            c.close()
        c = self._client(region)
        try:
            got = c.get(key)
        finally:
            c.close()
        if got is None or got.decode() != token:
            raise RestoreFailed(f"{self.where(region)}: wrote {token} to {key}, read back {got!r}")
        return f"write+read ok on {self.where(region)} ({key})"

    def _replication_address(self, region: str) -> tuple[str, int]:
        hp = self.options.replication_hosts.get(region)
        if hp:
            host, _, port = hp.rpartition(":")
            return host, int(port)
        ep = self.endpoint(region).require("host")
        return ep.host, int(ep.port or 6379)

    def rebuild_as_standby(self, old_region: str, new_primary_region: str) -> str:
        primary = self.role(new_primary_region)
        if primary.role != "primary":
            raise Refused(f"cannot make {old_region} a replica of {self.where(new_primary_region)}: it is not a "
                          f"reachable primary ({primary.role or primary.error})")
        host, port = self._replication_address(new_primary_region)
        current = self.role(old_region)
        if not current.reachable:
            raise Refused(f"{self.where(old_region)} is unreachable: start it first (it comes back as a primary "
                          "with its old data; this step makes it a replica and discards that data)")
        rep = current.replication or Replication()
        c = self._client(old_region)
        try:
            if current.role == "standby" and rep.host == host and rep.port == port and rep.status == "up":
                c.execute_command("CLIENT", "UNPAUSE")
                return f"{self.where(old_region)} already replicates from {new_primary_region} ({host}:{port})"
            pw = self.endpoint(new_primary_region).password
            if pw:
                c.config_set("masterauth", pw)
            c.execute_command("REPLICAOF", host, port)
            c.execute_command("CLIENT", "UNPAUSE")
            if self.options.config_rewrite:
                c.execute_command("CONFIG", "REWRITE")
        finally:
            c.close()
        def synced(r: Replication) -> bool:
            return r.status == "up" and not r.sync_in_progress

        try:
            wait_until(f"{self.where(old_region)} to sync from {host}:{port}",
                       lambda: self.role(old_region).replication or Replication(), self._seconds("sync_timeout"), 0.2,
                       done=synced)
        except WaitTimeout as exc:
            raise RestoreFailed(f"{self.where(old_region)}: no completed sync from {host}:{port} within "
                                f"{self.options.sync_timeout}: {exc.last}") from None
        return (f"{self.where(old_region)} is now a replica of {new_primary_region} ({host}:{port}): REPLICAOF, "
                "full resync done, CLIENT UNPAUSE")

    def caught_up(self, standby_region: str, primary_region: str) -> CaughtUp:
        s = self.role(standby_region)
        p = self.role(primary_region)
        rep = s.replication
        lag = (int(p.offset or 0) - int(rep.offset or 0)) if rep and p.reachable else None
        _host, port = self._replication_address(primary_region)
        follows = rep is not None and rep.port == port
        ok = bool(s.role == "standby" and follows and rep is not None and rep.status == "up"
                  and not rep.sync_in_progress and lag is not None and lag <= self.options.max_lag_bytes)
        return CaughtUp(ok=ok, datastore=self.name, standby=standby_region, primary=primary_region,
                        state=rep.status if rep else None, lag_bytes=lag, standby_role=s.role or s.error,
                        detail=(f"{self.name}@{standby_region} replicates from {rep.host}:{rep.port}, link "
                                f"{rep.status}, {lag} bytes behind" if rep else
                                f"{self.name}@{standby_region} is not a replica ({s.role or s.error})"))
