"""toxiproxy between the platform API stand-in and its datastores, for failure simulations (stdlib only).

    <state>/toxiproxy/ports.json       api + one listen port per proxy, picked free once and kept
    <state>/toxiproxy/toxiproxy.pid, toxiproxy.log

toxiproxy-server v2.5.0 (the machine's binary cache, devstack/binaries.py) on 127.0.0.1, with proxies
`platform_postgres_us_west_2` -> the primary PostgreSQL and `platform_redis_us_west_2` -> the primary
Redis (toxiproxy keeps them in memory: `up` recreates missing ones). The platform API stand-in of
us-west-2 reaches its datastores through them (LIFEBOAT_PLATFORM_VIA_<KIND>_<REGION>), so a toxic on a
proxy is a network fault on the platform's path only; Lifeboat's own connections stay direct.

The stand-in reaches the proxies by name (`<kind>.platform.us-west-2.internal`), resolved through the hosts
file <state>/toxiproxy/hosts (LIFEBOAT_PLATFORM_HOSTS_US_WEST_2; rewritten by `up`): the resolver a DNS
failure simulation breaks (lifeboat.chaos.faults.dns).

Exports: LIFEBOAT_TOXIPROXY_URL, LIFEBOAT_PLATFORM_VIA_POSTGRES_US_WEST_2 / _REDIS_US_WEST_2 (name:port),
LIFEBOAT_PLATFORM_HOSTS_US_WEST_2 = LIFEBOAT_CHAOS_RESOLVER (the hosts file), LIFEBOAT_CHAOS_<PG|REDIS>_HOSTNAME, and
what process faults need in this stack: LIFEBOAT_CHAOS_RESTART (the devstack's restart step: `stack.py up`
for this state dir and component list), LIFEBOAT_REDIS_PRIMARY_PIDFILE, LIFEBOAT_MONGO_PIDFILE.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

try:
    from devstack.components import _common, _daemon
except ImportError:  # run as a script: python devstack/components/<name>.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common, _daemon

NAME = "toxiproxy"
REGION = "us-west-2"
PROXIES = ("postgres", "redis")
NEEDLE = b"toxiproxy-server"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _root(state_dir: Path) -> Path:
    return Path(state_dir) / NAME


def _pidfile(state_dir: Path) -> Path:
    return _root(state_dir) / "toxiproxy.pid"


def hostname(kind: str, region: str = REGION) -> str:
    return f"{kind}.platform.{region}.internal"


def _hosts_file(state_dir: Path) -> Path:
    return _root(state_dir) / "hosts"


def _write_hosts(state_dir: Path) -> None:
    path = _hosts_file(state_dir)
    tmp = path.with_name(".hosts.tmp")
    tmp.write_text("# the platform API stand-in's resolver (devstack/components/toxiproxy.py)\n"
                   + "".join(f"127.0.0.1 {hostname(k)}\n" for k in PROXIES))
    os.replace(tmp, path)


def proxy_name(kind: str, region: str = REGION) -> str:
    return f"platform_{kind}_{region.replace('-', '_')}"


def _ports(state_dir: Path, create: bool) -> dict[str, int] | None:
    return _daemon.ports(state_dir, NAME, ("api", *PROXIES), create)


def _api(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
    return _daemon.call_json(f"http://127.0.0.1:{port}{path}", method, body)


def _healthy(port: int) -> bool:
    return _daemon.answers(f"http://127.0.0.1:{port}/version", timeout=2)


def _upstreams(state_dir: Path) -> dict[str, int | None]:
    try:
        redis_port = json.loads((Path(state_dir) / "redis" / "ports.json").read_text()).get("primary")
    except (OSError, ValueError):
        redis_port = None
    return {"postgres": _common.stack_ports(state_dir).get("pg_primary"), "redis": redis_port}


def _binary(say) -> Path:
    from devstack import binaries

    return Path(binaries.ensure("toxiproxy-server", say))


def _ensure_proxies(state_dir: Path, ports: dict[str, int]) -> list[str]:
    code, have = _api(ports["api"], "GET", "/proxies")
    if code != 200 or not isinstance(have, dict):
        raise _common.component_error(NAME, f"toxiproxy API on :{ports['api']} answered HTTP {code} to GET /proxies")
    made = []
    for kind, upstream in _upstreams(state_dir).items():
        name = proxy_name(kind)
        if name in have or upstream is None:
            continue
        code, _ = _api(ports["api"], "POST", "/proxies", {"name": name, "listen": f"127.0.0.1:{ports[kind]}",
                                                          "upstream": f"127.0.0.1:{upstream}", "enabled": True})
        if code not in (200, 201):
            raise _common.component_error(NAME, f"creating proxy {name} failed: HTTP {code}")
        made.append(f"{name} :{ports[kind]} -> :{upstream}")
    return made


def up(state_dir: Path, say) -> dict[str, str]:
    ports = _ports(state_dir, create=True)
    exe = _binary(say)
    log = _root(state_dir) / "toxiproxy.log"
    started = _daemon.ensure(_pidfile(state_dir), NEEDLE, lambda: _healthy(ports["api"]), lambda: _daemon.start(
        NAME, [exe, "-host", "127.0.0.1", "-port", ports["api"]], log=log, pidfile=_pidfile(state_dir),
        ready=lambda: _healthy(ports["api"]), timeout=15, what="toxiproxy-server"))
    made = _ensure_proxies(state_dir, ports)
    _write_hosts(state_dir)
    if started or made:
        say(f"  {NAME:<10} api :{ports['api']}; {', '.join(made) or 'proxies present'}")
    return env(state_dir, ports)


def env(state_dir: Path, ports: dict[str, int] | None = None) -> dict[str, str]:
    if not (ports := ports or _ports(state_dir, create=False)):
        return {}
    region = REGION.upper().replace("-", "_")
    restart = ["env", f"LIFEBOAT_STACK_DIR={Path(state_dir).resolve()}",
               f"LIFEBOAT_STACK_COMPONENTS={os.environ.get('LIFEBOAT_STACK_COMPONENTS', '')}",
               sys.executable, str(REPO_ROOT / "devstack" / "stack.py"), "up"]
    return {"LIFEBOAT_TOXIPROXY_URL": f"http://127.0.0.1:{ports['api']}",
            **{f"LIFEBOAT_PLATFORM_VIA_{k.upper()}_{region}": f"{hostname(k)}:{ports[k]}" for k in PROXIES},
            f"LIFEBOAT_PLATFORM_HOSTS_{region}": str(_hosts_file(state_dir)),
            "LIFEBOAT_CHAOS_RESOLVER": str(_hosts_file(state_dir)),
            "LIFEBOAT_CHAOS_PG_HOSTNAME": hostname("postgres"), "LIFEBOAT_CHAOS_REDIS_HOSTNAME": hostname("redis"),
            "LIFEBOAT_CHAOS_RESTART": shlex.join(restart),
            # the inventory's chaos drill environment = this stack's us-west-2
            **{f"LIFEBOAT_CHAOS_{k}_CONN": f"lifeboat_{c}_us_west_2"
               for k, c in (("K8S", "k8s"), ("PG", "pg"), ("REDIS", "redis"), ("MONGO", "mongo"))},
            "LIFEBOAT_CHAOS_API_URL": _api_url(state_dir),
            "LIFEBOAT_REDIS_PRIMARY_PIDFILE": str(Path(state_dir) / "redis" / "primary" / "redis.pid"),
            "LIFEBOAT_MONGO_PIDFILE": str(Path(state_dir) / "mongodb" / "ferretdb.pid")}


def _api_url(state_dir: Path) -> str:
    try:
        port = json.loads((Path(state_dir) / "platform_api" / "ports.json").read_text())[REGION]
    except (OSError, ValueError, KeyError):
        return ""
    return f"http://127.0.0.1:{port}"


def down(state_dir: Path, say) -> str:
    return _daemon.stop(_pidfile(state_dir), NEEDLE)


def status(state_dir: Path) -> dict:
    ports = _ports(state_dir, create=False)
    if not ports:
        return _daemon.not_initialised(_root(state_dir))
    pid = _daemon.pid_of(_pidfile(state_dir), NEEDLE)
    ok = bool(pid) and _healthy(ports["api"])
    proxies = []
    if ok:
        _, have = _api(ports["api"], "GET", "/proxies")
        proxies = sorted(have) if isinstance(have, dict) else []
    return {"running": ok, "pid": pid, "port": ports["api"], "log": str(_root(state_dir) / "toxiproxy.log"),
            "status": f"api :{ports['api']}, proxies: {', '.join(proxies) or 'none'}"}
