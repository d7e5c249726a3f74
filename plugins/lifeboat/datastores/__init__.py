"""Datastore engines: one package per engine (`datastores/<engine>/`), registered in lifeboat.registry.

Engine packages import their drivers (psycopg, pymongo, ...) inside functions, so the inventory can
validate engine options at DAG-parse time without loading any driver.
"""

from __future__ import annotations

from typing import Any

from lifeboat import registry


def engine_class(engine: str) -> Any:
    return registry.backup_class(engine)


def open_engine(name: str, *, inventory=None, region: str | None = None, run: dict | None = None, runner=None):
    """The engine for inventory datastore `name`, wired to the repository of `region`."""
    from lifeboat.datastores.base import EngineContext
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository
    from lifeboat.runners import LocalRunner

    inv = inventory or load_inventory()
    spec = inv.datastore(name)
    if runner is None and spec.runner.kind == "ssh":
        from lifeboat.ssh import SSHRunner

        runner = SSHRunner.from_connection(spec.ssh_connection_for(region or inv.regions.primary))
    ctx = EngineContext(
        inventory=inv,
        spec=spec,
        repo=Repository.from_inventory(inv, region),
        runner=runner or LocalRunner(),
        region=region or inv.regions.primary,
        run=run or {},
    )
    return engine_class(spec.engine)(ctx)
