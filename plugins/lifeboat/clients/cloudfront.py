"""CloudFront behind an Airflow aws connection (boto3, as the amazon provider's AwsBaseHook builds it;
extra endpoint_url points at moto locally). Errors name the distribution and the connection."""

from __future__ import annotations

import json
from typing import Any

from lifeboat.clients import aws
from lifeboat.errors import ServiceError


def plain(doc: Any) -> Any:
    """boto3's answer as plain JSON (datetimes as ISO strings)."""
    return json.loads(json.dumps(doc, default=str))


class CloudFront:
    def __init__(self, conn_id: str, client: Any = None):
        self.conn_id = conn_id
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("cloudfront", self.conn_id, default_region="us-east-1")
        return self._client

    def _fail(self, what: str, dist: str, exc: Exception) -> ServiceError:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        return ServiceError(f"CloudFront {what} of distribution {dist or '(new)'} (connection {self.conn_id!r}): "
                            f"{code}: {str(exc)[:300]}")

    def get_config(self, dist_id: str) -> tuple[dict[str, Any], str]:
        """(DistributionConfig, ETag) -- what `aws cloudfront get-distribution-config` prints."""
        try:
            r = self.client.get_distribution_config(Id=dist_id)
        except Exception as exc:
            raise self._fail("GetDistributionConfig", dist_id, exc) from None
        return plain(r["DistributionConfig"]), r["ETag"]

    def get(self, dist_id: str) -> dict[str, Any]:
        try:
            return plain(self.client.get_distribution(Id=dist_id)["Distribution"])
        except Exception as exc:
            raise self._fail("GetDistribution", dist_id, exc) from None

    def create(self, config: dict[str, Any]) -> tuple[str, str]:
        """(id, ETag) of a new distribution."""
        try:
            r = self.client.create_distribution(DistributionConfig=config)
        except Exception as exc:
            raise self._fail("CreateDistribution", "", exc) from None
        return r["Distribution"]["Id"], r["ETag"]

    def update(self, dist_id: str, config: dict[str, Any], etag: str) -> str:
        try:
            return self.client.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=config)["ETag"]
        except Exception as exc:
            raise self._fail("UpdateDistribution", dist_id, exc) from None

    def delete(self, dist_id: str) -> None:
        """Disable, then delete (CloudFront deletes only disabled distributions)."""
        config, etag = self.get_config(dist_id)
        if config.get("Enabled"):
            etag = self.update(dist_id, {**config, "Enabled": False}, etag)
        try:
            self.client.delete_distribution(Id=dist_id, IfMatch=etag)
        except Exception as exc:
            raise self._fail("DeleteDistribution", dist_id, exc) from None

    def list_ids(self) -> list[str]:
        try:
            items = self.client.list_distributions().get("DistributionList", {}).get("Items") or []
        except Exception as exc:
            raise self._fail("ListDistributions", "", exc) from None
        return [i["Id"] for i in items]
