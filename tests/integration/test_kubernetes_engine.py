"""The kubernetes engine (plugins/lifeboat/datastores/kubernetes/) against the test stack's two real
clusters and their Velero servers: a backup of `community` taken by the backup DAG (Airflow's dag.test)
restores into a drill namespace of the standby cluster with every object equal to its source; a
corrupted tarball in the bucket fails verification naming the object; a deleted Deployment comes back
into the live namespace through the guarded CLI (dry run first); a scheduled run is refused.

Only the kubernetes and velero components are needed (besides the core PostgreSQL + moto):
    LIFEBOAT_STACK_COMPONENTS=kubernetes,velero pytest tests/integration/test_kubernetes_engine.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
WEST, EAST = "us-west-2", "us-east-1"
RUN = {"dag_id": "pytest", "run_id": "manual__pytest-kubernetes"}


@pytest.fixture(scope="module")
def k8s_engine(kube, velero_env):
    from lifeboat import inventory
    from lifeboat.datastores import open_engine

    inventory._CACHE.clear()  # parsed before the stack's env was exported: parse again
    return open_engine("kubernetes", inventory=inventory.load_inventory(), run=RUN)


@pytest.fixture(scope="module")
def dag_backup(k8s_engine, kube):
    """lifeboat_backup_kubernetes run in Airflow (dag.test), after a heartbeat; its manifest and the
    source objects as they were at the backup."""
    from airflow.dag_processing.dagbag import DagBag

    from lifeboat.catalog import Catalog

    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                   env=os.environ.copy(), stdout=subprocess.DEVNULL)
    bag = DagBag(dag_folder=str(ROOT / "dags" / "lifeboat_backup.py"))
    assert bag.import_errors == {}
    dag = bag.get_dag("lifeboat_backup_kubernetes")
    for task in dag.tasks:
        task.retries = 0
    hb = k8s_engine.heartbeat()
    source = kube[WEST].list_namespace("community")
    t0 = time.monotonic()
    dr = dag.test(run_conf={"kind": "all"})
    took = time.monotonic() - t0
    assert dr.state == "success", f"lifeboat_backup_kubernetes: {dr.state}"
    ours = [m for m in Catalog(k8s_engine.ctx.repo).backups("kubernetes")
            if m.run.get("run_id") == dr.run_id]
    assert len(ours) == 1, [m.id for m in ours]
    print(f"\nlifeboat_backup_kubernetes (dag.test): {ours[0].id} in {took:.1f}s")
    return {"manifest": ours[0], "heartbeat": hb, "source": source}


def cli_json(out: str) -> dict:
    """The CLI's JSON output (log lines Airflow's logging may print to stdout before it skipped)."""
    start = re.search(r"(?m)^\{$", out)
    assert start, out
    return json.loads(out[start.start():])


def dag_run_output(dag_id: str, conf: dict) -> dict:
    """Run a DAG of dags/ with dag.test (the DB migrated by dag_backup) and return its one task's XCom."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{dag_id}.py"))
    assert bag.import_errors == {}
    dr = bag.get_dag(dag_id).test(run_conf=conf)
    assert dr.state == "success", f"{dag_id}: {dr.state}"
    with create_session() as session:
        (row,) = session.scalars(XComModel.get_many(run_id=dr.run_id, dag_ids=dag_id, key="return_value")).all()
        return XComModel.deserialize_value(row)


def test_kubernetes_engine_backup_dag_records_velero_facts_and_verifies(k8s_engine, dag_backup, velero_env):
    import boto3

    m = dag_backup["manifest"]
    n = m.native
    assert n["phase"] == "Completed" and n["errors"] == 0 and n["warnings"] == 0
    assert n["items_backed_up"] == n["total_items"] == sum(m.counts.values())
    assert m.counts["apps/v1/Deployment"] == 3 and m.counts["autoscaling/v2/HorizontalPodAutoscaler"] == 1
    assert {"v1/Service", "v1/Secret", "networking.k8s.io/v1/NetworkPolicy", "v1/ConfigMap"} <= set(m.counts)
    assert "community/api-gateway" in n["resources"]["apps/v1/Deployment"]
    # the tarball's checksum is the one of the object in the region's Velero bucket
    s3 = boto3.client("s3", endpoint_url=velero_env["LIFEBOAT_S3_ENDPOINT"], region_name=WEST,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    import hashlib

    body = s3.get_object(Bucket=n["bucket"], Key=n["tarball"]["key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == n["tarball"]["sha256"]
    # the Lifeboat copy: the whole Velero folder, the manifest committed after it
    assert f"velero/backups/{n['velero_backup']}/{n['velero_backup']}.tar.gz" in [a.path for a in m.artifacts]
    t0 = time.monotonic()
    (v,) = k8s_engine.verify([m])
    took = time.monotonic() - t0
    assert v.ok, v.problems
    names = {c.name for c in v.checks}
    assert {"artifact checksums", "velero backup", "tarball in the bucket", "velero resource list",
            "visible in the other region"} <= names, names
    print(f"\nverification of {m.id}: {len(v.checks)} checks in {took:.1f}s")


def test_kubernetes_engine_restore_test_into_a_drill_namespace_of_the_standby(k8s_engine, dag_backup, kube):
    from lifeboat import jobs
    from lifeboat.clients.kubernetes_specs import compare_specs, object_key

    m = dag_backup["manifest"]
    out = jobs.restore_drill("kubernetes", m.id, run=RUN)
    assert out.error is None, out.error
    (d,) = [x for x in k8s_engine.ctx.repo.drills() if x.id == out.summary["drill_id"]]
    assert d.verdict == "pass", d.reasons
    steps = [s.name for s in d.steps]
    assert all(s.ok for s in d.steps), [(s.name, s.detail) for s in d.steps if not s.ok]
    assert (d.rto_started_at_step or "").startswith("velero restore into drill-community-"), steps
    assert d.rto_stopped_after_step == "restored objects equal the backup", steps
    assert steps.index("deployments ready") < steps.index("restored objects equal the backup")
    assert steps[-1] == "delete drill namespaces", steps
    ready = next(s for s in d.steps if s.name == "deployments ready").detail
    assert "api-gateway 3/3" in ready and "frontend 2/2" in ready and "auth-service 2/2" in ready, ready
    compared = next(s for s in d.steps if s.name == "restored objects equal the backup").detail
    assert compared.startswith(f"{sum(m.counts.values())} objects equal"), compared
    assert 0 < d.rto_seconds < d.objective_rto_seconds
    assert d.newest_heartbeat_at == dag_backup["heartbeat"], "the heartbeat ConfigMap written before the backup"
    assert d.rpo_seconds == pytest.approx((d.started_at - dag_backup["heartbeat"]).total_seconds())
    # the drill ran in the standby cluster and left nothing behind; the live namespaces are untouched
    drills = [ns["metadata"]["name"] for ns in (kube[EAST].get("/api/v1/namespaces") or {})["items"]]
    assert not [n for n in drills if n.startswith("drill-community-kubernetes-restore-test")], drills
    assert kube[EAST].deployments("community")["api-gateway"].replicas == 0
    drift = compare_specs({object_key(o): o for o in dag_backup["source"]}, kube[WEST].list_namespace("community"))
    assert [x for x in drift if "lifeboat-heartbeat" not in x.object] == [], [x.describe() for x in drift]
    print(f"\nrestore test of {m.id}: RTO {d.rto_seconds:.1f}s, RPO {d.rpo_seconds:.1f}s; steps {steps}")


def test_kubernetes_engine_corrupted_tarball_in_the_bucket_fails_verification_naming_it(k8s_engine, dag_backup,
                                                                                        velero_env):
    import boto3

    m = dag_backup["manifest"]
    tar = m.native["tarball"]
    s3 = boto3.client("s3", endpoint_url=velero_env["LIFEBOAT_S3_ENDPOINT"], region_name=WEST,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    good = s3.get_object(Bucket=m.native["bucket"], Key=tar["key"])["Body"].read()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    s3.put_object(Bucket=m.native["bucket"], Key=tar["key"], Body=bytes(bad))
    try:
        (v,) = k8s_engine.verify([m])
    finally:
        s3.put_object(Bucket=m.native["bucket"], Key=tar["key"], Body=good)
    assert not v.ok
    failed = [c for c in v.checks if not c.ok]
    assert [c.name for c in failed] == ["tarball in the bucket"], [(c.name, c.detail) for c in failed]
    assert tar["url"] in failed[0].detail and "sha256" in failed[0].detail, failed[0].detail
    (repaired,) = k8s_engine.verify([m])
    assert repaired.ok, repaired.problems


def test_kubernetes_engine_deleted_deployment_comes_back_through_the_guarded_cli(k8s_engine, dag_backup, kube,
                                                                                capsys):
    from lifeboat.__main__ import main
    from lifeboat.catalog import Catalog
    from lifeboat.datastores.kubernetes.recover import restore_resources
    from lifeboat.errors import Refused

    (v,) = k8s_engine.verify([dag_backup["manifest"]])
    assert v.ok, v.problems
    newest = Catalog(k8s_engine.ctx.repo).latest("kubernetes", verified=True)
    west = kube[WEST]
    path = "/apis/apps/v1/namespaces/community/deployments/frontend"
    before = west.get(path)
    assert before is not None
    west.apps.delete_namespaced_deployment("frontend", "community")
    deadline = time.monotonic() + 60
    while west.get(path) is not None:
        assert time.monotonic() < deadline, "frontend was not deleted"
        time.sleep(0.2)
    try:
        # a scheduled run never restores into a live namespace
        with pytest.raises(Refused, match="never by a schedule"):
            restore_resources("kubernetes", namespace="community", resources=["deployments/frontend"],
                              confirm="community", run={"dag_id": "x", "run_id": "scheduled__2026-12-02"})
        argv = ["restore-resources", "kubernetes", "--namespace", "community", "--resource", "deployments/frontend",
                "--resource", "deployments/api-gateway"]
        capsys.readouterr()
        assert main(argv) == 0
        plan = cli_json(capsys.readouterr().out)
        assert plan["dry_run"] is True and plan["missing"] == ["Deployment/frontend"]
        assert plan["present"] == ["Deployment/api-gateway"] and plan["restored"] == []
        assert plan["backup_id"] == newest.id
        assert west.get(path) is None, "a dry run changes nothing"
        assert main([*argv, "--confirm", "wrong"]) == 0  # a wrong confirmation is a dry run too
        assert cli_json(capsys.readouterr().out)["dry_run"] is True and west.get(path) is None
        # the manual DAG, same job: without confirm a dry run, its plan in the task's XCom
        via_dag = dag_run_output("lifeboat_restore_resources", {"namespace": "community",
                                                                "resources": ["deployments/frontend"]})
        assert via_dag["dry_run"] is True and via_dag["missing"] == ["Deployment/frontend"], via_dag
        assert via_dag["backup_id"] == newest.id and west.get(path) is None
        t0 = time.monotonic()
        assert main([*argv, "--confirm", "community"]) == 0
        took = time.monotonic() - t0
        done = cli_json(capsys.readouterr().out)
        assert done["dry_run"] is False and done["restored"] == ["Deployment/frontend"], done
        assert done["ready"]["frontend"]["ready"] == 2, done
        back = west.get(path)
        assert back is not None and back["metadata"]["uid"] != before["metadata"]["uid"]
        assert back["spec"]["template"]["spec"] == before["spec"]["template"]["spec"]
        assert west.deployments("community")["frontend"].ready == 2
        print(f"\ndeleted Deployment community/frontend restored and Ready in {took:.1f}s ({done['velero_restore']})")
    finally:
        if west.get(path) is None:  # never leave the live namespace broken for the next tests
            restore_resources("kubernetes", namespace="community", resources=["deployments/frontend"],
                              confirm="community", run=RUN)
