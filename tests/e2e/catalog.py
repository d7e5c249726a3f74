"""A realistic catalog for the DR page, written with Lifeboat's own repository API.

Nothing here is a mock: manifests are committed with `Repository.put_artifact()` + `commit()` (real
files, real sha256), verifications and drills are the same records the DAGs write, and the standby
region's copy is made by `Repository.mirror()`.

Four datastores (all of engine postgres, the engine implemented today):
- postgres   healthy; one drill four months ago missed its RPO (WAL archive gap), the rest pass
- analytics  healthy; its RTO runs close to the objective (amber)
- ledger     the latest drill missed its RTO and the newest backup failed verification
- search_pg  just added to the inventory: no backup, never drilled
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lifeboat.drills import drill_id
from lifeboat.records import Check, Drill, DrillStep, Manifest, Verification
from tests.ops_seed import INVENTORY_HEAD, POSTGRES_DATASTORE

PRIMARY, STANDBY = "us-west-2", "us-east-1"
DAG_ID = "lifeboat_restore_test_monthly"

INVENTORY = INVENTORY_HEAD + "datastores:\n" + POSTGRES_DATASTORE + """\
  # the other datastores in flow style: one line of intent each
  analytics: {{engine: postgres, connections: {{{primary}: lifeboat_pg_analytics}}, objectives: {{rto: 1h, rpo: 1h}},
              backups: {{full: {{schedule: "0 1 * * *"}}, logical: {{schedule: "30 1 * * *"}}}},
              options: {{stanza: analytics, databases: [analytics]}}}}
  ledger: {{engine: postgres, connections: {{{primary}: lifeboat_pg_ledger}}, objectives: {{rto: 30m, rpo: 5m}},
           backups: {{full: {{schedule: "0 2 * * 0"}}, incr: {{schedule: "0 * * * *"}}}},
           options: {{stanza: ledger, databases: [ledger]}}}}
  search_pg: {{engine: postgres, connections: {{{primary}: lifeboat_pg_search}},
              backups: {{full: {{schedule: "0 4 * * *"}}}}, options: {{stanza: search, databases: [search]}}}}
"""


def write_inventory(path: Path, primary_url: str, standby_url: str, workdir: Path) -> Path:
    path.write_text(INVENTORY.format(primary=PRIMARY, standby=STANDBY, primary_url=primary_url,
                                     standby_url=standby_url, workdir=workdir))
    return path


# -- backups ---------------------------------------------------------------------------------------------
_KINDS = {  # datastore -> kind -> (series, ages of its backups, hours)
    "postgres": {"full": ("physical", [50, 218]), "diff": ("physical", [26, 2]), "incr": ("physical", [0.4, 1.4, 2.4]),
                 "logical": ("logical", [1.6, 25.6, 49.6])},
    "analytics": {"full": ("physical", [3, 27, 51]), "logical": ("logical", [2.5, 26.5])},
    "ledger": {"full": ("physical", [74, 242]), "incr": ("physical", [0.7, 1.7, 2.7])},
}


def _backups(repo, staging: Path, now: datetime) -> dict[str, list[Manifest]]:
    out: dict[str, list[Manifest]] = {}
    rnd = random.Random(7)
    for ds, kinds in _KINDS.items():
        made = []
        for kind, (series, ages) in kinds.items():
            for age in ages:
                finished = (now - timedelta(hours=age)).replace(microsecond=0)
                started = finished - timedelta(minutes=rnd.randint(2, 40) if kind != "incr" else rnd.randint(1, 4))
                backup_id = f"{ds}-{kind}-{started.strftime('%Y%m%dT%H%M%SZ')}"
                art = staging / backup_id / "backup.tar"
                art.parent.mkdir(parents=True, exist_ok=True)
                art.write_bytes(rnd.randbytes(2048 + rnd.randint(0, 4096)))
                artifact = repo.put_artifact(ds, backup_id, "backup.tar", art)
                m = Manifest(
                    id=backup_id, datastore=ds, engine="postgres", kind=kind, series=series, region=PRIMARY,
                    started_at=started, finished_at=finished, artifacts=[artifact],
                    counts={"public.users": 500, "public.posts": 2000},
                    native={"repo_size": rnd.randint(40, 900) * 1024 * 1024} if series == "physical" else {},
                    tools={"pgbackrest": "2.57.0", "postgres": "15.14"}, source=f"lifeboat_pg_{ds}",
                    run={"dag_id": "lifeboat_backup", "run_id": f"scheduled__{finished.isoformat()}"},
                    restore_hint=("pgbackrest --stanza=<stanza> restore" if series == "physical"
                                  else "pg_restore -d <db> <dir>"),
                )
                made.append(repo.commit(m))
        out[ds] = sorted(made, key=lambda m: m.finished_at)
    return out


def _verifications(repo, backups: dict[str, list[Manifest]]) -> None:
    for ds, ms in backups.items():
        for m in ms:
            broken = ds == "ledger" and m is ms[-1]
            checks = [
                Check(name="pgbackrest verify", ok=True, detail="archive and backup checks passed"),
                Check(name="artifact sha256", ok=not broken,
                      detail="backup.tar: sha256 differs from the manifest" if broken else "1 artifact(s) match"),
                Check(name="chain", ok=True, detail="parent present"),
            ]
            repo.save_verification(Verification(backup_id=m.id, datastore=ds, ok=not broken, checks=checks,
                                                verified_at=m.finished_at + timedelta(minutes=6)))


# -- drills --------------------------------------------------------------------------------------------
_STEPS = [  # name, share of the restore window (None: outside it), detail
    ("choose backup", None, "{backup} (newest verified physical backup)"),
    ("prepare scratch instance", None, "scratch PGDATA on a free port, unix socket only"),
    ("pgbackrest restore", 0.46, "restored 1.1 GiB with 2 processes"),
    ("replay to the backup's restore point", 0.16, "recovery_target_name reached"),
    ("compare row counts", 0.05, "3 tables match the manifest"),
    ("roll forward to the newest WAL", 0.33, "replayed 41 WAL segments"),
    ("find newest heartbeat", None, "lifeboat.heartbeat newest row"),
    ("pg_amcheck", None, "0 corruption reports"),
    ("restore logical dump beside it", None, "pg_restore -j 2: 12 tables"),
    ("tear down scratch instance", None, "stopped and removed"),
]

_DRILL_PLAN = {  # datastore -> per month, oldest first: (measured RTO, measured RPO) in minutes
    "postgres": [(31, 3.2), (27, 4.1), (29, 22.5), (24, 2.9), (26, 6.4), (22, 2.2)],
    "analytics": [(38, 31), (41, 22), (46, 35), (44, 18), (52, 27), (49, 24)],
    "ledger": [(14, 1.6), (17, 2.2), (19, 1.1), (22, 2.8), (24, 1.9), (41, 3.6)],
}


def _drill(ds: str, started: datetime, rto_min: float, rpo_min: float, objectives, backup_id: str | None,
           map_index: int) -> Drill:
    restore_window = timedelta(minutes=rto_min)
    t = started
    steps = []
    restore_started = ready = None
    for name, share, detail in _STEPS:
        if share is None:
            dur = timedelta(seconds=4 if name == "choose backup" else 9 if "heartbeat" in name else 35)
        else:
            dur = restore_window * share
        if name == "pgbackrest restore":
            restore_started = t
        steps.append(DrillStep(name=name, started_at=t, finished_at=t + dur, ok=True,
                               detail=detail.format(backup=backup_id or "-")))
        t = t + dur
        if name.startswith("roll forward"):
            ready = t
    d = Drill(
        id=drill_id(ds, "restore_test", started), type="restore_test", datastore=ds, scope=[ds], backup_id=backup_id,
        started_at=started, finished_at=t, steps=steps, restore_started_at=restore_started, ready_at=ready,
        newest_heartbeat_at=started - timedelta(minutes=rpo_min),
        rto_seconds=(ready - restore_started).total_seconds(), rpo_seconds=rpo_min * 60,
        objective_rto_seconds=objectives.rto.total_seconds(), objective_rpo_seconds=objectives.rpo.total_seconds(),
        run={"dag_id": DAG_ID, "run_id": f"scheduled__{started.replace(second=0).isoformat()}",
             "task_id": "restore_test", "map_index": str(map_index)},
    )
    reasons = []
    if d.rto_seconds > d.objective_rto_seconds:
        reasons.append(f"RTO {d.rto_seconds / 60:.1f}m exceeds objective {d.objective_rto_seconds / 60:.1f}m")
    if d.rpo_seconds > d.objective_rpo_seconds:
        reasons.append(f"RPO {d.rpo_seconds / 60:.1f}m exceeds objective {d.objective_rpo_seconds / 60:.1f}m")
    d.reasons, d.verdict = reasons, "fail" if reasons else "pass"
    return d


def _drills(repo, inv, backups: dict[str, list[Manifest]], now: datetime) -> list[Drill]:
    out = []
    first = now.replace(day=1, hour=4, minute=0, second=0, microsecond=0)
    if first > now:
        first = (first - timedelta(days=1)).replace(day=1)
    months = []
    m = first
    for _ in range(6):
        months.append(m)
        m = (m - timedelta(days=1)).replace(day=1)
    months.reverse()
    for map_index, (ds, plan) in enumerate(_DRILL_PLAN.items()):
        physical = [b for b in backups.get(ds, []) if b.series == "physical"]
        for month, (rto, rpo) in zip(months, plan, strict=True):
            started = month + timedelta(seconds=20 + 7 * map_index)
            before = [b for b in physical if b.finished_at < started]
            d = _drill(ds, started, rto, rpo, inv.objectives_for(ds), before[-1].id if before else
                       f"{ds}-full-{(started - timedelta(days=3)).strftime('%Y%m%dT030000Z')}", map_index)
            repo.save_drill(d)
            out.append(d)
    return out


def seed(root: Path, now: datetime | None = None) -> dict:
    """Seed <root>/repo-us-west-2 (and mirror it to <root>/repo-us-east-1). Returns what it wrote."""
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    now = now or datetime.now(UTC)
    inv_path = write_inventory(root / "inventory.yaml", f"file://{root}/repo-{PRIMARY}",
                               f"file://{root}/repo-{STANDBY}", root / "work")
    # both regions' repositories exist, as provisioned buckets do: Lifeboat never creates the other region's
    # copy (a missing one means that region is gone), so the mirror below needs the folder to be there
    (root / f"repo-{STANDBY}").mkdir(parents=True, exist_ok=True)
    inv = load_inventory(inv_path)
    repo = Repository.from_inventory(inv)
    backups = _backups(repo, root / "staging", now)
    _verifications(repo, backups)
    drills = _drills(repo, inv, backups, now)
    mirrored = repo.mirror()
    return {"inventory": inv_path, "backups": backups, "drills": drills, "mirror": mirrored.as_dict()}


if __name__ == "__main__":  # seed a directory by hand: python -m tests.e2e.catalog /tmp/dr-demo
    import sys

    result = seed(Path(sys.argv[1]).resolve())
    print(result["inventory"], len(result["drills"]), "drills", result["mirror"])
