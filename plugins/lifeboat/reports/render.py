"""HTML (self-contained: charts inline as data: URIs) and PDF (WeasyPrint) of a report."""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, select_autoescape

from lifeboat.inventory import format_duration

TITLES = {"monthly": "Monthly DR review", "quarterly": "Quarterly DR test-result analysis"}

TEMPLATE = Path(__file__).with_name("report.html.j2")  # Jinja2, autoescaped


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1f}%"


def html(report: dict, charts: dict[str, bytes | None]) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    uris = {k: f"data:image/png;base64,{base64.b64encode(v).decode()}" for k, v in charts.items() if v}
    template = env.from_string(TEMPLATE.read_text())
    return template.render(r=report, t=report["totals"], charts=uris, title=TITLES[report["kind"]], pct=_pct,
                           dur=format_duration)


def pdf(html_text: str) -> bytes:
    from weasyprint import HTML

    return HTML(string=html_text).write_pdf()
