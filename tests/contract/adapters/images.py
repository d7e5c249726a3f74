"""Container images: N small images (a config and one shared layer each, pushed through the registry API)
in a repository of this test only, named in the engine's inventory list; `replicate` copies them to the
standby registry; the scratch target is an OCI layout pulled from the standby by digest."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lifeboat.clients.registry import OCI_MANIFEST, RegistryClient
from tests.contract.adapters import Adapter, N

WEST, EAST = "us-west-2", "us-east-1"
LAYER = b"lifeboat contract layer\n" * 64  # one blob every test image shares (not a real tar: never run)


def push_tiny_image(reg: RegistryClient, repository: str, tag: str, seed: str) -> str:
    """Push a tiny image (its own config, a shared layer) under repository:tag; returns its digest."""
    layer = reg.put_blob(repository, LAYER)
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"seed": seed}},
                      "rootfs": {"type": "layers", "diff_ids": [layer]}}, sort_keys=True).encode()
    cfg_digest = reg.put_blob(repository, cfg)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": cfg_digest, "size": len(cfg)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": layer, "size": len(LAYER)}]}, sort_keys=True).encode()
    digest = reg.put_manifest(repository, tag, manifest)
    assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
    return digest


class ImagesAdapter(Adapter):
    fixtures, kind = ("registries", "engine_with"), "replicate"
    first_restore_step, last_verify_step = "pull images from the standby by digest", "blob digests"

    def __init__(self, request, unique):
        super().__init__(request, unique)
        self.repo = f"contract/c-{unique}"
        self.digests: dict[str, str] = {}

    @property
    def reg(self) -> dict:
        return self.fixture("registries")

    def make_engine(self) -> Any:
        host = self.reg[WEST].host
        return self.fixture("engine_with")("images", name=f"images_contract_{self.unique}", kubernetes={},
                                           namespaces=[], images=[f"{host}/{self.repo}:t{i}" for i in range(N)])

    def insert(self, n: int) -> None:
        for i in range(n):
            self.digests[f"t{i}"] = push_tiny_image(self.reg[WEST], self.repo, f"t{i}", f"{self.unique}:{i}")

    def count_live(self) -> int:
        return len(self.reg[WEST].list_tags(self.repo))

    def mutate(self) -> None:
        for i in range(0, N, 2):
            self.reg[WEST].delete_manifest(self.repo, self.digests[f"t{i}"])
        push_tiny_image(self.reg[WEST], self.repo, "after-the-backup", f"{self.unique}:after")

    def count_restored(self, scratch: Any) -> int:
        return sum(1 for image in scratch.restored if f"/{self.repo}:" in image)

    def cleanup(self) -> None:
        for region in (WEST, EAST):
            reg = self.reg[region]
            for tag in reg.list_tags(self.repo):
                digest = reg.manifest_digest(self.repo, tag)
                if digest:
                    reg.delete_manifest(self.repo, digest)
        self.forget_engine()
