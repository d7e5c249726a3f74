"""Redis: redis-py clients and redis-cli arguments from an Airflow connection."""

from __future__ import annotations

from typing import Any

from lifeboat.connections import Endpoint
from lifeboat.errors import ConnectionConfigError

DEFAULT_PORT = 6379
_AUTH_WORDS = ("WRONGPASS", "NOAUTH", "AUTHENTICATION", "PASSWORD", "NOPERM")


def is_tls(ep: Endpoint) -> bool:
    return ep.conn_type == "rediss" or str(ep.extra.get("ssl", "")).lower() in ("1", "true", "yes")


def address(ep: Endpoint) -> str:
    return f"{ep.host}:{ep.port or DEFAULT_PORT}"


def conn_error(ep: Endpoint, exc: BaseException, label: str | None = None) -> ConnectionConfigError:
    """A connection or auth failure naming the connection; the password is scrubbed from the text."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if ep.password:
        text = text.replace(ep.password, "***")
    hint = " -- check the password/user of that connection" if any(w in text.upper() for w in _AUTH_WORDS) else ""
    who = label or f"Redis through Airflow connection {ep.conn_id!r}"
    return ConnectionConfigError(f"cannot use {who} ({address(ep)}): {text}{hint}")


def make(host: str, port: int, *, password: str | None = None, username: str | None = None, db: int = 0,
         socket_timeout: float = 60, connect_timeout: float = 10, retries: int = 2, **tls: Any):
    """A redis.Redis with explicit settings (also for scratch servers, which have no connection)."""
    import redis
    from redis.backoff import ExponentialBackoff, NoBackoff
    from redis.retry import Retry

    retry = Retry(ExponentialBackoff(cap=2, base=0.2), retries) if retries else Retry(NoBackoff(), 0)
    return redis.Redis(host=host, port=port, db=db, username=username, password=password,
                       socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout, retry=retry, **tls)


def client(ep: Endpoint, db: int = 0, *, socket_timeout: float = 60, connect_timeout: float = 10, retries: int = 2,
           label: str | None = None):
    """A checked (PINGed) client for the server behind `ep`; failures raise ConnectionConfigError."""
    import redis

    ep.require("host")
    tls: dict[str, Any] = {}
    if is_tls(ep):
        tls = {"ssl": True, "ssl_ca_certs": ep.extra.get("ssl_ca_certs"), "ssl_certfile": ep.extra.get("ssl_certfile"),
               "ssl_keyfile": ep.extra.get("ssl_keyfile")}
    c = make(ep.host, ep.port or DEFAULT_PORT, password=ep.password or None, username=ep.login or None, db=db,
             socket_timeout=socket_timeout, connect_timeout=connect_timeout, retries=retries, **tls)
    try:
        c.ping()
    except redis.RedisError as exc:
        c.close()
        raise conn_error(ep, exc, label) from None
    return c


def cli(ep: Endpoint, cli_bin: str = "redis-cli") -> tuple[list[str], dict[str, str]]:
    """(argv, env) for redis-cli against `ep`: the password goes in through REDISCLI_AUTH, never argv."""
    ep.require("host")
    argv = [cli_bin, "-h", ep.host, "-p", str(ep.port or DEFAULT_PORT)]
    if ep.login:
        argv += ["--user", ep.login]
    if is_tls(ep):
        argv.append("--tls")
        for opt, key in (("--cacert", "ssl_ca_certs"), ("--cert", "ssl_certfile"), ("--key", "ssl_keyfile")):
            if ep.extra.get(key):
                argv += [opt, ep.extra[key]]
    return argv, ({"REDISCLI_AUTH": ep.password} if ep.password else {})
