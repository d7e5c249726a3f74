"""DNS failure and packet loss / partition on the platform API's path, against the real local stack: the
stand-in's resolver (the hosts file devstack/components/toxiproxy.py writes) loses a datastore's name;
iptables (as root) drops a share of / all the packets on the toxiproxy port the stand-in uses. Each test
asserts measured detection and recovery, that the datastore itself answered throughout, and that nothing is
left injected (resolver restored, no tagged iptables rule).

Stack: LIFEBOAT_STACK_COMPONENTS=redis,platform_api,toxiproxy (the core PostgreSQL + moto always run).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration import test_chaos
from tests.integration.test_chaos import assert_steady_and_clean, probe, run, stack_with

pytestmark = pytest.mark.integration
inv, store = test_chaos.inv, test_chaos.store  # test_chaos.py's fixtures, over this module's chaos_env
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="session")
def chaos_env(stack_env):
    return stack_with(stack_env, "LIFEBOAT_TOXIPROXY_URL", "LIFEBOAT_CHAOS_API_URL", "LIFEBOAT_CHAOS_RESOLVER",
                      "AIRFLOW_CONN_LIFEBOAT_REDIS_US_WEST_2")


def ready(env) -> tuple[int, dict]:
    try:
        with _HTTP.open(env["LIFEBOAT_CHAOS_API_URL"] + "/ready", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_chaos_dns_failure_of_the_platforms_resolver(inv, store, chaos_env, unique):
    from lifeboat.chaos.faults.dns import DnsFailure, parse_hosts

    hosts = Path(inv.chaos.environments["drill"].resolver)
    name = inv.chaos.environments["drill"].datastores["postgres"].hostname
    before = hosts.read_text()
    assert name in parse_hosts(before)
    rec = run(inv, store, "postgres-dns", unique, duration=timedelta(seconds=3))
    assert rec.verdict == "pass", rec.reasons
    assert 0 <= rec.detect_seconds <= 5
    assert 3 <= rec.recover_seconds <= 30
    api = probe(rec, "api-ready")
    assert api.passes < api.polls  # the platform could not resolve its database ...
    direct = probe(rec, "write-read-postgres")
    assert direct.passes == direct.polls  # ... while the database itself answered throughout
    assert rec.data_loss[0].lost == 0
    assert parse_hosts(hosts.read_text()) == parse_hosts(before)  # the resolver is as it was
    assert_steady_and_clean(rec, store, chaos_env)

    # what the platform saw while the name was gone: the resolver's own error, not a timeout
    fault = DnsFailure(inv.chaos.experiment("postgres-dns"), inv.chaos.environments["drill"], inv, f"seen-{unique}")
    fault.info = fault.revert_info()
    fault.inject()
    try:
        code, body = ready(chaos_env)
        assert code == 503 and "name not found" in body["checks"]["postgres"], body
        assert body["checks"]["redis"].startswith("write+read ok")
    finally:
        assert "restored" in DnsFailure.revert(fault.info)
    assert "already" in DnsFailure.revert(fault.info)  # idempotent (a cleanup run after the finally)
    assert ready(chaos_env)[0] == 200


def test_chaos_packet_partition_and_loss_on_the_platform_path(inv, store, chaos_env, unique):
    from lifeboat.chaos.faults.packet import PacketFault, tagged

    if os.geteuid() != 0:
        pytest.skip("iptables packet faults need root")
    rec = run(inv, store, "postgres-partition", unique, duration=timedelta(seconds=3))
    assert rec.verdict == "pass", rec.reasons
    assert 0 <= rec.detect_seconds <= 5
    assert 3 <= rec.recover_seconds <= 30
    assert probe(rec, "api-ready").passes < probe(rec, "api-ready").polls
    assert probe(rec, "write-read-postgres").passes == probe(rec, "write-read-postgres").polls
    assert tagged("", f"lifeboat-chaos:{rec.id}") == []
    assert_steady_and_clean(rec, store, chaos_env)

    loss = run(inv, store, "redis-packet-loss", f"{unique}b", duration=timedelta(seconds=6))
    assert loss.verdict == "pass", loss.reasons
    assert loss.detect_seconds is not None and loss.detect_seconds <= 6
    assert "50% packet loss" in next(s["detail"] for s in loss.steps if s["name"] == "injected")
    assert probe(loss, "api-ready").passes < probe(loss, "api-ready").polls
    assert probe(loss, "write-read-redis").passes == probe(loss, "write-read-redis").polls
    assert tagged("", f"lifeboat-chaos:{loss.id}") == []
    assert_steady_and_clean(loss, store, chaos_env)
    # the marker alone reverts it (cleanup after a killed task): inject, then revert from the info only
    fault = PacketFault(inv.chaos.experiment("postgres-partition"), inv.chaos.environments["drill"], inv,
                        f"left-{unique}")
    fault.info = fault.revert_info()
    fault.inject()
    try:
        assert len(tagged("", fault.info["comment"])) == 2
        assert ready(chaos_env)[0] == 503
    finally:
        assert "2 iptables rule(s)" in PacketFault.revert(fault.info)
    assert "no iptables rule" in PacketFault.revert(fault.info)
    assert ready(chaos_env)[0] == 200
