"""Generate a report into the catalog of both regions (DAG task or `python -m lifeboat report`)."""

from __future__ import annotations

import functools
import json
import logging
from datetime import datetime

from lifeboat.inventory import load_inventory
from lifeboat.records import utcnow

log = logging.getLogger(__name__)


def generate(kind: str, period: str | None = None, when: datetime | None = None, run: dict | None = None,
             region: str | None = None, inventory=None, now: datetime | None = None) -> dict:
    from lifeboat.layout import Layout
    from lifeboat.reports import charts, data, render
    from lifeboat.repository import Repository

    inv = inventory or load_inventory()
    now = now or utcnow()
    period = period or data.previous_period(kind, when or now)
    repo, used, note = Repository.readable(inv, region)
    report = data.build(kind, period, inv, repo, now)
    report["source"] = {"region": used, "note": note, "run": run or {}}
    images = {name: fn(report) for name, fn in charts.ALL.items()}
    html_text = render.html(report, images)
    pdf_bytes = render.pdf(html_text)
    key = functools.partial(Layout.report, kind, period)
    written = repo.put_everywhere(key("report.json"), json.dumps(report, indent=2, default=str).encode())
    for name, png in images.items():
        if png:
            repo.put_everywhere(key(f"charts/{name}.png"), png)
    repo.put_everywhere(key("report.html"), html_text.encode())
    repo.put_everywhere(key("report.pdf"), pdf_bytes)
    log.info("%s report %s: %d bytes PDF into %s", kind, period, len(pdf_bytes), ", ".join(written))
    return {"kind": kind, "period": period, "keys": [key(f) for f in ("report.html", "report.pdf", "report.json")],
            "written_to": written, "totals": report["totals"], "pdf_bytes": len(pdf_bytes)}
