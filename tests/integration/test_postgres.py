"""PostgreSQL against the real local stack: pgBackRest, WAL archiving, pg_dump, scratch restores."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lifeboat import jobs
from lifeboat.catalog import Catalog
from lifeboat.datastores.postgres import ScratchInstance
from lifeboat.drills import DrillRecorder
from lifeboat.inventory import Objectives, Retention
from lifeboat.records import utcnow
from tests.damage import flip_byte, flipped

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def pgbr(env, *args, check=True):
    return subprocess.run(["runuser", "-u", "postgres", "--", "pgbackrest",
                           f"--config={env['LIFEBOAT_PGBACKREST_CONF']}", "--stanza=community", *args],
                          capture_output=True, text=True, check=check)


def make_probe(pg, name):
    pg.execute(f"DROP TABLE IF EXISTS {name}")
    pg.execute(f"CREATE TABLE {name} (id serial PRIMARY KEY, batch text NOT NULL, "
               "at timestamptz DEFAULT clock_timestamp())")


def switch_and_wait_archived(pg):
    lsn = pg.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    wal = pg.execute("SELECT pg_walfile_name(%s)", (lsn,)).fetchone()[0]
    pg.execute("SELECT pg_switch_wal()")
    deadline = time.time() + 60
    while time.time() < deadline:
        last = pg.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
        if last and last[:24] >= wal:
            return
        time.sleep(0.3)
    raise AssertionError(f"WAL {wal} not archived")


def test_postgres_pitr_restores_exactly_rows_committed_before_target(engine, pg, unique):
    make_probe(pg, "pitr_probe")
    base = engine.backup("full", f"test-pitr-{unique}")
    pg.execute("INSERT INTO pitr_probe (batch) SELECT 'before' FROM generate_series(1, 100)")
    time.sleep(1.2)
    target = pg.execute("SELECT clock_timestamp()").fetchone()[0]
    time.sleep(1.2)
    pg.execute("INSERT INTO pitr_probe (batch) SELECT 'after' FROM generate_series(1, 50)")
    switch_and_wait_archived(pg)

    scratch = ScratchInstance(engine, f"pitr-{unique}")
    try:
        scratch.restore(base, ["--type=time", f"--target={target.isoformat()}", "--target-action=promote"])
        scratch.start()
        scratch.wait_promoted()
        rows = dict(scratch.connect().execute("SELECT batch, count(*) FROM pitr_probe GROUP BY batch").fetchall())
    finally:
        scratch.destroy()
    assert rows == {"before": 100}
    assert not scratch.root.exists(), "scratch target must be torn down"


def test_postgres_restore_test_drill_measures_rto_and_rpo(engine, pg, unique):
    jobs.heartbeat("postgres")
    full = engine.backup("full", f"test-drill-{unique}")
    logical = engine.backup("logical", f"test-drill-logical-{unique}")
    assert logical.counts == dict(logical.counts.items()) and logical.counts["community.public.users"] > 0
    pg.execute("INSERT INTO posts (user_id, title, body) VALUES (1, 'after backup', 'x')")
    hb = jobs.heartbeat("postgres")
    switch_and_wait_archived(pg)

    result = jobs.restore_test("postgres", full.id, "latest", run={"dag_id": "pytest", "run_id": unique})
    drill = engine.ctx.repo.drill(result["drill_id"])
    assert drill.verdict == "pass", drill.reasons
    assert drill.backup_id == full.id
    assert 0 < drill.rto_seconds < drill.objective_rto_seconds
    # The heartbeat written after the backup was replayed from archived WAL: RPO is the time since it.
    assert drill.newest_heartbeat_at.isoformat() >= hb["written_at"]
    assert 0 <= drill.rpo_seconds < 120
    names = [s.name for s in drill.steps]
    assert "row counts at restore point" in names and "pg_amcheck" in names
    assert any(n.startswith("pg_restore logical dump") for n in names)
    assert all(s.ok for s in drill.steps), [(s.name, s.detail) for s in drill.steps if not s.ok]


def test_postgres_restore_point_counts_are_exact_under_concurrent_writes(engine, seeded, unique):
    """Writers keep inserting while the backup takes its counts; the restored counts still match."""
    stop = time.time() + 6
    writer = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "seed_community.py"), "--traffic", "6",
                               "--rate", "50"], env=os.environ.copy())
    try:
        m = engine.backup("incr", f"test-concurrent-{unique}")
    finally:
        writer.wait(timeout=max(1, stop - time.time()) + 10)
    scratch = ScratchInstance(engine, f"counts-{unique}")
    try:
        scratch.restore(m, ["--type=name", f"--target={m.position['restore_point']}", "--target-action=pause"])
        scratch.start()
        scratch.wait_paused()
        assert scratch.counts(m.counts) == m.counts
    finally:
        scratch.destroy()


def test_postgres_backup_restores_with_plain_pgbackrest_and_pg_restore(engine, stack_env, pg, scratch_dir, unique):
    """Restorable without us: only pgbackrest, pg_ctl, psql and pg_restore, driven by the manifest's hint."""
    m = engine.backup("full", f"test-plain-{unique}")
    logical = engine.backup("logical", f"test-plain-logical-{unique}")
    data = scratch_dir / "data"
    data.mkdir(parents=True)
    subprocess.run(["chown", "-R", "postgres:postgres", str(scratch_dir)], check=True)
    os.chmod(data, 0o700)
    assert "pgbackrest --stanza=community --set=" in m.restore_hint
    pgbr(stack_env, f"--pg1-path={data}", f"--set={m.native['label']}", "--type=name",
         f"--target={m.position['restore_point']}", "--target-action=promote", "--archive-mode=off", "restore")
    port = engine.free_port()
    pg_ctl = Path(stack_env["LIFEBOAT_PG_BIN"]) / "pg_ctl"
    subprocess.run(["runuser", "-u", "postgres", "--", str(pg_ctl), "-D", str(data), "-l", str(scratch_dir / "log"),
                    "-o", f"-c port={port} -c listen_addresses='' -c unix_socket_directories={scratch_dir}",
                    "-w", "start"], check=True)
    try:
        deadline = time.time() + 60
        while True:
            out = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-h", str(scratch_dir), "-p", str(port),
                                  "-d", "community", "-tAc", "SELECT pg_is_in_recovery(), count(*) FROM users"],
                                 capture_output=True, text=True, check=False)
            if out.returncode == 0 and out.stdout.startswith("f|"):
                break
            assert time.time() < deadline, out.stderr
            time.sleep(0.5)
        assert int(out.stdout.strip().split("|")[1]) == m.counts["community.public.users"]
        # The logical dump, with plain pg_restore into a fresh database of that instance.
        # As an operator would: fetch the dump folder from the repository, hand it to the postgres user.
        dump = scratch_dir / "community.dir"
        shutil.copytree(engine.ctx.repo.primary.local_path(f"postgres/backups/{logical.id}/community.dir"), dump)
        subprocess.run(["chown", "-R", "postgres:postgres", str(dump)], check=True)
        subprocess.run(["runuser", "-u", "postgres", "--", "createdb", "-h", str(scratch_dir), "-p", str(port),
                        "plain"], check=True)
        subprocess.run(["runuser", "-u", "postgres", "--", "pg_restore", "-h", str(scratch_dir), "-p", str(port),
                        "--no-owner", "-d", "plain", str(dump)], check=True)
        out = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-h", str(scratch_dir), "-p", str(port),
                              "-d", "plain", "-tAc", "SELECT count(*) FROM comments"], capture_output=True, text=True,
                             check=True)
        assert int(out.stdout) == logical.counts["community.public.comments"]
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", str(pg_ctl), "-D", str(data), "-m", "immediate", "stop"],
                       check=False)


def test_postgres_flipped_byte_in_logical_dump_fails_verification_naming_file(engine, unique):
    m = engine.backup("logical", f"test-flip-logical-{unique}")
    victim = max(m.artifacts, key=lambda a: a.size)
    flip_byte(engine.ctx.repo.primary.local_path(f"postgres/backups/{m.id}/{victim.path}"))
    (v,) = engine.verify([m])
    assert not v.ok
    bad = [c for c in v.checks if not c.ok]
    assert bad[0].name == "artifact checksums"
    assert f"postgres/backups/{m.id}/{victim.path}" in bad[0].detail
    # the failure is stored next to the backup
    assert Catalog(engine.ctx.repo).last_verification("postgres", m.id).ok is False


def test_postgres_flipped_byte_in_pgbackrest_file_fails_verification_naming_file(engine, stack_env, unique):
    m = engine.backup("full", f"test-flip-physical-{unique}")
    (v,) = engine.verify([m])
    assert v.ok, v.problems
    repo_path = Path(stack_env["LIFEBOAT_STACK_DIR"]) / "repo" / "us-west-2" / "postgres" / "pgbackrest"
    backup_dir = repo_path / "backup" / "community" / m.native["label"] / "pg_data"
    victim = max((p for p in backup_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    with flipped(victim):
        (v,) = engine.verify([m])
    (repaired,) = engine.verify([m])
    assert repaired.ok, repaired.problems  # the same backup verifies again once the byte is back
    assert not v.ok
    check = next(c for c in v.checks if c.name == "pgbackrest verify")
    assert not check.ok
    rel = victim.relative_to(backup_dir).as_posix().rsplit(".", 1)[0]  # pgBackRest names the file w/o compression ext
    assert rel.split("/")[-1] in check.detail, check.detail


def test_postgres_killed_backup_is_not_listed_as_complete(engine, stack_env, unique, tmp_path):
    marker = tmp_path / "paused"
    env = {**os.environ, "LIFEBOAT_TEST_PAUSE_BEFORE_COMMIT": str(marker), "PYTHONPATH": str(ROOT / "plugins")}
    at = "2030-01-01T00:00:00+00:00"
    proc = subprocess.Popen([sys.executable, "-m", "lifeboat", "backup", "postgres", "--kind", "logical", "--at", at],
                            env=env, start_new_session=True)
    deadline = time.time() + 120
    while not marker.exists():
        assert proc.poll() is None, "backup exited before reaching the pause point"
        assert time.time() < deadline
        time.sleep(0.2)
    backup_id = marker.read_text()
    os.killpg(proc.pid, signal.SIGKILL)  # every artifact is written; only the manifest is missing
    proc.wait()
    try:
        assert list(engine.ctx.repo.primary.list(f"postgres/backups/{backup_id}/")), "artifacts were written"
        assert backup_id not in [m.id for m in Catalog(engine.ctx.repo).backups("postgres")]
        assert backup_id in engine.ctx.repo.incomplete("postgres")
        out = subprocess.run([sys.executable, "-m", "lifeboat", "catalog", "postgres"],
                             env={**env, "LIFEBOAT_TEST_PAUSE_BEFORE_COMMIT": ""},
                             capture_output=True, text=True, check=True).stdout
        assert f"{backup_id}" in out and "INCOMPLETE" in out
    finally:
        engine.ctx.repo.delete_backup("postgres", backup_id)


def test_postgres_killed_pgbackrest_backup_is_not_listed(engine, stack_env, pg, unique):
    pg.execute("CREATE TABLE IF NOT EXISTS bulk AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 600000) g")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    proc = subprocess.Popen([sys.executable, "-m", "lifeboat", "backup", "postgres", "--kind", "full", "--at",
                             "2030-01-02T00:00:00+00:00"], env=env, start_new_session=True)
    deadline = time.time() + 60
    while True:  # wait until pgBackRest is copying files, then kill everything
        ps = subprocess.run(["pgrep", "-f", "pgbackrest.*backup"], capture_output=True, text=True,
                            check=False).stdout.split()
        if ps:
            break
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    subprocess.run(["pkill", "-9", "-f", "pgbackrest.*--type=full.*backup"], check=False)
    proc.wait()
    labels = {m.id for m in Catalog(engine.ctx.repo).backups("postgres")}
    assert "postgres-full-20300102T000000Z" not in labels
    # pgBackRest recovers: the stale lock is gone with the process and the next backup succeeds.
    m = engine.backup("full", f"test-after-kill-{unique}")
    assert m.native["label"]
    pg.execute("DROP TABLE bulk")


def test_postgres_retention_keeps_dependencies_and_expires_with_pgbackrest(engine, stack_env, unique):
    f1 = engine.backup("full", f"test-ret-f1-{unique}")
    i1 = engine.backup("incr", f"test-ret-i1-{unique}")
    assert i1.parent == f1.id, "an incremental records the backup it depends on"
    cat = Catalog(engine.ctx.repo)
    keep_one = Retention(keep_last=1, keep_within="0s", keep_daily=0, keep_weekly=0, keep_monthly=0)
    plan = cat.retention_plan("postgres", keep_one)
    assert i1.id in plan.keep and f1.id in plan.keep, "the base of a retained incremental is retained"
    assert f"base of {i1.id}" in plan.keep[f1.id]

    f2 = engine.backup("full", f"test-ret-f2-{unique}")
    plan = cat.retention_plan("postgres", keep_one)
    ids = [m.id for m in plan.delete]
    assert f2.id in plan.keep and i1.id in ids and f1.id in ids
    assert ids.index(i1.id) < ids.index(f1.id)
    for m in plan.delete:
        engine.delete_backup(m)
    labels = {b["label"] for b in engine._info()["backup"]}
    assert f2.native["label"] in labels
    assert f1.native["label"] not in labels and i1.native["label"] not in labels
    (v,) = engine.verify([f2])
    assert v.ok, v.problems


def test_postgres_wal_gap_fails_continuity_naming_range(engine, stack_env, pg, unique, tmp_path):
    m = engine.backup("full", f"test-walgap-{unique}")
    for _ in range(2):  # two more segments after the restore point
        jobs.heartbeat("postgres")
        switch_and_wait_archived(pg)
    archive = (Path(stack_env["LIFEBOAT_STACK_DIR"]) / "repo" / "us-west-2" / "postgres" / "pgbackrest"
               / "archive" / "community")
    segs = sorted(p for p in archive.rglob("*") if p.is_file() and len(p.name) > 24 and p.name[:24].isalnum()
                  and p.name[:24] > m.position["restore_point_wal"])
    assert segs, "expected archived WAL after the backup"
    victim = segs[0]
    hidden = tmp_path / victim.name
    shutil.move(victim, hidden)
    try:
        (v,) = engine.verify([m])
    finally:
        shutil.move(hidden, victim)
    (repaired,) = engine.verify_new([m])
    assert repaired.ok, repaired.problems
    check = next(c for c in v.checks if c.name == "WAL continuity")
    assert not check.ok and victim.name[:24] in check.detail, check.detail


def test_postgres_scratch_never_reuses_live_data_directory(engine, stack_env):
    from lifeboat.errors import Refused

    s = ScratchInstance(engine, "guard")
    s.data = Path(stack_env["LIFEBOAT_PG_PRIMARY_DATA"])
    with pytest.raises(Refused, match="live cluster"):
        s.restore(Catalog(engine.ctx.repo).latest("postgres", series="physical"), ["--type=default"])


def test_postgres_bad_connection_names_the_airflow_connection(engine, monkeypatch):
    from lifeboat.errors import ConnectionConfigError

    uri = os.environ["AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2"]
    monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2", uri.replace("lifeboat:", "lifeboat:wrong", 1)
                       if "lifeboat:" in uri else uri + "x")
    with pytest.raises(ConnectionConfigError, match="lifeboat_pg_us_west_2") as err:
        engine.heartbeat()
    assert "wrong" not in str(err.value), "the password must not appear in the error"


def test_postgres_drill_record_is_mirrored_to_standby(engine, unique):
    rec = DrillRecorder(datastore="postgres", type_="unit", objectives=Objectives(), repo=engine.ctx.repo,
                        started_at=utcnow())
    rec.finish()
    jobs.mirror()
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    east = Repository.from_inventory(load_inventory(), "us-east-1")
    assert rec.drill.id in [d.id for d in east.drills()]
    in_east = {m.id for m in Catalog(east).backups("postgres")}
    assert in_east == {m.id for m in Catalog(engine.ctx.repo).backups("postgres")}


def test_postgres_quick_verification_of_a_new_backup_skips_the_repository_wide_read(engine, unique):
    m = engine.backup("incr", f"test-quick-{unique}")
    (v,) = engine.verify_new([m])
    names = {c.name for c in v.checks}
    assert v.ok, v.problems
    assert "pgbackrest verify" not in names and {"WAL continuity", "backup.manifest checksum", "chain"} <= names
