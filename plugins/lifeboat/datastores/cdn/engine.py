"""The CDN engine: the CloudFront distribution's configuration backed up as JSON, its origin groups
checked (stored and live), restore-tested into a scratch distribution (moto) or read-only (production)."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.cdn import origins
from lifeboat.cdn.compare import ARTIFACT, REQUIRED, summary
from lifeboat.clients.cloudfront import CloudFront
from lifeboat.datastores.base import MonitorFinding, Taken
from lifeboat.datastores.cdn.options import CdnOptions
from lifeboat.datastores.regional import RegionalDatastore
from lifeboat.drills import DrillRecorder
from lifeboat.errors import LifeboatError
from lifeboat.records import Check, Manifest, utcnow

HEARTBEAT = "heartbeat"


class CdnDatastore(RegionalDatastore[CdnOptions]):
    engine = "cdn"
    restore_series = "config"

    @functools.cached_property
    def cloudfront(self) -> CloudFront:
        return CloudFront(self.conn_id())

    def check_config(self, config: dict[str, Any]) -> origins.FailoverReport:
        inv = self.ctx.inventory
        return origins.check(config, primary_region=inv.regions.primary, standby_region=inv.regions.standby,
                             distribution_id=self.options.distribution_id,
                             required_codes=self.options.required_status_codes,
                             allow_direct_default=self.options.allow_direct_default)

    # -- backup ----------------------------------------------------------------------------------
    def _take(self, kind: str, backup_id: str, staging: Path) -> Taken:
        dist = self.options.distribution_id
        hb = (self.ctx.repo.get_state(self.name, HEARTBEAT) or {}).get("written_at")
        config, etag = self.cloudfront.get_config(dist)
        info = self.cloudfront.get(dist)
        report = self.check_config(config)
        (staging / ARTIFACT).write_text(json.dumps({"Id": dist, "ETag": etag, "DomainName": info.get("DomainName"),
                                                    "DistributionConfig": config}, indent=1, sort_keys=True))
        s = summary(config)
        return Taken(
            position={"read_at": utcnow().isoformat(), "etag": etag, "heartbeat_at": hb},
            counts={"origins": len(s["origins"]), "origin_groups": len(s["origin_groups"]),
                    "behaviors": len(s["behaviors"])},
            tools={"cloudfront": "GetDistributionConfig (API 2020-05-31)"},
            native={"distribution_id": dist, "domain": info.get("DomainName"), "status": info.get("Status"),
                    "file": ARTIFACT, "origin_failover": report.to_json()},
            source=f"{self.conn_id()} (CloudFront distribution {dist})",
            restore_hint=(f"jq .DistributionConfig {ARTIFACT} > cfg.json; aws cloudfront update-distribution --id "
                          f"{dist} --if-match $(aws cloudfront get-distribution-config --id {dist} --query ETag "
                          "--output text) --distribution-config file://cfg.json (or create-distribution with a new "
                          "CallerReference) -- docs/datastores/cdn.md"),
        )

    # -- verification ----------------------------------------------------------------------------
    def stored_config(self, m: Manifest) -> dict[str, Any]:
        doc = json.loads(self.ctx.repo.read_artifact(m, ARTIFACT))
        config = doc.get("DistributionConfig")
        if not isinstance(config, dict):
            raise ValueError("no DistributionConfig object")
        missing = [k for k in REQUIRED if k not in config]
        if missing:
            raise ValueError(f"DistributionConfig lacks {', '.join(missing)} (update-distribution needs them)")
        return config

    def checks(self, m: Manifest, batch: Any, deep: bool) -> list[Check]:
        out = []
        try:
            config = self.stored_config(m)
        except (ValueError, LifeboatError, OSError) as exc:
            return [Check(name="distribution config parses", ok=False,
                          detail=f"{self.ctx.repo.artifact_url(m, ARTIFACT)}: {exc}")]
        out.append(Check(name="distribution config parses", ok=True,
                         detail=f"{len(json.dumps(config))} bytes, the fields update-distribution needs"))
        rep = self.check_config(config)
        out.append(Check(name="stored origin groups fail over to the standby", ok=rep.ok,
                         detail="; ".join(map(str, rep.findings)) or _groups(rep)))
        try:
            live = self.check_config(self.cloudfront.get_config(self.options.distribution_id)[0])
            out.append(Check(name="live origin groups fail over to the standby", ok=live.ok,
                             detail="; ".join(map(str, live.findings)) or _groups(live)))
        except LifeboatError as exc:
            out.append(Check(name="live origin groups fail over to the standby", ok=False, detail=str(exc)))
        return out

    # -- restore test ----------------------------------------------------------------------------
    def scratch_target(self, manifest: Manifest, target: str, drill: DrillRecorder):
        from lifeboat.datastores.cdn.scratch import CdnScratch

        self.latest_only(target, "a distribution config restores as it was read; use 'latest'")
        return CdnScratch(self, manifest, drill)

    # -- heartbeat, monitor ------------------------------------------------------------------------
    def heartbeat(self) -> datetime:
        """A mark in the catalog: a distribution's configuration has no place for a heartbeat that is not a
        change to it. The next backup records the newest mark taken before it read the configuration."""
        now = utcnow()
        self.ctx.repo.put_state(self.name, HEARTBEAT, {"written_at": now.isoformat()})
        return now

    def origin_failover(self) -> origins.FailoverReport:
        return self.check_config(self.cloudfront.get_config(self.options.distribution_id)[0])

    def monitor_findings(self) -> list[MonitorFinding]:
        rep = self.origin_failover()
        inv = self.ctx.inventory
        if rep.ok:
            warn = [str(f) for f in rep.findings]
            return [MonitorFinding("origin failover", "ok", f"{len(rep.groups)} origin groups",
                                   f"{inv.regions.primary} -> {inv.regions.standby}",
                                   f"{self.name}: {_groups(rep)}" + (f" ({'; '.join(warn)})" if warn else ""))]
        return [MonitorFinding("origin failover", "critical", f"{sum(f.severity == 'error' for f in rep.findings)} "
                               "error(s)", f"{inv.regions.primary} -> {inv.regions.standby}",
                               f"{self.name}: distribution {self.options.distribution_id} does not fail over to "
                               f"{inv.regions.standby}: " + "; ".join(str(f) for f in rep.findings))]


def _groups(rep: origins.FailoverReport) -> str:
    return ", ".join(f"{g['id']}: {' -> '.join(g['members'])}" for g in rep.groups) or "no origin groups"
