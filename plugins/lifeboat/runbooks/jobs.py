"""Regenerate the runbooks into both regions' catalogs; read one back (CLI, standby region first)."""

from __future__ import annotations

import logging

from lifeboat.inventory import load_inventory
from lifeboat.records import utcnow

log = logging.getLogger(__name__)


def generate(run: dict | None = None, region: str | None = None, inventory=None, now=None) -> dict:
    from lifeboat.copies import put_everywhere, readable
    from lifeboat.runbooks.generate import build, title_of, to_html

    inv = inventory or load_inventory()
    repo, used, note = readable(inv, region)
    pages = build(inv, repo, now or utcnow())
    written: set[str] = set()
    for key, md in pages.items():
        written |= set(put_everywhere(repo, key, md.encode()))
        put_everywhere(repo, key[:-3] + ".html", to_html(md, title_of(md)).encode())
    log.info("runbooks: %d page(s) from %s's catalog into %s", len(pages), used, ", ".join(sorted(written)))
    return {"pages": sorted(pages), "written_to": sorted(written), "read_from": used, "note": note}


def read(name: str, region: str | None = None, inventory=None) -> tuple[str, str]:
    """(markdown, where it was read) for a scenario, a datastore or 'index'; default: the standby copy."""
    from lifeboat.copies import readable
    from lifeboat.errors import LifeboatError
    from lifeboat.runbooks import SCENARIOS

    inv = inventory or load_inventory()
    repo, _, note = readable(inv, region or inv.regions.standby)
    key = ("runbooks/index.md" if name == "index" else f"runbooks/scenarios/{name}.md" if name in SCENARIOS
           else f"runbooks/datastores/{name}.md")
    if not repo.primary.exists(key):
        known = sorted(o.key.removeprefix("runbooks/") for o in repo.primary.list("runbooks/") if o.key.endswith(".md"))
        raise LifeboatError(f"{repo.primary.url}/{key}: no such runbook (have: {', '.join(known) or 'none'}; "
                            "lifeboat_runbooks writes them after each verification)")
    return repo.primary.get_bytes(key).decode(), f"{repo.primary.url}/{key}" + (f" ({note})" if note else "")
