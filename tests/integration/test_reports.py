"""The monthly DR review and the quarterly analysis rendered to HTML + PDF (WeasyPrint) with charts
(matplotlib), stored in both regions' catalogs; the PDF's first page converted to PNG (pdftoppm) and
its numbers read back (pdftotext) and compared with values computed here from the catalog."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lifeboat.inventory import format_duration
from lifeboat.reports import jobs
from tests.ops_seed import NOW, seed

pytestmark = pytest.mark.integration
REPORTS = Path(__file__).resolve().parents[2] / "reports"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return seed(tmp_path_factory.mktemp("report-catalog"), NOW)


def _text(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"[ \t]+", " ", out)


def test_report_monthly_pdf_renders_and_its_numbers_equal_the_catalogs(catalog, tmp_path):
    out = jobs.generate("monthly", inventory=catalog["inv"], now=NOW, when=NOW)
    assert out["period"] == "2026-11" == catalog["prev_month"]
    repo = catalog["repo"]
    for st in (repo.primary, repo.mirror_storage):  # both regions hold it
        for key in out["keys"]:
            assert st.exists(key), f"{st.url}/{key} missing"
    pdf = tmp_path / "report.pdf"
    repo.mirror_storage.get_file("reports/monthly/2026-11/report.pdf", pdf)  # read from the standby copy
    subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "80", "-png", str(pdf), str(tmp_path / "page")],
                   check=True)
    png = next(tmp_path.glob("page*.png"))
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(head[16:20], "big") > 500, "first page not rendered"
    REPORTS.mkdir(exist_ok=True)
    shutil.copy(png, REPORTS / "dr-report-monthly.png")

    # the numbers, computed here from the catalog (not from the report's JSON)
    start, end = NOW.replace(month=11, day=1, hour=0, minute=0), NOW.replace(day=1, hour=0, minute=0)
    verifs = [v for v in repo.verifications("postgres") if start <= v.verified_at < end]
    passed = sum(1 for v in verifs if v.ok)
    drills = [d for d in repo.drills() if start <= d.started_at < end]
    text = _text(pdf)
    assert re.search(rf"Restore-test drills {len(drills)} passed {sum(d.verdict == 'pass' for d in drills)} ", text)
    assert re.search(rf"Verifications {len(verifs)} passed {passed} verification pass rate "
                     rf"{100 * passed / len(verifs):.1f}%", text), text[:800]
    row = re.search(r"postgres (\d{4}-\d\d-\d\d) (pass|fail) (\S+) (\S+) (\S+) (\S+)", text)
    d = drills[0]
    assert row.groups() == (f"{d.started_at:%Y-%m-%d}", d.verdict, format_duration(d.rto_seconds),
                            format_duration(d.objective_rto_seconds), format_duration(d.rpo_seconds),
                            format_duration(d.objective_rpo_seconds))
    newest_logical = max((m for m in catalog["backups"] if m.series == "logical" and m.finished_at < end),
                         key=lambda m: m.finished_at)
    assert newest_logical.id in text and f"{len(verifs) - passed}" in text
    for bad in catalog["failed_verifications"]:
        assert bad in text, f"failed verification {bad} not named in the report"
    runs = catalog["chaos"]  # the failure simulations of the month, scored as lifeboat.chaos scored them
    mean = round(sum(r.score for r in runs) / len(runs), 1)
    passed_c = sum(r.verdict == "pass" for r in runs)
    assert f"{len(runs)} experiment runs, {passed_c} passed; mean resilience score {mean}." in text, text[-1500:]
    detect = sorted(r.detect_seconds for r in runs)
    recover = sorted(r.recover_seconds for r in runs)
    lost = sum(d.lost for r in runs for d in r.data_loss)
    assert re.search(rf"pod_delete drill {len(runs)} {passed_c} fail {mean} "
                     rf"{re.escape(format_duration(sum(detect) / 2))} {re.escape(format_duration(sum(recover) / 2))} "
                     rf"{lost}\b", text), text[-1500:]


def test_report_quarterly_has_the_monthly_trend_and_the_html_is_self_contained(catalog):
    out = jobs.generate("quarterly", inventory=catalog["inv"], now=NOW, when=NOW)
    assert out["period"] == "2026-Q3"
    html = catalog["repo"].primary.get_bytes("reports/quarterly/2026-Q3/report.html").decode()
    assert "Trend by month" in html and all(m in html for m in ("2026-07", "2026-08", "2026-09"))
    assert html.count("data:image/png;base64,") >= 2 and "src=\"http" not in html
    assert out["totals"]["drills"] == 3 and out["totals"]["drill_pass_rate"] == 100.0


def test_report_period_errors_name_the_field():
    from lifeboat.errors import LifeboatError
    from lifeboat.reports.data import period_bounds, previous_period

    with pytest.raises(LifeboatError, match="YYYY-MM"):
        period_bounds("monthly", "2026-13")
    with pytest.raises(LifeboatError, match="unknown report kind"):
        period_bounds("weekly", "2026-01")
    assert previous_period("quarterly", NOW.replace(month=1)) == "2025-Q4"
    assert previous_period("monthly", NOW.replace(month=1)) == "2025-12"
