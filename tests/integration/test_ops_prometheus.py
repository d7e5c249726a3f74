"""The plugin's /lifeboat/metrics in a real Airflow API server, scraped by a real Prometheus (Debian's
package) whose rules are include/prometheus/lifeboat-rules.yml with `for: 1s`; the incident
acknowledgement route through Airflow's own login. The catalog is tests/ops_seed.py's (a stale
physical backup), exposure is measured on the stack's real PostgreSQL."""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request

import pytest

from devstack.components import prometheus as prom
from lifeboat.net import free_port
from lifeboat.records import utcnow
from lifeboat.schedule import GRACE
from tests.e2e.conftest import PASSWORD, USER, api_server, server_home
from tests.ops_seed import seed

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = secrets.token_urlsafe(24)


def _get(url: str, headers: dict | None = None, data: bytes | None = None, method: str | None = None):
    req = urllib.request.Request(url, headers=headers or {}, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory, stack_env):
    return seed(tmp_path_factory.mktemp("ops-catalog"), utcnow())


@pytest.fixture(scope="module")
def server(catalog, tmp_path_factory):
    home, port, base, env = server_home(tmp_path_factory, "airflow-home-ops", catalog["inventory"])
    env.update({"AIRFLOW_CONN_LIFEBOAT_METRICS": json.dumps({"conn_type": "generic", "password": TOKEN}),
                "AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2": os.environ["AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2"],
                "AIRFLOW_CONN_LIFEBOAT_PG_US_EAST_1": os.environ["AIRFLOW_CONN_LIFEBOAT_PG_US_EAST_1"],
                "LIFEBOAT_METRICS_CACHE_SECONDS": "0"})
    with api_server(home, port, env) as log:
        code, body = _get(f"{base}/auth/token", {"Content-Type": "application/json"},
                          json.dumps({"username": USER, "password": PASSWORD}).encode(), "POST")
        assert code in (200, 201), body
        yield {"base": base, "port": port, "jwt": json.loads(body)["access_token"], "log": log}


@pytest.fixture(scope="module")
def prometheus(server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    platform = {r: os.environ[f"LIFEBOAT_API_{r.upper().replace('-', '_')}_URL"].removeprefix("http://")
                for r in ("us-west-2", "us-east-1")}
    config = prom.render_config(folder, scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s",
                                lifeboat_targets=[f"127.0.0.1:{server['port']}"], platform_targets=platform)
    prom.start(folder, port, config, rules=prom.rules_with_for("1s"), token=TOKEN)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        prom.stop(folder)


def _wait(what: str, fn, timeout: float = 45.0):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_metrics_endpoint_needs_the_scrape_token(server):
    url = f"{server['base']}/lifeboat/metrics"
    assert _get(url)[0] == 401
    assert _get(url, {"Authorization": "Bearer wrong"})[0] == 401
    assert _get(url, {"Authorization": f"Bearer {server['jwt']}"})[0] == 401, "an Airflow login is not the token"
    code, body = _get(url, {"Authorization": f"Bearer {TOKEN}"})
    assert code == 200 and b'lifeboat_backup_age_seconds{datastore="postgres",series="physical"}' in body
    for hook in (b"lifeboat_s3_replication_lag_seconds", b"lifeboat_image_replication_lag_seconds",
                 b"lifeboat_chaos_score"):
        assert b"# HELP " + hook in body  # declared; filled by later engines' hooks


def test_prometheus_scrapes_every_catalog_metric_and_the_platform_api(prometheus, catalog):
    from lifeboat.incidents.manager import IncidentManager

    IncidentManager(catalog["inv"], catalog["repo"], send=lambda d: None).run(
        [{"datastore": "postgres", "check": "physical backup age", "severity": "high", "value": "10h",
          "threshold": "2h", "message": "stale"}])
    _wait("the lifeboat target up", lambda: [r for r in prom.query(prometheus, 'up{job="lifeboat"}')
                                             if r["value"][1] == "1"])
    newest_full = max(m.finished_at for m in catalog["backups"] if m.series == "physical")
    expected = {
        'lifeboat_catalog_info{region="us-west-2",role="primary"}': 1,
        'lifeboat_backup_count{datastore="postgres",series="physical"}':
            sum(1 for m in catalog["backups"] if m.series == "physical"),
        'lifeboat_backup_age_limit_seconds{series="physical"}': 2 * 3600 + GRACE.total_seconds(),  # lifeboat.schedule
        'lifeboat_verified_backup_count{datastore="postgres"}':
            len(catalog["backups"]) - len(catalog["failed_verifications"]),
        'lifeboat_objective_rpo_seconds{datastore="postgres"}': 900,
        'lifeboat_objective_rto_seconds{datastore="postgres"}': 14400,
        'lifeboat_drill_rto_seconds{type="restore_test"}': catalog["drills"][0].rto_seconds,
        'lifeboat_drill_rpo_seconds{type="restore_test"}': catalog["drills"][0].rpo_seconds,
        'lifeboat_drill_pass{type="restore_test"}': 1,
        'lifeboat_exposure_up{datastore="postgres"}': 1,
        'lifeboat_incidents_open{severity="high",status="open"}': 1,
    }
    _wait("incident metric", lambda: prom.query(prometheus, "lifeboat_incidents_open"))
    for promql, value in expected.items():
        got = prom.query(prometheus, promql)
        assert got, f"{promql}: no sample in Prometheus"
        assert float(got[0]["value"][1]) == pytest.approx(value), promql
    age = float(prom.query(prometheus, 'lifeboat_backup_age_seconds{series="physical"}')[0]["value"][1])
    assert age == pytest.approx((utcnow() - newest_full).total_seconds(), abs=30)
    for name in ("lifeboat_verified_backup_age_seconds", "lifeboat_verification_ok", "lifeboat_drill_age_seconds",
                 "lifeboat_verification_last_timestamp_seconds", "lifeboat_backup_last_timestamp_seconds",
                 "lifeboat_backups_incomplete", "lifeboat_drill_count", "lifeboat_metrics_collect_seconds"):
        assert prom.query(prometheus, name), f"{name}: no sample in Prometheus"
    exposure = {r["metric"]["check"] for r in prom.query(prometheus, 'lifeboat_exposure_seconds{datastore="postgres"}')}
    assert exposure == {"WAL archive lag", "standby replay lag"}
    # the platform API stand-in's request/error/latency metrics (the recovery's performance baseline)
    for region in ("us-west-2", "us-east-1"):
        got = _wait(f"platform_api {region}", lambda r=region: prom.query(
            prometheus, f'platform_api_request_duration_seconds_count{{region="{r}",path="/metrics"}}'))
        assert float(got[0]["value"][1]) >= 1


def test_prometheus_stale_backup_rule_fires_and_fresh_series_does_not(prometheus):
    def firing():
        return [a for a in prom.alerts(prometheus) if a["labels"]["alertname"] == "LifeboatBackupStale"
                and a["state"] == "firing"]

    got = _wait("LifeboatBackupStale firing", firing)
    assert [(a["labels"]["datastore"], a["labels"]["series"], a["labels"]["severity"]) for a in got] == [
        ("postgres", "physical", "high")]
    names = {a["labels"]["alertname"] for a in prom.alerts(prometheus) if a["state"] == "firing"}
    assert "LifeboatVerificationStale" not in names and "LifeboatNoBackup" not in names


def test_incident_acknowledged_through_airflow_login(server, catalog):
    from lifeboat.incidents.manager import IncidentManager
    from lifeboat.incidents.store import IncidentStore

    out = IncidentManager(catalog["inv"], catalog["repo"], send=lambda d: None).run(
        [{"datastore": "postgres", "check": "WAL archive lag", "severity": "critical", "value": "2h",
          "threshold": "15m", "message": "lag"}])
    inc_id = next(i for i in out["open"] if i.startswith("postgres-wal-archive-lag"))
    url = f"{server['base']}/lifeboat/incidents/{inc_id}/ack"
    body = json.dumps({"note": "on it"}).encode()
    assert _get(url, {"Content-Type": "application/json"}, body, "POST")[0] == 401
    code, answer = _get(url, {"Content-Type": "application/json", "Authorization": f"Bearer {server['jwt']}"},
                        body, "POST")
    assert code == 200, answer
    assert json.loads(answer)["acknowledged"]["by"] == USER
    ack = next(a for a in IncidentStore(catalog["repo"]).acks() if a.incident_id == inc_id)
    assert (ack.by, ack.note, ack.via) == (USER, "on it", "dr-page")
    code, answer = _get(f"{server['base']}/lifeboat/incidents/nope/ack",
                        {"Content-Type": "application/json", "Authorization": f"Bearer {server['jwt']}"}, body, "POST")
    assert code == 409 and b"no such incident" in answer
    code, answer = _get(f"{server['base']}/lifeboat/ops/overview", {"Authorization": f"Bearer {server['jwt']}"})
    assert code == 200 and inc_id in [i["id"] for i in json.loads(answer)["incidents"]]
