"""What the restore-based failovers (Elasticsearch, MongoDB) share: a standby that is restored from a
backup "catches up" with a live primary by a fresh backup of it, verified and mirrored to the catalog
copy the standby's region reads -- a planned failover or a failback's switch-back then restores that."""

from __future__ import annotations

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
