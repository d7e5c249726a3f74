"""The engine registry: engine name -> where its backup engine, its options and its failover engine live.

The one list of engines. The inventory validates `datastores.<name>.engine` against it and each
engine's options through it; `lifeboat.datastores.open_engine` and `lifeboat.failover.open_failover`
build engines from it. Entries are import strings, resolved only when asked for, so this module (and
the inventory, which the DAG files import at parse time) imports no engine and no driver.

A new engine adds one line here, one package under `lifeboat/datastores/<engine>/` (engine.py,
options.py) and a failover module (`lifeboat/failover/<engine>.py`, `NotAutomated` at first).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from lifeboat.errors import InventoryError


@dataclass(frozen=True)
class EngineEntry:
    backup: str  # "module:Class" of the Datastore subclass
    options: str  # "module:Class" of its EngineOptions model (cheap to import: pydantic only)
    failover: str  # "module:Class" of its FailoverDatastore subclass
    kinds: tuple[str, ...]  # the backup kinds (the engine class's `kinds` are these)
    # Files of the engine's native repository that describe the rest of it: the cross-region mirror
    # copies them after everything else; `rewritten` ones are rewritten in place, so always re-copied.
    descriptors: tuple[str, ...] = ()
    rewritten: tuple[str, ...] = ()


def _by_convention(engine: str, backup: str, options: str, failover: str, kinds: tuple[str, ...],
                   **files: tuple[str, ...]) -> EngineEntry:
    """By convention: lifeboat.datastores.<engine>.engine / .options, lifeboat.failover.<engine>."""
    return EngineEntry(backup=f"lifeboat.datastores.{engine}.engine:{backup}",
                       options=f"lifeboat.datastores.{engine}.options:{options}",
                       failover=f"lifeboat.failover.{engine}:{failover}", kinds=kinds, **files)


_PGBACKREST_INFO = ("backup.info", "archive.info", "backup.info.copy", "archive.info.copy")


ENGINES: dict[str, EngineEntry] = {
    "postgres": _by_convention("postgres", "PostgresDatastore", "PostgresOptions", "PostgresFailover",
                               ("full", "diff", "incr", "logical"),
                               descriptors=("backup.manifest", "backup.manifest.copy", *_PGBACKREST_INFO),
                               rewritten=_PGBACKREST_INFO),
    "redis": _by_convention("redis", "RedisDatastore", "RedisOptions", "RedisFailover", ("rdb", "aof")),
    "elasticsearch": _by_convention("elasticsearch", "ElasticsearchDatastore", "ElasticsearchOptions",
                                    "ElasticsearchFailover", ("snapshot",)),
    "mongodb": _by_convention("mongodb", "MongoDatastore", "MongoOptions", "MongoFailover", ("full", "oplog")),
    # velero-backup.json is what Velero's sync reads: copied last, like a manifest
    "kubernetes": _by_convention("kubernetes", "KubernetesDatastore", "KubernetesOptions", "KubernetesFailover",
                                 ("full",), descriptors=("velero-backup.json",)),
    # the platform's other services (issue 13): replication checked and completed, configuration backed up
    "images": _by_convention("images", "ImagesDatastore", "ImagesOptions", "ImagesFailover", ("replicate",)),
    "objects": _by_convention("objects", "ObjectsDatastore", "ObjectsOptions", "ObjectsFailover", ("inventory",)),
    "config": _by_convention("config", "ConfigDatastore", "ConfigOptions", "ConfigFailover", ("bundle",)),
    "cdn": _by_convention("cdn", "CdnDatastore", "CdnOptions", "CdnFailover", ("config",)),
}


def known() -> list[str]:
    return sorted(ENGINES)


def descriptor_files() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every engine's descriptor file names, those of them rewritten in place)."""
    return (tuple(n for e in ENGINES.values() for n in e.descriptors),
            tuple(n for e in ENGINES.values() for n in e.rewritten))


def check_engine(engine: str) -> str:
    """`engine` if registered; ValueError naming the known engines otherwise (pydantic turns it into a
    field error, so the inventory message names `datastores.<name>.engine`)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (known engines: {', '.join(known())})")
    return engine


def _entry(engine: str) -> EngineEntry:
    try:
        return ENGINES[engine]
    except KeyError:
        raise InventoryError(f"engine {engine!r} is not registered (known engines: {', '.join(known())})") from None


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def backup_class(engine: str) -> Any:
    """The Datastore subclass of `engine` (lifeboat.datastores.base.Datastore)."""
    return _load(_entry(engine).backup)


def backup_kinds(engine: str) -> tuple[str, ...]:
    """The backup kinds of `engine` (what `datastores.<name>.backups` may list), without importing it."""
    return _entry(engine).kinds


def options_model(engine: str) -> Any:
    """The pydantic model of `datastores.<name>.options` for `engine`."""
    return _load(_entry(engine).options)


def failover_class(engine: str) -> Any:
    """The FailoverDatastore subclass of `engine` (lifeboat.failover.base.FailoverDatastore)."""
    return _load(_entry(engine).failover)
