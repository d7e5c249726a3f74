"""The heartbeat image: a tiny OCI image (a config, no layers) pushed to the primary registry under
`<heartbeat repository>:<datastore>` by the heartbeat schedule, its write time in a label and an
annotation. Replication copies it like every image in use, so the standby's copy says up to when the
standby is complete (the RPO of a restore test). Pure logic: the bytes and their parsing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

LABEL = "org.lifeboat.heartbeat"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def config(written_at: datetime, datastore: str) -> bytes:
    at = written_at.astimezone(UTC).isoformat()
    return _canonical({"architecture": "amd64", "os": "linux", "created": at,
                       "config": {"Labels": {LABEL: at, f"{LABEL}.datastore": datastore}},
                       "rootfs": {"type": "layers", "diff_ids": []}})


def manifest(config_digest: str, config_size: int, written_at: datetime) -> bytes:
    return _canonical({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                       "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": config_size},
                       "layers": [], "annotations": {LABEL: written_at.astimezone(UTC).isoformat()}})


def written_at(manifest_doc: dict[str, Any]) -> datetime | None:
    """The heartbeat time of a heartbeat image's manifest (None for any other image)."""
    raw = (manifest_doc.get("annotations") or {}).get(LABEL)
    if not raw:
        return None
    t = datetime.fromisoformat(raw)
    return t if t.tzinfo else t.replace(tzinfo=UTC)
