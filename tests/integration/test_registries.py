"""Container registries against the real local stack: two distribution registries (us-west-2 primary,
us-east-1 standby), the platform's images built with umoci, skopeo copies and syncs.

Tests that change a registry use their own repositories (community/t-<unique>), so the seeded images
stay as the devstack made them.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from devstack.components import registry as comp
from lifeboat.clients import registry as regmod
from lifeboat.clients import skopeo as skopeomod
from lifeboat.errors import DigestMismatch, ServiceError

pytestmark = pytest.mark.integration
WEST, EAST = "us-west-2", "us-east-1"


@pytest.fixture(scope="module")
def state(stack_env) -> Path:
    return Path(stack_env["LIFEBOAT_STACK_DIR"])


def test_registry_primary_holds_every_platform_image_and_the_standby_only_part(registries, state):
    spec = comp.images_spec()
    expected_w = {(f"community/{i['service']}", t) for i in spec["image"] for t in [i["tag"], *i.get("aliases", [])]}
    expected_e = {(f"community/{i['service']}", i["tag"]) for i in spec["image"] if i.get("standby")}
    seeded_w = json.loads((state / "registry" / f"seeded-{WEST}.json").read_text())
    for repo, tag in expected_w:
        assert tag in registries[WEST].list_tags(repo), (repo, tag)
        assert registries[WEST].manifest_digest(repo, tag) == seeded_w[f"{repo}:{tag}"]
    for repo, tag in expected_e:
        assert registries[EAST].manifest_digest(repo, tag) == registries[WEST].manifest_digest(repo, tag)
    # what the stack seeded into the standby (the images engine's replication, run by other tests on this
    # same stack, copies more later: the record of the seeding, not the live standby)
    seeded_e = json.loads((state / "registry" / f"seeded-{EAST}.json").read_text())
    assert set(seeded_e) == {f"{r}:{t}" for r, t in expected_e}
    lacking = {(r, t) for r, t in expected_w if f"{r}:{t}" not in seeded_e}
    assert lacking, "the standby must start partially replicated"
    in_use = {(f"community/{i['service']}", i["tag"]) for i in spec["image"] if "latest" in i.get("aliases", [])}
    assert in_use <= lacking  # every image the Deployments run needs replicating at first


def test_registry_images_are_built_reproducibly_with_one_multiarch_index(registries, tmp_path):
    spec = comp.images_spec()
    (multi,) = [i for i in spec["image"] if len(i.get("platforms", [])) > 1]
    repo = f"community/{multi['service']}"
    ref = comp.build_image(tmp_path / "oci", multi["service"], multi["tag"], platforms=multi["platforms"],
                           created=spec["created"])
    assert comp.layout_digest(tmp_path / "oci", ref) == registries[WEST].manifest_digest(repo, multi["tag"])
    index = registries[WEST].get_manifest(repo, multi["tag"])
    assert index.is_index and index.media_type == regmod.OCI_INDEX
    assert sorted(c["platform"]["architecture"] for c in index.children()) == ["amd64", "arm64"]


def test_registry_skopeo_copy_all_preserve_digests_keeps_the_index_digest_and_every_blob(registries, state, unique):
    west, east = registries[WEST], registries[EAST]
    repo = f"community/t-{unique}"
    digest = comp.new_image(state, f"t-{unique}", "1.0.0", WEST, platforms=["linux/amd64", "linux/arm64"])
    assert east.manifest_digest(repo, "1.0.0") is None
    t0 = time.monotonic()
    west.copy(west.ref(repo, "1.0.0"), east, east.ref(repo, "1.0.0"))
    took = time.monotonic() - t0
    assert east.manifest_digest(repo, "1.0.0") == digest
    manifests = east.walk(repo, digest)  # every manifest digest-checked on read
    assert len(manifests) == 3 and manifests[0].digest == digest
    sizes = [east.read_blob(repo, b["digest"]) for m in manifests[1:] for b in m.blobs()]
    assert len(sizes) == 6 and all(s > 0 for s in sizes)
    raw = west.inspect_raw(west.ref(repo, digest=digest))
    assert regmod.sha256_digest(raw) == digest
    print(f"\n[measure] skopeo copy --all --preserve-digests of a 2-platform image: {took:.2f}s, "
          f"{sum(sizes) / 1e6:.2f} MB of blobs")


def test_registry_skopeo_sync_copies_every_tag_of_a_repository(registries, state, unique):
    west, east = registries[WEST], registries[EAST]
    name = f"t-{unique}"
    digests = {tag: comp.new_image(state, name, tag, WEST) for tag in ("1.0.0", "1.1.0")}
    west.sync(f"community/{name}", east, "community")
    assert east.list_tags(f"community/{name}") == ["1.0.0", "1.1.0"]
    assert {t: east.manifest_digest(f"community/{name}", t) for t in digests} == digests


def test_registry_deleted_standby_blob_is_named_and_a_corrupt_blob_fails_its_digest(registries, state, unique,
                                                                                     stack_env):
    west, east = registries[WEST], registries[EAST]
    repo = f"community/t-{unique}"
    digest = comp.new_image(state, f"t-{unique}", "1.0.0", WEST)
    west.copy(west.ref(repo, "1.0.0"), east, east.ref(repo, "1.0.0"))
    layer = east.get_manifest(repo, digest).blobs()[-1]["digest"]
    east.delete_blob(repo, layer)
    assert not east.blob_exists(repo, layer)
    with pytest.raises(ServiceError, match=f"GET blob {repo}@{layer}: HTTP 404"):
        east.read_blob(repo, layer)
    assert west.blob_exists(repo, layer)  # only the standby lost it
    # flip bytes of a blob on the standby's disk: the registry still serves it, the digest check names it
    data_dir = Path(stack_env["LIFEBOAT_REGISTRY_DATA_US_EAST_1"])
    config = east.get_manifest(repo, digest).blobs()[0]["digest"]
    hexd = config.split(":")[1]
    blob_file = data_dir / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
    original = blob_file.read_bytes()
    try:
        blob_file.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
        with pytest.raises(DigestMismatch, match=f"blob {repo}@{config} hashes to sha256:"):
            east.read_blob(repo, config)
    finally:
        blob_file.write_bytes(original)


def test_registry_pull_by_digest_into_a_scratch_oci_layout(registries, tmp_path):
    east = registries[EAST]
    (old,) = [i for i in comp.images_spec()["image"] if i["service"] == "frontend" and i.get("standby")]
    digest = east.manifest_digest("community/frontend", old["tag"])
    assert digest
    east.copy_to_oci(east.ref("community/frontend", digest=digest), tmp_path / "oci", "restore")
    index = json.loads((tmp_path / "oci" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    blobs = tmp_path / "oci" / "blobs" / "sha256"
    for f in blobs.iterdir():  # every blob in the layout hashes to its name
        assert regmod.sha256_digest(f.read_bytes()) == f"sha256:{f.name}"
    assert len(list(blobs.iterdir())) >= 4  # manifest, config, 2 layers


def test_registry_credentials_reach_skopeo_only_through_a_private_auth_file(registries, monkeypatch, unique, state):
    west, east = registries[WEST], registries[EAST]
    repo = f"community/t-{unique}"
    comp.new_image(state, f"t-{unique}", "1.0.0", WEST)
    seen: list[dict] = []
    real_run = subprocess.run

    def spy(argv, *a, **kw):
        auth = argv[argv.index("--authfile") + 1]
        seen.append({"argv": list(argv), "mode": stat.S_IMODE(os.stat(auth).st_mode),
                     "dir_mode": stat.S_IMODE(os.stat(os.path.dirname(auth)).st_mode), "path": auth})
        return real_run(argv, *a, **kw)

    monkeypatch.setattr(skopeomod.subprocess, "run", spy)
    west.copy(west.ref(repo, "1.0.0"), east, east.ref(repo, "1.0.0"))
    assert len(seen) == 1
    call = seen[0]
    assert west.password and west.password not in " ".join(call["argv"])
    assert (call["mode"], call["dir_mode"]) == (0o600, 0o700)
    assert not os.path.exists(call["path"])  # removed afterwards


def test_registry_wrong_password_is_reported_with_the_connection_id(stack_env, monkeypatch):
    conn = json.loads(stack_env["AIRFLOW_CONN_LIFEBOAT_REGISTRY_US_EAST_1"])
    monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_REGISTRY_BROKEN", json.dumps({**conn, "password": "wrong"}))
    client = regmod.RegistryClient.from_connection("lifeboat_registry_broken")
    with pytest.raises(ServiceError, match="401 unauthorized -- check the login/password of Airflow connection "
                                           "'lifeboat_registry_broken'"):
        client.list_tags("community/frontend")
