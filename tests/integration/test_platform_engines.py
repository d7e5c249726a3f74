"""Issue 13's acceptance, engine level, against the real local stack: the images, objects, config and cdn
engines catch drift in what they protect and name it -- each test breaks one thing on purpose (and puts
it back), then asserts on what the engine reports:

  images   a new image pushed to the primary registry is in the standby after replication, same digest;
           a standby blob deleted afterwards fails verification naming the image; the next replication
           repairs it
  objects  a paused filer.sync makes the canary lag alert (monitor critical, metrics hook) and the guarded
           repair copies exactly the keys the replica lacks (dry run first, refused without confirmation)
  config   a ref rewritten on the primary fails the bundle's verification naming the ref; a ConfigMap edited
           in the cluster is reported as drift with its name
  cdn      an origin group edited to fail over within the primary region fails verification and the monitor

Each test uses an engine of its own (engine_with: its own catalog folder), so nothing here touches the
inventory datastores' catalogs.
"""

from __future__ import annotations

import json
import time

import pytest

from lifeboat import monitor as mon
from lifeboat import replication_metrics
from lifeboat.errors import Refused
from lifeboat.records import utcnow
from tests.contract.adapters.images import push_tiny_image
from tests.contract.adapters.objects import wait_replicated
from tests.fixtures import forget_catalog, purge_prefix

pytestmark = pytest.mark.integration
WEST, EAST = "us-west-2", "us-east-1"


def findings(eng, check: str | None = None) -> list[dict]:
    out = mon.run(eng.ctx.inventory, eng, send_alerts=False)["findings"]
    return [f for f in out if check is None or f["check"] == check]


# -- images -------------------------------------------------------------------------------------------------

def test_images_new_image_replicated_same_digest_and_a_deleted_standby_blob_fails_verification(
        registries, engine_with, unique):
    west, east = registries[WEST], registries[EAST]
    repo = f"accept/img-{unique}"
    digest = push_tiny_image(west, repo, "1.0.0", f"accept:{unique}")
    eng = engine_with("images", name=f"images_accept_{unique}", kubernetes={}, namespaces=[],
                      images=[f"{west.host}/{repo}:1.0.0"])
    try:
        assert east.manifest_digest(repo, "1.0.0") is None
        lacking = findings(eng, "images in the standby")
        assert lacking[0]["severity"] == "medium" and f"{repo}:1.0.0" in lacking[0]["message"], lacking
        m = eng.backup("replicate", f"accept-{unique}-1")
        assert east.manifest_digest(repo, "1.0.0") == digest == west.manifest_digest(repo, "1.0.0")
        entry = next(e for e in m.native["images"] if e["repository"] == repo)
        assert entry["copied"] and entry["digest"] == digest
        (v,) = eng.verify([m])
        assert v.ok, v.problems
        assert findings(eng, "images in the standby")[0]["severity"] == "ok"

        config_blob = east.get_manifest(repo, digest).doc["config"]["digest"]
        east.delete_blob(repo, config_blob)
        (v,) = eng.verify([m])
        assert not v.ok
        assert any(repo in p and config_blob in p for p in v.problems), v.problems

        m2 = eng.backup("replicate", f"accept-{unique}-2")  # the next replication uploads exactly that blob
        entry = next(e for e in m2.native["images"] if e["repository"] == repo)
        assert entry["copied"] and m2.native["copied"] == 1 and east.blob_exists(repo, config_blob)
        (v,) = eng.verify([m2])
        assert v.ok, v.problems
    finally:
        for reg in (west, east):
            if reg.manifest_digest(repo, "1.0.0"):
                reg.delete_manifest(repo, digest)
        forget_catalog(eng)


def test_images_lag_metric_names_the_repository_the_standby_lacks(registries, engine_with, unique):
    west = registries[WEST]
    repo = f"accept/lag-{unique}"
    digest = push_tiny_image(west, repo, "2.0.0", f"lag:{unique}")
    eng = engine_with("images", name=f"images_lag_{unique}", objectives={"rpo": "1h"}, kubernetes={},
                      namespaces=[], images=[f"{west.host}/{repo}:2.0.0"])
    try:
        findings(eng)  # the monitor records what the standby lacks; the hook reads that record
        time.sleep(1.1)
        samples = {lab["repository"]: v for lab, v in
                   replication_metrics.image_replication_lag(eng.ctx.inventory, utcnow())}
        assert samples.get(repo, 0) >= 1.0, samples
        eng.backup("replicate", f"lag-{unique}")
        samples = {lab["repository"]: v for lab, v in
                   replication_metrics.image_replication_lag(eng.ctx.inventory, utcnow())}
        assert repo not in samples, samples
    finally:
        for reg in registries.values():
            if reg.manifest_digest(repo, "2.0.0"):
                reg.delete_manifest(repo, digest)
        forget_catalog(eng)


# -- objects (S3 cross-region replication) -------------------------------------------------------------------

def test_objects_paused_replication_alerts_on_lag_and_repair_copies_exactly_the_missing_keys(
        upload_buckets, uploads_replication, engine_with, unique):
    comp, state = uploads_replication
    west, east = upload_buckets[WEST], upload_buckets[EAST]
    prefix = f"accept-{unique}/"
    eng = engine_with("uploads", name=f"objects_accept_{unique}", objectives={"rpo": "8s"}, prefix=prefix,
                      canary_wait="20s")
    try:
        before = [f"{prefix}before-{i}" for i in range(3)]
        for k in before:
            west.put(k, k.encode())
        wait_replicated(east, before)
        eng.heartbeat()  # replication running: the canary arrives
        lag = [f for f in findings(eng) if f["check"] == "s3 replication lag"]
        assert lag and lag[0]["severity"] == "ok", lag

        comp.pause(state)
        missed = [f"{prefix}missed-{i}" for i in range(4)]
        for k in missed:
            west.put(k, k.encode() * 10)
        engine_with("uploads", name=eng.name, objectives={"rpo": "8s"}, prefix=prefix,
                    canary_wait="1s").heartbeat()  # this canary cannot arrive (same ledger: same name)
        deadline = time.monotonic() + 30
        while (eng.canary_lag().lag_s or 0) <= 8.5 and time.monotonic() < deadline:
            time.sleep(0.5)  # the pending canary's age grows with the clock
        lag = [f for f in findings(eng) if f["check"] == "s3 replication lag"]
        assert lag and lag[0]["severity"] == "critical", lag
        hook = [v for lab, v in replication_metrics.s3_replication_lag(eng.ctx.inventory, utcnow())
                if lab["bucket"] == west.bucket]
        assert hook and max(hook) > 8.0, hook

        plan = eng_repair(eng, dry_run=True)
        assert plan["would_copy"] == missed and plan["copied"] == [], plan
        assert all(east.head(k) is None for k in missed), "a dry run copies nothing"
        with pytest.raises(Refused, match=f"repair {eng.name}"):
            eng_repair(eng, dry_run=False, confirm="yes")
        done = eng_repair(eng, dry_run=False, confirm=f"repair {eng.name}")
        assert done["copied"] == missed and " 0 missing, 0 different" in done["after"], done
        for k in missed:
            assert east.get(k) == k.encode() * 10
        assert sorted(o.key for o in east.list_page("", 1000, prefix=prefix)[0]
                      if ".lifeboat/" not in o.key) == sorted(before + missed)
    finally:
        if comp.replication_status(state)["state"] != "running":
            comp.resume(state)
        wait_replicated(east, [o.key for o in west.list_page("", 1000, prefix=prefix)[0]])
        purge_prefix(upload_buckets, prefix)
        forget_catalog(eng)


def eng_repair(eng, **kw):
    from lifeboat.datastores.objects.repair import repair

    return repair(eng, **kw)


# -- config repository ---------------------------------------------------------------------------------------

def test_config_rewritten_ref_fails_verification_naming_the_ref(config_remotes, engine_with, unique, tmp_path,
                                                                stack_env):
    from pathlib import Path

    from devstack.components import config_repo as comp
    from lifeboat.clients.git import Git

    git, state = Git(), Path(stack_env["LIFEBOAT_STACK_DIR"])
    name, work = f"accept-{unique}", tmp_path / "work"
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    git.clone(config_remotes[WEST], work)
    git.run(["-C", str(work), "checkout", "-q", "-b", name])
    (work / "frontend" / "accept.json").write_text(f'{{"t": "{unique}"}}\n')
    git.run(["-C", str(work), "add", "frontend/accept.json"])
    git.run(["-C", str(work), *ident, "commit", "-qm", "accept"])
    git.push(work, config_remotes[WEST], [f"{name}:refs/heads/{name}"])
    comp.sync_mirror(state)
    eng = engine_with("config", name=f"config_accept_{unique}", kubernetes={})
    try:
        m = eng.backup("bundle", f"accept-{unique}")
        assert f"refs/heads/{name}" in m.native["refs"]
        (v,) = eng.verify([m])
        assert v.ok, v.problems
        git.run(["-C", str(work), *ident, "commit", "-q", "--amend", "-m", "rewritten"])
        git.push(work, config_remotes[WEST], [f"+{name}:refs/heads/{name}"], force=True)
        comp.sync_mirror(state)  # the mirror follows: only the bundle still knows the old history
        (v,) = eng.verify([m])
        assert not v.ok
        assert any(f"refs/heads/{name}: rewritten" in p for p in v.problems), v.problems
    finally:
        git.push(work, config_remotes[WEST], [f":refs/heads/{name}"])
        comp.sync_mirror(state)
        forget_catalog(eng)


def test_config_configmap_edited_in_the_cluster_is_drift_named(kube, engine_with, unique):
    eng = engine_with("config", name=f"config_drift_{unique}")
    ns = eng.options.namespace
    core = kube[WEST].core
    cm = core.read_namespaced_config_map("frontend-config", ns)
    key = sorted(cm.data)[0]
    original = cm.data[key]
    try:
        before = [f for f in findings(eng) if f["check"].startswith("configmap drift")]
        assert before and all(f["severity"] == "ok" for f in before), before
        core.patch_namespaced_config_map("frontend-config", ns, {"data": {key: original + "\n# edited by hand\n"}})
        _, found = eng.drift(WEST)
        assert [str(f).split(" (")[0] for f in found] == [f"ConfigMap frontend-config key {key}: value differs"]
        west = [f for f in findings(eng) if f["check"] == f"configmap drift {WEST}"]
        assert west[0]["severity"] == "high" and "frontend-config" in west[0]["message"], west
        assert [f["severity"] for f in findings(eng) if f["check"] == f"configmap drift {EAST}"] == ["ok"]
    finally:
        core.patch_namespaced_config_map("frontend-config", ns, {"data": {key: original}})
        forget_catalog(eng)
    assert eng.drift(WEST)[1] == []


# -- cdn -----------------------------------------------------------------------------------------------------

def test_cdn_origin_group_edited_to_stay_in_the_primary_region_fails_verification_and_monitor(
        engine_with, unique):
    eng = engine_with("cdn", name=f"cdn_accept_{unique}")
    cf = eng.cloudfront
    dist = eng.options.distribution_id
    original = None
    try:
        m = eng.backup("config", f"accept-{unique}")
        (v,) = eng.verify([m])
        assert v.ok, v.problems
        assert findings(eng, "origin failover")[0]["severity"] == "ok"
        config, etag = cf.get_config(dist)
        original = json.loads(json.dumps(config, default=str))
        broken = json.loads(json.dumps(original))
        group = next(g for g in broken["OriginGroups"]["Items"] if g["Id"] == "uploads-failover")
        group["Members"]["Items"][1]["OriginId"] = "uploads-us-west-2"
        cf.update(dist, broken, etag)
        (v,) = eng.verify([m])
        assert not v.ok
        assert any("live origin groups" in p and group["Id"] in p for p in v.problems), v.problems
        f = findings(eng, "origin failover")
        assert f[0]["severity"] == "critical" and group["Id"] in f[0]["message"], f
    finally:
        if original is not None:
            cf.update(dist, original, cf.get_config(dist)[1])
        forget_catalog(eng)
    assert findings(eng, "origin failover")[0]["severity"] == "ok"
