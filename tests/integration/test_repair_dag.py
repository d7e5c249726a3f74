"""lifeboat_repair_uploads in Airflow itself (dag.test against the real stack): with filer.sync paused,
keys written to the upload bucket are missing in the replica; the default run (dry run) copies nothing,
a run with the dry run off but the wrong confirmation fails and copies nothing, the confirmed run copies
the missing keys -- observed in the replica bucket, not taken from the task's return value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contract.adapters.objects import wait_replicated
from tests.fixtures import purge_prefix

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
WEST, EAST = "us-west-2", "us-east-1"


@pytest.fixture(scope="module")
def repair_dag(stack_env):
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True, env=os.environ.copy(),
                   stdout=subprocess.DEVNULL)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "lifeboat_repair.py"))
    assert bag.import_errors == {}
    dag = bag.get_dag("lifeboat_repair_uploads")
    for task in dag.tasks:  # dag.test() would wait out the retry delay
        task.retries = 0
    return dag


def test_repair_dag_dry_run_by_default_refuses_without_confirmation_copies_when_confirmed(
        repair_dag, upload_buckets, uploads_replication, unique):
    comp, state = uploads_replication
    west, east = upload_buckets[WEST], upload_buckets[EAST]
    prefix = f"repair-dag-{unique}/"
    comp.pause(state)
    try:
        missed = [f"{prefix}missed-{i}" for i in range(3)]
        for k in missed:
            west.put(k, f"{k}:{unique}".encode())
        assert all(east.head(k) is None for k in missed)

        assert repair_dag.test().state == "success"  # params default: dry run
        assert all(east.head(k) is None for k in missed), "the default (dry) run copied something"

        dr = repair_dag.test(run_conf={"dry_run": False, "confirm": "yes please"})
        assert dr.state == "failed", "a real run without the typed confirmation must fail"
        assert all(east.head(k) is None for k in missed)

        dr = repair_dag.test(run_conf={"dry_run": False, "confirm": "repair uploads"})
        assert dr.state == "success"
        for k in missed:
            assert east.get(k) == f"{k}:{unique}".encode(), k
    finally:
        if comp.replication_status(state)["state"] != "running":
            comp.resume(state)
        wait_replicated(east, [o.key for o in west.list_page("", 1000, prefix=prefix)[0]])
        purge_prefix(upload_buckets, prefix)
