"""A distribution configuration compared with another: what failover depends on (origins, origin groups,
behaviors), in a form equal on CloudFront and moto. Pure logic."""

from __future__ import annotations

from typing import Any

ARTIFACT = "distribution-config.json"
REQUIRED = ("CallerReference", "Origins", "DefaultCacheBehavior", "Comment", "Enabled")


def summary(config: dict[str, Any]) -> dict[str, Any]:
    """What failover depends on, comparable across CloudFront and moto (moto drops S3OriginConfig):
    origins (id, domain), origin groups (members, status codes), behaviors (path -> target)."""
    def items(section: Any) -> list:
        return list((section or {}).get("Items") or [])

    return {
        "origins": sorted((o.get("Id"), o.get("DomainName")) for o in items(config.get("Origins"))),
        "origin_groups": sorted(
            (g.get("Id"), tuple(m.get("OriginId") for m in items(g.get("Members"))),
             tuple(sorted(int(c) for c in items((g.get("FailoverCriteria") or {}).get("StatusCodes")))))
            for g in items(config.get("OriginGroups"))),
        "default": (config.get("DefaultCacheBehavior") or {}).get("TargetOriginId"),
        "behaviors": sorted((b.get("PathPattern"), b.get("TargetOriginId"))
                            for b in items(config.get("CacheBehaviors"))),
    }


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    sa, sb = summary(a), summary(b)
    out = []
    for k in sa:
        if sa[k] != sb[k]:
            if isinstance(sa[k], list):
                only_a, only_b = set(sa[k]) - set(sb[k]), set(sb[k]) - set(sa[k])
                out.append(f"{k}: only in the backup {sorted(only_a)[:5]}, only in the other {sorted(only_b)[:5]}")
            else:
                out.append(f"{k}: {sa[k]} != {sb[k]}")
    return out
