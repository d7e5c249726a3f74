"""Image references, config-repository drift and the CDN failover check: the pure pieces."""

from __future__ import annotations

import pytest

from lifeboat.cdn import origins
from lifeboat.configrepo.drift import (
    LayoutError,
    configmaps_from_files,
    drift,
    refs_diff,
)
from lifeboat.images.refs import (
    ImageReferenceError,
    by_repository,
    collect,
    digest_from_image_id,
    parse,
    pin_all,
)

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64
REG = "127.0.0.1:5000"


# -- image references --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:5000/community/api-gateway:2.0.1", (REG, "community/api-gateway", "2.0.1", None)),
    (f"127.0.0.1:5000/community/api-gateway@{D1}", (REG, "community/api-gateway", None, D1)),
    (f"123456789012.dkr.ecr.us-west-2.amazonaws.com/community/frontend:3.1.1@{D1}",
     ("123456789012.dkr.ecr.us-west-2.amazonaws.com", "community/frontend", "3.1.1", D1)),
    ("localhost/x", ("localhost", "x", "latest", None)),
    ("community/auth-service", (REG, "community/auth-service", "latest", None)),  # default registry
])
def test_image_reference_parsing(text, expected):
    r = parse(text, default_registry=REG)
    assert (r.registry, r.repository, r.tag, r.digest) == expected
    assert parse(str(r)) == r  # round trip


@pytest.mark.parametrize(("text", "message"), [
    ("community/API:1", "invalid repository path component 'API'"),
    ("reg.io/a:bad tag", "not an image reference"),
    ("reg.io/a@sha256:abc", "digest must be sha256"),
    ("reg.io/a:-x", "invalid tag"),
    ("community/a:1", "no registry"),
])
def test_image_reference_errors_name_the_reference_and_its_origin(text, message):
    with pytest.raises(ImageReferenceError, match=message) as ei:
        parse(text, where="Deployment community/x container y")
    assert "Deployment community/x container y" in str(ei.value)


def deployment(name: str, *images: str, init: str | None = None, snake: bool = False) -> dict:
    containers = [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]
    pod = {"containers": containers}
    if init:
        pod["init_containers" if snake else "initContainers"] = [{"name": "init", "image": init}]
    return {"kind": "Deployment", "metadata": {"namespace": "community", "name": name},
            "spec": {"template": {"spec": pod}}}


def test_images_in_use_from_deployments_and_inventory_deduplicated_with_their_users():
    gw = f"{REG}/community/api-gateway:2.0.1"
    uses = collect([deployment("api-gateway", gw, init=f"{REG}/community/migrate:1"),
                    deployment("api-gateway-canary", gw, snake=True, init=f"{REG}/community/migrate:1"),
                    {"kind": "CronJob", "metadata": {"name": "report"},
                     "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
                         {"name": "r", "image": "community/report:7"}]}}}}}}],
                   inventory=["community/api-gateway:2.0.1", "community/frontend:3.1.1"], default_registry=REG)
    by_image = {str(u.ref): u.used_by for u in uses}
    assert sorted(by_image) == sorted([gw, f"{REG}/community/migrate:1", f"{REG}/community/report:7",
                                       f"{REG}/community/frontend:3.1.1"])
    assert by_image[gw] == ["Deployment community/api-gateway container c0",
                            "Deployment community/api-gateway-canary container c0", "inventory"]
    assert by_image[f"{REG}/community/migrate:1"] == ["Deployment community/api-gateway init container init",
                                                     "Deployment community/api-gateway-canary init container init"]
    assert by_image[f"{REG}/community/report:7"] == ["CronJob default/report container r"]
    assert set(by_repository(uses)) == {f"{REG}/community/{n}" for n in ("api-gateway", "migrate", "report",
                                                                         "frontend")}


def test_images_pinning_by_digest_names_what_the_registry_does_not_serve_and_retargets():
    uses = collect([], inventory=["community/a:1", "community/b:1", f"community/c@{D2}"], default_registry=REG)
    pinned, unresolved = pin_all(uses, lambda ref: D1 if ref.repository == "community/a" else None)
    assert [str(u.ref) for u in pinned] == [f"{REG}/community/a:1@{D1}", f"{REG}/community/c@{D2}"]
    assert [str(u.ref) for u in unresolved] == [f"{REG}/community/b:1"]
    standby = pinned[0].ref.on("127.0.0.1:6000")
    assert str(standby) == f"127.0.0.1:6000/community/a:1@{D1}" and standby.reference == D1
    with pytest.raises(ImageReferenceError, match="another digest"):
        pinned[0].ref.pinned(D2)
    assert digest_from_image_id(f"docker-pullable://{REG}/community/a@{D1}") == D1
    assert digest_from_image_id("") is None


# -- configuration repository -------------------------------------------------------------------------

def test_config_refs_diff_names_missing_rewritten_and_extra_refs():
    a = {"refs/heads/main": "1" * 40, "refs/tags/release/1": "2" * 40, "refs/tags/deployed/us-west-2": "3" * 40}
    b = {"refs/heads/main": "9" * 40, "refs/tags/release/1": "2" * 40, "refs/heads/wip": "4" * 40}
    found = {(f.ref, f.problem) for f in refs_diff(a, b)}
    assert found == {("refs/heads/main", "different"), ("refs/tags/deployed/us-west-2", "missing"),
                     ("refs/heads/wip", "extra")}
    assert "points at 999" in str(next(f for f in refs_diff(a, b) if f.problem == "different"))
    assert refs_diff(a, dict(a)) == []
    assert [(f.ref, f.problem) for f in refs_diff(a, b, ignore=("refs/heads/",))] == [
        ("refs/tags/deployed/us-west-2", "missing")]


def test_config_files_map_onto_one_configmap_per_service():
    files = {"README.md": b"x", "api-gateway/gateway.yaml": b"listen: 1\n", "api-gateway/routes.yaml": b"r\n",
             "frontend/settings.json": "{}"}
    assert configmaps_from_files(files) == {
        "api-gateway-config": {"gateway.yaml": "listen: 1\n", "routes.yaml": "r\n"},
        "frontend-config": {"settings.json": "{}"}}
    with pytest.raises(LayoutError, match=r"frontend/conf\.d/a\.conf: nested folders"):
        configmaps_from_files({"frontend/conf.d/a.conf": b""})
    with pytest.raises(LayoutError, match="not UTF-8"):
        configmaps_from_files({"frontend/logo.png": b"\xff\xfe"})


def test_config_drift_names_the_configmap_and_key_without_quoting_values():
    expected = {"api-gateway-config": {"gateway.yaml": "listen: 1\n", "routes.yaml": "r\n"},
                "frontend-config": {"settings.json": "{}"}}
    live = {"api-gateway-config": {"gateway.yaml": "listen: 2\n", "extra.yaml": "x"},
            "auth-service-config": {"auth.yaml": "a"}}
    found = drift(expected, live)
    assert [str(f).split(" (")[0] for f in found] == [
        "ConfigMap api-gateway-config key extra.yaml: key not in repository",
        "ConfigMap api-gateway-config key gateway.yaml: value differs",
        "ConfigMap api-gateway-config key routes.yaml: key missing",
        "ConfigMap frontend-config: configmap missing"]
    assert "listen" not in str(found[1]) and "sha256:" in found[1].detail
    assert [f.configmap for f in drift(expected, live, extra_configmaps=True)][-1] == "auth-service-config"
    assert drift(expected, {k: dict(v) for k, v in expected.items()}) == []


# -- CDN ------------------------------------------------------------------------------------------------

def distribution(groups=None, default_target="api-failover", behaviors=None) -> dict:
    def origin(oid, domain):
        return {"Id": oid, "DomainName": domain}

    origins_ = [origin("api-us-west-2", "api.us-west-2.community.example.com"),
                origin("api-us-east-1", "api.us-east-1.community.example.com"),
                origin("uploads-us-west-2", "community-uploads-us-west-2.s3.us-west-2.amazonaws.com"),
                origin("uploads-us-east-1", "community-uploads-us-east-1.s3.us-east-1.amazonaws.com")]
    if groups is None:
        groups = [("api-failover", ["api-us-west-2", "api-us-east-1"], [500, 502, 503, 504]),
                  ("uploads-failover", ["uploads-us-west-2", "uploads-us-east-1"], [500, 502, 503, 504])]
    return {
        "Origins": {"Quantity": len(origins_), "Items": origins_},
        "OriginGroups": {"Quantity": len(groups), "Items": [
            {"Id": gid, "FailoverCriteria": {"StatusCodes": {"Quantity": len(codes), "Items": codes}},
             "Members": {"Quantity": len(ms), "Items": [{"OriginId": m} for m in ms]}} for gid, ms, codes in groups]},
        "DefaultCacheBehavior": {"TargetOriginId": default_target},
        "CacheBehaviors": {"Quantity": 1, "Items": behaviors if behaviors is not None else
                           [{"PathPattern": "/uploads/*", "TargetOriginId": "uploads-failover"}]},
    }


def check(cfg, **kw):
    return origins.check(cfg, primary_region="us-west-2", standby_region="us-east-1", distribution_id="E1", **kw)


def test_cdn_origin_groups_failing_over_to_the_standby_pass():
    rep = check(distribution())
    assert rep.ok and rep.findings == []
    assert rep.groups[0] == {"id": "api-failover", "members": ["api-us-west-2", "api-us-east-1"],
                             "regions": ["us-west-2", "us-east-1"], "status_codes": [500, 502, 503, 504]}


@pytest.mark.parametrize(("cfg", "problem"), [
    (distribution(groups=[]), "has no origin group"),
    (distribution(groups=[("api-failover", ["api-us-east-1", "api-us-west-2"], [500, 502, 503, 504])],
                  behaviors=[]), "primary origin api-us-east-1 is in us-east-1, not us-west-2"),
    (distribution(groups=[("api-failover", ["api-us-west-2", "uploads-us-west-2"], [500, 502, 503, 504])],
                  behaviors=[]), "failover origin uploads-us-west-2 is in us-west-2, not us-east-1"),
    (distribution(groups=[("api-failover", ["api-us-west-2", "gone"], [500, 502, 503, 504])], behaviors=[]),
     "member 'gone' is not an origin"),
    (distribution(groups=[("api-failover", ["api-us-west-2", "api-us-east-1"], [500, 503])], behaviors=[]),
     "lack status codes 502, 504"),
    (distribution(groups=[("api-failover", ["api-us-west-2"], [500, 502, 503, 504])], behaviors=[]),
     "has 1 members"),
    (distribution(behaviors=[{"PathPattern": "/uploads/*", "TargetOriginId": "uploads-us-west-2"}]),
     "behavior /uploads/*: targets the us-west-2 origin uploads-us-west-2 directly"),
    (distribution(default_target="nowhere"), "neither an origin nor an origin group"),
])
def test_cdn_check_fails_naming_the_fault(cfg, problem):
    rep = check(cfg)
    assert not rep.ok
    assert any(problem in str(f) for f in rep.findings), [str(f) for f in rep.findings]


def test_cdn_direct_default_behavior_is_a_warning_only_when_allowed():
    cfg = distribution(default_target="api-us-west-2")
    assert not check(cfg).ok
    rep = check(cfg, allow_direct_default=True)
    assert rep.ok and [f.severity for f in rep.findings] == ["warning"]


def test_cdn_region_of_origin_names():
    assert origins.region_of("bucket.s3.us-east-1.amazonaws.com") == "us-east-1"
    assert origins.region_of("api.eu-central-1.example.com") == "eu-central-1"
    assert origins.region_of("cdn.example.com", "origin-us-gov-west-1") == "us-gov-west-1"
    assert origins.region_of("example.com") is None
