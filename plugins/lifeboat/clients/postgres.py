"""PostgreSQL: psycopg 3 connections and libpq environments from an Airflow connection."""

from __future__ import annotations

from typing import Any

from lifeboat.connections import Endpoint
from lifeboat.errors import ConnectionConfigError

DEFAULT_PORT = 5432


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def conninfo(ep: Endpoint, dbname: str | None = None, *, default_db: str = "postgres", connect_timeout: int = 10,
             application_name: str = "lifeboat") -> dict[str, Any]:
    ep.require("host", "login")
    return {"host": ep.host, "port": ep.port or DEFAULT_PORT, "user": ep.login, "password": ep.password,
            "dbname": dbname or ep.schema or default_db, "connect_timeout": connect_timeout,
            "application_name": application_name}


def connect(ep: Endpoint, dbname: str | None = None, *, default_db: str = "postgres", autocommit: bool = False,
            connect_timeout: int = 10, application_name: str = "lifeboat", label: str | None = None):
    """A psycopg connection; a failure raises ConnectionConfigError naming the connection (never the
    password), ending with the server's own first line ("... Connection refused")."""
    import psycopg

    ci = conninfo(ep, dbname, default_db=default_db, connect_timeout=connect_timeout,
                  application_name=application_name)
    try:
        return psycopg.connect(**ci, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        who = label or f"PostgreSQL through Airflow connection {ep.conn_id!r}"
        raise ConnectionConfigError(
            f"cannot connect to {who} ({ci['host']}:{ci['port']}/{ci['dbname']}): {first_line(exc)}") from None


def libpq_env(ep: Endpoint, dbname: str | None = None, *, default_db: str = "postgres") -> dict[str, str]:
    """The environment libpq tools (pg_dump, pg_dumpall) read: the password never goes into argv."""
    ci = conninfo(ep, dbname, default_db=default_db)
    return {"PGHOST": ci["host"], "PGPORT": str(ci["port"]), "PGUSER": ci["user"], "PGPASSWORD": ci["password"],
            "PGDATABASE": ci["dbname"], "PGCONNECT_TIMEOUT": "10", "PGAPPNAME": "lifeboat"}


def conninfo_string(pairs: dict[str, Any]) -> str:
    """key='value' pairs as libpq parses them (for --source-server, primary_conninfo)."""
    def q(v: Any) -> str:
        return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{k}={q(v)}" for k, v in pairs.items())


def local_socket(sock_dir: str, port: int, dbname: str, *, user: str = "postgres", autocommit: bool = True):
    """A connection over a private unix socket (scratch instances: no TCP listener, trust auth)."""
    import psycopg

    return psycopg.connect(host=sock_dir, port=port, user=user, dbname=dbname, autocommit=autocommit,
                           connect_timeout=10)
