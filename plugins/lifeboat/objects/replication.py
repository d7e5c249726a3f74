"""Is cross-region replication configured? Pure checks of a GetBucketReplication document and both
buckets' versioning (S3 CRR needs versioning on source and destination). Each problem names the
bucket, the rule or the setting at fault."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def problems(config: Mapping[str, Any] | None, *, source: str, destination: str, source_versioning: str,
             destination_versioning: str, where: str = "GetBucketReplication") -> list[str]:
    out = []
    if source_versioning != "Enabled":
        out.append(f"s3://{source}: versioning is {source_versioning or 'off'}, CRR needs Enabled")
    if destination_versioning != "Enabled":
        out.append(f"s3://{destination}: versioning is {destination_versioning or 'off'}, CRR needs Enabled")
    if not config:
        out.append(f"s3://{source}: no replication configuration ({where})")
        return out
    rules = list(config.get("Rules") or [])
    to_dest = [r for r in rules if str((r.get("Destination") or {}).get("Bucket", "")).split(":::")[-1] == destination]
    if not to_dest:
        out.append(f"s3://{source}: no replication rule to {destination} ({where}: "
                   f"{', '.join(str((r.get('Destination') or {}).get('Bucket')) for r in rules) or 'no rules'})")
    elif not any(r.get("Status") == "Enabled" for r in to_dest):
        out.append(f"s3://{source}: replication rule {to_dest[0].get('ID', '?')} to {destination} is "
                   f"{to_dest[0].get('Status')}, not Enabled ({where})")
    return out
