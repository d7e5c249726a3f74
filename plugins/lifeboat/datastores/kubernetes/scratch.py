"""The Kubernetes restore-test target: the backup restored by the STANDBY region's Velero into drill
namespaces (`namespaceMapping` community -> drill-community-<drill id>), never a live namespace; every
restored object compared with the backed-up one (normalised spec), the Deployments Ready with the
replicas they had in the backup, the heartbeat ConfigMap's timestamp read for the RPO, and the drill
namespaces always deleted afterwards."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from lifeboat.clients.kubernetes import DRILL_PREFIX, RESOURCES, drill_namespace
from lifeboat.clients.kubernetes_specs import HEARTBEAT_CONFIGMAP, compare_specs, object_key
from lifeboat.datastores.base import ScratchTarget
from lifeboat.datastores.kubernetes.tarball import (
    COPY,
    Tarball,
    TarballError,
    flatten_results,
    read_gzip_json,
    read_tarball,
    unexpected_warnings,
    velero_name,
)
from lifeboat.drills import DrillRecorder
from lifeboat.errors import LifeboatError, Refused, RestoreFailed
from lifeboat.records import Manifest

if TYPE_CHECKING:
    from lifeboat.datastores.kubernetes.engine import KubernetesDatastore

LISTED_KINDS = frozenset(kind for _, kind, _ in RESOURCES)  # what KubernetesClient.list_namespace reads back


def guard_drill_targets(mapping: Mapping[str, str], live: Iterable[str]) -> None:
    """A restore test only ever writes into drill-* namespaces that are not a backed-up (live) namespace."""
    live = set(live)
    for source, target in mapping.items():
        if not target.startswith(DRILL_PREFIX) or target in live or target == source:
            raise Refused(f"refusing to restore {source} into {target!r}: a restore test only restores into "
                          f"{DRILL_PREFIX}* namespaces, never into a live namespace ({', '.join(sorted(live))})")


def tarball_from_copy(eng: KubernetesDatastore, m: Manifest) -> Tarball:
    """The backup's tarball from the Lifeboat repository copy (this region's), sha256 checked."""
    import hashlib

    name = m.native["velero_backup"]
    rel = f"{m.native.get('copy', COPY)}backups/{name}/{name}.tar.gz"
    art = next((a for a in m.artifacts if a.path == rel), None)
    url = eng.ctx.repo.artifact_url(m, rel)
    if art is None:
        raise RestoreFailed(f"backup {m.id} has no artifact {rel} in its manifest")
    data = eng.ctx.repo.read_artifact(m, rel)
    if hashlib.sha256(data).hexdigest() != art.sha256:
        raise RestoreFailed(f"{url}: sha256 differs from the manifest; the copy is damaged (run the verification)")
    try:
        return read_tarball(data, url)
    except TarballError as exc:
        raise RestoreFailed(str(exc)) from None


class DrillNamespaces(ScratchTarget):
    teardown_step = "delete drill namespaces"

    def __init__(self, eng: KubernetesDatastore, m: Manifest, drill: DrillRecorder):
        self.eng, self.m = eng, m
        self.region = eng.other_region(m.region)  # the standby cluster restores what the primary backed up
        self.client = eng.client(self.region)
        self.backup = m.native["velero_backup"]
        self.sources = list(m.native["namespaces"])
        self.namespaces = {ns: drill_namespace(ns, drill.drill.id) for ns in self.sources}
        self.restore_name = velero_name(f"{DRILL_PREFIX}{drill.drill.id}")
        self.tarball: Tarball | None = None
        self.storage_location = ""
        self.restore_called = False

    @property
    def targets(self) -> list[str]:
        return list(self.namespaces.values())

    def precheck(self, drill: DrillRecorder) -> None:
        with drill.step("pre-checks") as s:
            guard_drill_targets(self.namespaces, self.sources)
            existing = [t for t in self.targets if self.client.namespace_exists(t)]
            if existing:
                raise Refused(f"drill namespace(s) {', '.join(existing)} already exist in {self.region}; not "
                              "restoring over them")
            self.tarball = tarball_from_copy(self.eng, self.m)
            st = self.client.wait_backup_visible(self.backup, timeout=self.eng.timeout("sync_timeout"))
            self.storage_location = st.storage_location
            s.detail = (f"{self.region} lists {self.backup} ({st.describe()}, location {st.storage_location}); "
                        f"{len(self.tarball.items)} objects in the backup")

    def restore(self, drill: DrillRecorder) -> None:
        c, o = self.client, self.eng.options
        with drill.step(f"velero restore into {', '.join(self.targets)}") as s:
            self.restore_called = True
            c.create_restore(self.restore_name, backup=self.backup, namespace_mappings=self.namespaces,
                             include_namespaces=self.sources, labels={"app.kubernetes.io/managed-by": "lifeboat"},
                             annotations={"lifeboat.io/drill-id": drill.drill.id, "lifeboat.io/backup-id": self.m.id})
            rs = c.wait_restore(self.restore_name, timeout=self.eng.timeout("restore_timeout"))
            results = self._results() if (rs.warnings or rs.errors or not rs.ok) else {}
            if not rs.ok:
                raise RestoreFailed(f"{rs.describe()} in {self.region}: "
                                    + "; ".join(flatten_results(results, "errors")[:10]))
            warnings = flatten_results(results, "warnings")
            bad = unexpected_warnings(warnings, o.expected_restore_warnings)
            if bad:
                raise RestoreFailed(f"{rs.describe()} in {self.region} with unexpected warnings: "
                                    + "; ".join(bad[:10]))
            s.detail = rs.describe() + (f" (expected: {'; '.join(warnings)})" if warnings else "")
        deployments = {src: self.tarball.objects(src, ["Deployment"]) for src in self.sources} if self.tarball else {}
        if any(deployments.values()):
            with drill.step("deployments ready") as s:
                s.detail = self._wait_ready(deployments)

    def _results(self) -> dict:
        loc = self.eng.location(self.region, self.storage_location)
        key = loc.restore_results_key(self.restore_name)
        try:
            return read_gzip_json(loc.get(key), loc.url(key))
        except (LifeboatError, TarballError) as exc:
            return {"errors": {"velero": [f"results unreadable: {exc}"]}}

    def _wait_ready(self, deployments: Mapping[str, list[dict]]) -> str:
        done = []
        for src, objs in deployments.items():
            target = self.namespaces[src]
            want = {o["metadata"]["name"]: int((o.get("spec") or {}).get("replicas", 1) or 0) for o in objs}
            deps = self.client.wait_deployments_ready(target, list(want), timeout=self.eng.timeout("ready_timeout"))
            wrong = [f"{n}: {d.replicas} replicas, {want[n]} in the backup" for n, d in deps.items()
                     if d is not None and d.replicas != want[n]]
            if wrong:
                raise RestoreFailed(f"restored Deployments in {target} differ from the backup: " + "; ".join(wrong))
            done += [f"{target}/{n} {deps[n].ready}/{want[n]}" for n in sorted(want)]
        return "Ready: " + ", ".join(done)

    def verify(self, drill: DrillRecorder) -> None:
        with drill.step("restored objects equal the backup") as s:
            assert self.tarball is not None
            problems, compared, skipped = [], 0, set()
            for src, target in self.namespaces.items():
                backed = self.tarball.objects(src)
                skipped |= {o.get("kind", "?") for o in backed if o.get("kind") not in LISTED_KINDS}
                expected = {object_key(o): o for o in backed if o.get("kind") in LISTED_KINDS}
                drift = compare_specs(expected, self.client.list_namespace(target))
                compared += len([k for k in expected if k not in {d.object for d in drift}])
                problems += [f"{target}: {d.describe()}" for d in drift]
            if problems:
                raise RestoreFailed(f"{len(problems)} restored object(s) differ from the backup: "
                                    + "; ".join(problems[:10]))
            s.detail = (f"{compared} objects equal to their backed-up spec (normalised)"
                        + (f"; kinds not compared: {', '.join(sorted(skipped))}" if skipped else ""))

    def newest_heartbeat(self) -> datetime | None:
        found = []
        for target in self.targets:
            cm = self.client.get(f"/api/v1/namespaces/{target}/configmaps/{HEARTBEAT_CONFIGMAP}")
            written = ((cm or {}).get("data") or {}).get("written_at")
            if written:
                found.append(datetime.fromisoformat(written.replace("Z", "+00:00")))
        return max(found) if found else None

    def heartbeat_detail(self, hb: datetime | None) -> str:
        if hb is None:
            return f"no ConfigMap {HEARTBEAT_CONFIGMAP} in {', '.join(self.targets)} (lifeboat_heartbeat not running?)"
        return hb.isoformat()

    def teardown(self) -> str:
        if not self.restore_called:
            return "nothing was restored"
        deleted = [t for t in self.targets if self.client.delete_drill_namespace(t)]
        left = [t for t in self.targets if self.client.namespace_exists(t)]
        if left:
            raise RestoreFailed(f"drill namespaces could not be deleted in {self.region}: {', '.join(left)}")
        return f"deleted {', '.join(deleted) or 'nothing (already gone)'} in {self.region}"
