"""The DAG families run in Airflow itself (dag.test against the real stack): backup -> asset event ->
verification -> restore test with a drill record that points back to its DAG run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def airflow_db(stack_env):
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True, env=os.environ.copy(),
                   stdout=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def dags(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    for dag in bag.dags.values():  # dag.test() waits out retry delays; a failure here should show at once
        for task in dag.tasks:
            task.retries = 0
    return bag


def test_airflow_dags_backup_verify_restore_test_end_to_end(dags, seeded):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    from lifeboat.catalog import Catalog
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    inv = load_inventory()
    names = [ds.name for ds in inv.enabled_datastores()]
    assert dags.get_dag("lifeboat_heartbeat").test().state == "success"  # RPO is measured from heartbeats
    for name in names:
        dr = dags.get_dag(f"lifeboat_backup_{name}").test(run_conf={"kind": "all"})
        assert dr.state == "success", f"lifeboat_backup_{name}: {dr.state}"

    repo = Repository.from_inventory(inv)
    cat = Catalog(repo)
    ours = [m for m in cat.backups("postgres") if m.run.get("dag_id") == "lifeboat_backup_postgres"]
    assert {m.kind for m in ours} >= {"full", "logical"}
    with create_session() as session:
        extras = [e.extra for e in session.query(AssetEvent).all()]
    assert any(x.get("backup_id") == ours[-1].id for x in extras), "backup task emitted no asset event"

    dr = dags.get_dag("lifeboat_verify_weekly").test()
    assert dr.state == "success"
    assert cat.last_verification("postgres", ours[-1].id).ok

    dr = dags.get_dag("lifeboat_restore_test_monthly").test()
    assert dr.state == "success"
    drills = [d for d in repo.drills() if d.run.get("run_id") == dr.run_id]
    assert {d.datastore for d in drills} == set(names)
    assert all(d.verdict == "pass" and d.rto_seconds and d.rpo_seconds is not None for d in drills)
    # mirrored to the standby region at the end of the run
    east = Repository.from_inventory(inv, inv.regions.standby)
    assert {d.id for d in drills} <= {d.id for d in east.drills()}


def test_airflow_dags_restore_test_fails_loudly_when_nothing_to_restore(dags, stack_env, tmp_path, monkeypatch):
    monkeypatch.setenv("LIFEBOAT_REPO_PRIMARY", f"file://{tmp_path}/west")
    monkeypatch.setenv("LIFEBOAT_REPO_STANDBY", f"file://{tmp_path}/east")
    from lifeboat import inventory

    dr = dags.get_dag("lifeboat_restore_test_monthly").test()  # the inventory follows the changed env
    assert dr.state == "failed"
    from lifeboat.repository import Repository

    drills = Repository.from_inventory(inventory.load_inventory()).drills()
    assert drills and all(d.verdict == "fail" for d in drills)
    assert any("no physical backup" in r or "no " in r for d in drills for r in d.reasons)


def test_airflow_dags_monitor_turns_findings_into_incidents_in_both_regions(dags, seeded):
    """lifeboat_monitor in Airflow: the mapped checks' XComs reach the incidents task, which stores one
    incident per finding in both regions' catalogs (datastores this stack does not run are findings too)."""
    from lifeboat.incidents.store import IncidentStore
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    run = dags.dags["lifeboat_monitor"].test()
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert states[("incidents", -1)] == "success", states
    repo = Repository.from_inventory(load_inventory())
    active = IncidentStore(repo).active()
    assert active, "no incident stored"
    ids = {i.id for i in active}
    mirror = {o.key.rsplit("/", 1)[-1][:-5] for o in repo.mirror_storage.list("incidents/active/")}
    assert ids <= mirror, "the standby region's catalog misses incidents"
    assert all(i.datastore in load_inventory().datastores for i in active)
