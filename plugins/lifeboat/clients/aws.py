"""AWS: boto3 clients from an Airflow aws connection (login/password = key pair; extra: region_name,
endpoint_url for S3-compatible stores and the local moto endpoint)."""

from __future__ import annotations

from typing import Any


def client(service: str, conn_id: str | None, *, default_region: str | None = None,
           connect_timeout: float | None = None, attempts: int | None = None) -> Any:
    """`connect_timeout` (seconds) and `attempts` (total tries) bound how long an unreachable endpoint takes."""
    import boto3

    kwargs: dict[str, Any] = {"region_name": default_region}
    if conn_id:
        from lifeboat.connections import resolve

        ep = resolve(conn_id)
        kwargs = {"aws_access_key_id": ep.login or None, "aws_secret_access_key": ep.password or None,
                  "region_name": ep.extra.get("region_name") or default_region,
                  "endpoint_url": ep.extra.get("endpoint_url")}
    kwargs = {k: v for k, v in kwargs.items() if v}
    if connect_timeout is not None or attempts is not None:
        from botocore.config import Config

        kwargs["config"] = Config(connect_timeout=connect_timeout or 60,
                                  retries={"max_attempts": attempts or 3, "mode": "standard"})
    return boto3.client(service, **kwargs)
