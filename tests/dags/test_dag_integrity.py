"""Every DAG imports cleanly, fast, offline, and carries what the on-call engineer relies on."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag_cls():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag


@pytest.fixture
def no_network(monkeypatch):
    def refuse(self, address, *a, **k):
        raise OSError(f"network access during DAG parsing: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_offline(path, dagbag_cls, no_network):
    """Parsing touches no network (socket.connect refused). Parse *time* is measured in
    bench/dag_parse.py, not asserted here: speed targets live in bench/."""
    bag = dagbag_cls(dag_folder=str(path))
    assert bag.import_errors == {}, bag.import_errors
    assert bag.dags, f"{path.name} defines no DAG"


def _all_dags(dagbag_cls):
    bag = dagbag_cls(dag_folder=str(DAGS))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags


def test_dag_every_dag_has_tags_owner_retries_doc(dagbag_cls):
    dags = _all_dags(dagbag_cls)
    expected = {"lifeboat_backup_postgres", "lifeboat_verify_weekly", "lifeboat_verify_new_backups",
                "lifeboat_restore_test_monthly", "lifeboat_heartbeat"}
    assert expected <= set(dags), set(dags)
    for dag_id, dag in dags.items():
        assert dag.tags and "lifeboat" in dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 100, dag_id
        assert dag.catchup is False, dag_id
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag_id}.{t.task_id} has no owner"
            assert t.retries is not None, f"{dag_id}.{t.task_id}"
        # (a live restore started by a person is not retried behind their back)
        assert any(t.retries >= 1 for t in dag.tasks) or dag_id in ("lifeboat_restore_test_monthly",
                                                                      "lifeboat_restore_resources"), dag_id


def test_dag_backup_graph_plan_backup_mirror_retention(dagbag_cls):
    dag = _all_dags(dagbag_cls)["lifeboat_backup_postgres"]
    assert dag.get_task("plan").downstream_task_ids == {"backup"}
    assert dag.get_task("backup").downstream_task_ids == {"mirror", "all_backups_complete"}
    assert dag.get_task("mirror").downstream_task_ids == {"retention"}
    assert dag.get_task("retention").downstream_task_ids == {"all_backups_complete"}
    assert dag.get_task("backup").outlets, "backup tasks must emit an asset event"


def test_dag_broken_inventory_fails_parsing_with_file_and_field(dagbag_cls, tmp_path, monkeypatch):
    src = (DAGS.parent / "include" / "inventory.yaml").read_text()
    bad = tmp_path / "inventory.yaml"
    bad.write_text(src.replace('full: {schedule: "0 3 * * 0"}', 'full: {schedule: "every sunday"}'))
    monkeypatch.setenv("LIFEBOAT_INVENTORY", str(bad))
    bag = dagbag_cls(dag_folder=str(DAGS / "lifeboat_backup.py"))
    (err,) = bag.import_errors.values()
    assert f"{bad}: datastores.postgres.backups.full.schedule: not a valid cron expression: 'every sunday'" in err


def test_dag_a_failed_task_cannot_end_in_a_successful_run(dagbag_cls):
    """Housekeeping leaves run `all_done`; every DAG with one also has an all_success leaf (a gate)."""
    for dag_id, dag in _all_dags(dagbag_cls).items():
        leaves = [t for t in dag.tasks if not t.downstream_task_ids]
        if any(t.trigger_rule == "all_done" for t in leaves):
            assert any(t.trigger_rule == "all_success" for t in leaves), dag_id


def test_dag_chaos_families_on_the_plans_calendar_guarded_and_sequential(dagbag_cls):
    from lifeboat.inventory import load_inventory

    dags = _all_dags(dagbag_cls)
    chaos = load_inventory().chaos
    for family in ("service", "database", "network"):
        dag = dags[f"lifeboat_chaos_{family}"]
        assert dag.timetable.summary == chaos.schedules[family], family
        assert dag.get_task("guard").downstream_task_ids == {"approval"}
        chain = [e.name.replace("-", "_") for e in chaos.family(family)]
        assert dag.get_task("approval").downstream_task_ids == {chain[0]}
        for a, b in itertools.pairwise(chain):  # one experiment at a time
            assert dag.get_task(a).downstream_task_ids == {b, "done"}
        assert set(dag.params) >= {"environment", "experiments", "confirm", "reason"}
        assert dag.params["environment"] == "drill"
    assert dags["lifeboat_chaos_cleanup"].get_task("cleanup")


def test_dag_repair_is_manual_and_a_dry_run_unless_told_otherwise(dagbag_cls):
    dag = _all_dags(dagbag_cls)["lifeboat_repair_uploads"]
    assert dag.schedule is None or str(dag.timetable.summary).lower() in ("none", "never")
    assert dag.params["dry_run"] is True and dag.params["confirm"] == ""
    op = dag.get_task("repair")
    # the flags arrive rendered as strings; only an explicit false turns the dry run off
    for rendered, dry in (("True", True), ("", True), ("garbage", True), ("False", False), (False, False)):
        op.dry = rendered
        assert op.job_kwargs()["dry_run"] is dry, rendered
