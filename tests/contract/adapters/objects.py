"""S3 replication: N objects under a prefix of this test only in the upload bucket (SeaweedFS, filer.sync
replicating to the standby's); `inventory` records both buckets' listings and their diff; the scratch
target is the replica's objects read back by version id into a scratch folder."""

from __future__ import annotations

import time
from typing import Any

from tests.contract.adapters import Adapter, N
from tests.fixtures import purge_prefix

WEST, EAST = "us-west-2", "us-east-1"


def wait_replicated(bucket, keys: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    left = list(keys)
    while left:
        left = [k for k in left if bucket.head(k) is None]
        assert not left or time.monotonic() < deadline, f"not replicated within {timeout:.0f}s: {left[:5]}"
        if left:
            time.sleep(0.05)


class ObjectsAdapter(Adapter):
    fixtures, kind = ("upload_buckets", "uploads_replication", "engine_with"), "inventory"
    first_restore_step, last_verify_step = "read back from s3://", "ETag, size and sha256 compared"

    @property
    def prefix(self) -> str:
        return f"{self.scope}/"

    @property
    def buckets(self) -> dict:
        return self.fixture("upload_buckets")

    def make_engine(self) -> Any:
        return self.fixture("engine_with")("uploads", name=f"objects_contract_{self.unique}", prefix=self.prefix)

    def keys(self, region: str = WEST) -> list[str]:
        page, _ = self.buckets[region].list_page("", 1000, prefix=self.prefix)
        return [o.key for o in page if not o.key.startswith(self.prefix + ".lifeboat/")]

    def insert(self, n: int) -> None:
        keys = [f"{self.prefix}upload-{i:03d}.bin" for i in range(n)]
        for i, k in enumerate(keys):
            self.buckets[WEST].put(k, (f"{k}:".encode() * (40 + i))[: 1000 + 37 * i])
        wait_replicated(self.buckets[EAST], keys)

    def count_live(self) -> int:
        return len(self.keys())

    def mutate(self) -> None:
        for i in range(0, N, 2):
            self.buckets[WEST].delete(f"{self.prefix}upload-{i:03d}.bin")
        self.buckets[WEST].put(f"{self.prefix}after-the-backup.bin", b"later")

    def count_restored(self, scratch: Any) -> int:
        return sum(1 for k in scratch.verified if k.startswith(self.prefix) and ".lifeboat/" not in k)

    def cleanup(self) -> None:
        # Every version, in both buckets: a delete marker or a half-replicated delete left here makes
        # the next whole-bucket `uploads` backup list keys its restore test cannot read back.
        purge_prefix(self.buckets, self.prefix)
        self.forget_engine()
