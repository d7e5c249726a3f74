"""End to end: the Disaster Recovery page inside a real Airflow 3.3 UI, in a real browser.

One `airflow api-server` (with the Lifeboat plugin from plugins/) serves a catalog seeded with real
records (tests/e2e/catalog.py); headless Debian Chromium, driven by Playwright, logs in through
Airflow's own login page and uses the page the way a reviewer would.

What each test proves:
- test_dr_page_plugin_import_is_cheap_and_safe: registering the plugin reads no inventory or repository
  and builds no app (every Airflow component imports plugins), even with a missing inventory.
- test_dr_page_region_comes_from_env_and_falls_back: $LIFEBOAT_REGION picks the catalog copy read.
- test_dr_page_json_endpoints_refuse_unauthenticated: every JSON endpoint answers 401 without a token
  and 403 with a forged one, 200 with a token from POST /auth/token; no CORS header for a foreign
  origin; the page itself carries no data and is only frameable by Airflow.
- test_dr_page_shows_drills_in_airflow_ui: after logging in, the "Disaster Recovery" nav entry shows
  every datastore with its objectives, backup age, verification and latest drill graded against the
  objectives, the RTO/RPO charts with the objective line, and the drill history; a drill opens with its
  step timeline, and its DAG-run link opens the run in Airflow's own UI. Screenshots: reports/dr-page.png,
  reports/dr-drill.png.
- test_dr_page_reads_either_region_and_explains_failures: the standby region's copy is selectable;
  when a region's copy is missing the page falls back to the other and says so; a missing repository,
  an empty catalog and unreadable records each render a clear message (never a stack trace); an
  expired session says so.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.catalog import PRIMARY, STANDBY, write_inventory
from tests.e2e.conftest import logged_in_tab

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

ENDPOINTS = ["/lifeboat/health", "/lifeboat/datastores", "/lifeboat/drills",
             "/lifeboat/drills/postgres-restore-test-20260101T000000Z"]
DR_FRAME = "iframe[title='Disaster Recovery']"


def _get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _token(server) -> str:
    req = urllib.request.Request(f"{server['base']}/auth/token", method="POST",
                                 data=json.dumps({"username": server["user"], "password": server["password"]}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=15) as r:
        return json.loads(r.read())["access_token"]


def test_dr_page_plugin_import_is_cheap_and_safe(tmp_path):
    """Every Airflow component imports plugins: registering the page must not read the inventory or the
    repository, nor build the FastAPI app, and must not fail when the inventory is broken."""
    code = (
        "import sys, lifeboat_plugin as p\n"
        "v = p.LifeboatPlugin.external_views[0]\n"
        "assert (v['name'], v['url_route'], v['href'], v['destination']) == "
        "('Disaster Recovery', 'disaster-recovery', '/lifeboat/', 'nav'), v\n"
        "assert p.LifeboatPlugin.fastapi_apps[0]['url_prefix'] == '/lifeboat'\n"
        "bad = [m for m in ('lifeboat.inventory', 'lifeboat.repository', 'lifeboat.ui.app', 'lifeboat.ui.data') "
        "if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "LIFEBOAT_INVENTORY": str(tmp_path / "missing.yaml"), "PYTHONPATH": str(ROOT / "plugins"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]


def test_dr_page_region_comes_from_env_and_falls_back(dr_catalog, monkeypatch):
    from lifeboat.inventory import load_inventory
    from lifeboat.ui.data import load_snapshot

    inv = load_inventory(dr_catalog["inventory"])
    monkeypatch.setenv("LIFEBOAT_REGION", STANDBY)
    snap = load_snapshot(inventory=inv)
    assert (snap.status, snap.region, snap.role, snap.fallback) == ("ok", STANDBY, "standby", None)
    assert len(snap.drills) == 18 and [d["name"] for d in snap.datastores] == ["postgres", "analytics", "ledger",
                                                                               "search_pg"]
    monkeypatch.delenv("LIFEBOAT_REGION")
    assert load_snapshot(inventory=inv).region == PRIMARY


def test_dr_page_json_endpoints_refuse_unauthenticated(airflow_server):
    base = airflow_server["base"]
    for path in ENDPOINTS:
        status, _, body = _get(base + path)
        assert status == 401, (path, status, body[:200])
        status, _, _ = _get(base + path, {"Authorization": "Bearer not-a-jwt"})
        assert status == 403, (path, status)
        status, _, _ = _get(base + path, {"Cookie": "_token=forged"})
        assert status in (401, 403), (path, status)

    auth = {"Authorization": f"Bearer {_token(airflow_server)}"}
    status, headers, body = _get(base + "/lifeboat/health", {**auth, "Origin": "https://evil.example"})
    assert status == 200, body
    assert not set(headers) & {"access-control-allow-origin", "access-control-allow-credentials"}
    assert headers.get("cache-control") == "no-store"
    health = json.loads(body)
    assert health["status"] == "ok" and health["region"] == PRIMARY and health["counts"]["drills"] == 18

    status, _, body = _get(base + "/lifeboat/drills?limit=2", auth)
    drills = json.loads(body)
    assert status == 200 and drills["total"] == 18 and len(drills["drills"]) == 2
    status, _, body = _get(base + f"/lifeboat/drills/{drills['drills'][0]['id']}", auth)
    assert status == 200 and json.loads(body)["drill"]["steps"]
    status, _, body = _get(base + "/lifeboat/drills/nope", auth)
    assert status == 404 and "no drill 'nope'" in json.loads(body)["detail"]
    status, _, body = _get(base + "/lifeboat/health?region=mars", auth)
    assert status == 400 and "unknown region 'mars'" in json.loads(body)["detail"]

    # The page holds no data; it may be framed by Airflow (same origin) only.
    status, headers, body = _get(base + "/lifeboat/")
    assert status == 200 and b"Disaster Recovery" in body
    assert "frame-ancestors 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "SAMEORIGIN"


@pytest.fixture(scope="module")
def page(airflow_server, browser):
    """A browser tab logged in through Airflow's own login page."""
    ctx, tab = logged_in_tab(browser, airflow_server, {"width": 1440, "height": 1800})
    yield tab
    ctx.close()


def _dr(tab, ready: str | None = None):
    """The DR page's frame, once its script has rendered (body[data-ready])."""
    frame = tab.frame_locator(DR_FRAME)
    sel = f"body[data-ready='{ready}']" if ready else "body[data-ready]"
    frame.locator(sel).wait_for(timeout=20_000)
    return frame


def test_dr_page_shows_drills_in_airflow_ui(airflow_server, page, dr_catalog, reports_dir):
    from playwright.sync_api import expect

    base = airflow_server["base"]
    t0 = time.monotonic()
    page.get_by_role("link", name=re.compile("Disaster")).first.click()
    page.wait_for_url(re.compile(r"/plugin/disaster-recovery"))
    dr = _dr(page, "overview")

    # Every datastore of the inventory, with objectives, backup age, verification, latest drill.
    rows = dr.locator("tr.ds-row")
    expect(rows).to_have_count(4)
    names = rows.evaluate_all("rs => rs.map(r => r.dataset.datastore)")
    assert names == ["postgres", "analytics", "ledger", "search_pg"]
    pg = dr.locator("tr.ds-row[data-datastore=postgres]")
    expect(pg).to_contain_text("15 min")  # RPO objective
    expect(pg).to_contain_text("4 h")  # RTO objective (inventory default)
    expect(pg).to_contain_text("min ago")  # newest backup: the hourly incremental
    expect(pg).to_contain_text("✓ passed")
    expect(pg.locator(".badge")).to_have_text("pass")
    ledger = dr.locator("tr.ds-row[data-datastore=ledger]")
    expect(ledger.locator(".badge")).to_have_text("fail")
    expect(ledger).to_contain_text("✗ failed")  # its newest backup failed verification
    expect(ledger.locator(".g.miss")).to_contain_text("41 min")  # RTO over its 30 min objective, in red
    expect(dr.locator("tr.ds-row[data-datastore=analytics] .g.near")).to_contain_text("49 min")  # amber: >80%
    expect(dr.locator("tr.ds-row[data-datastore=search_pg]")).to_contain_text("no backup")

    # The charts: per datastore, RTO and RPO with the objective line; one point per measured drill.
    for name in ("postgres", "analytics", "ledger"):
        card = dr.locator(f".chart-card[data-datastore={name}]")
        expect(card.locator("svg.chart")).to_have_count(2)
        expect(card.locator("svg.chart path.objective")).to_have_count(2)
        expect(card.locator("svg.chart circle.pt")).to_have_count(12)
    expect(dr.locator(".chart-card[data-datastore=postgres] svg.chart circle.pt.miss")).to_have_count(1)  # RPO gap
    pg_charts = dr.locator(".chart-card[data-datastore=postgres]")
    expect(pg_charts.locator("text.objective-label").last).to_have_text("objective 15 min")

    # Drill history, newest first, with verdicts and links to the DAG runs.
    hist = dr.locator("tr.drill-row")
    expect(hist).to_have_count(18)
    newest_ledger = max((d for d in dr_catalog["drills"] if d.datastore == "ledger"), key=lambda d: d.started_at)
    row = dr.locator(f"tr.drill-row[data-drill='{newest_ledger.id}']")
    expect(row.locator(".badge")).to_have_text("fail")
    expect(row).to_contain_text("RTO 41.0m exceeds objective 30.0m")
    run_id = newest_ledger.run["run_id"].replace(":", "%3A").replace("+", "%2B")
    expect(row.locator("a.runlink")).to_have_attribute(
        "href", f"/dags/lifeboat_restore_test_monthly/runs/{run_id}/tasks/restore_test/mapped/2")
    page.screenshot(path=str(reports_dir / "dr-page.png"))

    # A drill's detail: verdict, measurements, step timeline.
    row.locator("a").first.click()
    dr = _dr(page, "drill")
    assert "drill=" + newest_ledger.id in page.url  # the drill's address is Airflow's address: shareable
    detail = dr.locator("#drill")
    expect(detail.locator(".badge").first).to_have_text("fail")
    expect(detail.locator(".reasons")).to_contain_text("RTO 41.0m exceeds objective 30.0m")
    expect(dr.locator("svg.timeline rect.bar")).to_have_count(len(newest_ledger.steps))
    expect(dr.locator("svg.timeline text.mark.ready")).to_contain_text("RTO 41 min")
    expect(dr.locator("tr.step-row")).to_have_count(len(newest_ledger.steps))
    page.screenshot(path=str(reports_dir / "dr-drill.png"))

    # Its DAG-run link opens the run in Airflow's own UI (the top window, not inside the iframe).
    dr.locator("#drill a.runlink").click()
    page.wait_for_url(re.compile(r"/dags/lifeboat_restore_test_monthly/runs/.+/tasks/restore_test/mapped/2$"))
    assert page.url.startswith(base + "/dags/")
    assert not page.page_errors, page.page_errors
    assert time.monotonic() - t0 < 45


_BUMPS = itertools.count(1)


def _switch_inventory(dr_catalog, primary_url: str, standby_url: str) -> None:
    path = dr_catalog["inventory"]
    write_inventory(path, primary_url, standby_url, dr_catalog["root"] / "work")
    bump = time.time() + next(_BUMPS)
    os.utime(path, (bump, bump))  # a new mtime: the server re-reads the inventory


def _open(page, base: str, query: str = ""):
    """Reload the DR page inside Airflow's iframe (Airflow's own UI around it stays loaded)."""
    frame = next((f for f in page.frames
                  if f is not page.main_frame and re.match(r"https?://[^/]+/lifeboat/", f.url)), None)
    if frame is None:
        page.goto(f"{base}/plugin/disaster-recovery/lifeboat/{query}")
    else:
        frame.goto(f"{base}/lifeboat/{query}")
    return _dr(page)


def test_dr_page_reads_either_region_and_explains_failures(airflow_server, page, browser, dr_catalog, reports_dir):
    from playwright.sync_api import expect

    base, root = airflow_server["base"], Path(dr_catalog["root"])
    primary, standby = f"file://{root}/repo-{PRIMARY}", f"file://{root}/repo-{STANDBY}"
    try:
        # The standby region's copy, chosen on the page.
        dr = _open(page, base)
        dr.locator("#regions a", has_text=STANDBY).click()
        dr = _dr(page, "overview")
        expect(dr.locator("#source")).to_contain_text(f"{STANDBY} (standby region)")
        expect(dr.locator(".banner.info:not(#active-region)")).to_contain_text("standby region's")
        expect(dr.locator("#active-region")).to_contain_text(f"Active region: {PRIMARY}")  # no failover recorded
        expect(dr.locator("tr.ds-row")).to_have_count(4)

        # The primary region's copy is gone: the page reads the standby copy and says why.
        _switch_inventory(dr_catalog, f"file://{root}/gone-{PRIMARY}", standby)
        dr = _open(page, base)
        expect(dr.locator(".banner.warn")).to_contain_text(f"The {PRIMARY} copy of the catalog is missing")
        expect(dr.locator(".banner.warn")).to_contain_text(f"gone-{PRIMARY} does not exist")
        expect(dr.locator(".banner.warn")).to_contain_text(f"Showing the {STANDBY} (standby) copy instead")
        expect(dr.locator("tr.ds-row")).to_have_count(4)
        page.screenshot(path=str(reports_dir / "dr-page-fallback.png"),
                        clip={"x": 0, "y": 0, "width": 1440, "height": 420})

        # No repository in either region.
        _switch_inventory(dr_catalog, f"file://{root}/gone-{PRIMARY}", f"file://{root}/gone-{STANDBY}")
        dr = _open(page, base)
        state = dr.locator("[data-state=missing]")
        expect(state).to_contain_text("No backup repository found")
        expect(state).to_contain_text(f"gone-{PRIMARY}")
        expect(state).to_contain_text(f"gone-{STANDBY}")
        page.screenshot(path=str(reports_dir / "dr-page-missing.png"),
                        clip={"x": 0, "y": 0, "width": 1440, "height": 700})

        # An empty catalog.
        for region in (PRIMARY, STANDBY):
            (root / f"empty-{region}").mkdir(exist_ok=True)
        _switch_inventory(dr_catalog, f"file://{root}/empty-{PRIMARY}", f"file://{root}/empty-{STANDBY}")
        dr = _open(page, base)
        expect(dr.locator("[data-state=empty]")).to_contain_text("The catalog is empty")
        expect(dr.locator("[data-state=empty]")).to_contain_text("holds no backups and no drills yet")

        # Unreadable records are named, the rest is shown.
        broken = root / "broken"
        if not broken.exists():
            shutil.copytree(root / f"repo-{PRIMARY}", broken)
        (broken / "drills" / "postgres-restore-test-20990101T000000Z.json").write_text("{not json")
        (broken / "drills" / "ledger-restore-test-20990101T000000Z.json").write_text('{"format": "lifeboat.drill/v1"}')
        _switch_inventory(dr_catalog, f"file://{broken}", standby)
        dr = _open(page, base)
        banner = dr.locator(".banner.warn")
        expect(banner).to_contain_text("2 record(s) in the catalog could not be read")
        expect(banner).to_contain_text("drills/postgres-restore-test-20990101T000000Z.json: unreadable record")
        expect(banner).to_contain_text("drills/ledger-restore-test-20990101T000000Z.json: unreadable record")
        expect(dr.locator("tr.drill-row")).to_have_count(18)

        # No stack trace anywhere, whatever went wrong.
        for text in (page.content(), dr.locator("body").inner_text()):
            assert "Traceback" not in text
    finally:
        _switch_inventory(dr_catalog, primary, standby)

    # An expired session: the page says so instead of showing nothing.
    ctx = browser.new_context()
    try:
        anon = ctx.new_page()
        anon.goto(f"{base}/lifeboat/")
        expect(anon.locator("[data-state=auth]")).to_contain_text("Your Airflow session has ended")
    finally:
        ctx.close()
    assert not page.page_errors, page.page_errors
