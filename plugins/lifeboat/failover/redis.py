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
import time
from datetime import datetime
from typing import Any

from pydantic import Field

from lifeboat.errors import ConnectionConfigError, Refused, RestoreFailed
from lifeboat.failover.base import FailoverDatastore, FailoverOptions
from lifeboat.inventory import DurationStr, parse_duration


class RedisFailoverOptions(FailoverOptions):
    fence_pause: DurationStr = "24h"
    catchup_timeout: DurationStr = "30s"
    sync_timeout: DurationStr = "5m"
    max_lag_bytes: int = Field(default=1024 * 1024, ge=0)
    replication_hosts: dict[str, str] = Field(
        default={}, description="region -> host:port a replica in the other region reaches the primary at "
                                "(default: the connection's host and port)")
    config_rewrite: bool = False


def _first_line(exc: BaseException, secret: str = "") -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    if secret:
        text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}"[:400]


class RedisFailover(FailoverDatastore):
    engine = "redis"
    Options = RedisFailoverOptions
    describe_fence = "CLIENT PAUSE WRITE on the old primary"
    describe_promote = "REPLICAOF NO ONE on the replica (after catching up with the old primary's offset)"
    describe_rebuild = "REPLICAOF <new primary> (full resync), CLIENT UNPAUSE"

    def _seconds(self, opt: str) -> float:
        return parse_duration(getattr(self.options, opt)).total_seconds()

    def _client(self, region: str, db: int = 0):
        import redis

        ep = self.endpoint(region).require("host")
        kw: dict[str, Any] = {"host": ep.host, "port": ep.port or 6379, "db": db, "username": ep.login or None,
                                  "password": ep.password or None, "socket_timeout": 10, "socket_connect_timeout": 5}
        if ep.conn_type == "rediss" or str(ep.extra.get("ssl", "")).lower() in ("1", "true", "yes"):
            kw.update(ssl=True, ssl_ca_certs=ep.extra.get("ssl_ca_certs"))
        c = redis.Redis(**kw)
        try:
            c.ping()
        except redis.RedisError as exc:
            c.close()
            raise ConnectionConfigError(f"cannot reach {self.where(region)} at {ep.host}:{ep.port}: "
                                        f"{_first_line(exc, ep.password)}") from None
        return c

    def _info(self, region: str, section: str = "replication") -> dict[str, Any]:
        c = self._client(region)
        try:
            return c.info(section)
        finally:
            c.close()

    def role(self, region: str) -> dict[str, Any]:
        try:
            info = self._info(region)
        except Exception as exc:
            return {"reachable": False, "role": None, "error": _first_line(exc)}
        facts: dict[str, Any] = {"reachable": True, "role": "primary" if info.get("role") == "master" else "standby",
                                 "master_replid": info.get("master_replid"),
                                 "offset": info.get("master_repl_offset")}
        if info.get("role") != "master":
            facts["replication"] = {"master_host": info.get("master_host"), "master_port": info.get("master_port"),
                                    "link": info.get("master_link_status"),
                                    "sync_in_progress": bool(info.get("master_sync_in_progress")),
                                    "offset": info.get("slave_repl_offset")}
        else:
            facts["replicas"] = info.get("connected_slaves", 0)
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

    def engine_preflight(self, target_region, source_region, target, source) -> dict[str, Any]:
        out: dict[str, Any] = {}
        mem_t = self._info(target_region, "memory")
        capacity = {"used_memory": mem_t.get("used_memory"), "maxmemory": mem_t.get("maxmemory")}
        if source.get("reachable"):
            capacity["source_used_memory"] = self._info(source_region, "memory").get("used_memory")
            if mem_t.get("maxmemory") and capacity["source_used_memory"] > mem_t["maxmemory"]:
                out.setdefault("warnings_engine", []).append(
                    f"{target_region}: maxmemory {mem_t['maxmemory']} is below the primary's used_memory")
        out["capacity"] = capacity
        rep = target.get("replication") or {}
        if target.get("role") == "standby":
            out["link"] = rep.get("link")
            if source.get("reachable") and source.get("role") == "primary":
                out["replication_lag_bytes"] = max(0, int(source.get("offset") or 0) - int(rep.get("offset") or 0))
            else:
                out["replication_lag_bytes"] = None
                out.setdefault("warnings_engine", []).append(
                    f"old primary {source_region} unreachable: lag unknown (replica offset {rep.get('offset')})")
        return out

    def identity(self, facts: dict[str, Any]) -> str:
        return f"replid {facts.get('master_replid')}"

    def fence_primary(self, old_region: str, facts: dict[str, Any]) -> str:
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

    def catch_up(self, target_region: str, source_region: str, source: dict[str, Any]) -> tuple[bool, str]:
        offset = int(source.get("offset") or 0)
        deadline = time.monotonic() + self._seconds("catchup_timeout")
        while True:
            got = int((self.role(target_region).get("replication") or {}).get("offset") or 0)
            if got >= offset:
                return True, f"replica caught up with the old primary's offset {offset} before promoting"
            if time.monotonic() > deadline:
                return False, f"replica at offset {got}, old primary at {offset} after {self.options.catchup_timeout}"
            time.sleep(0.2)

    def verify(self, region: str) -> str:
        r = self.role(region)
        if r.get("role") != "primary":
            raise RestoreFailed(f"{self.where(region)} is not a writable primary: {r.get('role') or r.get('error')}")
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
        if primary.get("role") != "primary":
            raise Refused(f"cannot make {old_region} a replica of {self.where(new_primary_region)}: it is not a "
                          f"reachable primary ({primary.get('role') or primary.get('error')})")
        host, port = self._replication_address(new_primary_region)
        current = self.role(old_region)
        if not current["reachable"]:
            raise Refused(f"{self.where(old_region)} is unreachable: start it first (it comes back as a primary "
                          "with its old data; this step makes it a replica and discards that data)")
        rep = current.get("replication") or {}
        c = self._client(old_region)
        try:
            if (current["role"] == "standby" and rep.get("master_host") == host
                    and str(rep.get("master_port")) == str(port) and rep.get("link") == "up"):
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
        deadline = time.monotonic() + self._seconds("sync_timeout")
        while True:
            rep = self.role(old_region).get("replication") or {}
            if rep.get("link") == "up" and not rep.get("sync_in_progress"):
                break
            if time.monotonic() > deadline:
                raise RestoreFailed(f"{self.where(old_region)}: no completed sync from {host}:{port} within "
                                    f"{self.options.sync_timeout}: {rep}")
            time.sleep(0.2)
        return (f"{self.where(old_region)} is now a replica of {new_primary_region} ({host}:{port}): REPLICAOF, "
                "full resync done, CLIENT UNPAUSE")

    def caught_up(self, standby_region: str, primary_region: str) -> dict[str, Any]:
        s = self.role(standby_region)
        p = self.role(primary_region)
        rep = s.get("replication") or {}
        lag = (int(p.get("offset") or 0) - int(rep.get("offset") or 0)) if rep and p.get("reachable") else None
        _host, port = self._replication_address(primary_region)
        follows = str(rep.get("master_port")) == str(port)
        ok = bool(s.get("role") == "standby" and follows and rep.get("link") == "up"
                  and not rep.get("sync_in_progress") and lag is not None and lag <= self.options.max_lag_bytes)
        return {"ok": ok, "datastore": self.name, "standby": standby_region, "primary": primary_region,
                "state": rep.get("link"), "lag_bytes": lag, "standby_role": s.get("role") or s.get("error"),
                "detail": (f"{self.name}@{standby_region} replicates from {rep.get('master_host')}:"
                           f"{rep.get('master_port')}, link {rep.get('link')}, {lag} bytes behind" if rep else
                           f"{self.name}@{standby_region} is not a replica ({s.get('role') or s.get('error')})")}
