"""`make demo`: the whole plan on the embedded local stack, through Airflow itself.

1. start the local stack (.stack/), seed the Community Platform sample database, start ongoing writes
2. `airflow db migrate` in ./airflow_home
3. run, with `airflow dags test`: lifeboat_heartbeat, lifeboat_backup_<every datastore> (kind=all),
   lifeboat_verify_weekly, lifeboat_restore_test_monthly
4. print the drill summary (backup ids, measured RTO and RPO, verdict); exit 1 if any drill failed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT), str(ROOT / "scripts")]
VENV_BIN = Path(sys.executable).parent


def sh(argv: list[str], env: dict, check: bool = True, quiet: bool = False) -> int:
    print(f"\n$ {' '.join(argv)}", flush=True)
    out = subprocess.DEVNULL if quiet else None
    rc = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT if quiet else None, check=False).returncode
    if check and rc != 0:
        raise SystemExit(f"demo: `{' '.join(argv)}` failed with exit code {rc}")
    return rc


def main() -> int:
    from airflow_env import airflow_env

    from devstack import stack

    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the finally below stops the background writers
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = datetime.now(UTC)
    env = airflow_env(dict(os.environ), stack.up())
    os.environ.update(env)
    sh([sys.executable, str(ROOT / "scripts" / "seed_community.py")], env)
    from lifeboat.inventory import load_inventory

    names = [ds.name for ds in load_inventory().enabled_datastores()]
    # Ongoing application writes, and heartbeats as the every-minute lifeboat_heartbeat DAG would write them
    # under a scheduler (every 20 s here, so the demo's RPO shows archiving lag, not the demo's pace).
    background = [subprocess.Popen([sys.executable, str(ROOT / "scripts" / "seed_community.py"), "--traffic", "0"],
                                   env=env, start_new_session=True)]
    background += [subprocess.Popen([sys.executable, "-m", "lifeboat", "heartbeat", n, "--every", "20"], env=env,
                                    start_new_session=True) for n in names]
    try:
        sh([str(VENV_BIN / "airflow"), "db", "migrate"], env, quiet=True)
        inv = load_inventory()
        sh([str(VENV_BIN / "airflow"), "dags", "test", "lifeboat_heartbeat"], env)
        for name in names:
            sh([str(VENV_BIN / "airflow"), "dags", "test", f"lifeboat_backup_{name}", "-c", '{"kind": "all"}'], env)
        time.sleep(2)
        sh([str(VENV_BIN / "airflow"), "dags", "test", "lifeboat_heartbeat"], env)  # data written after the backups
        sh([str(VENV_BIN / "airflow"), "dags", "test", "lifeboat_verify_weekly"], env)
        sh([str(VENV_BIN / "airflow"), "dags", "test", "lifeboat_restore_test_monthly"], env, check=False)
    finally:
        for p in background:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait()
    return summary(inv, names, started)


def summary(inv, names: list[str], since: datetime) -> int:
    from lifeboat.catalog import Catalog
    from lifeboat.inventory import format_duration
    from lifeboat.repository import Repository

    repo = Repository.from_inventory(inv)
    cat = Catalog(repo)
    drills = {d.datastore: d for d in repo.drills() if d.started_at >= since and d.type == "restore_test"}
    print("\n" + "=" * 100)
    print(f"Lifeboat drill summary — {inv.platform}, primary {inv.regions.primary}, standby {inv.regions.standby}")
    print("=" * 100)
    print(f"{'datastore':14} {'backups taken in this demo':52} {'RTO':>8} {'RPO':>8}  {'objective RTO/RPO':18} verdict")
    failed = 0
    for name in names:
        taken = [m.id for m in cat.backups(name) if m.finished_at >= since]
        d = drills.get(name)
        obj = inv.objectives_for(name)
        objective = f"{format_duration(obj.rto)}/{format_duration(obj.rpo)}"
        if d is None:
            failed += 1
            print(f"{name:14} {', '.join(taken) or '-':52} {'-':>8} {'-':>8}  {objective:18} NO DRILL RECORDED")
            continue
        failed += d.verdict != "pass"
        print(f"{name:14} {', '.join(taken) or '-':52} {format_duration(d.rto_seconds):>8} "
              f"{format_duration(d.rpo_seconds):>8}  {objective:18} {d.verdict.upper()}")
        print(f"{'':14} drill {d.id}: restored {d.backup_id}")
        for r in d.reasons:
            print(f"{'':14}   - {r}")
    print("-" * 100)
    print("RTO = restore start -> scratch target ready and verified; RPO = drill start -> newest heartbeat "
          "found in the restored data.")
    mirror = repo.mirror_storage.url if repo.mirror_storage else "-"
    print(f"Drill records: {repo.primary.url}/drills/ (mirrored to {mirror})")
    from lifeboat.ui.links import page_url

    print("Airflow UI on the same metadata: make ui   (then open http://127.0.0.1:8080)")
    print(f"Disaster Recovery page: http://127.0.0.1:8080{page_url()}")
    print("=" * 100)
    if failed:
        print(f"demo: {failed} datastore(s) without a passing drill", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
