"""DNS failure (DR plan 2.3, "CoreDNS deleted"): the platform API can no longer resolve a datastore's name.

The platform resolves its datastores' names through a resolver Lifeboat can reach: the environment's
`resolver`, a hosts file (the devstack's platform API stand-in reads it on every request: its
`LIFEBOAT_PLATFORM_HOSTS_<REGION>`; in a cluster, the hosts/zone file CoreDNS serves). The fault removes the
datastore's `hostname` from it (mode `nxdomain`: the lookup finds no such name), so the platform's
`/ready` fails on that datastore while the datastore itself keeps answering Lifeboat's direct write/read
probe. The revert puts the removed lines back (only those missing, so it is idempotent); the marker holds
them, so a cleanup run restores them without the inventory.
"""

from __future__ import annotations

import os
from pathlib import Path

from lifeboat.chaos.faults.base import Fault
from lifeboat.chaos.probes import DatastoreProbe
from lifeboat.errors import Refused


def parse_hosts(text: str) -> dict[str, str]:
    """{name: address} of a hosts file (comments and blank lines ignored; the first address wins)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split()
        for name in fields[1:]:
            out.setdefault(name.lower(), fields[0])
    return out


def without(text: str, hostname: str) -> tuple[str, list[str]]:
    """`text` minus every line that maps `hostname`, and those lines."""
    kept: list[str] = []
    removed: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        (removed if hostname.lower() in (f.lower() for f in fields[1:]) else kept).append(line)
    return "".join(f"{line}\n" for line in kept), removed


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.lifeboat-chaos")
    tmp.write_text(text)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of it


class DnsFailure(Fault):
    kind = "dns"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.datastore = str(self.spec.target["datastore"])
        self.ds = self.env.datastores[self.datastore]
        where = f"chaos.environments.*.datastores.{self.datastore}"
        if not self.env.resolver:
            raise Refused(f"chaos experiment {self.spec.name}: chaos.environments.*.resolver: required for a dns "
                          "fault (the hosts file the platform resolves its datastores through)")
        if not self.ds.hostname:
            raise Refused(f"chaos experiment {self.spec.name}: {where}.hostname: required for a dns fault")
        try:
            names = parse_hosts(Path(self.env.resolver).read_text())
        except OSError as exc:
            raise Refused(f"chaos experiment {self.spec.name}: chaos.environments.*.resolver: cannot read "
                          f"{self.env.resolver}: {exc.strerror}") from None
        if self.ds.hostname.lower() not in names:
            raise Refused(f"chaos experiment {self.spec.name}: {where}.hostname: {self.ds.hostname!r} is not in the "
                          f"resolver {self.env.resolver} (nothing to break: is the platform using it?)")

    def probes(self):
        engine = self.inv.datastore(self.datastore).engine
        return [DatastoreProbe(f"write-read-{self.datastore}", engine, self.ds.connection, self.record_id, weight=1)]

    def revert_info(self) -> dict:
        _, removed = without(Path(self.env.resolver).read_text(), self.ds.hostname)
        return {"resolver": self.env.resolver, "hostname": self.ds.hostname, "lines": removed}

    def inject(self) -> str:
        path = Path(self.info["resolver"])
        text, removed = without(path.read_text(), self.info["hostname"])
        _write(path, text)
        return f"{self.info['hostname']}: {len(removed)} line(s) removed from {path} (NXDOMAIN for the platform)"

    @staticmethod
    def revert(info: dict) -> str:
        path, name = Path(info["resolver"]), info["hostname"]
        text = path.read_text() if path.exists() else ""
        if name.lower() in parse_hosts(text):
            return f"{name}: resolves in {path} already"
        _write(path, text + "".join(f"{line}\n" for line in info["lines"]))
        return f"{name}: {len(info['lines'])} line(s) restored in {path}"
