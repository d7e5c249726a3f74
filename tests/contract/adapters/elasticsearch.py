"""Elasticsearch: an index of this test only (with the heartbeat index, which every snapshot covers),
a catalog folder of its own; the scratch target is the snapshot restored into renamed indices."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lifeboat.records import Manifest
from tests.contract.adapters import Adapter, N, flip_byte


class ElasticsearchAdapter(Adapter):
    fixtures, kind = ("es_engine_with", "es"), "snapshot"
    first_restore_step, last_verify_step = "restore into restored-", "sampled document hashes"

    def make_engine(self) -> Any:
        return self.fixture("es_engine_with")(name=f"es_contract_{self.unique}", indices=[self.scope])

    @property
    def es(self) -> Any:
        return self.fixture("es")

    def insert(self, n: int) -> None:
        self.es.indices.create(index=self.scope, settings={"number_of_shards": 1, "number_of_replicas": 0})
        ops: list[dict] = []
        for i in range(n):
            ops += [{"index": {"_index": self.scope, "_id": str(i)}}, {"n": i, "title": f"document {i}"}]
        self.es.bulk(operations=ops, refresh=True)

    def count_live(self) -> int:
        self.es.indices.refresh(index=self.scope)
        return self.es.count(index=self.scope)["count"]

    def mutate(self) -> None:
        # (the integ-test distribution has no _delete_by_query: the reindex module is not in it)
        ops: list[dict] = [{"delete": {"_index": self.scope, "_id": str(i)}} for i in range(0, N, 2)]
        ops += [{"index": {"_index": self.scope, "_id": "after-the-backup"}}, {"n": -1}]
        self.es.bulk(operations=ops, refresh=True)

    def count_restored(self, scratch: Any) -> int:
        return self.es.count(index=scratch.targets[self.scope])["count"]

    def corrupt(self, m: Manifest) -> tuple[str, Callable[[], None]]:
        """A Lucene file of the index in the fs snapshot repository (named with its path)."""
        root = Path(m.native["repository_location"])
        gen = int.from_bytes((root / "index.latest").read_bytes(), "big")
        folder = root / "indices" / json.loads((root / f"index-{gen}").read_bytes())["indices"][self.scope]["id"]
        victim = max((p for p in folder.rglob("__*") if p.is_file()), key=lambda p: p.stat().st_size)
        return str(victim), flip_byte(victim)

    def forget(self, backup_id: str) -> None:
        snapshot = self.engine.snapshot_name(backup_id)
        self.es.options(ignore_status=404).snapshot.delete(repository=self.engine.options.repository.name,
                                                           snapshot=snapshot)
        super().forget(backup_id)

    def cleanup(self) -> None:
        self.forget_engine(delete_backups=True)
        self.es.options(ignore_status=404).indices.delete(index=self.scope)
