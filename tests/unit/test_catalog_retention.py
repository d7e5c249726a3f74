"""Catalog and retention over a real file:// repository (pure logic, no servers)."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.catalog import Catalog
from lifeboat.errors import BackupNotFound, RepositoryError
from lifeboat.inventory import Retention
from lifeboat.records import Check, Manifest, Verification
from lifeboat.repository import Repository
from lifeboat.storage import open_storage

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def repo(tmp_path):
    return Repository(open_storage(f"file://{tmp_path}/west"), open_storage(f"file://{tmp_path}/east"))


def add(repo, bid, kind, at, parent=None, series="physical", payload=b"data"):
    art = []
    if payload:
        p = repo.primary.local_path("tmpfile")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(payload)
        art = [repo.put_artifact("pg", bid, "data.bin", p)]
        p.unlink()
    m = Manifest(id=bid, datastore="pg", engine="postgres", kind=kind, series=series, region="us-west-2",
                 started_at=at - timedelta(minutes=1), finished_at=at, parent=parent, artifacts=art)
    return repo.commit(m)


def verified(repo, bid, ok=True):
    repo.save_verification(Verification(backup_id=bid, datastore="pg", ok=ok, checks=[Check(name="x", ok=ok)]))


def rules(**kw):
    base = {"keep_last": 1, "keep_within": "0s", "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}
    return Retention(**{**base, **kw})


def test_catalog_lists_only_committed_backups(repo):
    add(repo, "b1", "full", T0)
    p = repo.primary.local_path("x")
    p.write_bytes(b"partial")
    repo.primary.put_file("pg/backups/b2/data.bin", p)  # artifacts but no manifest: interrupted
    assert [m.id for m in Catalog(repo).backups("pg")] == ["b1"]
    assert repo.incomplete("pg") == ["b2"]
    with pytest.raises(BackupNotFound, match="interrupted backups have no manifest: b2"):
        Catalog(repo).get("pg", "b2")


def test_catalog_commit_refuses_manifest_whose_artifact_is_missing(repo):
    m = add(repo, "b1", "full", T0)
    repo.primary.delete("pg/backups/b1/manifest.json")
    repo.primary.delete("pg/backups/b1/data.bin")
    with pytest.raises(RepositoryError, match=re.escape("pg/backups/b1/data.bin: missing or wrong size")):
        repo.commit(m)


def test_catalog_latest_verified_and_chain(repo):
    add(repo, "f1", "full", T0)
    add(repo, "d1", "diff", T0 + timedelta(hours=1), parent="f1")
    add(repo, "i1", "incr", T0 + timedelta(hours=2), parent="d1")
    verified(repo, "d1")
    verified(repo, "i1", ok=False)
    cat = Catalog(repo)
    assert cat.latest("pg").id == "i1"
    assert cat.latest("pg", verified=True).id == "d1"
    assert [m.id for m in cat.chain(cat.get("pg", "i1"))] == ["f1", "d1", "i1"]


def test_catalog_chain_with_missing_parent_is_named(repo):
    add(repo, "i1", "incr", T0, parent="gone")
    with pytest.raises(BackupNotFound, match="depends on gone"):
        Catalog(repo).chain(Catalog(repo).get("pg", "i1"))


def test_retention_keeps_what_a_retained_backup_depends_on(repo):
    add(repo, "f1", "full", T0)
    add(repo, "d1", "diff", T0 + timedelta(hours=1), parent="f1")
    add(repo, "i1", "incr", T0 + timedelta(hours=2), parent="d1")
    plan = Catalog(repo).retention_plan("pg", rules(keep_last=1), now=T0 + timedelta(days=30))
    assert set(plan.keep) == {"i1", "d1", "f1"} and plan.delete == []
    assert "base of d1" in plan.keep["f1"]


def test_retention_deletes_superseded_chain_dependents_first(repo):
    add(repo, "f1", "full", T0)
    add(repo, "i1", "incr", T0 + timedelta(hours=1), parent="f1")
    add(repo, "f2", "full", T0 + timedelta(hours=2))
    plan = Catalog(repo).retention_plan("pg", rules(keep_last=1), now=T0 + timedelta(days=30))
    assert set(plan.keep) == {"f2"}
    assert [m.id for m in plan.delete] == ["i1", "f1"]  # dependents before what they depend on


def test_retention_never_deletes_the_newest_verified_backup(repo):
    add(repo, "f1", "full", T0)
    add(repo, "f2", "full", T0 + timedelta(hours=1))
    add(repo, "f3", "full", T0 + timedelta(hours=2))
    verified(repo, "f1")
    verified(repo, "f3", ok=False)
    plan = Catalog(repo).retention_plan("pg", rules(keep_last=1), now=T0 + timedelta(days=30))
    assert set(plan.keep) == {"f3", "f1"}
    assert plan.keep["f1"] == ["newest verified"]
    assert [m.id for m in plan.delete] == ["f2"]


def test_retention_series_do_not_crowd_each_other_out(repo):
    add(repo, "f1", "full", T0)
    for h in range(1, 5):
        add(repo, f"l{h}", "logical", T0 + timedelta(hours=h), series="logical")
    plan = Catalog(repo).retention_plan("pg", rules(keep_last=1), now=T0 + timedelta(days=30))
    assert set(plan.keep) == {"f1", "l4"}


def test_retention_periodic_rules(repo):
    for d in range(10):
        add(repo, f"f{d}", "full", T0 + timedelta(days=d))
    plan = Catalog(repo).retention_plan("pg", rules(keep_last=1, keep_daily=3), now=T0 + timedelta(days=30))
    assert set(plan.keep) == {"f9", "f8", "f7"}
    plan = Catalog(repo).retention_plan("pg", rules(keep_last=1, keep_within="3d"), now=T0 + timedelta(days=9))
    assert set(plan.keep) == {"f9", "f8", "f7", "f6"}


def test_repository_mirror_copies_manifests_last_and_removes_stale(repo):
    add(repo, "f1", "full", T0)
    r = repo.mirror()
    assert r.copied == 3  # the artifact, the manifest, the catalog index segment naming it
    east = Repository(repo.mirror_storage)
    assert [m.id for m in Catalog(east).backups("pg")] == ["f1"]
    assert repo.mirror().copied == 0  # idempotent
    repo.delete_backup("pg", "f1")
    repo.mirror()
    assert Catalog(east).backups("pg") == []
