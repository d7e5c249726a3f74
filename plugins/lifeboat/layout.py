"""The repository layout: the one place that builds (and reads back) every key of the repository.

    <datastore>/backups/<backup_id>/<artifact path>     a backup's files
    <datastore>/backups/<backup_id>/manifest.json       written last; its presence = complete
    <datastore>/verifications/<backup_id>/<stamp>.json  one per verification run
    <datastore>/<tool>/...                              a native tool's own repository (pgBackRest)
    <datastore>/state/<name>.json                       an engine's running state (first-seen image times,
                                                        canary arrivals, a diff's cursor), in both regions
    drills/<drill_id>.json                              restore tests, failovers, failbacks
    failovers/<timeline_id>.json                        the step timeline of a failover or failback
    recoveries/<timeline_id>.json                       the step timeline of a recovery (lifeboat_recover[_service])
    incidents/active/<id>.json                          open, acknowledged, or resolved with notices to send
    incidents/closed/<YYYY-MM>/<id>.json                settled incidents
    incidents/acks/<id>.json                            an acknowledgement
    reports/<kind>/<period>/report.{html,pdf,json}      monthly / quarterly reviews (+ charts/<name>.png)
    runbooks/index.md, runbooks/scenarios/<scenario>.md, runbooks/datastores/<datastore>.md (+ .html)
    regions/active.json                                 which region is active (written by failover / failback)
    mirror/pending-<from>-to-<to>.json                  what this region wrote that the other has not got yet
    mirror/last-<from>-to-<to>.json                     when the last complete mirror between the two finished
    chaos/experiments/<id>.json                         one failure simulation (lifeboat.chaos)
    chaos/injected/<id>.json                            a fault injected and not yet reverted
    index/<area>/<stamp>-<nonce>.json                   the catalog index (lifeboat.catalog_index): what
                                                        the records under <area> hold, written AFTER them

Keys are relative to a region's repository URL and identical in both regions (after Velero's
ObjectStoreLayout). Nothing else formats a storage path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

MANIFEST = "manifest.json"
BACKUPS = "backups"
VERIFICATIONS = "verifications"
DRILLS = "drills"
FAILOVERS = "failovers"
RECOVERIES = "recoveries"
INCIDENTS = "incidents"
REPORTS = "reports"
RUNBOOKS = "runbooks"
REGIONS = "regions"
MIRROR = "mirror"
CHAOS = "chaos"
INDEX = "index"
# what the DR page may serve as a file: reports and runbooks only
_OPS_FILE = re.compile(rf"^({REPORTS}|{RUNBOOKS})/[A-Za-z0-9_.\-/]+\.(html|pdf|md|json|png|svg)$")


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

    # -- engine state (kept in both regions) -----------------------------------------------------------
    @staticmethod
    def state(datastore: str, name: str) -> str:
        """<datastore>/state/<name>.json: what an engine remembers between runs (not a backup)."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
            raise ValueError(f"state record name {name!r}: lower-case letters, digits, '_', '.', '-' only")
        return f"{datastore}/state/{name}.json"

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
    def recovery(timeline_id: str) -> str:
        return f"{RECOVERIES}/{timeline_id}.json"

    @staticmethod
    def is_record(key: str) -> bool:
        return key.endswith(".json")

    # -- the catalog index (lifeboat.catalog_index) ------------------------------------------------------
    @classmethod
    def index_areas(cls, datastore: str) -> dict[str, str]:
        """area -> the prefix whose records it indexes, for one datastore."""
        return {f"{datastore}.{BACKUPS}": cls.backups(datastore),
                f"{datastore}.{VERIFICATIONS}": cls.verifications(datastore)}

    @staticmethod
    def index(area: str) -> str:
        return f"{INDEX}/{area}/"

    @classmethod
    def index_segment(cls, area: str, stamp: int, nonce: str) -> str:
        return f"{cls.index(area)}{stamp:020d}-{nonce}.json"

    @staticmethod
    def is_index(key: str) -> bool:
        return key.startswith(f"{INDEX}/")

    # -- incidents, reports, runbooks: records kept in both regions --------------------------------------
    @staticmethod
    def incident(state: str, incident_id: str = "", month: str | datetime = "") -> str:
        """incidents/<state>/ (active | closed | acks), the folder of one month's closed incidents (the
        month it was opened), or one record in either."""
        if isinstance(month, datetime):
            month = month.strftime("%Y-%m")
        folder = f"{INCIDENTS}/{state}/" + (f"{month}/" if month else "")
        return folder + (f"{incident_id}.json" if incident_id else "")

    @staticmethod
    def report(kind: str = "", period: str = "", name: str = "") -> str:
        """reports/, or `name` in reports/<kind>/<period>/ (report.html, charts/<chart>.png, ...)."""
        return f"{REPORTS}/" + (f"{kind}/{period}/{name}" if kind else "")

    @staticmethod
    def runbook(name: str = "", group: str = "") -> str:
        """runbooks/; runbooks/index.md (name "index"); runbooks/<group>/<name>.md (scenarios | datastores);
        `html_of` names the rendered page beside each."""
        if not name:
            return f"{RUNBOOKS}/"
        return f"{RUNBOOKS}/" + (f"{group}/" if group else "") + f"{name}.md"

    @staticmethod
    def chaos_experiment(record_id: str = "") -> str:
        """chaos/experiments/, or one experiment's record."""
        return f"{CHAOS}/experiments/" + (f"{record_id}.json" if record_id else "")

    @staticmethod
    def chaos_injected(marker_id: str = "") -> str:
        """chaos/injected/, or the marker of one fault not yet reverted."""
        return f"{CHAOS}/injected/" + (f"{marker_id}.json" if marker_id else "")

    @staticmethod
    def html_of(markdown_key: str) -> str:
        return markdown_key.removesuffix(".md") + ".html"

    @staticmethod
    def is_ops_file(key: str) -> bool:
        """A report or runbook file the DR page may serve (no other key, no `..`)."""
        return bool(_OPS_FILE.match(key)) and ".." not in key

    # -- regions and the cross-region mirror ----------------------------------------------------------
    @staticmethod
    def active_region() -> str:
        """The active-region record (lifeboat.regions.ActiveRegion), kept in both regions' catalogs."""
        return f"{REGIONS}/active.json"

    @staticmethod
    def mirror_pending(source: str, destination: str) -> str:
        """What `source` wrote that has not reached `destination` (lifeboat.mirroring.Pending)."""
        return f"{MIRROR}/pending-{source}-to-{destination}.json"

    @staticmethod
    def mirror_last(source: str, destination: str) -> str:
        """When the last complete mirror `source` -> `destination` finished (lifeboat.mirroring.LastMirror)."""
        return f"{MIRROR}/last-{source}-to-{destination}.json"
