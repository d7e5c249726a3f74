"""The DR page's operations section in a real Airflow UI and browser: an open incident acknowledged
with the Acknowledge button (as the logged-in Airflow user), and the reports and runbooks from the
catalog linked and served. Screenshot: reports/dr-ops.png."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import logged_in_tab

pytestmark = pytest.mark.slow
DR_FRAME = "iframe[title='Disaster Recovery']"


@pytest.fixture(scope="module")
def ops_catalog(dr_catalog):
    from lifeboat.incidents.manager import IncidentManager
    from lifeboat.inventory import load_inventory
    from lifeboat.reports import jobs as reports
    from lifeboat.repository import Repository
    from lifeboat.runbooks import jobs as runbooks

    inv = load_inventory(dr_catalog["inventory"])
    repo = Repository.from_inventory(inv)
    out = IncidentManager(inv, repo, send=lambda d: None).run(
        [{"datastore": "ledger", "check": "WAL archive lag", "severity": "critical", "value": "2.0h",
          "threshold": "5.0m", "message": "ledger: WAL archive lag 2.0h (RPO 5.0m)"}])
    report = reports.generate("monthly", inventory=inv)
    runbooks.generate(inventory=inv)
    return {"repo": repo, "incident": out["open"][0], "report": report}


def test_ops_section_acknowledges_an_incident_and_links_reports(airflow_server, browser, ops_catalog, reports_dir):
    from playwright.sync_api import expect

    from lifeboat.incidents.store import IncidentStore

    ctx, tab = logged_in_tab(browser, airflow_server, {"width": 1440, "height": 2200})
    tab.goto(airflow_server["base"] + "/plugin/disaster-recovery")
    dr = tab.frame_locator(DR_FRAME)
    row = dr.locator(f"#incidents tr[data-incident='{ops_catalog['incident']}']")
    expect(row).to_have_count(1, timeout=20_000)
    expect(row).to_contain_text("ledger:WAL archive lag")
    row.get_by_role("button", name="Acknowledge").click()
    row.get_by_label("Acknowledgement note").fill("on it")
    row.get_by_role("button", name="Confirm acknowledgement").click()
    expect(row).to_contain_text(f"acknowledged by {airflow_server['user']}", timeout=15_000)
    ack = next(a for a in IncidentStore(ops_catalog["repo"]).acks() if a.incident_id == ops_catalog["incident"])
    assert (ack.by, ack.note, ack.via) == (airflow_server["user"], "on it", "dr-page")

    links = dr.locator("#reports a")
    hrefs = links.evaluate_all("as => as.map(a => a.getAttribute('href'))")
    period = ops_catalog["report"]["period"]
    assert f"ops/files/reports/monthly/{period}/report.pdf" in hrefs
    assert "ops/files/runbooks/scenarios/region-loss.html" in hrefs
    resp = tab.request.get(f"{airflow_server['base']}/lifeboat/ops/files/reports/monthly/{period}/report.pdf")
    assert resp.status == 200 and resp.headers["content-type"] == "application/pdf" and resp.body()[:5] == b"%PDF-"
    anon = browser.new_context().request.get(f"{airflow_server['base']}/lifeboat/ops/files/runbooks/index.md")
    assert anon.status == 401
    dr.locator("#reports").scroll_into_view_if_needed()
    tab.screenshot(path=str(reports_dir / "dr-ops.png"), full_page=True)
    assert not tab.page_errors, tab.page_errors
    ctx.close()
