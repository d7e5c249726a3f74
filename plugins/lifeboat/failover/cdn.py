"""CDN failover: nothing to do at failover time -- CloudFront fails over per request through its origin
groups (primary region's origin first, the standby's on 5xx or no answer). The failover plan reports
whether it will (`origin_failover`, a fact of the traffic section); after a permanent move swap the
groups' member order by hand (docs/datastores/cdn.md)."""

from __future__ import annotations

from typing import Any

from lifeboat.failover.base import NotAutomated


class CdnFailover(NotAutomated):
    engine = "cdn"
    manual = ("nothing at failover time: CloudFront's origin groups fail over per request; after a permanent "
              "move swap the groups' member order (aws cloudfront update-distribution, docs/datastores/cdn.md)")


def origin_failover(inv, target_region: str) -> dict[str, Any]:
    """For each CDN datastore of the inventory: do its origin groups serve `target_region` when the other
    region fails? Read-only; never raises (an unreadable distribution is reported as not ok)."""
    from lifeboat.datastores import open_engine

    out: dict[str, Any] = {}
    for ds in inv.enabled_datastores():
        if ds.engine != "cdn":
            continue
        try:
            eng = open_engine(ds.name, inventory=inv)
            rep = eng.origin_failover()
            serves = all(target_region in [r for r in g["regions"] if r] for g in rep.groups) and bool(rep.groups)
            out[ds.name] = {"ok": rep.ok and serves, "distribution": eng.options.distribution_id,
                            "groups": {g["id"]: g["members"] for g in rep.groups},
                            "findings": [str(f) for f in rep.findings]}
        except Exception as exc:  # a fact, not a failure of the plan
            out[ds.name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return out
