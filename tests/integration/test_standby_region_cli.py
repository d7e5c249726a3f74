"""The standby region's CLI with the primary region's repository gone (issue 14's measured bug).

`python -m lifeboat --region us-east-1 catalog|verify|restore-test|drills redis` as the runbook runs it, in
subprocesses, against the test stack's real Redis (the us-east-1 replica is that region's server) and a
catalog of this test's own in both regions (file://): a backup is taken, verified and mirrored in
us-west-2, then us-west-2's copy is moved away. Every command must succeed from the us-east-1 copy
alone, and nothing may be written into the missing primary location (it must not be re-created).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WEST, EAST = "us-west-2", "us-east-1"


@pytest.fixture
def two_regions(stack_env, unique):
    if "AIRFLOW_CONN_LIFEBOAT_REDIS_US_EAST_1" not in stack_env:
        pytest.fail("the test stack has no redis component (LIFEBOAT_STACK_COMPONENTS?)")
    base = Path(stack_env["LIFEBOAT_STACK_DIR"]) / "work" / f"standby-cli-{unique}"
    west, east = base / WEST, base / EAST
    west.mkdir(parents=True)
    east.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("LIFEBOAT_REGION", "PYTHONPATH")}
    env.update(stack_env)
    env.update({"LIFEBOAT_REPO_PRIMARY": f"file://{west}", "LIFEBOAT_REPO_STANDBY": f"file://{east}",
                "LIFEBOAT_INVENTORY": str(ROOT / "include" / "inventory.yaml"),
                "LIFEBOAT_WORKDIR": str(base / "work"), "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}"})
    (base / "work").mkdir()
    yield env, west, east
    shutil.rmtree(base, ignore_errors=True)


def lifeboat(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "lifeboat", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout, check=False)
    assert r.returncode == 0, f"lifeboat {' '.join(args)}: rc {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_standby_cli_reads_and_writes_only_the_standby_copy_with_the_primary_repository_gone(two_regions):
    from lifeboat.layout import Layout

    env, west, east = two_regions
    lifeboat(env, "heartbeat", "redis")  # the RPO is measured from it (the replica has it too)
    backup = json.loads(lifeboat(env, "backup", "redis", "--kind", "rdb").stdout)
    assert backup["region"] == WEST and backup["kind"] == "rdb"
    bid = backup["backup_id"]
    assert not json.loads(lifeboat(env, "verify", "redis", "--backup", bid).stdout)["failed"]
    mirrored = json.loads(lifeboat(env, "mirror").stdout)
    assert mirrored["from"] == WEST and mirrored["to"] == EAST, mirrored
    assert (east / Layout.manifest("redis", bid)).is_file(), "the mirror did not copy the backup"

    lost = west.with_name("lost-us-west-2")
    west.rename(lost)  # the primary region's repository is unreachable from here on
    east_before = files_under(east)

    out = lifeboat(env, "--region", EAST, "catalog", "redis").stdout
    line = next((ln for ln in out.splitlines() if ln.startswith(bid)), None)
    assert line is not None and " rdb " in line, out

    v = json.loads(lifeboat(env, "--region", EAST, "verify", "redis", "--backup", bid).stdout)
    assert v["region"] == EAST and v["verified"] == [bid] and not v["failed"], v

    rt = json.loads(lifeboat(env, "--region", EAST, "restore-test", "redis").stdout)
    assert rt["region"] == EAST and rt["backup_id"] == bid and rt["verdict"] == "pass", rt
    drill_key = Layout.drill(rt["drill_id"])
    assert (east / drill_key).is_file(), f"the drill record is not in the us-east-1 copy: {drill_key}"

    drills = lifeboat(env, "--region", EAST, "drills").stdout
    assert rt["drill_id"] in drills and f"backup={bid}" in drills, drills

    assert not west.exists(), "a standby-region command re-created the lost primary repository"
    written = files_under(east) - east_before
    assert drill_key in written
    # what the standby wrote is owed to us-west-2: recorded as pending in the us-east-1 copy
    assert Layout.mirror_pending(EAST, WEST) in written, sorted(written)
    pending = json.loads((east / Layout.mirror_pending(EAST, WEST)).read_text())
    assert drill_key in json.dumps(pending), pending
    print(f"\nstandby CLI with the primary repository gone: backup {bid}, drill {rt['drill_id']} "
          f"(RTO {rt.get('rto_seconds')}s, RPO {rt.get('rpo_seconds')}s), {len(written)} file(s) written in {EAST}")
