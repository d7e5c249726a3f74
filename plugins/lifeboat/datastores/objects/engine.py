"""The objects engine: S3 cross-region replication of the upload bucket, checked (configuration, canary
lag, inventory diff), never replaced; a guarded repair copies only what the replica lacks (repair.py)."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.clients.s3 import Bucket
from lifeboat.datastores.base import MonitorFinding, Taken
from lifeboat.datastores.objects.options import ObjectsOptions
from lifeboat.datastores.regional import RegionalDatastore, per_region
from lifeboat.drills import DrillRecorder
from lifeboat.durations import format_duration, seconds
from lifeboat.errors import LifeboatError, Refused, ServiceUnsupported
from lifeboat.objects import canary, replication
from lifeboat.objects.diff import DIFFERENT, MISSING, DiffState, diff, versioned
from lifeboat.records import Artifact, Check, Manifest, utcnow
from lifeboat.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)

DIFF_STATE, CANARIES = "diff", "canaries"
DIFF_FILE = "diff.json"


class DiffIncomplete(LifeboatError):
    """The inventory diff stopped at its per-attempt budget; its cursor is saved and a retry continues."""


class ObjectsDatastore(RegionalDatastore[ObjectsOptions]):
    engine = "objects"
    restore_series = "inventory"

    # -- plumbing --------------------------------------------------------------------------------
    @per_region
    def bucket(self, region: str) -> Bucket:
        name = self.options.buckets.get(region)
        if not name:
            raise Refused(f"datastores.{self.name}.options.buckets: no bucket for region {region!r}")
        return Bucket.from_connection(self.conn_id(region), name)

    @property
    def source(self) -> Bucket:
        return self.bucket(self.region)

    @property
    def replica(self) -> Bucket:
        return self.bucket(self.standby_region)

    @property
    def canary_prefix(self) -> str:
        return self.options.prefix + self.options.canary_prefix

    def versioned(self) -> bool:
        return self.options.compare_versions and self.source.versioning() == "Enabled" \
            and self.replica.versioning() == "Enabled"

    def lister(self, bucket: Bucket, versions: bool, tee: dict[str, dict] | None = None):
        """A key-ordered lister of `bucket` under the prefix for lifeboat.objects.diff; `tee` collects what
        the source listing returned (with each key's current version id)."""
        prefix = self.options.prefix

        def plain(after: str, limit: int):
            page, more = bucket.list_page(after, limit, prefix=prefix)
            if tee is not None:
                for o in page:
                    tee[o.key] = {"key": o.key, "etag": o.etag, "size": o.size, "version_id": None}
            return page, more

        def with_versions(after: str, limit: int):
            raw, more, _next = bucket.list_versions_page(after, limit, prefix=prefix)
            entries = versioned(raw)
            if tee is not None:
                latest = {v.key: v.version_id for v in raw if v.is_latest}
                for e in entries:
                    tee[e.key] = {"key": e.key, "etag": e.etag, "size": e.size, "version_id": latest.get(e.key),
                                  "versions": [list(v) for v in e.versions]}
            return entries, more

        return with_versions if versions else plain

    def run_diff(self, state: DiffState | None = None, *, max_keys: int | None = None,
                 tee: dict[str, dict] | None = None, versions: bool | None = None) -> DiffState:
        versions = self.versioned() if versions is None else versions
        return diff(self.lister(self.source, versions, tee), self.lister(self.replica, versions),
                    state, max_keys=max_keys, page_size=self.options.page_size, compare_versions=versions,
                    exclude_prefixes=[self.canary_prefix])

    # -- replication configuration ----------------------------------------------------------------------
    def replication_config(self) -> tuple[dict[str, Any] | None, str]:
        """(the source's ReplicationConfiguration, where it was read)."""
        f = self.options.replication_file
        if f:
            try:
                return json.loads(Path(f).read_text()).get("ReplicationConfiguration"), f
            except (OSError, ValueError) as exc:
                raise Refused(f"datastores.{self.name}.options.replication_file: {f}: {exc}") from None
        try:
            return self.source.replication(), "GetBucketReplication"
        except ServiceUnsupported as exc:
            raise Refused(f"{exc} -- set datastores.{self.name}.options.replication_file where the store "
                          "configures replication outside the S3 API") from None

    def replication_problems(self) -> tuple[list[str], str]:
        config, where = self.replication_config()
        return replication.problems(config, source=self.source.bucket, destination=self.replica.bucket,
                                    source_versioning=self.source.versioning(),
                                    destination_versioning=self.replica.versioning(), where=where), where

    # -- backup: the inventory of both buckets and their diff -----------------------------------------------
    def _take(self, kind: str, backup_id: str, staging: Path) -> Taken:
        saved = self.ctx.repo.get_state(self.name, DIFF_STATE) or {}
        if saved.get("backup_id") == backup_id and not saved.get("complete"):
            st = DiffState.from_json(saved["diff"])
            parts = [Artifact.model_validate(a) for a in saved.get("parts") or []]
            versions = bool(saved.get("versions"))
            log.info("resuming the inventory diff of %s after %r (%d keys compared in %d earlier attempt(s))",
                     backup_id, st.cursor, st.compared, st.runs)
        else:
            st, parts, versions = DiffState(), [], self.versioned()
        problems, where = self.replication_problems()
        budget = self.options.max_keys_per_run
        while not st.complete:
            if budget <= 0:
                raise DiffIncomplete(f"{self.name}: inventory diff of backup {backup_id} stopped after "
                                     f"{self.options.max_keys_per_run} keys in this attempt "
                                     "(options.max_keys_per_run); "
                                     f"cursor {st.cursor!r} and {len(parts)} inventory parts saved in the catalog "
                                     f"({self.ctx.repo.url_of(self.ctx.repo.layout.state(self.name, DIFF_STATE))}): "
                                     "a retry of this task continues there")
            tee: dict[str, dict] = {}
            chunk = min(budget, self.options.checkpoint_keys)
            before = st.compared
            st = self.run_diff(st, max_keys=chunk, tee=tee, versions=versions)
            budget -= st.compared - before
            rows = [tee[k] for k in sorted(tee) if (st.complete or k <= st.cursor)
                    and not k.startswith(self.canary_prefix)]
            if rows:
                part = staging / "inventory" / f"part-{len(parts) + 1:05d}.jsonl"
                part.parent.mkdir(parents=True, exist_ok=True)
                part.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
                parts.append(self.ctx.repo.put_artifact(self.name, backup_id, f"inventory/{part.name}", part))
            self.ctx.repo.put_state(self.name, DIFF_STATE, {
                "backup_id": backup_id, "complete": st.complete, "diff": st.to_json(), "versions": versions,
                "parts": [a.model_dump() for a in parts], "saved_at": utcnow().isoformat()})
        (staging / DIFF_FILE).write_text(json.dumps(st.to_json(), indent=1, sort_keys=True))
        artifacts = [*parts, self.ctx.repo.put_artifact(self.name, backup_id, DIFF_FILE, staging / DIFF_FILE)]
        src, dst = self.source, self.replica
        return Taken(
            position={"listed_at": utcnow().isoformat(), "diff_complete": st.complete, "attempts": st.runs},
            counts={"objects": st.source_keys, "replica_objects": st.dest_keys, "missing": st.counts[MISSING],
                    "different": st.counts[DIFFERENT]},
            artifacts=artifacts,
            tools={"s3": "ListObjectVersions" if versions else "ListObjectsV2"},
            native={"source": {"region": self.region, "bucket": src.bucket, "endpoint": src.endpoint},
                    "replica": {"region": self.standby_region, "bucket": dst.bucket, "endpoint": dst.endpoint},
                    "prefix": self.options.prefix, "versions_compared": versions, "diff": st.summary(),
                    "missing": st.keys(MISSING)[:200], "different": st.keys(DIFFERENT)[:200],
                    "truncated": st.truncated, "replication_config": where, "replication_problems": problems,
                    "parts": len(parts)},
            source=f"{self.conn_id()} (s3://{src.bucket}) -> {self.conn_id(self.standby_region)} (s3://{dst.bucket})",
            restore_hint=(f"the replica s3://{dst.bucket} is the copy: read any object with `aws s3api get-object "
                          "--bucket <replica> --key <key> --version-id <id>` (inventory/*.jsonl lists key, ETag, "
                          "size, version id); copy what it lacks from the source (docs/datastores/objects.md)"),
        )

    # -- verification ----------------------------------------------------------------------------
    def checks(self, m: Manifest, batch: Any, deep: bool) -> list[Check]:
        out = []
        try:
            problems, where = self.replication_problems()
            out.append(Check(name="replication configuration and versioning", ok=not problems,
                             detail="; ".join(problems) if problems else f"rule Enabled to s3://{self.replica.bucket} "
                             f"({where}); versioning Enabled on both buckets"))
        except LifeboatError as exc:
            out.append(Check(name="replication configuration and versioning", ok=False, detail=str(exc)))
        still, arrived = [], 0
        try:
            diffdoc = json.loads(self.ctx.repo.read_artifact(m, DIFF_FILE))
            findings = [f for f in diffdoc.get("findings") or [] if f["problem"] in (MISSING, DIFFERENT)]
        except (OSError, ValueError, LifeboatError) as exc:
            findings = [{"key": k, "problem": MISSING, "source": None} for k in m.native.get("missing") or []]
            out.append(Check(name="diff record readable", ok=False, detail=f"{DIFF_FILE}: {exc}"))
        for f in findings[:1000]:  # named at backup time: does the replica have them by now?
            want = f.get("source") or {}
            head = self.replica.head(f["key"])
            if head is None:
                still.append(f"{f['key']}: missing in s3://{self.replica.bucket}")
            elif want and (head.etag.lower() != str(want.get("etag", "")).lower() or head.size != want.get("size")):
                still.append(f"{f['key']}: different in s3://{self.replica.bucket} (ETag {head.etag}, "
                             f"source {want.get('etag')})")
            else:
                arrived += 1
        out.append(Check(name="replica holds every source object", ok=not still and bool(m.native.get("diff")),
                         detail=("; ".join(still[:50]) + (f" (+{len(still) - 50} more)" if len(still) > 50 else ""))
                         if still else f"{m.counts.get('objects', 0)} objects compared ({m.native.get('diff')})"
                         + (f"; {arrived} missing at backup time have arrived since" if arrived else "")))
        return out

    # -- restore test ----------------------------------------------------------------------------
    def scratch_target(self, manifest: Manifest, target: str, drill: DrillRecorder):
        from lifeboat.datastores.objects.scratch import ObjectsScratch

        self.latest_only(target, "the replica is read back as the inventory of one backup "
                         "lists it; use target 'latest'")
        return ObjectsScratch(self, manifest, drill)

    # -- heartbeat: the canary ------------------------------------------------------------------------------
    def canaries(self) -> dict[str, str | None]:
        return dict((self.ctx.repo.get_state(self.name, CANARIES) or {}).get("canaries") or {})

    def save_canaries(self, ledger: dict[str, str | None]) -> None:
        keep = sorted(ledger)[-self.options.canary_keep:]
        ledger = {k: ledger[k] for k in keep}
        lag = canary.lag([(k, _dt(v)) for k, v in ledger.items()], utcnow(), self.canary_prefix)
        self.ctx.repo.put_state(self.name, CANARIES, {"bucket": self.source.bucket, "replica": self.replica.bucket,
                                                      "canaries": ledger, "canary_prefix": self.canary_prefix,
                                                      "lag": lag.to_json(),
                                                      "updated_at": utcnow().isoformat()})

    def heartbeat(self) -> datetime:
        """Write a canary to the source bucket, wait (options.canary_wait) for it in the replica, record its
        arrival in the catalog; delete the source's canaries older than the newest canary_keep."""
        now = utcnow()
        ledger = self.canaries()
        key = canary.key(now, self.region, self.canary_prefix)
        self.source.put(key, canary.body(now, self.region, len(ledger)), content_type="application/json")
        try:
            wait_until(f"canary {key} in s3://{self.replica.bucket}", lambda: self.replica.head(key),
                       seconds(self.options.canary_wait), 0.05, done=lambda h: h is not None)
            ledger[key] = utcnow().isoformat()
        except WaitTimeout:
            ledger[key] = None
            log.warning("canary %s has not reached s3://%s within %s", key, self.replica.bucket,
                        self.options.canary_wait)
        self._observe(ledger)
        self.save_canaries(ledger)
        self._prune_canaries()
        return now

    def _observe(self, ledger: dict[str, str | None]) -> None:
        """Canaries not seen in the replica yet: arrived now? (observed time: an upper bound of the arrival)"""
        for k in [k for k, v in ledger.items() if v is None][-20:]:
            if self.replica.head(k) is not None:
                ledger[k] = utcnow().isoformat()

    def _prune_canaries(self) -> None:
        keys, after = [], ""
        while True:
            page, more = self.source.list_page(after, 1000, prefix=self.canary_prefix)
            keys += [o.key for o in page]
            if not more or not page:
                break
            after = page[-1].key
        for k in keys[:-self.options.canary_keep]:
            self.source.delete(k)

    def canary_lag(self) -> canary.Lag:
        ledger = self.canaries()
        before = dict(ledger)
        self._observe(ledger)
        if ledger != before:
            self.save_canaries(ledger)
        return canary.lag([(k, _dt(v)) for k, v in ledger.items()], utcnow(), self.canary_prefix)

    def exposure(self) -> dict[str, float | None]:
        """The canary lag: the newest arrived canary's lag or the age of the oldest one still pending."""
        return {"s3 replication lag": self.canary_lag().lag_s}

    def monitor_findings(self) -> list[MonitorFinding]:
        problems, where = self.replication_problems()
        if problems:
            return [MonitorFinding("replication configuration", "critical", f"{len(problems)} problem(s)", "none",
                                   f"{self.name}: " + "; ".join(problems))]
        return [MonitorFinding("replication configuration", "ok", "Enabled", "Enabled",
                               f"{self.name}: s3://{self.source.bucket} replicates to s3://{self.replica.bucket} "
                               f"({where}); versioning on both")]

    def describe_lag(self) -> str:
        lag = self.canary_lag()
        return "no canary yet" if lag.lag_s is None else format_duration(lag.lag_s)


def _dt(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def sha256_and_md5(data: bytes) -> tuple[str, str]:
    return hashlib.sha256(data).hexdigest(), hashlib.md5(data, usedforsecurity=False).hexdigest()


__all__ = ["DiffIncomplete", "ObjectsDatastore", "sha256_and_md5"]
