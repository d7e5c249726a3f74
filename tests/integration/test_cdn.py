"""The CDN against the stack's moto: the platform's CloudFront distribution and its failover origin
groups read back through boto3 (what the amazon provider's hooks use), checked by lifeboat.cdn.origins."""

from __future__ import annotations

import json

import pytest

from lifeboat.cdn import origins
from lifeboat.connections import resolve

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cloudfront(stack_env):
    import boto3

    ep = resolve("lifeboat_cloudfront")
    return boto3.client("cloudfront", aws_access_key_id=ep.login, aws_secret_access_key=ep.password,
                        region_name=ep.extra["region_name"], endpoint_url=ep.extra["endpoint_url"])


def test_cdn_distribution_origin_groups_read_back_and_fail_over_to_the_standby(cloudfront, stack_env):
    dist_id = stack_env["LIFEBOAT_CDN_DISTRIBUTION_ID"]
    cfg = cloudfront.get_distribution_config(Id=dist_id)["DistributionConfig"]
    groups = {g["Id"]: g for g in cfg["OriginGroups"]["Items"]}
    assert set(groups) == {"api-failover", "uploads-failover"}
    assert [m["OriginId"] for m in groups["uploads-failover"]["Members"]["Items"]] == ["uploads-us-west-2",
                                                                                       "uploads-us-east-1"]
    assert groups["api-failover"]["FailoverCriteria"]["StatusCodes"]["Items"] == [500, 502, 503, 504]
    rep = origins.check(cfg, primary_region="us-west-2", standby_region="us-east-1", distribution_id=dist_id,
                        allow_direct_default=True)  # moto: the default behavior cannot target a group
    assert rep.ok, [str(f) for f in rep.findings]
    assert [f.subject for f in rep.findings] == ["default behavior"]
    assert {g["id"]: g["regions"] for g in rep.groups} == {"api-failover": ["us-west-2", "us-east-1"],
                                                           "uploads-failover": ["us-west-2", "us-east-1"]}
    assert cloudfront.get_distribution(Id=dist_id)["Distribution"]["DomainName"] == stack_env["LIFEBOAT_CDN_DOMAIN"]


def test_cdn_a_group_changed_to_fail_over_within_the_primary_region_is_caught(cloudfront, stack_env):
    dist_id = stack_env["LIFEBOAT_CDN_DISTRIBUTION_ID"]
    got = cloudfront.get_distribution_config(Id=dist_id)
    original = json.loads(json.dumps(got["DistributionConfig"], default=str))
    broken = json.loads(json.dumps(original))
    broken["OriginGroups"]["Items"][1]["Members"]["Items"][1]["OriginId"] = "uploads-us-west-2"
    etag = cloudfront.update_distribution(Id=dist_id, IfMatch=got["ETag"], DistributionConfig=broken)["ETag"]
    try:
        cfg = cloudfront.get_distribution_config(Id=dist_id)["DistributionConfig"]
        rep = origins.check(cfg, primary_region="us-west-2", standby_region="us-east-1", allow_direct_default=True)
        assert not rep.ok
        assert [str(f) for f in rep.findings if f.severity == "error"] == [
            "error: origin group uploads-failover: failover origin uploads-us-west-2 is in us-west-2, not us-east-1"]
    finally:
        cloudfront.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=original)
    cfg = cloudfront.get_distribution_config(Id=dist_id)["DistributionConfig"]
    assert origins.check(cfg, primary_region="us-west-2", standby_region="us-east-1", allow_direct_default=True).ok
