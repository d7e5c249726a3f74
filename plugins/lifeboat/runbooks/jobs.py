"""Regenerate the runbooks into both regions' catalogs; read one back (CLI, standby region first)."""

from __future__ import annotations

import logging

from lifeboat.inventory import load_inventory
from lifeboat.records import utcnow

log = logging.getLogger(__name__)


def generate(run: dict | None = None, region: str | None = None, inventory=None, now=None) -> dict:
    from lifeboat.layout import Layout
    from lifeboat.repository import Repository
    from lifeboat.runbooks.generate import build, title_of, to_html

    inv = inventory or load_inventory()
    repo, used, note = Repository.readable(inv, region)
    pages = build(inv, repo, now or utcnow())
    written: set[str] = set()
    for key, md in pages.items():
        written |= set(repo.put_everywhere(key, md.encode()))
        repo.put_everywhere(Layout.html_of(key), to_html(md, title_of(md)).encode())
    log.info("runbooks: %d page(s) from %s's catalog into %s", len(pages), used, ", ".join(sorted(written)))
    return {"pages": sorted(pages), "written_to": sorted(written), "read_from": used, "note": note}


def read(name: str, region: str | None = None, inventory=None) -> tuple[str, str]:
    """(markdown, where it was read) for a scenario, a datastore or 'index'; default: the standby copy."""
    from lifeboat.errors import LifeboatError
    from lifeboat.layout import Layout
    from lifeboat.repository import Repository
    from lifeboat.runbooks import SCENARIOS

    inv = inventory or load_inventory()
    repo, _, note = Repository.readable(inv, region or inv.regions.standby)
    key = Layout.runbook(name, "" if name == "index" else "scenarios" if name in SCENARIOS else "datastores")
    if not repo.exists(key):
        known = sorted(k.removeprefix(Layout.runbook()) for k in repo.keys(Layout.runbook()) if k.endswith(".md"))
        raise LifeboatError(f"{repo.url_of(key)}: no such runbook (have: {', '.join(known) or 'none'}; "
                            "lifeboat_runbooks writes them after each verification)")
    return repo.read(key).decode(), repo.url_of(key) + (f" ({note})" if note else "")
