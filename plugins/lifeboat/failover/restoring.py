"""What the restore-based failovers (Elasticsearch, MongoDB) share: a standby that is restored from a
backup "catches up" with a live primary by a fresh backup of it, verified and mirrored to the catalog
copy the standby's region reads -- a planned failover or a failback's switch-back then restores that."""

from __future__ import annotations

from typing import Any, ClassVar

from lifeboat.failover.base import FailoverDatastore
from lifeboat.failover.facts import CaughtUp, Role
from lifeboat.records import utcnow


def fresh_backup(name: str, kind: str, source_region: str, target_region: str) -> tuple[bool, str]:
    """(caught up?, what was done): backup `kind` of the live primary in `source_region`, verified,
    mirrored. A mirror that cannot reach the target region leaves the standby behind (False)."""
    from lifeboat import jobs

    b = jobs.backup(name, kind, utcnow(), region=source_region)
    v = jobs.verify(name, [b["backup_id"]], region=source_region, raise_on_failure=False)
    if v["failed"]:
        return False, f"fresh backup {b['backup_id']} in {source_region} failed verification: {v['failed']}"
    m = jobs.mirror(region=source_region)
    if m.get("pending") or any((n or {}).get("pending") for n in (m.get("native") or {}).values()):
        return False, f"fresh backup {b['backup_id']} taken and verified, but not mirrored to {target_region}"
    return True, (f"fresh {kind} backup {b['backup_id']} of {source_region} ({b['seconds']}s), verified, mirrored "
                  f"to {target_region}")


class RestoringFailover(FailoverDatastore):
    """A failover whose standby is restored from the newest verified backup at promotion (no streaming
    replica): catching up is a fresh `catch_up_kind` backup of a live primary, and a reachable standby
    is always "caught up" (it is restored at the next failover)."""

    catch_up_kind: ClassVar[str]

    def _engine(self, region: str) -> Any:
        from lifeboat.datastores import open_engine

        return open_engine(self.name, inventory=self.inventory, region=region)

    def catch_up(self, target_region: str, source_region: str, source: Role) -> tuple[bool, str]:
        """The old primary answers (a planned failover, a failback's switch-back): a fresh backup of it,
        verified and mirrored, is what promote restores."""
        return fresh_backup(self.name, self.catch_up_kind, source_region, target_region)

    def caught_up(self, standby_region: str, primary_region: str) -> CaughtUp:
        r = self.role(standby_region)
        return CaughtUp(ok=bool(r.reachable), datastore=self.name, standby=standby_region, primary=primary_region,
                        standby_role=r.role, detail="restore-based: the standby is restored at the next failover")
