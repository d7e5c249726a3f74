"""A scratch PostgreSQL's socket folder stays under the unix socket path limit however deep the work
folder is (the fresh-clone run at /tmp/fresh.XXXX/src failed a restore test on a 111-byte path)."""

from pathlib import Path

from lifeboat.datastores.postgres.scratch import SUN_PATH_MAX, socket_folder


def test_a_short_work_folder_keeps_its_socket_folder():
    p = Path("/work/main/.stack-test/work/scratch/postgres-restore-test-20261202T061849623Z/run")
    assert socket_folder(p, 54945) == p


def test_a_deep_work_folder_gets_a_short_private_one_stable_per_folder():
    p = Path("/check/work/main/.stack-regionloss/work/scratch/postgres-restore-test-20261202T061849623Z/run")
    short = socket_folder(p, 54945)
    assert short != p and len(str(short / ".s.PGSQL.54945")) <= SUN_PATH_MAX
    assert short == socket_folder(p, 54945) and short != socket_folder(p.with_name("other"), 54945)
