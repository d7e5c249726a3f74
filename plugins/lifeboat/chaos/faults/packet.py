"""Packet loss and partitions (DR plan 2.3) on the platform API's path to a datastore, with iptables as
root (netem is not in this kernel: `iptables -m statistic --mode random --probability p -j DROP` drops a
share of the packets instead; a plain DROP is a partition).

The path is the one toxiproxy listens on for the platform (`datastores.<name>.proxy`; its listen port is
read from toxiproxy's API): both directions of TCP on that loopback port are dropped (`-i lo`, dport and
sport), nothing else. Every rule carries the comment `lifeboat-chaos:<record id>`; the revert deletes
exactly the rules with that comment (idempotent), so a cleanup run finds them from the marker alone.
The datastore's own write/read probe (direct, not through the proxy) shows the datastore stayed healthy.

The rules go into the network namespace of the platform's path -- on the devstack the host's, since the
platform API stand-in and toxiproxy run there; `netns` (an `ip netns` name) puts them into another one.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import urllib.request

from lifeboat.chaos.faults.base import Fault
from lifeboat.chaos.probes import DatastoreProbe
from lifeboat.chaos.settings import packet_target
from lifeboat.errors import Refused

IPTABLES_TIMEOUT_S = 20
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _listen_port(toxiproxy: str, proxy: str) -> int:
    with _HTTP.open(f"{toxiproxy.rstrip('/')}/proxies/{proxy}", timeout=5) as r:
        listen = json.loads(r.read())["listen"]
    return int(str(listen).rsplit(":", 1)[1])


def rules(port: int, comment: str, loss: float, partition: bool) -> list[list[str]]:
    """The iptables rule specs (after `-I` / `-D`) for both directions of TCP on loopback port `port`."""
    drop = [] if partition else ["-m", "statistic", "--mode", "random", "--probability", f"{loss:.4f}"]
    return [["INPUT", "-i", "lo", "-p", "tcp", flag, str(port), "-m", "comment", "--comment", comment, *drop,
             "-j", "DROP"] for flag in ("--dport", "--sport")]


def _iptables(netns: str, *args: str) -> subprocess.CompletedProcess:
    argv = (["ip", "netns", "exec", netns] if netns else []) + ["iptables", "-w", "5", *args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=IPTABLES_TIMEOUT_S, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"`{shlex.join(argv)}` exited {p.returncode}: {(p.stderr or p.stdout).strip()[:300]}")
    return p


def tagged(netns: str, comment: str) -> list[list[str]]:
    """The rules in INPUT that carry `comment` (as `-D` specs)."""
    out = []
    for line in _iptables(netns, "-S", "INPUT").stdout.splitlines():
        words = shlex.split(line)
        if words[:1] == ["-A"] and comment in words:
            out.append(words[1:])
    return out


class PacketFault(Fault):
    kind = "packet"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        name = self.spec.name
        self.loss, self.partition = packet_target(self.spec.target)
        self.netns = str(self.spec.target.get("netns") or "")
        self.datastore = str(self.spec.target["datastore"])
        self.ds = self.env.datastores[self.datastore]
        if os.geteuid() != 0:
            raise Refused(f"chaos experiment {name}: packet faults need root (iptables); running as uid {os.geteuid()}")
        if shutil.which("iptables") is None:
            raise Refused(f"chaos experiment {name}: packet faults need iptables on PATH")
        if not self.env.toxiproxy or not self.ds.proxy:
            raise Refused(f"chaos experiment {name}: chaos.environments.*.toxiproxy and "
                          f"datastores.{self.datastore}.proxy: required (the platform's path a packet fault cuts)")
        try:
            self.port = _listen_port(self.env.toxiproxy, self.ds.proxy)
        except Exception as exc:
            raise Refused(f"chaos experiment {name}: datastores.{self.datastore}.proxy: toxiproxy "
                          f"{self.env.toxiproxy} has no usable proxy {self.ds.proxy!r} ({exc})") from None
        try:
            _iptables(self.netns, "-S", "INPUT")
        except Exception as exc:
            raise Refused(f"chaos experiment {name}: target.netns {self.netns!r}: iptables unusable: {exc}") from None

    def probes(self):
        engine = self.inv.datastore(self.datastore).engine
        return [DatastoreProbe(f"write-read-{self.datastore}", engine, self.ds.connection, self.record_id, weight=1)]

    def revert_info(self) -> dict:
        return {"netns": self.netns, "port": self.port, "comment": f"lifeboat-chaos:{self.record_id}"[:250],
                "loss": self.loss, "partition": self.partition}

    def inject(self) -> str:
        i = self.info
        for spec in rules(i["port"], i["comment"], i["loss"], i["partition"]):
            _iptables(i["netns"], "-I", *spec)
        what = "partition (all packets dropped)" if i["partition"] else f"{i['loss']:.0%} packet loss"
        where = f" in netns {i['netns']}" if i["netns"] else ""
        return f"{what} on loopback tcp port {i['port']} ({self.ds.proxy}){where}"

    @staticmethod
    def revert(info: dict) -> str:
        found = tagged(info["netns"], info["comment"])
        for spec in found:
            _iptables(info["netns"], "-D", *spec)
        left = tagged(info["netns"], info["comment"])
        if left:
            raise RuntimeError(f"iptables: {len(left)} rule(s) tagged {info['comment']} still present")
        return f"{len(found)} iptables rule(s) tagged {info['comment']} deleted" if found else \
            f"no iptables rule tagged {info['comment']}"
