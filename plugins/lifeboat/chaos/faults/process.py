"""Database faults (DR plan 2.2): a datastore's server process killed with SIGKILL (a crash, not a
shutdown), then the runbook's restart step, run by Lifeboat; the write/read probe sees the outage and the
heartbeats it acknowledged are read back afterwards (data lost). Needs host access: the pid file."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
from pathlib import Path

from lifeboat.chaos.faults.datastore import DatastoreFault
from lifeboat.errors import Refused

log = logging.getLogger(__name__)
RESTART_TIMEOUT_S = 180


def running_pid(pidfile: str, program: str) -> int | None:
    """The pid in `pidfile` when that process is alive and is `program`, else None."""
    try:
        pid = int(Path(pidfile).read_text().split()[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    if state == "Z" or (program and program not in comm and program not in cmdline):
        return None
    return pid


class ProcessKill(DatastoreFault):
    kind = "process_kill"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        where = f"chaos.environments.*.datastores.{self.datastore}"
        if not self.ds.pidfile:
            raise Refused(f"chaos experiment {self.spec.name}: {where}.pidfile: required for a process fault")
        if not self.ds.restart_argv():
            raise Refused(f"chaos experiment {self.spec.name}: {where}.restart: required (the runbook's restart step)")
        if running_pid(self.ds.pidfile, self.ds.program) is None:
            raise Refused(f"chaos experiment {self.spec.name}: {self.ds.pidfile} names no running "
                          f"{self.ds.program or 'process'}: the datastore is not up")

    def revert_info(self) -> dict:
        return {"datastore": self.datastore, "pidfile": self.ds.pidfile, "program": self.ds.program,
                "restart": self.ds.restart_argv()}

    def inject(self) -> str:
        pid = running_pid(self.ds.pidfile, self.ds.program)
        if pid is None:
            raise Refused(f"{self.ds.pidfile}: no running {self.ds.program} to kill")
        os.kill(pid, signal.SIGKILL)
        return f"SIGKILL to {self.ds.program or 'pid'} {pid} ({self.datastore}, {self.ds.pidfile})"

    @staticmethod
    def revert(info: dict) -> str:
        pid = running_pid(info["pidfile"], info["program"])
        if pid is not None:
            return f"{info['datastore']} running (pid {pid}): nothing to restart"
        argv = list(info["restart"])
        p = subprocess.run(argv, capture_output=True, text=True, timeout=RESTART_TIMEOUT_S, check=False)
        tail = (p.stdout + p.stderr).strip().splitlines()[-3:]
        if p.returncode != 0:
            raise RuntimeError(f"restart of {info['datastore']} ({argv[0]} ...) exited {p.returncode}: "
                               + " | ".join(tail))
        pid = running_pid(info["pidfile"], info["program"])
        return f"restarted {info['datastore']} with `{shlex.join(argv)[-160:]}`: pid {pid}"
