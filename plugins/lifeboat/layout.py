"""The repository layout: the one place that builds (and reads back) every key of the repository.

    <datastore>/backups/<backup_id>/<artifact path>     a backup's files
    <datastore>/backups/<backup_id>/manifest.json       written last; its presence = complete
    <datastore>/verifications/<backup_id>/<stamp>.json  one per verification run
    <datastore>/<tool>/...                              a native tool's own repository (pgBackRest)
    drills/<drill_id>.json                              restore tests, failovers, failbacks
    failovers/<timeline_id>.json                        the step timeline of a failover or failback

Keys are relative to a region's repository URL and identical in both regions (after Velero's
ObjectStoreLayout). Nothing else formats a storage path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MANIFEST = "manifest.json"
BACKUPS = "backups"
VERIFICATIONS = "verifications"
DRILLS = "drills"
FAILOVERS = "failovers"


@dataclass(frozen=True)
class BackupKey:
    datastore: str
    backup_id: str
    rel: str  # path inside the backup's folder ("" for the folder itself)


class Layout:
    # -- backups -------------------------------------------------------------------------------------
    @staticmethod
    def backups(datastore: str) -> str:
        return f"{datastore}/{BACKUPS}/"

    @classmethod
    def backup(cls, datastore: str, backup_id: str) -> str:
        return f"{cls.backups(datastore)}{backup_id}/"

    @classmethod
    def artifact(cls, datastore: str, backup_id: str, rel: str) -> str:
        return cls.backup(datastore, backup_id) + rel.lstrip("/")

    @classmethod
    def manifest(cls, datastore: str, backup_id: str) -> str:
        return cls.artifact(datastore, backup_id, MANIFEST)

    @staticmethod
    def parse_backup_key(key: str) -> BackupKey | None:
        """The parts of a key under `<datastore>/backups/<id>/`, None for any other key."""
        parts = key.split("/", 3)
        if len(parts) < 4 or parts[1] != BACKUPS or not parts[2]:
            return None
        return BackupKey(parts[0], parts[2], parts[3])

    @classmethod
    def is_manifest(cls, key: str) -> bool:
        k = cls.parse_backup_key(key)
        return k is not None and k.rel == MANIFEST

    # -- native tool repositories ----------------------------------------------------------------------
    @staticmethod
    def native(datastore: str, tool: str) -> str:
        return f"{datastore}/{tool}/"

    # -- verifications ---------------------------------------------------------------------------------
    @staticmethod
    def verifications(datastore: str, backup_id: str | None = None) -> str:
        return f"{datastore}/{VERIFICATIONS}/" + (f"{backup_id}/" if backup_id else "")

    @classmethod
    def verification(cls, datastore: str, backup_id: str, verified_at: datetime) -> str:
        return f"{cls.verifications(datastore, backup_id)}{verified_at.strftime('%Y%m%dT%H%M%S%fZ')}.json"

    # -- drills and failover timelines -------------------------------------------------------------------
    @staticmethod
    def drills() -> str:
        return f"{DRILLS}/"

    @staticmethod
    def drill(drill_id: str) -> str:
        return f"{DRILLS}/{drill_id}.json"

    @staticmethod
    def timeline(timeline_id: str) -> str:
        return f"{FAILOVERS}/{timeline_id}.json"

    @staticmethod
    def is_record(key: str) -> bool:
        return key.endswith(".json")
