"""Shared by the MongoDB benchmarks: a private FerretDB (the devstack's binary, SQLite, replica-set
name, 127.0.0.1, free port, temp folder -- not the devstack's server), seeding, a fresh oplog and the
engine on a throw-away file:// inventory."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from common import inventory, wait_serving

from lifeboat.net import free_port

INVENTORY = inventory("mongodb", '{{full: {{schedule: "30 1 * * *"}}, oplog: {{schedule: "*/15 * * * *"}}}}',
                      "{{databases: [benchdb], heartbeat_database: benchdb}}")


def start_ferretdb(tmp: Path) -> tuple[subprocess.Popen, str]:
    from devstack.components import mongodb as comp

    exe = comp.ensure_binary(print)
    port = free_port()
    (tmp / "data").mkdir()
    with open(tmp / "ferretdb.log", "wb") as logf:  # the child keeps its own descriptor
        proc = subprocess.Popen(comp.ferretdb_argv(exe, tmp / "data", port, state=tmp, replset="bench"),
                                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    wait_serving("FerretDB", proc, lambda: socket.create_connection(("127.0.0.1", port), timeout=0.3).close() or 1,
                 tmp / "ferretdb.log", 60)
    return proc, f"mongodb://127.0.0.1:{port}/?directConnection=true"


def seed(client, docs: int, doc_bytes: int, start: int = 0) -> int:
    """Documents start .. docs-1 of benchdb.docs (with its index n_1); returns the collection's count."""
    coll = client.benchdb.docs
    coll.create_index("n", name="n_1")
    batch = []
    for i in range(start, docs):
        batch.append({"_id": i, "n": i, "name": f"user-{i}", "tags": ["a", "b", str(i % 7)],
                      "payload": os.urandom(doc_bytes // 2).hex()[: doc_bytes - 80]})
        if len(batch) == 1000:
            coll.insert_many(batch)
            batch = []
    if batch:
        coll.insert_many(batch)
    return coll.count_documents({})


def fresh_oplog(client, mb: int = 16) -> None:
    """An empty capped local.oplog.rs: FerretDB v1 reads its whole oplog for every oplog query, which
    would be measured as engine time although no MongoDB has that cost."""
    client.local.drop_collection("oplog.rs")
    client.local.create_collection("oplog.rs", capped=True, size=mb * 2**20)


def engine(tmp: Path):
    from lifeboat.datastores.base import EngineContext
    from lifeboat.datastores.mongodb import MongoDatastore
    from lifeboat.inventory import parse_inventory
    from lifeboat.repository import Repository

    inv = parse_inventory(INVENTORY.format(tmp=tmp), "bench inventory")
    return MongoDatastore(EngineContext(inventory=inv, spec=inv.datastore("mongodb"),
                                        repo=Repository.from_inventory(inv),
                                        run={"dag_id": "bench", "run_id": "bench"}))


def clean_up(proc, tmp: Path) -> None:
    """Stop the bench FerretDB (when it started) and delete its temp folder."""
    from devstack.components._common import stop_process

    if proc is not None:
        stop_process(proc, 15)
    shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def bench_ferretdb(prefix: str) -> Iterator[tuple[Path, object]]:
    """A temp folder with a private FerretDB in it and a client of it (the bench engine's connection
    points at it); the client closed, the server stopped and the folder deleted afterwards."""
    import pymongo

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    proc = client = None
    try:
        proc, uri = start_ferretdb(tmp)
        os.environ["AIRFLOW_CONN_LIFEBOAT_BENCH_MONGODB"] = uri
        client = pymongo.MongoClient(uri, tz_aware=True)
        yield tmp, client
    finally:
        if client is not None:
            client.close()
        clean_up(proc, tmp)
