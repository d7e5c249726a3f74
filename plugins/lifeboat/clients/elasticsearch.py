"""Elasticsearch: elasticsearch-py clients from an Airflow connection, and calls whose errors name
the API call, the HTTP status, the error type and the connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lifeboat.connections import Endpoint
from lifeboat.errors import CommandFailed, ConnectionConfigError

DEFAULT_PORT = 9200


class ElasticsearchApiError(CommandFailed):
    """An Elasticsearch API call failed: names the call, the HTTP status, the error type and reason."""

    def __init__(self, call: str, status: int | None, error_type: str, reason: str, conn_id: str):
        self.call, self.status, self.error_type, self.reason, self.conn_id = call, status, error_type, reason, conn_id
        Exception.__init__(self, f"Elasticsearch `{call}` failed (HTTP {status}, Airflow connection {conn_id!r}): "
                                 f"{error_type}: {reason}")
        self.argv, self.returncode, self.output_tail, self.timed_out = [call], status, reason, False


def error_info(exc: Exception) -> tuple[str, str]:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            rc = (err.get("root_cause") or [{}])[0] or {}
            etype = rc.get("type") or err.get("type") or "error"
            reason = rc.get("reason") or err.get("reason") or ""
            caused = (err.get("caused_by") or {}).get("reason")
            if caused and caused not in reason:
                reason = f"{reason} (caused by: {caused})"
            return etype, reason
        if isinstance(err, str):
            return "error", err
    return type(exc).__name__, str(exc)[:500]


def url(ep: Endpoint) -> str:
    ep.require("host")
    extra = ep.extra or {}
    scheme = ep.conn_type if ep.conn_type in ("http", "https") else None
    scheme = scheme or extra.get("scheme") or (ep.schema if ep.schema in ("http", "https") else None)
    scheme = scheme or ("https" if str(extra.get("use_ssl", "")).lower() in ("1", "true", "yes") else "http")
    return f"{scheme}://{ep.host}:{ep.port or DEFAULT_PORT}"


def client(ep: Endpoint, request_timeout: float) -> Any:
    from elasticsearch import Elasticsearch

    extra = ep.extra or {}
    kw: dict[str, Any] = {"request_timeout": request_timeout, "max_retries": 2, "retry_on_timeout": True}
    if extra.get("api_key"):
        kw["api_key"] = extra["api_key"]
    elif ep.login:
        kw["basic_auth"] = (ep.login, ep.password)
    if extra.get("ca_certs"):
        kw["ca_certs"] = extra["ca_certs"]
    if str(extra.get("verify_certs", "")).lower() in ("0", "false", "no"):
        kw["verify_certs"] = False
    return Elasticsearch(url(ep), **kw)


def call(ep: Endpoint, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Run one client call; connection problems and API errors become clear Lifeboat errors."""
    from elasticsearch import ApiError, AuthenticationException, AuthorizationException
    from elasticsearch import ConnectionError as EsConnectionError

    try:
        return fn(**kwargs)
    except (AuthenticationException, AuthorizationException) as exc:
        etype, reason = error_info(exc)
        raise ConnectionConfigError(
            f"Elasticsearch rejected the credentials of Airflow connection {ep.conn_id!r} "
            f"for `{what}` (HTTP {exc.meta.status}): {etype}: {reason}") from None
    except EsConnectionError as exc:
        raise ConnectionConfigError(
            f"cannot reach Elasticsearch at {url(ep)} (Airflow connection {ep.conn_id!r}) for `{what}`: "
            f"{str(exc).splitlines()[0][:300]}") from None
    except ApiError as exc:
        etype, reason = error_info(exc)
        raise ElasticsearchApiError(what, exc.meta.status, etype, reason, ep.conn_id) from None
