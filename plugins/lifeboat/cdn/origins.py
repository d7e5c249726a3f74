"""Does a CloudFront distribution fail over from the primary region's origins to the standby's?
Pure logic over a DistributionConfig as GetDistributionConfig returns it (boto3 shape).

An origin's region is the region name found in its DomainName or Id (`api.us-west-2.example.com`,
`bucket.s3.us-east-1.amazonaws.com`, `uploads-us-west-2`). Findings (each names the group, origin or
behavior at fault):

  error    no origin group at all; a group that does not have exactly two members; a member that names
           no origin of the distribution (moto does not validate this, CloudFront does); a group whose
           primary is not in the primary region or whose failover origin is not in the standby region;
           failover criteria lacking one of the required status codes; a behavior that targets a
           primary-region origin directly (no failover for that path)
  warning  the default behavior targets a primary-region origin directly when `allow_direct_default`
           (the local stack: moto refuses an origin group as the default behavior's target)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_CODES = (500, 502, 503, 504)
_REGION = re.compile(r"(?<![a-z0-9])([a-z]{2}(?:-gov)?-[a-z]+-\d)(?![0-9])")


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning
    subject: str  # "origin group api-failover", "behavior /api/*", ...
    problem: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.subject}: {self.problem}"


@dataclass
class FailoverReport:
    distribution_id: str
    groups: list[dict[str, Any]] = field(default_factory=list)  # id, primary, failover, regions, codes
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {"distribution_id": self.distribution_id, "ok": self.ok, "groups": self.groups,
                "findings": [asdict(f) for f in self.findings]}


def region_of(*texts: str) -> str | None:
    for t in texts:
        m = _REGION.search(t or "")
        if m:
            return m.group(1)
    return None


def _items(section: Mapping[str, Any] | None) -> list[Any]:
    return list((section or {}).get("Items") or [])


def check(config: Mapping[str, Any], *, primary_region: str, standby_region: str, distribution_id: str = "",
          required_codes: Iterable[int] = DEFAULT_CODES, allow_direct_default: bool = False) -> FailoverReport:
    rep = FailoverReport(distribution_id=distribution_id)
    origins = {o["Id"]: o for o in _items(config.get("Origins"))}
    origin_region = {oid: region_of(o.get("DomainName", ""), oid) for oid, o in origins.items()}
    groups = _items(config.get("OriginGroups"))
    required = sorted(set(required_codes))
    if not groups:
        rep.findings.append(Finding("error", f"distribution {distribution_id}".strip(),
                                    "has no origin group: nothing fails over to the standby region"))
    group_ids = set()
    for g in groups:
        gid = g.get("Id", "?")
        group_ids.add(gid)
        subject = f"origin group {gid}"
        members = [m.get("OriginId", "") for m in _items(g.get("Members"))]
        codes = sorted(int(c) for c in _items((g.get("FailoverCriteria") or {}).get("StatusCodes")))
        regions = [origin_region.get(m) for m in members]
        rep.groups.append({"id": gid, "members": members, "regions": regions, "status_codes": codes})
        if len(members) != 2:
            rep.findings.append(Finding("error", subject, f"has {len(members)} members, an origin group needs 2"))
        for m in members:
            if m not in origins:
                rep.findings.append(Finding("error", subject, f"member {m!r} is not an origin of the distribution"))
        if len(members) == 2 and all(m in origins for m in members):
            if regions[0] != primary_region:
                rep.findings.append(Finding("error", subject, f"primary origin {members[0]} is in "
                                            f"{regions[0] or 'an unknown region'}, not {primary_region}"))
            if regions[1] != standby_region:
                rep.findings.append(Finding("error", subject, f"failover origin {members[1]} is in "
                                            f"{regions[1] or 'an unknown region'}, not {standby_region}"))
        missing = [c for c in required if c not in codes]
        if missing:
            rep.findings.append(Finding("error", subject, "failover criteria lack status codes "
                                        + ", ".join(map(str, missing))))
    behaviors = [("default behavior", config.get("DefaultCacheBehavior") or {}, True)]
    behaviors += [(f"behavior {b.get('PathPattern', '?')}", b, False) for b in _items(config.get("CacheBehaviors"))]
    for subject, b, is_default in behaviors:
        target = b.get("TargetOriginId", "")
        if target in group_ids:
            continue
        if target not in origins:
            rep.findings.append(Finding("error", subject, f"targets {target!r}, neither an origin nor an origin group"))
        elif origin_region.get(target) == primary_region:
            severity = "warning" if is_default and allow_direct_default else "error"
            rep.findings.append(Finding(severity, subject, f"targets the {primary_region} origin {target} directly: "
                                        "no failover to the standby region for it"))
    return rep
