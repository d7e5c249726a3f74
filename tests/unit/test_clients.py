"""Client pieces that need no server: connection parsing, URLs without credentials, paging helpers,
ECR's token (moto, in-process)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from lifeboat.clients import registry as regmod
from lifeboat.clients.git import GitRemote, _parse_refs
from lifeboat.clients.s3 import Bucket
from lifeboat.connections import Endpoint
from lifeboat.errors import ConnectionConfigError, ServiceError

D = "sha256:" + "c" * 64


def test_git_remote_from_connection_builds_the_url_without_credentials():
    r = GitRemote.from_endpoint(Endpoint("lifeboat_config_x", "generic", "git.example.com", 8443, "bot", "s3cret",
                                         "community/community-config.git", {"scheme": "https"}))
    assert r.url == "https://git.example.com:8443/community/community-config.git"
    assert "s3cret" not in repr(r) and "s3cret" not in r.describe()
    env = r.env()
    assert env["LIFEBOAT_GIT_PASSWORD"] == "s3cret" and env["GIT_CONFIG_KEY_1"] == "credential.helper"
    assert "s3cret" not in env["GIT_CONFIG_VALUE_1"]  # the helper reads the variable, it does not hold the value
    assert GitRemote.from_endpoint(Endpoint("c", extra={"url": "http://h/r.git"})).url == "http://h/r.git"


def test_git_remote_refuses_credentials_in_the_url_and_a_connection_without_host():
    with pytest.raises(ConnectionConfigError, match="must not carry credentials"):
        GitRemote.from_endpoint(Endpoint("c", extra={"url": "https://bot:pw@h/r.git"}))
    with pytest.raises(ConnectionConfigError, match="'c': needs host"):
        GitRemote.from_endpoint(Endpoint("c"))


def test_git_ref_listings_leave_out_head_and_peeled_tags():
    text = f"{'1' * 40}\tHEAD\n{'2' * 40}\trefs/heads/main\n{'3' * 40}\trefs/tags/v1\n{'4' * 40}\trefs/tags/v1^{{}}\n"
    assert _parse_refs(text, "\t") == {"refs/heads/main": "2" * 40, "refs/tags/v1": "3" * 40}


def test_registry_client_reads_tls_and_formats_references():
    c = regmod.RegistryClient(Endpoint("r", "generic", "127.0.0.1", 5000, "u", "p", extra={"tls_verify": "false"}))
    assert (c.host, c.scheme, c.tls_verify) == ("127.0.0.1:5000", "http", False)
    assert c.ref("community/a", "1.0") == "127.0.0.1:5000/community/a:1.0"
    assert c.ref("community/a", digest=D) == f"127.0.0.1:5000/community/a@{D}"
    with pytest.raises(ServiceError, match="not a sha256 digest"):
        c.ref("community/a", digest="sha256:nope")
    assert regmod.RegistryClient(Endpoint("r", host="reg.example.com")).scheme == "https"
    with pytest.raises(ConnectionConfigError, match="has no host"):
        regmod.RegistryClient(Endpoint("r"))


def test_registry_paging_link_and_ecr_host_region():
    nxt = regmod._next_link({"Link": '</v2/_catalog?last=b&n=2>; rel="next"'}, "http://h:5000/v2/_catalog?n=2")
    assert nxt == "http://h:5000/v2/_catalog?last=b&n=2"
    assert regmod._next_link({}, "http://h/") is None
    assert regmod._ecr_region("123456789012.dkr.ecr.us-east-1.amazonaws.com") == "us-east-1"
    assert regmod._ecr_region("127.0.0.1:5000") is None


def test_registry_auth_file_is_private_and_removed(tmp_path):
    import json
    import os
    import stat

    c = regmod.RegistryClient(Endpoint("r", "generic", "127.0.0.1", 5000, "u", "pw"))
    with regmod.auth_file([c]) as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        auth = json.loads(Path(path).read_text())["auths"]["127.0.0.1:5000"]["auth"]
        assert base64.b64decode(auth) == b"u:pw"
    assert not os.path.exists(path)


def test_registry_ecr_password_comes_from_get_authorization_token(monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("AIRFLOW_CONN_AWS_ECR_TEST", '{"conn_type": "aws", "login": "testing", "password": "testing", '
                                                   '"extra": {"region_name": "us-west-2"}}')
    with mock_aws():
        c = regmod.RegistryClient(Endpoint("reg", "generic", "123456789012.dkr.ecr.us-west-2.amazonaws.com",
                                           extra={"ecr": True, "aws_conn_id": "aws_ecr_test"}))
        import boto3

        token = boto3.client("ecr", region_name="us-west-2", aws_access_key_id="testing",
                             aws_secret_access_key="testing").get_authorization_token()
        raw = token["authorizationData"][0]["authorizationToken"]
        user, _, password = base64.b64decode(raw).decode().partition(":")
        assert (c.username, c.password) == (user, password) == ("AWS", password) and password
    with pytest.raises(ConnectionConfigError, match=r"extra\.aws_conn_id"):
        _ = regmod.RegistryClient(Endpoint("reg", host="x.dkr.ecr.us-west-2.amazonaws.com",
                                           extra={"ecr": True})).password


class _Versions:
    """A stub S3 client: list_object_versions over fixed pages."""

    def __init__(self, pages):
        self.pages = pages
        self.calls = []

    def list_object_versions(self, **kw):
        self.calls.append(kw)
        return self.pages[len(self.calls) - 1]


def _v(key, vid, latest=True):
    return {"Key": key, "VersionId": vid, "ETag": f'"{vid}"', "Size": 1, "IsLatest": latest}


def test_s3_version_pages_are_cut_at_whole_keys():
    client = _Versions([{"Versions": [_v("a", "1"), _v("b", "2"), _v("b", "3", False)], "IsTruncated": True,
                         "NextKeyMarker": "b", "NextVersionIdMarker": "3"}])
    b = Bucket("bkt", client=client)
    versions, more, marker = b.list_versions_page("", 3)
    assert [v.key for v in versions] == ["a"] and more and marker == "a"  # b continues on the next page
    client = _Versions([{"Versions": [_v("a", "1"), _v("b", "2")], "IsTruncated": True, "NextKeyMarker": "b"}])
    versions, more, marker = Bucket("bkt", client=client).list_versions_page("", 2)
    assert [v.key for v in versions] == ["a", "b"] and marker == "b"
    assert [v.etag for v in versions] == ["1", "2"]  # quotes stripped


def test_s3_errors_name_bucket_key_and_connection_and_not_implemented_is_unsupported():
    from botocore.exceptions import ClientError

    from lifeboat.errors import ServiceUnsupported

    class Client:
        meta = type("M", (), {"endpoint_url": "http://127.0.0.1:1"})()

        def put_bucket_replication(self, **kw):
            raise ClientError({"Error": {"Code": "NotImplemented", "Message": "nope"}}, "PutBucketReplication")

        def head_object(self, **kw):
            raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    b = Bucket("bkt", conn_id="lifeboat_uploads_x", client=Client())
    with pytest.raises(ServiceUnsupported, match=r"s3://bkt \(connection lifeboat_uploads_x"):
        b.put_replication({"Role": "r", "Rules": []})
    with pytest.raises(ServiceError, match=r"s3://bkt/k .*HeadObject failed: 403"):
        b.head("k")
