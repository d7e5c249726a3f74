"""Markdown runbooks from the inventory + catalog, and their HTML (markdown-it-py)."""

from __future__ import annotations

import re
from datetime import datetime

from lifeboat.inventory import PROJECT_ROOT, format_duration
from lifeboat.layout import Layout

DOCS = PROJECT_ROOT / "docs" / "datastores"
# Sections of docs/datastores/<engine>.md whose commands a runbook quotes (headings matched loosely).
_SECTIONS = re.compile(r"(fetch|find|register|restore|point in time|logical dump|verify)", re.I)
PLAN = {  # DR plan 재해 시나리오: cause, impact, expected recovery time
    "region-loss": ("Scenario 1: loss of the primary region", "natural disaster, power loss, network partition",
                    "the whole service is down", "2-4 hours"),
    "database-failure": ("Scenario 2: database failure", "hardware failure, data corruption",
                         "data cannot be reached", "1-2 hours"),
    "service-failure": ("Scenario 3: service failure", "application error, resource exhaustion",
                        "one service is down", "30 minutes - 1 hour"),
}


def doc_commands(engine: str) -> list[tuple[str, str]]:
    """(heading, fenced code) of the restore-related sections of docs/datastores/<engine>.md."""
    path = DOCS / f"{engine}.md"
    if not path.exists():
        return []
    out, heading = [], ""
    for block in re.split(r"(?m)^(## .*)$", path.read_text()):
        if block.startswith("## "):
            heading = block[3:].strip()
            continue
        if heading and _SECTIONS.search(heading):
            for code in re.findall(r"```(?:bash|sh)?\n(.*?)```", block, re.S):
                out.append((heading, code.rstrip()))
    return out


def _facts(inv, repo, now: datetime) -> dict:
    """Per datastore: newest verified backup per series, newest backup, latest drill."""
    from lifeboat.catalog import Catalog

    cat = Catalog(repo)
    drills = [d for d in repo.drills() if d.verdict != "running"]
    out = {}
    for spec in inv.enabled_datastores():
        backups = cat.backups(spec.name)
        vmap = cat.verification_map(spec.name)
        series = {}
        for s in sorted({m.series for m in backups}):
            mine = [m for m in backups if m.series == s]
            ok = [m for m in mine if vmap.get(m.id) is not None and vmap[m.id].ok]
            series[s] = {"verified": ok[-1] if ok else None, "verification": vmap.get(ok[-1].id) if ok else None,
                         "newest": mine[-1]}
        latest = [d for d in drills if d.datastore == spec.name]
        out[spec.name] = {"spec": spec, "series": series, "drill": latest[-1] if latest else None,
                          "objectives": inv.objectives_for(spec.name)}
    return out


def _contacts(inv) -> str:
    a = inv.alerts
    lines = ["## Contacts", "", "| who | role | e-mail |", "|---|---|---|"]
    lines += [f"| {c.name} | {c.role} | {', '.join(c.email)} |" for c in a.contacts.values()]
    lines += ["", "## Escalation path", "",
              f"Unacknowledged {' / '.join(a.escalation.severities)} incidents escalate (acknowledge on the "
              "Disaster Recovery page or `python -m lifeboat incidents ack <id> --by <you>`):", ""]
    for lv in a.escalation.levels:
        who = ", ".join(f"{a.contacts[c].name} ({', '.join(a.contacts[c].email)})" for c in lv.contacts)
        via = ", ".join(lv.channels) or ("the severity's route: " + "; ".join(
            f"{s} -> {', '.join(a.routes.get(s, []))}" for s in a.escalation.severities))
        lines.append(f"{lv.level}. **{lv.name}** after {format_duration(lv.after)}: {via}"
                     + (f"; {who}" if who else ""))
    return "\n".join(lines) + "\n"


def _backup_lines(name: str, f: dict) -> list[str]:
    lines = []
    for s, row in f["series"].items():
        v, vm = row["verified"], row["verification"]
        if v is None:
            lines.append(f"- **{s}**: no verified backup; newest unverified `{row['newest'].id}` — verify it first")
            continue
        lines.append(f"- **{s}**: `{v.id}` (finished {v.finished_at:%Y-%m-%d %H:%M} UTC, verified "
                     f"{vm.verified_at:%Y-%m-%d %H:%M} UTC)" + (f", native `{v.native.get('label')}`"
                                                               if v.native.get("label") else ""))
        if v.restore_hint:
            lines.append(f"  - restore: `{v.restore_hint}`")
        if row["newest"].id != v.id:
            lines.append(f"  - newer but not verified yet: `{row['newest'].id}`")
    return lines or [f"- {name}: **no backup in the catalog**"]


def datastore_runbook(inv, f: dict, now: datetime) -> str:
    spec, obj, d = f["spec"], f["objectives"], f["drill"]
    lines = [f"# Runbook: restore {spec.name} ({spec.engine})", "",
             f"Generated {now:%Y-%m-%d %H:%M} UTC from the inventory ({inv.source}) and the catalog. Objectives: "
             f"RTO {format_duration(obj.rto)}, RPO {format_duration(obj.rpo)}.", "",
             "## Newest verified backups", "", *_backup_lines(spec.name, f), ""]
    if d is not None:
        lines += [f"Latest drill `{d.id}`: **{d.verdict}**, RTO {format_duration(d.rto_seconds)}, "
                  f"RPO {format_duration(d.rpo_seconds)} (backup `{d.backup_id}`).", ""]
    lines += ["## Connections", "", *[f"- {r}: Airflow connection `{c}`" for r, c in spec.connections.items()], "",
              "## Checklist", "",
              "- [ ] Incident acknowledged; the DR manager informed (contacts below)",
              "- [ ] Catalog copy chosen: the standby region's when the primary is gone",
              "- [ ] Newest verified backup fetched and its files' sha256 checked against `manifest.json`",
              "- [ ] Restored with the commands below into the target (never over a live primary by mistake)",
              "- [ ] Data verified: counts in `manifest.json` (`counts`) match; newest heartbeat noted (= data loss)",
              "- [ ] Services restarted and `/health` + `/ready` answer 200",
              "- [ ] Performance back at the pre-incident baseline (platform API error rate and p95 latency)",
              "- [ ] Incident resolved; times recorded for the monthly review", "",
              f"## Commands (docs/datastores/{spec.engine}.md)", ""]
    for heading, code in doc_commands(spec.engine):
        lines += [f"### {heading}", "", "```bash", code, "```", ""]
    return "\n".join(lines) + "\n" + _contacts(inv)


def scenario_runbook(inv, facts: dict, scenario: str, now: datetime) -> str:
    title, cause, impact, expected = PLAN[scenario]
    fo = inv.failover
    standby, primary = inv.regions.standby, inv.regions.primary
    lines = [f"# Runbook: {title}", "",
             f"Cause: {cause}. Impact: {impact}. Expected recovery time: {expected} (objective RTO "
             f"{format_duration(inv.objectives.rto)}, RPO {format_duration(inv.objectives.rpo)}). Generated "
             f"{now:%Y-%m-%d %H:%M} UTC.", ""]
    if scenario == "region-loss":
        order = (fo.order if fo and fo.order else list(facts))
        lines += ["## 1. Activate the standby region", "",
                  f"- [ ] Trigger `lifeboat_failover` in {standby}'s Airflow: `target_region={standby}`, "
                  f"`scope=region`, `dry_run=false`, `confirm={standby}`, a reason; approve it (docs/failover.md)",
                  f"- [ ] Without Airflow: `PYTHONPATH=plugins python -m lifeboat --region {standby} catalog "
                  "<datastore>` shows what the standby copy holds", "",
                  "## 2. Recover the databases (in this order)", ""]
        for name in [n for n in order if n in facts]:
            how = ("promoted by lifeboat_failover" if facts[name]["spec"].engine in ("postgres", "redis")
                   else f"manual: {Layout.runbook(name, 'datastores')}")
            lines += [f"### {name}", "", *_backup_lines(name, facts[name]), f"- [ ] Promoted or restored ({how})", ""]
        lines += ["## 3. Restart the services", ""]
        for svc in (fo.services if fo else []):
            lines.append(f"- [ ] `kubectl -n {svc.namespace} scale deployment/{svc.deployment or svc.name} "
                         f"--replicas={svc.replicas}` then `kubectl -n {svc.namespace} rollout restart "
                         f"deployment/{svc.deployment or svc.name}`; `{svc.ready.get(standby, '/ready')}` answers 200")
        lines += ["", "## 4. Switch traffic", ""]
        for rec in (fo.traffic.records if fo and fo.traffic else []):
            lines.append(f"- [ ] Route 53 `{rec.name}` {rec.type} -> `{rec.targets.get(standby)}` "
                         f"(was `{rec.targets.get(primary)}`), TTL {rec.ttl}")
    elif scenario == "database-failure":
        lines += ["## 1. Restore from backup", ""]
        for name, f in facts.items():
            lines += [f"### {name} ({f['spec'].engine})", "", *_backup_lines(name, f),
                      f"- [ ] Restored following {Layout.runbook(name, 'datastores')}", ""]
        lines += ["## 2. Verify the data", "", "- [ ] Counts match the manifest; newest heartbeat = data lost",
                  "", "## 3. Restart the services", "", "- [ ] `kubectl rollout restart deployment/<service>` for "
                  "each service using the database; `/ready` answers 200"]
    else:
        lines += ["## 1. Restart the service", ""]
        for svc in (fo.services if fo else []):
            dep = svc.deployment or svc.name
            lines += [f"- [ ] `kubectl -n {svc.namespace} rollout restart deployment/{dep}`",
                      f"- [ ] `kubectl -n {svc.namespace} rollout status deployment/{dep}`; "
                      f"`{svc.health.get(primary, '/health')}` and `{svc.ready.get(primary, '/ready')}` answer 200"]
        lines += ["", "## 2. Adjust the load balancer", "", "- [ ] Unhealthy targets drained; replicas back at the "
                  "HPA minimum", "", "## 3. Check the monitoring", ""]
    lines += ["", "## Verification and monitoring", "",
              "- [ ] Service status: every service's `/health` and `/ready` answer 200",
              "- [ ] Data integrity: counts against the manifests; newest heartbeat per datastore recorded",
              "- [ ] Performance: `rate(platform_api_request_errors_total[5m])` and the p95 of "
              "`platform_api_request_duration_seconds` back at the pre-incident baseline (Prometheus)",
              "- [ ] `lifeboat_monitor` shows no open critical/high finding", ""]
    return "\n".join(lines) + "\n" + _contacts(inv)


def index(inv, facts: dict, now: datetime) -> str:
    from lifeboat.runbooks import SCENARIOS

    lines = [f"# Runbooks — {inv.platform}", "", f"Generated {now:%Y-%m-%d %H:%M} UTC. Regions: primary "
             f"{inv.regions.primary}, standby {inv.regions.standby}.", "", "## Scenarios", ""]
    lines += [f"- [{PLAN[s][0]}](scenarios/{s}.html) (`python -m lifeboat runbook {s}`)" for s in SCENARIOS]
    lines += ["", "## Datastores", ""] + [f"- [{n}](datastores/{n}.html)" for n in facts]
    return "\n".join(lines) + "\n\n" + _contacts(inv)


def build(inv, repo, now: datetime) -> dict[str, str]:
    from lifeboat.runbooks import SCENARIOS

    facts = _facts(inv, repo, now)
    out = {Layout.runbook("index"): index(inv, facts, now)}
    out.update({Layout.runbook(s, "scenarios"): scenario_runbook(inv, facts, s, now) for s in SCENARIOS})
    out.update({Layout.runbook(n, "datastores"): datastore_runbook(inv, f, now) for n, f in facts.items()})
    return out


def to_html(markdown: str, title: str) -> str:
    from html import escape

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    body = body.replace("<li>[ ] ", '<li><input type="checkbox" disabled> ')
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title><style>"
            "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
            "code,pre{background:#f3f5f8}pre{padding:.6rem;overflow-x:auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccd;padding:.2rem .5rem}</style></head><body>" + body + "</body></html>\n")


def title_of(markdown: str) -> str:
    first = markdown.splitlines()[0] if markdown else ""
    return first.lstrip("# ").strip() or "Runbook"
