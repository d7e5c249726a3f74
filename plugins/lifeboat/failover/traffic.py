"""Traffic: the Route 53 records that send users to the active region (inventory `failover.traffic`).

boto3's route53 client with credentials and `endpoint_url` from an Airflow `aws` connection (locally
the devstack's moto endpoint; in production no endpoint_url). Switching is idempotent: each record is
read first and only UPSERTed when it does not already point at the target region, then the change is
polled until Route 53 reports it INSYNC.
"""

from __future__ import annotations

import logging
from typing import Any

from lifeboat.errors import LifeboatError, Refused
from lifeboat.inventory import FailoverTraffic
from lifeboat.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)


class TrafficError(LifeboatError):
    """The Route 53 API refused or failed; the message names the zone, record and connection."""


def _norm(value: str | None) -> str | None:
    return value.rstrip(".").lower() if value else value


class Traffic:
    def __init__(self, spec: FailoverTraffic, client=None, insync_timeout: float = 120.0):
        self.spec = spec
        self._client = client
        self._zone_id: str | None = None
        self.insync_timeout = insync_timeout

    @property
    def client(self):
        if self._client is None:
            from lifeboat.clients import aws

            self._client = aws.client("route53", self.spec.connection, default_region="us-east-1")
        return self._client

    def _fail(self, what: str, exc: Exception) -> TrafficError:
        return TrafficError(f"Route 53 {what} (zone {self.spec.zone}, connection {self.spec.connection!r}): "
                            f"{type(exc).__name__}: {exc}")

    def zone_id(self) -> str:
        if self._zone_id is None:
            try:
                zones = self.client.list_hosted_zones_by_name(DNSName=self.spec.zone, MaxItems="10")["HostedZones"]
            except LifeboatError:
                raise
            except Exception as exc:
                raise self._fail("ListHostedZonesByName", exc) from None
            match = [z for z in zones if _norm(z["Name"]) == _norm(self.spec.zone) and
                     not z.get("Config", {}).get("PrivateZone")]
            if not match:
                raise TrafficError(f"Route 53: no public hosted zone {self.spec.zone!r} "
                                   f"(connection {self.spec.connection!r}; inventory failover.traffic.zone)")
            self._zone_id = match[0]["Id"].rsplit("/", 1)[-1]
        return self._zone_id

    def current(self) -> dict[str, str | None]:
        """{record name: current value} (None: the record does not exist)."""
        out: dict[str, str | None] = {}
        zid = self.zone_id()
        for rec in self.spec.records:
            try:
                sets = self.client.list_resource_record_sets(HostedZoneId=zid, StartRecordName=rec.name,
                                                             StartRecordType=rec.type, MaxItems="1")
            except Exception as exc:
                raise self._fail(f"ListResourceRecordSets {rec.name}", exc) from None
            value = None
            for rrs in sets.get("ResourceRecordSets", []):
                if _norm(rrs["Name"]) == _norm(rec.name) and rrs["Type"] == rec.type and rrs.get("ResourceRecords"):
                    value = rrs["ResourceRecords"][0]["Value"]
            out[rec.name] = value
        return out

    def region_of(self, name: str, value: str | None) -> str | None:
        rec = next(r for r in self.spec.records if r.name == name)
        for region, target in rec.targets.items():
            if _norm(target) == _norm(value):
                return region
        return None

    def preflight(self, target_region: str) -> dict[str, Any]:
        try:
            cur = self.current()
        except LifeboatError as exc:
            return {"ok": False, "error": str(exc), "records": {}}
        records = {}
        for rec in self.spec.records:
            if target_region not in rec.targets:
                return {"ok": False, "error": f"failover.traffic.records {rec.name}: no target for {target_region}",
                        "records": {}}
            records[rec.name] = {"current": cur[rec.name], "current_region": self.region_of(rec.name, cur[rec.name]),
                                 "target": rec.targets[target_region]}
        return {"ok": True, "zone": self.spec.zone, "records": records}

    def switch(self, target_region: str, dry_run: bool = False) -> list[dict[str, Any]]:
        """Point every record at target_region; records already there are left alone."""
        cur = self.current()
        results: list[dict[str, Any]] = []
        changes = []
        for rec in self.spec.records:
            want = rec.targets.get(target_region)
            if want is None:
                raise Refused(f"failover.traffic.records {rec.name}: no target for region {target_region}")
            same = _norm(cur[rec.name]) == _norm(want)
            results.append({"record": rec.name, "type": rec.type, "from": cur[rec.name], "to": want,
                            "changed": not same and not dry_run})
            if not same:
                changes.append({"Action": "UPSERT", "ResourceRecordSet": {
                    "Name": rec.name, "Type": rec.type, "TTL": rec.ttl, "ResourceRecords": [{"Value": want}]}})
        if changes and not dry_run:
            try:
                resp = self.client.change_resource_record_sets(
                    HostedZoneId=self.zone_id(),
                    ChangeBatch={"Comment": f"lifeboat failover to {target_region}", "Changes": changes})
            except Exception as exc:
                raise self._fail("ChangeResourceRecordSets UPSERT", exc) from None
            change_id = resp["ChangeInfo"]["Id"]
            status = self._wait_insync(change_id, resp["ChangeInfo"].get("Status"))
            for r in results:
                if r["changed"]:
                    r.update(change_id=change_id, status=status)
            after = self.current()
            wrong = {n: v for n, v in after.items() if _norm(v) != _norm(next(
                x["to"] for x in results if x["record"] == n))}
            if wrong:
                raise TrafficError(f"Route 53 records still not pointing at {target_region} after UPSERT: {wrong}")
        return results

    def _wait_insync(self, change_id: str, status: str | None) -> str:
        if status == "INSYNC":
            return status

        def change_status() -> str:
            try:
                return self.client.get_change(Id=change_id)["ChangeInfo"]["Status"]
            except Exception as exc:
                raise self._fail(f"GetChange {change_id}", exc) from None

        try:
            return wait_until(f"Route 53 change {change_id} INSYNC", change_status, self.insync_timeout, 2,
                              done=lambda st: st == "INSYNC")
        except WaitTimeout as exc:
            log.warning("Route 53 change %s still %s after %.0fs (propagation continues)", change_id,
                        exc.last or status, self.insync_timeout)
            return exc.last or status or "unknown"
