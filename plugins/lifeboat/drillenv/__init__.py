"""A drill environment: restored datastores and the platform's services started against them, for the
length of one drill, with teardown guaranteed (a `with` block: torn down however the block ends) and
leftovers checkable afterwards. Used by the quarterly full-system drill (lifeboat.recovery.quarterly);
small on purpose so failure simulations can use it too.

    with DrillEnvironment(inventory, region, tag="drill-20261202t0100") as env:
        env.add_target("postgres", recovery_target)       # a RecoveryTarget, restored by the caller
        inst = env.start_service("auth-service", process_spec, {"DATABASE_URL": ...})
        ...
    env.torn_down      # what teardown did, in order
    env.leftovers()    # [] when nothing is left: folders, processes, listening ports

Everything it creates is named `<recovery dir>/<tag>-*`; teardown never touches anything else (live
targets are never added: the drill restores into NEW targets only).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
from pathlib import Path
from typing import Any

from lifeboat.net import free_port

log = logging.getLogger(__name__)


class DrillEnvironment:
    def __init__(self, inventory, region: str, tag: str):
        if not tag.startswith("drill-"):
            raise ValueError(f"drill environment tag {tag!r}: must start with 'drill-' (names what it creates)")
        self.inv, self.region, self.tag = inventory, region, tag
        self.area = Path(inventory.recovery_dir())
        self.services_dir = self.area / f"{tag}-services"
        self.targets: list[tuple[str, Any]] = []  # (datastore, RecoveryTarget), restore order
        self.processes: list[Any] = []  # ProcessInstance
        self.torn_down: list[str] = []
        self._ports: list[int] = []

    def __enter__(self) -> DrillEnvironment:
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    # -- what the drill creates ------------------------------------------------------------------
    def add_target(self, datastore: str, target: Any) -> None:
        """Register a new-target recovery (before restoring into it: a failed restore is torn down too)."""
        if getattr(target, "into", "new") != "new":
            raise ValueError(f"{datastore}: a drill environment holds NEW targets only, never a live one")
        self.targets.append((datastore, target))

    def start_service(self, name: str, process: Any, env: dict[str, str]):
        """Start one service's local process (`services.<name>.process`) on a free port, its env file 0600."""
        from lifeboat.recovery.runtime import ProcessInstance, write_env_file

        inst = ProcessInstance(process, name, self.services_dir, self.region, port=free_port())
        write_env_file(inst.env_file, env)
        self.processes.append(inst)
        self._ports.append(inst.port)
        inst.start()
        return inst

    # -- teardown ----------------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """Stop the services, then every target (reverse restore order); remove `<area>/<tag>-*`.
        Every part is attempted even when an earlier one fails; the errors are in `torn_down`."""
        for inst in reversed(self.processes):
            self._try(f"stop {inst.name}", inst.stop)
        self.processes.clear()
        for ds, rt in reversed(self.targets):
            port = (self._locator(rt) or {}).get("port")
            if port:
                self._ports.append(int(port))
            self._try(f"remove the {ds} target", rt.abandon)
        self.targets.clear()
        for p in sorted(self.area.glob(f"{self.tag}-*")):
            self._try(f"remove {p}", lambda p=p: _remove(p))
        return self.torn_down

    def _try(self, what: str, fn) -> None:
        try:
            self.torn_down.append(f"{what}: {fn()}")
        except Exception as exc:
            log.exception("drill environment %s: %s failed", self.tag, what)
            self.torn_down.append(f"{what}: FAILED {type(exc).__name__}: {exc}")

    @staticmethod
    def _locator(rt: Any) -> dict[str, Any] | None:
        with contextlib.suppress(Exception):
            return rt.locator()
        return None

    def leftovers(self) -> list[str]:
        """What is still there after teardown: folders named by the tag, ports still listening."""
        out = [str(p) for p in self.area.glob(f"{self.tag}-*")]
        for port in self._ports:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                out.append(f"127.0.0.1:{port} still listening")
        return out


def _remove(p: Path) -> str:
    shutil.rmtree(p)
    return "removed"
