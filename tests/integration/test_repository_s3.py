"""The repository on an S3-compatible endpoint (moto server, two regions), through an Airflow aws connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.catalog import Catalog
from lifeboat.errors import BackupNotFound, RepositoryError
from lifeboat.layout import Layout
from lifeboat.records import Drill, Manifest
from lifeboat.repository import Repository
from lifeboat.storage import open_storage

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_repo(stack_env, unique):
    # one Airflow connection per region, as the inventory's repository section names them; the stack
    # runs one moto per region (devstack/stack.py MOTO_PORTS), so these are two separate endpoints
    assert stack_env["LIFEBOAT_S3_ENDPOINT_US_WEST_2"] != stack_env["LIFEBOAT_S3_ENDPOINT_US_EAST_1"]
    return Repository(open_storage(f"s3://lifeboat-us-west-2/t-{unique}", "lifeboat_s3_us_west_2"),
                      open_storage(f"s3://lifeboat-us-east-1/t-{unique}", "lifeboat_s3_us_east_1"),
                      region="us-west-2", mirror_region="us-east-1")


def _complete_b1_and_interrupted_b2(repo, tmp_path) -> datetime:
    """Backup b1 committed, b2 with its artifact but no manifest (interrupted); returns b1's start."""
    at = datetime(2026, 11, 1, tzinfo=UTC)
    art = tmp_path / "a.bin"
    art.write_bytes(b"x" * 5000)
    a = repo.put_artifact("pg", "b1", "data/a.bin", art)
    repo.commit(Manifest(id="b1", datastore="pg", engine="postgres", kind="full", series="physical",
                         region="us-west-2", started_at=at, finished_at=at + timedelta(minutes=1), artifacts=[a]))
    repo.put_artifact("pg", "b2", "data/a.bin", art)  # interrupted: no manifest
    return at


def test_s3_repository_catalog_mirror_and_interrupted_backups(s3_repo, tmp_path):
    at = _complete_b1_and_interrupted_b2(s3_repo, tmp_path)
    s3_repo.save_drill(Drill(id="d1", type="restore_test", datastore="pg", started_at=at,
                             objective_rto_seconds=1, objective_rpo_seconds=1))
    cat = Catalog(s3_repo)
    assert [m.id for m in cat.backups("pg")] == ["b1"]
    assert s3_repo.incomplete("pg") == ["b2"]
    with pytest.raises(BackupNotFound):
        cat.get("pg", "b2")
    report = s3_repo.mirror()
    # the records (b1's artifact + manifest, b2's artifact, the drill) and, since the catalog index,
    # the index segments of the areas they touched, copied after them
    index_keys = [o.key for o in s3_repo.mirror_storage.list("") if Layout.is_index(o.key)]
    assert index_keys, "the mirror copied no catalog index"
    assert report.copied - len(index_keys) == 4
    east = Repository(s3_repo.mirror_storage)
    assert [m.id for m in Catalog(east).backups("pg")] == ["b1"]
    assert [d.id for d in east.drills()] == ["d1"]
    assert east.primary.get_bytes("pg/backups/b1/data/a.bin") == b"x" * 5000
    # the region really is the other one: the two buckets are separate objects
    s3_repo.delete_backup("pg", "b1")
    assert Catalog(s3_repo).backups("pg") == [] and [m.id for m in Catalog(east).backups("pg")] == ["b1"]


def test_s3_repository_errors_name_the_object(s3_repo):
    with pytest.raises(RepositoryError, match=r"s3://lifeboat-us-west-2/t-\w+/nope/x.json"):
        s3_repo.primary.get_bytes("nope/x.json")


def test_s3_repository_missing_connection_is_named(stack_env, monkeypatch):
    from lifeboat.errors import ConnectionConfigError

    monkeypatch.delenv("AIRFLOW_CONN_LIFEBOAT_S3_NOPE", raising=False)
    with pytest.raises(ConnectionConfigError, match="lifeboat_s3_nope"):
        list(open_storage("s3://lifeboat-us-west-2/x", "lifeboat_s3_nope").list(""))


def test_s3_one_read_loads_each_index_area_once_and_only_inside_the_block(s3_repo, tmp_path, monkeypatch):
    """The DR page reads a datastore's backups and then its interrupted ones: inside one_read() the
    backups index is loaded once for both (same answers as outside); outside, every call reads afresh."""
    from lifeboat import catalog_index

    _complete_b1_and_interrupted_b2(s3_repo, tmp_path)
    loads: list[str] = []
    real = catalog_index.RecordIndex.load

    def counted(self):
        loads.append(self.area)
        return real(self)

    monkeypatch.setattr(catalog_index.RecordIndex, "load", counted)
    with s3_repo.one_read():
        assert [m.id for m in Catalog(s3_repo).backups("pg")] == ["b1"]
        assert s3_repo.incomplete("pg") == ["b2"]
    assert loads == ["pg.backups"]
    assert s3_repo.incomplete("pg") == ["b2"] and loads == ["pg.backups", "pg.backups"]
