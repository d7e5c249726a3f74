"""MongoDB: pymongo sessions from an Airflow connection (also FerretDB, which speaks the same wire)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

from lifeboat.connections import Endpoint
from lifeboat.errors import ConnectionConfigError


def uri(ep: Endpoint) -> tuple[str, str]:
    """(mongodb:// URI with credentials, a description safe for logs)."""
    ep.require("host")
    extra = {k: v for k, v in (ep.extra or {}).items() if k not in ("srv",) and not isinstance(v, (dict, list))}
    srv = str((ep.extra or {}).get("srv", "")).lower() == "true"
    auth = f"{quote_plus(ep.login)}:{quote_plus(ep.password)}@" if ep.login else ""
    host = ep.host if (srv or not ep.port) else f"{ep.host}:{ep.port}"
    query = urlencode({k: (str(v).lower() if isinstance(v, bool) else v) for k, v in extra.items()})
    scheme = "mongodb+srv" if srv else "mongodb"
    return (f"{scheme}://{auth}{host}/{quote(ep.schema or '')}{'?' + query if query else ''}",
            f"{host} (Airflow connection {ep.conn_id!r}, user {ep.login or '(none)'})")


@dataclass
class Session:
    client: Any  # pymongo.MongoClient
    where: str
    ferretdb: bool


def _scrubber(password: str) -> Callable[[str], str]:
    return (lambda text: text.replace(password, "***")) if password else (lambda text: text)


def auth_error(exc: Any, where: str, scrub: Callable[[str], str]) -> ConnectionConfigError:
    msg = scrub((exc.details or {}).get("errmsg") or str(exc))
    if exc.code == 18:
        return ConnectionConfigError(f"MongoDB authentication failed for {where}: {msg} "
                                     "(check login/password/authSource of the Airflow connection)")
    if exc.code == 13:
        return ConnectionConfigError(f"MongoDB user is not authorized at {where}: {msg} (the backup user needs "
                                     "the `backup` role, restore tests also write lifeboat_scratch_* databases)")
    return ConnectionConfigError(f"MongoDB refused the connection at {where}: {msg}")


@contextlib.contextmanager
def session(ep: Endpoint, timeout_s: float, appname: str = "lifeboat") -> Iterator[Session]:
    """A connected, authenticated client (ping + listDatabases checked), closed afterwards. Auth and
    network problems raise ConnectionConfigError naming the connection, without the password."""
    import pymongo
    from pymongo import errors

    u, where = uri(ep)
    scrub = _scrubber(ep.password)
    timeout_ms = int(timeout_s * 1000)
    try:
        client: Any = pymongo.MongoClient(u, tz_aware=True, appname=appname, serverSelectionTimeoutMS=timeout_ms,
                                     connectTimeoutMS=timeout_ms, socketTimeoutMS=None)
    except errors.ConfigurationError as exc:
        raise ConnectionConfigError(f"cannot use MongoDB connection {where}: {scrub(str(exc))}") from None
    try:
        try:
            client.admin.command("ping")
            client.admin.command("listDatabases", nameOnly=True)
            ferretdb = "ferretdbVersion" in client.admin.command("buildInfo")
        except errors.OperationFailure as exc:
            raise auth_error(exc, where, scrub) from None
        except errors.PyMongoError as exc:
            first = scrub(str(exc)).splitlines()[0][:300]
            raise ConnectionConfigError(f"cannot reach MongoDB at {where}: {first}") from None
        try:
            yield Session(client, where, ferretdb)
        except errors.OperationFailure as exc:
            if exc.code in (13, 18):
                raise auth_error(exc, where, scrub) from None
            raise
    finally:
        client.close()
