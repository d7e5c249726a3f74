"""DNS failure and packet loss / partition on the platform API's path, against the real local stack: the
stand-in's resolver (the hosts file devstack/components/toxiproxy.py writes) loses a datastore's name;
iptables (as root) drops a share of / all the packets on the toxiproxy port the stand-in uses. Each test
asserts measured detection and recovery, that the datastore itself answered throughout, and that nothing is
left injected (resolver restored, no tagged iptables rule). Then the abort condition for every fault kind
(network, dns, packet, process): the fault ends at once and its revert is timed; and a packet fault aimed at
a network namespace of its own (target.netns) cuts only that namespace.

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


# Every fault kind's revert under the abort condition: a probe failing longer than `abort_after` ends the
# fault at once, long before its duration, and the revert (toxic removed, resolver restored, iptables
# rules deleted, process restarted) is timed from the abort decision. The service kind's abort is in
# test_chaos.py (scale to zero); the region kind's revert is the failback (test_chaos_region.py).
ABORTS = [("postgres-outage", "network", 2.0), ("postgres-dns", "dns", 2.0), ("postgres-partition", "packet", 2.0),
          ("redis-kill", "process_kill", 15.0)]


@pytest.mark.parametrize(("name", "kind", "revert_bound"), ABORTS, ids=[a[1] for a in ABORTS])
def test_chaos_abort_reverts_every_fault_kind_within_its_bound(inv, store, chaos_env, unique, name, kind,
                                                              revert_bound):
    import time

    from lifeboat.chaos.faults.packet import tagged

    if kind == "packet" and os.geteuid() != 0:
        pytest.skip("iptables packet faults need root")
    spec = inv.chaos.experiment(name)
    assert spec.kind == kind
    t0 = time.monotonic()
    rec = run(inv, store, name, unique, duration=timedelta(seconds=120), abort_after=timedelta(seconds=2))
    took = time.monotonic() - t0
    assert rec.aborted and rec.verdict == "fail" and any("aborted" in r for r in rec.reasons), rec.reasons
    failing = [p for p in rec.probes if p.first_failure_at is not None]
    assert failing, [(p.name, p.passes, p.polls) for p in rec.probes]
    # the abort was decided once a probe had failed for 2 s: one round later at most (a round waits for
    # its slowest probe, 2 s timeout, then 0.25 s)
    failing_for = (rec.fault_ended_at - min(p.first_failure_at for p in failing)).total_seconds()
    assert 2.0 <= failing_for <= 2.0 + 2.0 + 1.5, failing_for
    assert rec.abort_revert_seconds is not None and rec.abort_revert_seconds <= revert_bound, rec.abort_revert_seconds
    assert took < 60, took  # nowhere near the 120 s the fault would have lasted
    if kind == "packet":
        assert tagged("", f"lifeboat-chaos:{rec.id}") == []
    assert_steady_and_clean(rec, store, chaos_env)


def test_chaos_packet_fault_in_its_own_network_namespace_touches_nothing_else(inv, unique):
    """target.netns: the rules go into that network namespace only. A namespace of our own with a server
    and a client on its loopback: the partition cuts them, the host's rules stay as they were, the revert
    (from the marker's info alone) leaves the namespace as it was."""
    import shutil
    import subprocess
    import sys
    import time

    from lifeboat.chaos.faults.packet import PacketFault, tagged

    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces and iptables need root and iproute2")
    ns = f"lbchaos-{unique}"[:15]
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    server = None
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        port = 18000 + int(unique[-3:], 16) % 1000  # the namespace is empty: any port is free in it
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server", str(port),
                                   "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def get() -> bool:  # a client inside the namespace
            code = f"import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/', timeout=1.5).read()"
            return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                                  check=False, capture_output=True, timeout=20).returncode == 0

        deadline = time.monotonic() + 20
        while not get():
            assert time.monotonic() < deadline, "http.server in the namespace did not answer"
            time.sleep(0.2)
        host_before = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True).stdout
        fault = PacketFault(inv.chaos.experiment("postgres-partition").model_copy(
            update={"target": {"datastore": "postgres", "partition": True, "netns": ns}}),
            inv.chaos.environments["drill"], inv, f"netns-{unique}")
        fault.info = dict(fault.revert_info(), port=port)
        detail = fault.inject()
        try:
            assert f"in netns {ns}" in detail, detail
            assert len(tagged(ns, fault.info["comment"])) == 2
            assert not get()  # cut inside the namespace ...
            after = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True).stdout
            assert after == host_before  # ... and the host's rules untouched
            assert tagged("", fault.info["comment"]) == []
        finally:
            assert "2 iptables rule(s)" in PacketFault.revert(dict(fault.info))
        assert tagged(ns, fault.info["comment"]) == []
        assert get()
    finally:
        if server is not None:
            server.kill()
            server.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
