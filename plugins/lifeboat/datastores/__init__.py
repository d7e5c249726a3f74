"""Datastore engines, one module each, registered by engine name.

Engine modules import their drivers (psycopg, pymongo, ...) inside functions, so the inventory can
validate engine options at DAG-parse time without loading any driver.
"""

from __future__ import annotations

import importlib

from lifeboat.errors import InventoryError

ENGINES = {
    "postgres": "lifeboat.datastores.postgres:PostgresDatastore",
    "redis": "lifeboat.datastores.redis:RedisDatastore",
    "elasticsearch": "lifeboat.datastores.elasticsearch:ElasticsearchDatastore",
    "mongodb": "lifeboat.datastores.mongodb:MongoDatastore",
}


def engine_class(engine: str):
    try:
        module, cls = ENGINES[engine].split(":")
    except KeyError:
        raise InventoryError(
            f"engine {engine!r} is not implemented yet (implemented: {', '.join(sorted(ENGINES))})"
        ) from None
    return getattr(importlib.import_module(module), cls)


def options_model(engine: str):
    return engine_class(engine).Options


def open_engine(name: str, *, inventory=None, region: str | None = None, run: dict | None = None, runner=None):
    """The engine for inventory datastore `name`, wired to the repository of `region`."""
    from lifeboat.datastores.base import EngineContext
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository
    from lifeboat.runners import LocalRunner

    inv = inventory or load_inventory()
    spec = inv.datastore(name)
    ctx = EngineContext(
        inventory=inv,
        spec=spec,
        repo=Repository.from_inventory(inv, region),
        runner=runner or LocalRunner(),
        region=region or inv.regions.primary,
        run=run or {},
    )
    return engine_class(spec.engine)(ctx)
