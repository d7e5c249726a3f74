"""Failover logic that needs no servers: the guard, the scope, the inventory's failover section, the
scaling decisions (an in-memory Apps API: what is read, what is patched, when a rollout counts as done;
the real scaling runs against the local clusters in tests/integration/test_kubernetes.py and
test_failover.py) and the Route 53 switch (moto's in-process Route 53)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "include" / "inventory.yaml"


@pytest.fixture(autouse=True)
def default_inventory(monkeypatch):
    from lifeboat import inventory

    monkeypatch.setenv("LIFEBOAT_INVENTORY", str(INVENTORY))
    inventory._CACHE.clear()
    yield
    inventory._CACHE.clear()


PARAMS = {"target_region": "us-east-1", "scope": ["region"], "dry_run": False, "reason": "region down",
          "confirm": "us-east-1"}


def test_failover_guard_refuses_a_real_run_without_or_with_a_wrong_confirmation():
    from lifeboat.errors import Refused
    from lifeboat.failover.jobs import operation

    for confirm, says in (("", "is missing"), ("us-west-2", "is 'us-west-2'"), ("US-EAST-1", "is 'US-EAST-1'")):
        with pytest.raises(Refused, match="confirm: a real failover") as e:
            operation("failover", {**PARAMS, "confirm": confirm})
        assert says in str(e.value) and "Nothing was changed" in str(e.value)
    op = operation("failover", PARAMS)
    assert (op.target, op.source, op.dry_run) == ("us-east-1", "us-west-2", False)


def test_failover_guard_dry_run_needs_no_confirmation_but_a_reason_and_known_names():
    from lifeboat.errors import Refused
    from lifeboat.failover.jobs import operation

    op = operation("failover", {**PARAMS, "dry_run": True, "confirm": ""})
    assert op.dry_run and op.datastores == ["postgres", "redis", "mongodb", "elasticsearch"]
    assert op.services == ["auth-service", "api-gateway", "frontend"] and op.traffic_in_scope
    with pytest.raises(Refused, match="reason: required"):
        operation("failover", {**PARAMS, "reason": " "})
    with pytest.raises(Refused, match="target_region 'eu-west-1': not an inventory region"):
        operation("failover", {**PARAMS, "target_region": "eu-west-1", "confirm": "eu-west-1"})
    with pytest.raises(Refused, match="scope: unknown 'postgress'"):
        operation("failover", {**PARAMS, "scope": ["postgress"]})
    with pytest.raises(Refused, match="dry_run: must be true or false"):
        operation("failover", {**PARAMS, "dry_run": "false"})


def test_failover_scope_picks_datastores_and_services_in_inventory_order():
    from lifeboat.failover.jobs import operation

    op = operation("failover", {**PARAMS, "scope": ["redis", "postgres"]})
    assert op.datastores == ["postgres", "redis"] and op.services == [] and not op.traffic_in_scope
    op = operation("failover", {**PARAMS, "scope": "api-gateway"})
    assert op.datastores == [] and op.services == ["api-gateway"] and op.traffic_in_scope
    assert op.manual() == []
    assert operation("failover", {**PARAMS, "scope": ["mongodb"]}).manual() == []


def test_failover_restore_based_engines_block_on_an_unreachable_standby(monkeypatch):
    """Elasticsearch and MongoDB fail over by restoring into the standby's own server: automated now,
    and a preflight against a server that does not answer is blocked, naming the connection."""
    from lifeboat.failover import open_failover
    from lifeboat.inventory import load_inventory

    # nothing listens on port 1: the standby servers do not answer whatever a test stack exported before
    monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_MONGO_US_EAST_1", "mongodb://127.0.0.1:1")
    monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_ES_US_EAST_1", "http://127.0.0.1:1")
    inv = load_inventory()
    for name in ("mongodb", "elasticsearch"):
        eng = open_failover(name, inventory=inv, target_region="us-east-1")
        assert eng.implemented
        p = eng.preflight("us-east-1").dump()
        assert p["implemented"] is True and p["action"] == "blocked", p
        assert f"lifeboat_{'mongo' if name == 'mongodb' else 'es'}_us_east_1" in p["blockers"][0]


@pytest.mark.parametrize(("edit", "message"), [
    (("order: [postgres, redis, mongodb, elasticsearch]", "order: [postgres, redis, mongo]"),
     "failover.order[2]: unknown datastore 'mongo'"),
    (("fence: read_only ", "fence: readonly "), "failover.datastores.postgres.fence: Input should be"),
    (("fence_pause: 24h", "fence_pause: 24h\n      pause: 1h"), "failover.datastores.redis.pause: unknown field"),
    (("          us-east-1: api.us-east-1.community.example.com\n", ""),
     "failover.traffic.records[0].targets: no value for region(s) us-east-1"),
])
def test_failover_inventory_errors_name_the_field(tmp_path, monkeypatch, edit, message):
    from lifeboat import inventory
    from lifeboat.errors import InventoryError
    from lifeboat.failover import check_inventory

    bad = tmp_path / "inventory.yaml"
    text = INVENTORY.read_text()
    assert edit[0] in text
    bad.write_text(text.replace(edit[0], edit[1]))
    monkeypatch.setenv("LIFEBOAT_INVENTORY", str(bad))
    inventory._CACHE.clear()
    with pytest.raises(InventoryError) as e:
        check_inventory(inventory.load_inventory())
    assert message in str(e.value) and str(bad) in str(e.value)


class InMemoryApps:
    """The three AppsV1Api calls Services makes, on a dict; a rollout completes `lag` status reads later."""

    def __init__(self, replicas: dict[tuple[str, str], int], lag: int = 0):
        from types import SimpleNamespace as NS

        self.ns = NS
        self.replicas = dict(replicas)
        self.patches: list[tuple[str, str, dict]] = []
        self.lag, self.pending, self.generation = lag, 0, 1

    def _get(self, name, namespace):
        if (namespace, name) not in self.replicas:
            err = Exception(f'deployments.apps "{name}" not found')
            err.status, err.reason = 404, "Not Found"
            raise err
        return self.replicas[(namespace, name)]

    def read_namespaced_deployment_scale(self, name, namespace):
        return self.ns(spec=self.ns(replicas=self._get(name, namespace)))

    def read_namespaced_deployment_status(self, name, namespace):
        n = self._get(name, namespace)
        observed = self.generation
        if self.pending > 0:  # the controller has not caught up yet: old generation, old pods
            self.pending -= 1
            observed, n = self.generation - 1, 0
        return self.ns(metadata=self.ns(generation=self.generation),
                       status=self.ns(ready_replicas=n, updated_replicas=n, available_replicas=n,
                                      observed_generation=observed))

    def patch_namespaced_deployment_scale(self, name, namespace, body):
        self._get(name, namespace)
        self.patches.append((namespace, name, body))
        self.replicas[(namespace, name)] = body["spec"]["replicas"]
        self.generation += 1
        self.pending = self.lag


def test_failover_services_patch_only_when_needed_and_wait_for_the_rollout(monkeypatch):
    from lifeboat.failover import services
    from lifeboat.failover.services import KubernetesError, Services
    from lifeboat.inventory import load_inventory

    monkeypatch.setattr(services, "READY_POLL_S", 0.01)
    svc = next(s for s in load_inventory().failover.services if s.name == "api-gateway")
    apps = InMemoryApps({("community", "api-gateway"): 0}, lag=2)
    api = Services([svc], apps_client=lambda conn: apps)
    assert api.scale(svc, "us-east-1", 3, dry_run=True)["detail"] == "would scale 0 -> 3"
    assert apps.patches == []
    res = api.scale(svc, "us-east-1", 3)
    assert res["changed"] and apps.patches == [("community", "api-gateway", {"spec": {"replicas": 3}})]
    now = api.replicas(svc, "us-east-1")
    assert now["desired"] == 3 and not Services.rolled_out(now, 3)  # the controller has not seen it yet
    ready = api.wait_ready(svc, "us-east-1", 3)
    assert Services.rolled_out(ready, 3) and ready["ready"] == 3 and apps.pending == 0
    assert api.scale(svc, "us-east-1", 3) == {**res, "changed": False, "from": 3, "detail": "already 3 replicas"}
    assert len(apps.patches) == 1
    missing = InMemoryApps({})
    with pytest.raises(KubernetesError,
                       match=re.escape("community/api-gateway in us-east-1 (connection 'lifeboat_k8s_us_east_1")):
        Services([svc], apps_client=lambda conn: missing).scale(svc, "us-east-1", 3)


def test_failover_services_rollout_needs_the_new_generation_and_every_pod_ready():
    from lifeboat.failover.services import Services

    done = {"desired": 3, "ready": 3, "updated": 3, "available": 3, "rolled_out": True}
    assert Services.rolled_out(done, 3)
    assert not Services.rolled_out({**done, "rolled_out": False}, 3)  # status of the previous spec
    assert not Services.rolled_out({**done, "updated": 2}, 3)  # an old pod still counted as ready
    assert not Services.rolled_out({**done, "available": 2}, 3)
    assert not Services.rolled_out({**done, "desired": 2, "ready": 2, "updated": 2, "available": 2}, 3)


def test_failover_traffic_upserts_only_records_that_point_elsewhere():
    import boto3
    from moto import mock_aws

    from lifeboat.failover.traffic import Traffic, TrafficError
    from lifeboat.inventory import load_inventory

    spec = load_inventory().failover.traffic
    with mock_aws():
        client = boto3.client("route53", region_name="us-east-1")
        with pytest.raises(TrafficError, match=re.escape("no public hosted zone 'community.example.com'")):
            Traffic(spec, client=client).current()
        zid = client.create_hosted_zone(Name="community.example.com", CallerReference="t")["HostedZone"]["Id"]
        client.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [{"Action": "CREATE",
            "ResourceRecordSet": {"Name": "api.community.example.com", "Type": "CNAME", "TTL": 60,
                                  "ResourceRecords": [{"Value": "api.us-west-2.community.example.com"}]}}]})
        t = Traffic(spec, client=client, insync_timeout=0)
        assert t.preflight("us-east-1")["records"]["api.community.example.com"]["current_region"] == "us-west-2"
        dry = t.switch("us-east-1", dry_run=True)
        assert dry[0]["changed"] is False and t.current()["api.community.example.com"].startswith("api.us-west-2")
        done = t.switch("us-east-1")
        assert done[0]["changed"] and done[0]["from"] == "api.us-west-2.community.example.com"
        assert t.current() == {"api.community.example.com": "api.us-east-1.community.example.com"}
        again = t.switch("us-east-1")
        assert again[0]["changed"] is False


def test_failover_outcome_follows_what_the_tasks_returned():
    from lifeboat.failover.jobs import outcome

    real = {"guard": {"dry_run": False, "target_region": "us-east-1"}, "plan": {"steps": []}}
    assert outcome("failover", {**PARAMS, "confirm": ""}, {"guard": None})[0] == "refused"
    assert "the confirmation is missing" in outcome("failover", {**PARAMS, "confirm": ""}, {"guard": None})[1]
    assert outcome("failover", PARAMS, {**real, "plan": None})[0] == "blocked"
    assert outcome("failover", PARAMS, {**real, "approval": None})[0] == "not_approved"
    rejected = outcome("failover", PARAMS, {**real, "approval": {"chosen_options": ["Reject"],
                                                                 "responded_by_user": {"name": "bob"}}})
    assert rejected == ("rejected", "rejected by bob: nothing was changed")
    approved = {**real, "approval": {"chosen_options": ["Approve"]}}
    assert outcome("failover", PARAMS, approved)[0] == "failed"
    assert outcome("failover", PARAMS, {**approved, "verify": {"datastores": {}}})[0] == "completed"
    dry = {"guard": {"dry_run": True}, "plan": {}}
    assert outcome("failover", PARAMS, dry)[0] == "dry_run_failed"
    assert outcome("failover", PARAMS, {**dry, "verify": {}})[0] == "dry_run"
    rebuilt = {**approved, "guard": {"dry_run": False, "switch_back": False}, "caught_up": {"caught_up": {}}}
    assert outcome("failback", PARAMS, rebuilt)[0] == "rebuilt"


def test_failback_has_the_same_guards():
    from lifeboat.errors import Refused
    from lifeboat.failover.jobs import operation

    params = {"target_region": "us-west-2", "dry_run": False, "reason": "region back", "switch_back": True}
    with pytest.raises(Refused, match=re.escape("confirm: a real failback (dry_run=false) needs the target region "
                                                "typed exactly: 'us-west-2'; the confirmation is missing")):
        operation("failback", params)
    op = operation("failback", {**params, "confirm": "us-west-2"})
    assert (op.target, op.source, op.switch_back) == ("us-west-2", "us-east-1", True)
