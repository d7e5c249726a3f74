"""The pure parts of the dns, packet and region fault kinds: hosts-file edits, iptables rule specs, target
validation naming the field, the stand-in's resolver, and the failover drill's step order."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lifeboat.chaos.faults import FAULTS
from lifeboat.chaos.faults.dns import DnsFailure, parse_hosts, without
from lifeboat.chaos.faults.packet import rules
from lifeboat.chaos.settings import ChaosDatastore, ChaosEnvironment, ChaosExperiment

HOSTS = "# resolver\n127.0.0.1 postgres.platform.internal pg\n127.0.0.1 redis.platform.internal\n"


def test_hosts_file_parsing_and_removal():
    assert parse_hosts(HOSTS) == {"postgres.platform.internal": "127.0.0.1", "pg": "127.0.0.1",
                                  "redis.platform.internal": "127.0.0.1"}
    text, removed = without(HOSTS, "POSTGRES.platform.internal")
    assert removed == ["127.0.0.1 postgres.platform.internal pg"]
    assert "postgres" not in parse_hosts(text) and "redis.platform.internal" in parse_hosts(text)
    assert without(HOSTS, "absent.internal") == (HOSTS, [])


def test_dns_fault_injects_and_reverts_idempotently(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    spec = ChaosExperiment(name="pg-dns", kind="dns", family="network", target={"datastore": "postgres"})
    env = ChaosEnvironment(resolver=str(hosts), datastores={"postgres": ChaosDatastore(
        connection="c", hostname="postgres.platform.internal")})
    fault = DnsFailure(spec, env, None, "r1")
    fault.info = fault.revert_info()
    assert "1 line(s) removed" in fault.inject()
    assert "postgres.platform.internal" not in parse_hosts(hosts.read_text())
    assert "restored" in DnsFailure.revert(fault.info)
    assert parse_hosts(hosts.read_text()) == parse_hosts(HOSTS)
    assert "already" in DnsFailure.revert(fault.info)
    assert hosts.read_text().count("postgres.platform.internal") == 1  # not added twice


def test_dns_fault_refuses_a_name_the_resolver_does_not_have(tmp_path):
    from lifeboat.errors import Refused

    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    spec = ChaosExperiment(name="pg-dns", kind="dns", family="network", target={"datastore": "postgres"})
    env = ChaosEnvironment(resolver=str(hosts), datastores={"postgres": ChaosDatastore(connection="c",
                                                                                       hostname="db.elsewhere")})
    with pytest.raises(Refused, match=r"datastores\.postgres\.hostname: 'db.elsewhere' is not in the resolver"):
        DnsFailure(spec, env, None, "r1")
    with pytest.raises(Refused, match=r"resolver: cannot read"):
        DnsFailure(spec, env.model_copy(update={"resolver": str(tmp_path / "missing")}), None, "r1")


def test_platform_stand_in_resolves_names_through_its_hosts_file(tmp_path):
    from devstack.platform_api_server import resolve

    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    assert resolve("postgres.platform.internal:5432", str(hosts)) == "127.0.0.1:5432"
    assert resolve("127.0.0.1:6379", str(hosts)) == "127.0.0.1:6379"
    assert resolve("name:1", None) == "name:1"  # no resolver file: left to the drivers
    hosts.write_text(without(HOSTS, "postgres.platform.internal")[0])
    with pytest.raises(OSError, match="name not found"):
        resolve("postgres.platform.internal:5432", str(hosts))


def test_packet_rules_drop_both_directions_of_one_loopback_port():
    loss = rules(4567, "lifeboat-chaos:x", 0.25, False)
    assert [r[r.index("--dport") if "--dport" in r else r.index("--sport")] for r in loss] == ["--dport", "--sport"]
    assert all(r[:3] == ["INPUT", "-i", "lo"] and "4567" in r and r[-2:] == ["-j", "DROP"] for r in loss)
    assert all(r[r.index("--probability"):r.index("--probability") + 2] == ["--probability", "0.2500"] for r in loss)
    assert all("statistic" not in r for r in rules(4567, "c", 1.0, True))


@pytest.mark.parametrize(("kind", "target", "message"), [
    ("packet", {"datastore": "redis"}, "target.loss / target.partition: give exactly one"),
    ("packet", {"datastore": "redis", "loss": 0.5, "partition": True}, "give exactly one"),
    ("packet", {"datastore": "redis", "loss": 1.5}, "target.loss: 1.5 is not a probability"),
    ("packet", {"datastore": "redis", "loss": "half"}, "target.loss: 'half' is not a probability"),
    ("packet", {"datastore": "redis", "partition": "yes"}, "target.partition: must be true or false"),
    ("packet", {"loss": 0.5}, "target.datastore: required for a packet experiment"),
    ("dns", {"datastore": "postgres", "mode": "servfail"}, "target.mode: 'servfail' is not nxdomain"),
    ("dns", {}, "target.datastore: required for a dns experiment"),
    ("region", {"scope": 5}, "target.scope: 5 must be 'region' or a list"),
])
def test_new_fault_targets_name_the_bad_field(kind, target, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(".", r"\.")):
        ChaosExperiment(name="x", kind=kind, family="network", target=target)


def test_every_kind_has_a_fault_class():
    from lifeboat.chaos.settings import KINDS

    assert set(FAULTS) == set(KINDS)


def test_region_drill_runs_the_failover_graph_in_order_and_records_even_when_a_step_fails(monkeypatch):
    from lifeboat.chaos.faults import region
    from lifeboat.failover import jobs

    calls: list[str] = []

    def step(name, fail=False):
        def fn(kind, params, run, *args, **kw):
            calls.append(name)
            if fail:
                raise RuntimeError(f"{name} broke")
            return {"target_region": params["target_region"], "datastores": ["postgres"]}
        return fn

    for name in ("guard", "preflight", "plan", *region.FAILOVER_STEPS, *region.FAILBACK_STEPS):
        monkeypatch.setattr(jobs, name, step(name))
    recorded = {}
    monkeypatch.setattr(jobs, "record", lambda kind, params, run, xcoms: recorded.update(xcoms) or
                        {"kind": kind, "outcome": "completed"})
    out = region.run_drill("failover", {"target_region": "us-east-1"}, {}, {"chosen_options": ["Approve"]})
    assert calls == ["guard", "preflight", "plan", "fence", "promote", "scale_services", "switch_traffic", "verify"]
    assert out["outcome"] == "completed" and recorded["approval"] == {"chosen_options": ["Approve"]}
    calls.clear()
    recorded.clear()
    monkeypatch.setattr(jobs, "promote", step("promote", fail=True))
    with pytest.raises(RuntimeError, match="promote broke"):
        region.run_drill("failover", {"target_region": "us-east-1"}, {}, {})
    assert calls == ["guard", "preflight", "plan", "fence", "promote"]  # nothing after the failed step ...
    assert "fence" in recorded and "promote" not in recorded  # ... but the drill was still recorded
    calls.clear()
    monkeypatch.setattr(jobs, "promote", step("promote"))
    region.run_drill("failback", {"target_region": "us-west-2", "switch_back": True}, {}, {})
    assert calls[3:] == list(region.FAILBACK_STEPS)
