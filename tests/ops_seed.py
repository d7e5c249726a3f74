"""A catalog for the operations tests (metrics, reports, runbooks), written with Lifeboat's own
repository API -- manifests committed last, verifications, drills, mirrored to the standby region.

postgres: weekly physical fulls (the newest 10 h old: stale against its 2 h limit) and daily logical
dumps (the newest 1 h old); drills on the 1st of every month for six months, the one of NOW's
previous month missing its RPO; two verifications failed in the previous month."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from lifeboat.records import Check, Drill, DrillStep, Manifest, Verification

PRIMARY, STANDBY = "us-west-2", "us-east-1"
# The opening of the test inventories (this one and tests/e2e/catalog.py's): str.format with primary,
# standby, primary_url, standby_url, workdir.
INVENTORY_HEAD = """\
version: 1
platform: community-platform
owner: sre
regions: {{primary: {primary}, standby: {standby}}}
objectives: {{rto: 4h, rpo: 1h}}
repository:
  {primary}: {{url: "{primary_url}"}}
  {standby}: {{url: "{standby_url}"}}
workdir: {workdir}
"""
# The community PostgreSQL of both test inventories (str.format as above).
POSTGRES_DATASTORE = """\
  postgres:
    engine: postgres
    connections: {{{primary}: lifeboat_pg_us_west_2, {standby}: lifeboat_pg_us_east_1}}
    objectives: {{rpo: 15m}}
    backups:
      full: {{schedule: "0 3 * * 0"}}
      diff: {{schedule: "0 3 * * 1-6"}}
      incr: {{schedule: "0 * * * *"}}
      logical: {{schedule: "30 2 * * *"}}
    options: {{stanza: community, databases: [community]}}
"""
INVENTORY = INVENTORY_HEAD + """\
alerts:
  routes: {{critical: [log], high: [log], medium: [log], low: [log]}}
  channels: {{log: {{type: log}}}}
  contacts:
    dr_manager: {{name: DR manager, role: architect, email: dr-manager@community.example.com}}
    sysadmin: {{name: System administrator, role: senior engineer, email: sysadmin@community.example.com}}
    dba: {{name: Database administrator, role: senior engineer, email: dba@community.example.com}}
    security: {{name: Security officer, role: security, email: security@community.example.com}}
datastores:
""" + POSTGRES_DATASTORE


def _manifest(kind: str, series: str, finished: datetime, parent: str | None = None) -> Manifest:
    bid = f"postgres-{kind}-{finished:%Y%m%dT%H%M%SZ}"
    return Manifest(id=bid, datastore="postgres", engine="postgres", kind=kind, series=series, region=PRIMARY,
                    started_at=finished - timedelta(minutes=3), finished_at=finished, parent=parent,
                    native={"label": f"{finished:%Y%m%d-%H%M%S}F"} if series == "physical" else {},
                    restore_hint=f"pgbackrest --stanza=community --set={finished:%Y%m%d-%H%M%S}F restore"
                    if series == "physical" else f"pg_restore -d community postgres/backups/{bid}/community.dump")


def seed(root: Path, now: datetime) -> dict:
    from lifeboat.inventory import parse_inventory
    from lifeboat.repository import Repository

    root = Path(root)
    inv_path = root / "inventory.yaml"
    inv_path.write_text(INVENTORY.format(primary=PRIMARY, standby=STANDBY, primary_url=f"file://{root}/{PRIMARY}",
                                         standby_url=f"file://{root}/{STANDBY}", workdir=root / "work"))
    inv = parse_inventory(inv_path.read_text(), str(inv_path))
    for region in (PRIMARY, STANDBY):  # a region's copy is never created from the other region
        (root / region).mkdir(parents=True, exist_ok=True)
    repo = Repository.from_inventory(inv)
    prev_month_start = (now.replace(day=1) - timedelta(days=1)).replace(day=1, hour=0, minute=0, second=0,
                                                                         microsecond=0)
    backups: list[Manifest] = []
    t = now - timedelta(hours=10)
    while t > now - timedelta(days=120):
        backups.append(_manifest("full", "physical", t))
        t -= timedelta(days=7)
    t = now - timedelta(hours=1)
    while t > now - timedelta(days=120):
        backups.append(_manifest("logical", "logical", t))
        t -= timedelta(days=1)
    for m in backups:
        repo.commit(m)
    failed = []
    for m in backups:
        in_prev = prev_month_start <= m.finished_at < now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        ok = not (in_prev and m.series == "logical" and m.finished_at.day in (3, 4))
        if not ok:
            failed.append(m.id)
        repo.save_verification(Verification(backup_id=m.id, datastore="postgres", verified_at=m.finished_at +
                                            timedelta(minutes=20), ok=ok,
                                            checks=[Check(name="artifact checksums", ok=ok, detail="seeded")]))
    drills = []
    for i in range(6):
        y, mo = divmod(now.year * 12 + now.month - 1 - i, 12)
        start = datetime(y, mo + 1, 1, 4, 0, tzinfo=UTC)
        rto, rpo = 600.0 + 120 * i, 300.0 + 60 * i
        is_prev = start.year == prev_month_start.year and start.month == prev_month_start.month
        if is_prev:
            rpo = 1500.0  # over the 15 min RPO
        d = Drill(id=f"drill-postgres-{start:%Y%m%dT%H%M%S}000Z", type="restore_test", datastore="postgres",
                  scope=["postgres"], backup_id=backups[0].id, started_at=start,
                  finished_at=start + timedelta(seconds=rto + 30), restore_started_at=start + timedelta(seconds=10),
                  ready_at=start + timedelta(seconds=10 + rto), newest_heartbeat_at=start - timedelta(seconds=rpo),
                  rto_seconds=rto, rpo_seconds=rpo, objective_rto_seconds=4 * 3600, objective_rpo_seconds=900,
                  verdict="fail" if rpo > 900 else "pass",
                  reasons=["RPO 25.0m over the objective 15.0m"] if rpo > 900 else [],
                  steps=[DrillStep(name="restore", started_at=start, finished_at=start + timedelta(seconds=rto),
                                   ok=True)],
                  run={"dag_id": "lifeboat_restore_test_monthly", "run_id": f"scheduled__{start:%Y-%m-%dT%H:%M:%S}"})
        repo.save_drill(d)
        drills.append(d)
    chaos = _seed_chaos(repo, prev_month_start)
    repo.mirror()
    return {"inventory": inv_path, "inv": inv, "repo": repo, "backups": backups, "drills": drills,
            "failed_verifications": failed, "prev_month": f"{prev_month_start:%Y-%m}", "chaos": chaos}


def _seed_chaos(repo, month_start: datetime) -> list:
    """Two runs of one failure simulation in the reported month (lifeboat.chaos records)."""
    from lifeboat.chaos.records import ChaosRecord, DataLoss, ProbeStats, resilience_score
    from lifeboat.chaos.store import ChaosStore

    out = []
    for i, (passes, verdict) in enumerate(((9, "pass"), (6, "fail"))):
        at = month_start + timedelta(days=5 + 7 * i, hours=3)
        probes = [ProbeStats(name="http-ready", kind="http", weight=2, polls=10, passes=passes),
                  ProbeStats(name="write-read-postgres", kind="datastore", weight=1, polls=10, passes=10)]
        rec = ChaosRecord(id=f"chaos-api-gateway-pod-delete-{at:%Y%m%dT%H%M%S}000Z",
                          experiment="api-gateway-pod-delete",
                          kind="pod_delete", family="service", environment="drill", started_at=at,
                          detect_seconds=1.5 + i, recover_seconds=6.0 + 4 * i, probes=probes,
                          data_loss=[DataLoss(datastore="postgres", acknowledged=20, lost=i, lost_window_seconds=0.0)],
                          score=resilience_score(probes), verdict=verdict, steady_before=True, steady_after=True)
        ChaosStore(repo).save(rec)
        out.append(rec)
    return out


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
