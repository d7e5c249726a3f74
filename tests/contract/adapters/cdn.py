"""The CDN: a CloudFront distribution of this test only on the stack's moto (the devstack's configuration
plus N cache behaviors through the failover origin groups); `config` stores its configuration; the scratch
target is a scratch distribution created from the backup."""

from __future__ import annotations

import os
from typing import Any

from lifeboat.clients.cloudfront import CloudFront
from tests.contract.adapters import Adapter, N


def behavior(path: str, target: str, like: dict) -> dict:
    return {**like, "PathPattern": path, "TargetOriginId": target}


class CdnAdapter(Adapter):
    fixtures, kind = ("stack_env", "engine_with"), "config"
    first_restore_step, last_verify_step = "create scratch distribution from the backup", "compare with the backup"

    def __init__(self, request, unique):
        super().__init__(request, unique)
        self.cf = CloudFront("lifeboat_cloudfront")
        self.prefix = f"/{self.scope}/"
        self.dist_id: str | None = None

    def make_engine(self) -> Any:
        """The engine of a distribution of this test (created here: the suite asks for the engine first)."""
        base, _ = self.cf.get_config(os.environ["LIFEBOAT_CDN_DISTRIBUTION_ID"])
        cfg = {**base, "CallerReference": f"contract-{self.unique}", "Aliases": {"Quantity": 0},
               "Comment": f"lifeboat contract {self.unique}"}
        self.dist_id, _ = self.cf.create(cfg)
        return self.fixture("engine_with")("cdn", name=f"cdn_contract_{self.unique}", distribution_id=self.dist_id)

    def config(self) -> dict:
        assert self.dist_id
        return self.cf.get_config(self.dist_id)[0]

    def set_behaviors(self, paths: list[str]) -> None:
        cfg, etag = self.cf.get_config(self.dist_id or "")
        like = cfg["CacheBehaviors"]["Items"][0]
        keep = [b for b in cfg["CacheBehaviors"]["Items"] if not b["PathPattern"].startswith(self.prefix)]
        items = keep + [behavior(p, "api-failover", like) for p in paths]
        self.cf.update(self.dist_id or "", {**cfg, "CacheBehaviors": {"Quantity": len(items), "Items": items}}, etag)

    def insert(self, n: int) -> None:
        assert self.engine is not None
        self.set_behaviors([f"{self.prefix}{i}/*" for i in range(n)])

    def count_live(self) -> int:
        return sum(1 for b in self.config()["CacheBehaviors"]["Items"] if b["PathPattern"].startswith(self.prefix))

    def mutate(self) -> None:
        self.set_behaviors([f"{self.prefix}{i}/*" for i in range(1, N, 2)] + [f"{self.prefix}after-the-backup/*"])

    def count_restored(self, scratch: Any) -> int:
        return sum(1 for b in (scratch.restored.get("CacheBehaviors") or {}).get("Items") or []
                   if b["PathPattern"].startswith(self.prefix))

    def cleanup(self) -> None:
        if self.dist_id and self.dist_id in self.cf.list_ids():
            self.cf.delete(self.dist_id)
        self.forget_engine()
