"""WAL streaming (options.wal_stream) against the real stack: a real pg_receivewal through a replication
slot, supervised by `python -m lifeboat walstream`; a restore-test drill under steady heartbeat writes
reaches the last seconds before the drill (the partial segment), not the last archived segment."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from lifeboat import jobs
from lifeboat.datastores.postgres import walstream
from lifeboat.records import utcnow

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SLOT = "lifeboat_walstream_test"


@pytest.fixture
def streaming_inventory(stack_env, tmp_path, monkeypatch):
    """include/inventory.yaml with datastores.postgres.options.wal_stream switched on."""
    from lifeboat import inventory

    doc = yaml.safe_load((ROOT / "include" / "inventory.yaml").read_text())
    folder = Path(stack_env["LIFEBOAT_PG_WALSTREAM_DIR"]) / tmp_path.name
    doc["datastores"]["postgres"]["options"]["wal_stream"] = {
        "folder": str(folder), "slot": SLOT, "connections": {"us-west-2": "lifeboat_pg_repl_us_west_2"}}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.setenv("LIFEBOAT_INVENTORY", str(path))
    inventory._CACHE.clear()
    yield folder
    inventory._CACHE.clear()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def streamer(streaming_inventory, pg, tmp_path):
    logfile = tmp_path / "walstream.log"
    with open(logfile, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "lifeboat", "-v", "walstream", "postgres"],
                                env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")}, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not walstream.status(pg, SLOT)["active"]:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"pg_receivewal did not connect (exit {proc.poll()}):\n{logfile.read_text()}")
            time.sleep(0.2)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        deadline = time.monotonic() + 15
        while walstream.status(pg, SLOT)["active"] and time.monotonic() < deadline:
            time.sleep(0.2)
        pg.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                   (SLOT,))


def test_walstream_restore_command_falls_back_to_the_partial_segment(tmp_path):
    """The shell fallback itself: complete segment first, else <segment>.partial, else exit 1."""
    (tmp_path / "wal").mkdir()
    (tmp_path / "wal" / "000000010000000000000007.partial").write_text("partial")
    (tmp_path / "wal" / "000000010000000000000006").write_text("complete")
    cmd = walstream.restore_command("false", tmp_path / "wal")

    def fetch(seg: str) -> str | None:
        out = tmp_path / "out"
        out.unlink(missing_ok=True)
        r = subprocess.run(["sh", "-c", cmd.replace("%f", seg).replace("%p", str(out))], check=False)
        return out.read_text() if r.returncode == 0 else None

    assert fetch("000000010000000000000006") == "complete"
    assert fetch("000000010000000000000007") == "partial"
    assert fetch("000000010000000000000008") is None


def test_walstream_drill_under_steady_writes_measures_rpo_in_seconds(streaming_inventory, streamer, pg,
                                                                      unique):
    from lifeboat.datastores import open_engine

    eng = open_engine("postgres")  # the streaming inventory
    assert eng.options.wal_stream is not None
    stop = threading.Event()
    written: list = []

    def writer() -> None:  # steady writes: a heartbeat every 0.5 s until the simulated failure
        while not stop.is_set():
            written.append(eng.heartbeat())
            stop.wait(0.5)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        full = eng.backup("full", f"test-walstream-{unique}")
        time.sleep(6)  # writes after the backup's last archived segment: only the stream has them
        exposure = eng.exposure()
        assert exposure["WAL stream lag"] is not None and exposure["WAL stream lag"] <= 2, exposure
        assert list(streaming_inventory.glob("*.partial")), "pg_receivewal keeps a partial segment"
    finally:
        stop.set()  # the failure: writes stop, the drill starts at once
        t.join(timeout=10)
    archived_at = pg.execute("SELECT last_archived_time FROM pg_stat_archiver").fetchone()[0]
    last_write = written[-1]
    assert last_write > archived_at, "the newest write must be newer than the last archived segment"
    result = jobs.restore_test("postgres", full.id, "latest", run={"dag_id": "pytest", "run_id": unique})
    drill = eng.ctx.repo.drill(result["drill_id"])
    assert drill.verdict == "pass", drill.reasons
    # RPO = drill start - newest heartbeat in the restored data; the writes of the last seconds were only
    # in the streamed (partial) segment, archive_timeout is 30 s
    assert drill.newest_heartbeat_at == last_write, (drill.newest_heartbeat_at, last_write)
    assert drill.rpo_seconds is not None and drill.rpo_seconds <= 5, drill.rpo_seconds
    print(f"walstream drill: RPO {drill.rpo_seconds:.2f}s (archive only would lose "
          f"{(drill.started_at - archived_at).total_seconds():.1f}s), RTO {drill.rto_seconds:.1f}s, newest heartbeat "
          f"{drill.newest_heartbeat_at.isoformat()} (drill start {drill.started_at.isoformat()}, last archived "
          f"segment {archived_at.isoformat()}), stream lag {exposure['WAL stream lag']}s at {utcnow().isoformat()}")
