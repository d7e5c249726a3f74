"""Shared fixtures.

The integration tests run against real servers: the same devstack as `make stack-up`, in its own
state folder (`.stack-test/` by default, `LIFEBOAT_TEST_STACK_DIR` to move it) so the tests never
delete the demo's backups. It is started once per session and reused by later sessions.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def stack_env():
    from devstack import stack

    state = Path(os.environ.get("LIFEBOAT_TEST_STACK_DIR") or ROOT / ".stack-test")
    env = stack.up(state_dir=state)
    os.environ.update(env)
    workdir = state / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["LIFEBOAT_WORKDIR"] = str(workdir)
    os.environ["LIFEBOAT_INVENTORY"] = str(ROOT / "include" / "inventory.yaml")
    return env


@pytest.fixture(autouse=True)
def _discard_backups_broken_on_purpose(request):
    """Tests that corrupt a backup to prove verification catches it must not leave it in the shared
    test catalog (the weekly verification in the DAG test would rightly fail on it): after every
    integration test, backups created during it whose newest verification failed are deleted."""
    if request.node.get_closest_marker("integration") is None:
        yield
        return
    from lifeboat.records import utcnow

    started = utcnow()
    yield
    from lifeboat.catalog import Catalog
    from lifeboat.datastores import open_engine
    from lifeboat.inventory import load_inventory

    inv = load_inventory()
    for name in inv.datastores:
        try:
            eng = open_engine(name, inventory=inv)
            cat = Catalog(eng.ctx.repo)
            vmap = cat.verification_map(name)
            for m in reversed(cat.backups(name)):
                if m.finished_at >= started and vmap.get(m.id) is not None and not vmap[m.id].ok:
                    # The catalog entry only: the tests repair what they broke in native repositories,
                    # and pgBackRest refuses new incrementals once the newest full set is expired.
                    eng.ctx.repo.delete_backup(name, m.id)
        except Exception as exc:  # a datastore this test session does not run
            print(f"cleanup of {name} skipped: {exc}")


@pytest.fixture(scope="session")
def pg_dsn(stack_env) -> str:
    return stack_env["AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2"]


@pytest.fixture(scope="session")
def seeded(pg_dsn):
    import subprocess
    import sys

    subprocess.run([sys.executable, str(ROOT / "scripts" / "seed_community.py"), "--users", "500", "--posts", "2000",
                    "--comments", "5000"], check=True, env=os.environ.copy())
    return pg_dsn


@pytest.fixture
def pg(seeded):
    import psycopg

    with psycopg.connect(seeded, autocommit=True) as conn:
        yield conn


@pytest.fixture
def engine(seeded):
    from lifeboat.datastores import open_engine
    from lifeboat.inventory import load_inventory

    return open_engine("postgres", inventory=load_inventory(), run={"dag_id": "pytest", "run_id": "pytest"})


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def scratch_dir(stack_env):
    p = Path(stack_env["LIFEBOAT_STACK_DIR"]) / "work" / f"plain-{uuid.uuid4().hex[:6]}"
    yield p
    shutil.rmtree(p, ignore_errors=True)


# -- redis ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def redis_url(stack_env) -> str:
    # An inventory parsed before stack_env exported the stack's variables (DAG imports at collection
    # time) is cached with the production defaults (s3:// repositories): parse it again.
    from lifeboat import inventory

    inventory._CACHE.clear()
    return stack_env["AIRFLOW_CONN_LIFEBOAT_REDIS_US_WEST_2"]


@pytest.fixture
def rds(redis_url):
    """A client on the live test primary (db 0). The test stack's Redis belongs to the Redis tests."""
    import redis

    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def redis_engine(redis_url):
    from lifeboat.datastores import open_engine
    from lifeboat.inventory import load_inventory

    return open_engine("redis", inventory=load_inventory(), run={"dag_id": "pytest", "run_id": "pytest"})


# -- elasticsearch ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def es_url(stack_env) -> str:
    return stack_env["AIRFLOW_CONN_LIFEBOAT_ES_US_WEST_2"]


@pytest.fixture(scope="session")
def es(es_url):
    """A plain client on the test node (the test stack's node belongs to the Elasticsearch tests)."""
    from elasticsearch import Elasticsearch

    c = Elasticsearch(es_url, request_timeout=60)
    yield c
    c.close()


def es_seed(docs: dict[str, int] | None = None) -> None:
    """(Re)create the covered sample indices (community-posts 600 docs / 2 shards, community-users 200)
    with the devstack's deterministic documents, or the given {index: docs}."""
    from devstack.components.elasticsearch import seed_indices

    seed_indices(os.environ["AIRFLOW_CONN_LIFEBOAT_ES_US_WEST_2"], docs)


@pytest.fixture(scope="session")
def es_seeded(es):
    es_seed()
    return es


@pytest.fixture
def es_engine(es_seeded):
    from lifeboat.datastores import open_engine
    from lifeboat.inventory import load_inventory

    return open_engine("elasticsearch", inventory=load_inventory(), run={"dag_id": "pytest", "run_id": "pytest"})


@pytest.fixture
def es_engine_with(es_seeded):
    """Factory: the inventory's Elasticsearch engine with option overrides (and optionally another
    datastore name, i.e. its own catalog folder): es_engine_with(name="es_x", sample_docs=1000)."""
    from lifeboat.datastores.base import EngineContext
    from lifeboat.datastores.elasticsearch import ElasticsearchDatastore
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    def make(name: str | None = None, **options):
        inv = load_inventory()
        spec = inv.datastore("elasticsearch")
        merged = {**spec.options, **options}
        spec = spec.model_copy(update={"options": merged, "name": name or spec.name})
        ctx = EngineContext(inventory=inv, spec=spec, repo=Repository.from_inventory(inv),
                            run={"dag_id": "pytest", "run_id": "pytest"})
        return ElasticsearchDatastore(ctx)

    return make


# -- mongodb ----------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def mongo_uri(stack_env) -> str:
    return stack_env["AIRFLOW_CONN_LIFEBOAT_MONGO_US_WEST_2"]


@pytest.fixture
def mongo(mongo_uri):
    """A plain pymongo client on the test stack's FerretDB (tests use their own t_<unique> databases)."""
    import pymongo

    c = pymongo.MongoClient(mongo_uri, tz_aware=True)
    yield c
    c.close()


@pytest.fixture
def mongo_engine_with(stack_env):
    """Factory: the inventory's MongoDB engine with option overrides and, usually, its own datastore
    name (= its own catalog folder): mongo_engine_with(name="mongodb_x", databases=["t_x"])."""
    from lifeboat.datastores.base import EngineContext
    from lifeboat.datastores.mongodb import MongoDatastore
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    def make(name: str | None = None, schedules: dict[str, str] | None = None, **options):
        from lifeboat.inventory import BackupSchedule

        inv = load_inventory()
        spec = inv.datastore("mongodb")
        backups = {k: BackupSchedule(schedule=v) for k, v in schedules.items()} if schedules else spec.backups
        spec = spec.model_copy(update={"options": {**spec.options, **options}, "name": name or spec.name,
                                       "backups": backups})
        ctx = EngineContext(inventory=inv, spec=spec, repo=Repository.from_inventory(inv),
                            run={"dag_id": "pytest", "run_id": "pytest"})
        return MongoDatastore(ctx)

    return make


@pytest.fixture
def ferretdb_instance(stack_env, tmp_path):
    """Factory for throw-away FerretDB servers (own port and SQLite folder), stopped at teardown:
    ferretdb_instance(replset=None) -> mongodb:// URI without credentials."""
    import socket
    import subprocess

    from devstack.components import mongodb as comp
    from devstack.components._common import stop_process
    from lifeboat.net import free_port
    from lifeboat.waiting import wait_until

    procs = []

    def start(replset: str | None = None) -> str:
        port = free_port()
        d = tmp_path / f"ferretdb-{port}"
        (d / "data").mkdir(parents=True)
        argv = comp.ferretdb_argv(Path(stack_env["LIFEBOAT_FERRETDB_BIN"]), d / "data", port, state=d, replset=replset)
        with open(d / "log", "wb") as logf:  # the child keeps its own descriptor
            p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(p)

        def listening() -> bool:
            assert p.poll() is None, (d / "log").read_text()
            socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
            return True

        wait_until(f"FerretDB on :{port}", listening, 30, 0.1, retry_on=(OSError,))
        return f"mongodb://127.0.0.1:{port}/?directConnection=true"

    yield start
    for p in procs:
        stop_process(p)


# -- the platform's other services: registries, upload buckets, config repository, CDN --------------

REGIONS = ("us-west-2", "us-east-1")


def _conn(kind: str, region: str) -> str:
    return f"lifeboat_{kind}_{region.replace('-', '_')}"


@pytest.fixture(scope="session")
def registries(stack_env):
    """{region: RegistryClient} on the test stack's two registries (devstack/components/registry.py)."""
    from lifeboat.clients.registry import RegistryClient

    return {r: RegistryClient.from_connection(_conn("registry", r)) for r in REGIONS}


@pytest.fixture(scope="session")
def upload_buckets(stack_env):
    """{region: Bucket} for the platform's upload buckets on SeaweedFS (filer.sync us-west-2 -> us-east-1)."""
    from lifeboat.clients.s3 import Bucket

    return {r: Bucket.from_connection(_conn("uploads", r),
                                      stack_env[f"LIFEBOAT_UPLOADS_BUCKET_{r.upper().replace('-', '_')}"])
            for r in REGIONS}


@pytest.fixture
def uploads_replication(stack_env):
    """The devstack's replication controls (pause/resume/replication_status); whatever a test does,
    replication runs again afterwards (an injected fault is always reverted)."""
    from devstack.components import seaweedfs

    state = Path(stack_env["LIFEBOAT_STACK_DIR"])
    yield seaweedfs, state
    if seaweedfs.replication_status(state)["state"] != "running":
        seaweedfs.resume(state)


@pytest.fixture(scope="session")
def config_remotes(stack_env):
    """{region: GitRemote} of the configuration repository (devstack/components/config_repo.py)."""
    from lifeboat.clients.git import GitRemote

    return {r: GitRemote.from_connection(_conn("config", r)) for r in REGIONS}


# -- kubernetes -------------------------------------------------------------------------------------

K8S_REGIONS = ("us-west-2", "us-east-1")


@pytest.fixture(scope="session")
def kube(stack_env) -> dict:
    """{region: lifeboat.clients.kubernetes.KubernetesClient} on the test stack's two local clusters
    (through the provider's KubernetesHook and the stack's lifeboat_k8s_<region> connections)."""
    from lifeboat.clients.kubernetes import KubernetesClient

    missing = [r for r in K8S_REGIONS if f"AIRFLOW_CONN_LIFEBOAT_K8S_{r.upper().replace('-', '_')}" not in stack_env]
    assert not missing, f"the test stack has no kubernetes component (LIFEBOAT_STACK_COMPONENTS?): {missing}"
    return {r: KubernetesClient(f"lifeboat_k8s_{r.replace('-', '_')}", region=r) for r in K8S_REGIONS}


@pytest.fixture(scope="session")
def velero_env(kube, stack_env) -> dict:
    assert stack_env.get("LIFEBOAT_VELERO_BIN"), "the test stack has no velero component (LIFEBOAT_STACK_COMPONENTS?)"
    return stack_env


@pytest.fixture
def engine_with(stack_env):
    """Factory: the engine of an inventory datastore with option overrides, usually under another
    datastore name (its own catalog folder) and other objectives:
    engine_with("uploads", name="objects_t_x", objectives={"rpo": "5s"}, prefix="t-x/")."""
    from lifeboat import inventory as inventory_mod
    from lifeboat.datastores import engine_class
    from lifeboat.datastores.base import EngineContext
    from lifeboat.inventory import ObjectivesOverride, load_inventory
    from lifeboat.repository import Repository

    inventory_mod._CACHE.clear()  # parsed before the stack's variables were exported?

    def make(datastore: str, name: str | None = None, objectives: dict | None = None, **options):
        inv = load_inventory()
        spec = inv.datastore(datastore)
        update: dict = {"options": {**spec.options, **options}, "name": name or spec.name}
        if objectives:
            update["objectives"] = ObjectivesOverride(**objectives)
        spec = spec.model_copy(update=update)
        # objectives_for() and the monitor read the datastore from the inventory's datastores
        if objectives or spec.name != datastore:
            inv = inv.model_copy(update={"datastores": {**inv.datastores, spec.name: spec}})
        ctx = EngineContext(inventory=inv, spec=spec, repo=Repository.from_inventory(inv),
                            run={"dag_id": "pytest", "run_id": "pytest"})
        return engine_class(spec.engine)(ctx)

    return make


def forget_catalog(eng) -> None:
    """Delete a test engine's whole catalog folder (its own datastore name) in both regions."""
    for st in eng.ctx.repo.storages():
        st.delete_prefix(f"{eng.name}/")


def purge_prefix(buckets: dict, prefix: str, settle: float = 1.0) -> None:
    """Delete every version of every key under prefix in all these buckets (a test's keys must leave no
    history behind: the inventory datastore's version-set diff would report it). Run after replication has
    caught up; repeated once after `settle` seconds for deletes filer.sync was still carrying over."""
    import time

    for attempt in range(2):
        for bucket in buckets.values():
            while True:
                raw, _more, _next = bucket.list_versions_page("", 1000, prefix=prefix)
                if not raw:
                    break
                for v in raw:
                    bucket.delete(v.key, version_id=v.version_id)
        if attempt == 0:
            time.sleep(settle)
