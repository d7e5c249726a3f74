"""The SSH runner against a real sshd (Debian openssh-server) on a loopback port: a throw-away host key,
an authorized key, the key and host key from an Airflow ssh connection; PostgreSQL backed up through it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lifeboat.connections import resolve
from lifeboat.errors import CommandFailed, ConnectionConfigError
from lifeboat.net import free_port
from lifeboat.ssh import SSHRunner
from lifeboat.waiting import wait_until

pytestmark = pytest.mark.integration
SSHD = "/usr/sbin/sshd"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if not Path(SSHD).exists():
        pytest.fail(f"{SSHD} missing: apt-get install openssh-server (packages.txt)")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"lifeboat-test-{name}",
                        "-f", str(d / name)], check=True)
    shutil.copy(d / "client.pub", d / "authorized_keys")
    os.chmod(d / "authorized_keys", 0o600)
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        f"PidFile {d / 'sshd.pid'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nPermitUserEnvironment no\n"
        "AcceptEnv none\nLogLevel VERBOSE\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = d / "sshd.log"
    with open(log, "wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until("sshd to listen", lambda: "Server listening" in log.read_text(), 20, 0.1)
        conn = {"conn_type": "ssh", "host": "127.0.0.1", "port": port, "login": "root",
                "extra": {"private_key": (d / "client").read_text(),
                          "host_key": " ".join((d / "host.pub").read_text().split()[:2])}}
        os.environ["AIRFLOW_CONN_LIFEBOAT_TEST_SSH"] = json.dumps(conn)
        yield {"port": port, "log": log, "dir": d}
    finally:
        os.environ.pop("AIRFLOW_CONN_LIFEBOAT_TEST_SSH", None)
        proc.terminate()
        proc.wait(timeout=10)


def test_ssh_runner_runs_on_the_host_with_env_on_stdin_never_argv(sshd):
    r = SSHRunner.from_connection("lifeboat_test_ssh")
    secret = "s3cr3t 'quoted' $HOME"
    out = r.run(["sh", "-c", 'printf "%s|%s" "$LIFEBOAT_SECRET" "$(cat /proc/$$/cmdline | tr "\\0" " ")"'],
                env={"LIFEBOAT_SECRET": secret}, capture=True)
    value, cmdline = out.stdout.split("|", 1)
    assert value == secret  # arrived intact through the channel
    assert "s3cr3t" not in cmdline and all("s3cr3t" not in a for a in r.ssh_argv())
    assert "Accepted publickey for root" in sshd["log"].read_text()
    with pytest.raises(CommandFailed) as e:
        r.run(["sh", "-c", "echo failing >&2; exit 7"])
    assert e.value.returncode == 7 and "failing" in e.value.output_tail


def test_ssh_runner_refuses_an_unknown_host_key_and_passwordless_connections(sshd, tmp_path):
    ep = resolve("lifeboat_test_ssh")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    wrong = type(ep)(**{**ep.__dict__, "extra": {**ep.extra, "host_key": " ".join(
        (tmp_path / "other.pub").read_text().split()[:2])}})
    with pytest.raises(CommandFailed) as e:
        SSHRunner(wrong).run(["true"])
    assert e.value.returncode == 255 and "host key" in e.value.output_tail.lower()
    with pytest.raises(ConnectionConfigError, match=r"extra\.private_key"):
        SSHRunner(type(ep)(**{**ep.__dict__, "extra": {"host_key": "x"}}))


def test_postgres_full_backup_through_the_ssh_runner(sshd, seeded, unique):
    from lifeboat.datastores import open_engine
    from lifeboat.inventory import load_inventory

    before = sshd["log"].read_text().count("Accepted publickey")
    eng = open_engine("postgres", inventory=load_inventory(), runner=SSHRunner.from_connection("lifeboat_test_ssh"),
                      run={"dag_id": "pytest", "run_id": "ssh"})
    m = eng.backup("full", f"test-ssh-{unique}")
    sessions = sshd["log"].read_text().count("Accepted publickey") - before
    assert sessions >= 3, "pgbackrest, pg_dump and the version probes ran through sshd"
    assert m.kind == "full" and m.native.get("label") and m.counts
    (v,) = eng.verify_new([m])
    assert v.ok, v.problems
