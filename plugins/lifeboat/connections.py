"""Resolve Airflow connection ids into endpoints, inside a task or outside Airflow.

Inside a task the Airflow SDK resolves the id (secrets backends, env vars, metadata DB through the
API). Outside Airflow -- the `python -m lifeboat` CLI used in the runbook when Airflow itself is
down -- the same `AIRFLOW_CONN_<ID>` environment variables (URI or JSON form) are read directly.
Passwords never appear in `repr()` or logs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

from lifeboat.errors import ConnectionConfigError


@dataclass(frozen=True)
class Endpoint:
    conn_id: str
    conn_type: str = ""
    host: str = ""
    port: int | None = None
    login: str = ""
    password: str = field(default="", repr=False)
    schema: str = ""
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def require(self, *fields: str) -> Endpoint:
        missing = [f for f in fields if not getattr(self, f)]
        if missing:
            raise ConnectionConfigError(
                f"Airflow connection {self.conn_id!r} has no {', '.join(missing)} set"
            )
        return self

    def describe(self) -> str:
        """Safe for logs and manifests: no password."""
        who = f"{self.login}@" if self.login else ""
        return f"{self.conn_id} ({self.conn_type}://{who}{self.host}:{self.port or ''}/{self.schema})"


def _from_uri(conn_id: str, uri: str) -> Endpoint:
    if "://" not in uri:
        raise ValueError("not a connection URI (<type>://[login[:password]@]host[:port][/schema]) nor JSON")
    p = urlparse(uri)
    try:
        port = p.port
    except ValueError:  # urllib would quote the "port": often part of a password with an unencoded '/', '#', '?'
        port = -1
    if port == -1 or p.fragment:
        raise ValueError("not a valid connection URI: the port is not a number or a '#' is in it (percent-encode "
                         "'/', '#', '?' and '@' in the login and password)")
    extra = dict(parse_qsl(p.query))
    if "__extra__" in extra:
        extra = json.loads(extra["__extra__"])
    return Endpoint(
        conn_id=conn_id,
        conn_type=p.scheme.replace("-", "_"),
        host=unquote(p.hostname or ""),
        port=port,
        login=unquote(p.username or ""),
        password=unquote(p.password or ""),
        schema=unquote(p.path.lstrip("/")),
        extra=extra,
    )


def _from_json(conn_id: str, text: str) -> Endpoint:
    d = json.loads(text)
    if not isinstance(d, dict):
        raise ValueError("the JSON form must be an object")
    extra = d.get("extra") or {}
    if isinstance(extra, str):
        extra = json.loads(extra) if extra else {}
    if not isinstance(extra, dict):
        raise ValueError("extra must be a JSON object")
    return Endpoint(
        conn_id=conn_id,
        conn_type=d.get("conn_type", ""),
        host=d.get("host") or "",
        port=int(d["port"]) if d.get("port") else None,
        login=d.get("login") or "",
        password=d.get("password") or "",
        schema=d.get("schema") or "",
        extra=extra,
    )


def _from_env(conn_id: str) -> Endpoint | None:
    var = f"AIRFLOW_CONN_{conn_id.upper()}"
    value = (os.environ.get(var) or "").strip()
    if not value:  # unset or blank: as Airflow, look elsewhere
        return None
    try:
        return _from_json(conn_id, value) if value.startswith(("{", "[")) else _from_uri(conn_id, value)
    except (ValueError, json.JSONDecodeError) as exc:  # the messages quote no part of the value (a password)
        raise ConnectionConfigError(f"Airflow connection {conn_id!r} ({var}): cannot parse connection: {exc}") from None


def _in_airflow_task() -> bool:
    try:
        from airflow.sdk.execution_time import task_runner

        return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None
    except Exception:
        return False


def resolve(conn_id: str) -> Endpoint:
    if not conn_id:
        raise ConnectionConfigError("no Airflow connection id given")
    env = _from_env(conn_id)
    if env is not None:
        return env
    c = None
    if _in_airflow_task():
        try:
            from airflow.sdk import BaseHook

            c = BaseHook.get_connection(conn_id)
        except Exception as exc:
            raise ConnectionConfigError(f"Airflow connection {conn_id!r} not found: {exc}") from None
    else:
        # Inside an Airflow component that is not a task (the API server serving the DR page):
        # the configured secrets backends and the metadata database.
        try:
            from airflow.models.connection import Connection

            c = Connection.get_connection_from_secrets(conn_id)
        except Exception:
            c = None
    if c is not None:
        return Endpoint(
            conn_id=conn_id,
            conn_type=c.conn_type or "",
            host=c.host or "",
            port=c.port,
            login=c.login or "",
            password=c.password or "",
            schema=c.schema or "",
            extra=c.extra_dejson or {},
        )
    raise ConnectionConfigError(
        f"Airflow connection {conn_id!r} is not defined: create it in Airflow "
        f"(Admin -> Connections) or export AIRFLOW_CONN_{conn_id.upper()}"
    )
