"""A container registry behind an Airflow connection: the registry HTTP API (v2) and skopeo.

The connection (generic) holds host, port, login and password; its extra may say
`{"tls_verify": false}` (a plain-HTTP registry, the local stack) and, for Amazon ECR,
`{"ecr": true, "aws_conn_id": "<aws connection>"}`: the password is then fetched with ECR's
GetAuthorizationToken (what `aws ecr get-login-password` prints) and never stored.

Credentials never reach argv or logs: skopeo reads them from a temporary auth file (0600, in a 0700
folder, deleted afterwards) and the HTTP API gets them in a header. Everything read by digest is
checked against that digest (manifests and blobs), so a corrupt or swapped object is named.

    reg = RegistryClient.from_connection("lifeboat_registry_us_west_2")
    reg.list_tags("community/api-gateway")             -> ["2.0.0", "2.0.1", "latest"]
    reg.manifest_digest("community/api-gateway", "2.0.1")
    reg.copy(reg.ref("community/api-gateway", "2.0.1"), standby, standby.ref("community/api-gateway", "2.0.1"))
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeboat.clients.skopeo import auth_file
from lifeboat.clients.skopeo import run as _run
from lifeboat.clients.skopeo import run_bytes as _skopeo_bytes
from lifeboat.connections import Endpoint, resolve
from lifeboat.errors import ConnectionConfigError, DigestMismatch, ServiceError

log = logging.getLogger(__name__)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # redirects are followed by hand (see _request)
        return None


# never through a proxy; redirects by hand: blob downloads redirect to object storage (ECR -> S3
# presigned URLs), which must not receive the registry's Authorization header
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
_REDIRECTS = (301, 302, 303, 307, 308)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str, what: str) -> str:
    if not _DIGEST.match(digest or ""):
        raise ServiceError(f"{what}: not a sha256 digest: {digest!r}")
    return digest


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as the registry serves it (bytes hash to `digest`)."""

    repository: str
    digest: str
    media_type: str
    raw: bytes = field(repr=False)

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.raw)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or "manifests" in self.doc

    def children(self) -> list[dict[str, Any]]:
        """An index's manifest descriptors (digest, mediaType, platform)."""
        return list(self.doc.get("manifests") or []) if self.is_index else []

    def blobs(self) -> list[dict[str, Any]]:
        """An image manifest's config + layer descriptors."""
        if self.is_index:
            return []
        d = self.doc
        return ([d["config"]] if d.get("config") else []) + list(d.get("layers") or [])


class RegistryClient:
    def __init__(self, endpoint: Endpoint, *, timeout: float = 30.0, skopeo: str | None = None):
        endpoint.require("host")
        self.endpoint = endpoint
        self.timeout = timeout
        extra = endpoint.extra or {}
        self.tls_verify = _truthy(extra.get("tls_verify", True))
        self.scheme = "https" if self.tls_verify else "http"
        self.host = f"{endpoint.host}:{endpoint.port}" if endpoint.port else endpoint.host
        self._skopeo = skopeo
        self._token: dict[str, str] = {}
        self._password: str | None = None

    @classmethod
    def from_connection(cls, conn_id: str, **kwargs) -> RegistryClient:
        return cls(resolve(conn_id), **kwargs)

    # ---- identity -------------------------------------------------------------------------------
    def describe(self) -> str:
        return f"registry {self.host} (connection {self.endpoint.conn_id})"

    def ref(self, repository: str, tag: str | None = None, digest: str | None = None) -> str:
        """`<host>/<repository>:<tag>` or `@<digest>` (the form skopeo's docker:// transport takes)."""
        if digest:
            return f"{self.host}/{repository}@{check_digest(digest, repository)}"
        return f"{self.host}/{repository}:{tag or 'latest'}"

    @property
    def username(self) -> str:
        return "AWS" if self._is_ecr else self.endpoint.login

    @property
    def _is_ecr(self) -> bool:
        return _truthy((self.endpoint.extra or {}).get("ecr", False))

    @property
    def password(self) -> str:
        if self._password is None:
            self._password = self._ecr_password() if self._is_ecr else self.endpoint.password
        return self._password

    def _ecr_password(self) -> str:
        """`aws ecr get-login-password`: GetAuthorizationToken, base64 "AWS:<password>" (valid 12 h)."""
        aws_conn = (self.endpoint.extra or {}).get("aws_conn_id")
        if not aws_conn:
            raise ConnectionConfigError(f"Airflow connection {self.endpoint.conn_id!r}: extra.ecr is set but "
                                        "extra.aws_conn_id (the aws connection to ask ECR with) is missing")
        import boto3

        ep = resolve(aws_conn)
        region = ep.extra.get("region_name") or _ecr_region(self.endpoint.host)
        kwargs = {"aws_access_key_id": ep.login or None, "aws_secret_access_key": ep.password or None,
                  "region_name": region, "endpoint_url": ep.extra.get("endpoint_url")}
        ecr = boto3.client("ecr", **{k: v for k, v in kwargs.items() if v})
        try:
            data = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        except Exception as exc:
            raise ServiceError(f"{self.describe()}: ECR GetAuthorizationToken through {aws_conn!r} failed: "
                               f"{type(exc).__name__}: {exc}") from None
        _user, _, password = base64.b64decode(data).decode().partition(":")
        return password

    # ---- HTTP API -------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}/v2/{path.lstrip('/')}"

    def _basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def _request(self, method: str, path_or_url: str, *, headers: dict | None = None, scope: str = "",
                 stream: bool = False, follow: bool = True, data: bytes | None = None):
        """One request with the registry's auth (basic, or the bearer-token challenge); returns the
        open response (stream) or (status, headers, body). HTTP errors come back as results.
        Redirects are followed for GET (without credentials when they leave the registry's host)."""
        url = path_or_url if "://" in path_or_url else self._url(path_or_url)
        own_host = True
        for _attempt in range(6):
            h = dict(headers or {})
            if own_host and (self.password or self.username):
                h["Authorization"] = self._token.get(scope) or self._basic()
            req = urllib.request.Request(url, method=method, headers=h, data=data)
            try:
                resp = _NO_PROXY.open(req, timeout=self.timeout)
            except urllib.error.HTTPError as e:
                hdrs = dict(e.headers or {})
                challenge = _header(hdrs, "WWW-Authenticate") or ""
                if e.code == 401 and own_host and scope not in self._token and challenge.lower().startswith("bearer "):
                    self._token[scope] = "Bearer " + self._bearer(challenge, scope)
                    continue
                location = _header(hdrs, "Location")
                if e.code in _REDIRECTS and location and follow and method == "GET":
                    url = urllib.parse.urljoin(url, location)
                    own_host = urllib.parse.urlsplit(url).netloc == self.host
                    continue
                return e.code, hdrs, e.read()
            except OSError as e:
                raise ServiceError(f"{self.describe()}: {method} {urllib.parse.urlsplit(url).path} failed: "
                                   f"{type(e).__name__}: {e}") from None
            if stream:
                return resp
            with resp:
                return resp.status, dict(resp.headers), resp.read()
        raise ServiceError(f"{self.describe()}: {method} {urllib.parse.urlsplit(url).path}: too many redirects "
                           "or authentication retries")

    def _bearer(self, challenge: str, scope: str) -> str:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", "")
        if not realm:
            raise ServiceError(f"{self.describe()}: bearer challenge without realm: {challenge!r}")
        if scope:
            params["scope"] = scope
        req = urllib.request.Request(realm + "?" + urllib.parse.urlencode(params),
                                     headers={"Authorization": self._basic()} if self.password else {})
        try:
            with _NO_PROXY.open(req, timeout=self.timeout) as r:
                data = json.loads(r.read())
        except (OSError, ValueError) as e:
            raise ServiceError(f"{self.describe()}: token request to {realm} failed: {e}") from None
        return data.get("token") or data.get("access_token") or ""

    def _fail(self, what: str, status: int, body: bytes) -> ServiceError:
        detail = body.decode(errors="replace").strip()[:300]
        if status == 401:
            return ServiceError(f"{self.describe()}: {what}: HTTP 401 unauthorized -- check the login/password "
                                f"of Airflow connection {self.endpoint.conn_id!r}")
        return ServiceError(f"{self.describe()}: {what}: HTTP {status} {detail}")

    def ping(self) -> bool:
        status, _, body = self._request("GET", "")
        if status == 200:
            return True
        raise self._fail("GET /v2/", status, body)

    def _paged(self, path: str, key: str, scope: str) -> Iterator[str]:
        url: str | None = self._url(path)
        while url:
            status, headers, body = self._request("GET", url, scope=scope)
            if status == 404 and key == "tags":
                return
            if status != 200:
                raise self._fail(f"GET {urllib.parse.urlsplit(url).path}", status, body)
            yield from json.loads(body or b"{}").get(key) or []
            url = _next_link(headers, url)

    def catalog(self, page_size: int = 1000) -> list[str]:
        """Every repository (GET /v2/_catalog, paged). ECR has no catalog: list repositories there."""
        return list(self._paged(f"_catalog?n={page_size}", "repositories", "registry:catalog:*"))

    def list_tags(self, repository: str, page_size: int = 1000) -> list[str]:
        """The repository's tags, sorted ([] when the repository does not exist)."""
        return sorted(self._paged(f"{repository}/tags/list?n={page_size}", "tags", _scope(repository)))

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest the registry serves for repository:reference (HEAD), None when absent."""
        status, headers, body = self._request("HEAD", f"{repository}/manifests/{reference}",
                                              headers={"Accept": ", ".join(MANIFEST_TYPES)},
                                              scope=_scope(repository))
        if status == 404:
            return None
        if status != 200:
            raise self._fail(f"HEAD {repository}:{reference}", status, body)
        digest = _header(headers, "Docker-Content-Digest")
        if not digest:  # some registries answer HEAD without it: read the manifest
            return self.get_manifest(repository, reference).digest
        return digest

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest exactly as served; its sha256 must equal the digest asked for (or served)."""
        status, headers, body = self._request("GET", f"{repository}/manifests/{reference}",
                                              headers={"Accept": ", ".join(MANIFEST_TYPES)},
                                              scope=_scope(repository))
        if status != 200:
            raise self._fail(f"GET manifest {repository}:{reference}", status, body)
        actual = sha256_digest(body)
        expected = reference if reference.startswith("sha256:") else _header(headers, "Docker-Content-Digest")
        if expected and expected != actual:
            raise DigestMismatch(f"{self.describe()}: manifest {repository}@{expected} hashes to {actual}")
        media = (_header(headers, "Content-Type") or "").split(";")[0].strip()
        with contextlib.suppress(ValueError):
            media = json.loads(body).get("mediaType") or media
        return Manifest(repository=repository, digest=actual, media_type=media, raw=body)

    def blob_exists(self, repository: str, digest: str) -> bool:
        status, _, body = self._request("HEAD", f"{repository}/blobs/{check_digest(digest, repository)}",
                                        scope=_scope(repository))
        if status in (200, 307):
            return True
        if status == 404:
            return False
        raise self._fail(f"HEAD blob {repository}@{digest}", status, body)

    def read_blob(self, repository: str, digest: str, dest: Path | None = None, chunk: int = 1 << 20) -> int:
        """GET a blob, hashing it while streaming (into `dest` when given); returns its size.
        Raises DigestMismatch when the content does not hash to `digest`, ServiceError when absent."""
        check_digest(digest, repository)
        resp = self._request("GET", f"{repository}/blobs/{digest}", scope=_scope(repository), stream=True)
        if isinstance(resp, tuple):
            status, _, body = resp
            raise self._fail(f"GET blob {repository}@{digest}", status, body)
        h = hashlib.sha256()
        size = 0
        out = open(dest, "wb") if dest else None  # noqa: SIM115 -- closed below
        try:
            with resp:
                while data := resp.read(chunk):
                    h.update(data)
                    size += len(data)
                    if out:
                        out.write(data)
        finally:
            if out:
                out.close()
        actual = "sha256:" + h.hexdigest()
        if actual != digest:
            if dest:
                with contextlib.suppress(OSError):
                    os.unlink(dest)
            raise DigestMismatch(f"{self.describe()}: blob {repository}@{digest} hashes to {actual} ({size} bytes)")
        return size

    def delete_blob(self, repository: str, digest: str) -> None:
        """DELETE a blob from one repository (the registry must allow deletes). Tests and repairs only."""
        status, _, body = self._request("DELETE", f"{repository}/blobs/{check_digest(digest, repository)}",
                                        scope=_scope(repository, "delete"))
        if status not in (202, 200):
            raise self._fail(f"DELETE blob {repository}@{digest}", status, body)

    def delete_manifest(self, repository: str, digest: str) -> None:
        status, _, body = self._request("DELETE", f"{repository}/manifests/{check_digest(digest, repository)}",
                                        scope=_scope(repository, "delete"))
        if status not in (202, 200):
            raise self._fail(f"DELETE manifest {repository}@{digest}", status, body)

    def put_blob(self, repository: str, data: bytes) -> str:
        """Upload a (small) blob in one request unless the repository has it; returns its digest."""
        digest, scope = sha256_digest(data), _scope(repository, "pull,push")
        if self.blob_exists(repository, digest):
            return digest
        status, headers, body = self._request("POST", f"{repository}/blobs/uploads/", scope=scope, data=b"")
        location = _header(headers, "Location")
        if status != 202 or not location:
            raise self._fail(f"POST blob upload {repository}", status, body)
        url = urllib.parse.urljoin(self._url(""), location)
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
        status, _, body = self._request("PUT", url, scope=scope, data=data,
                                        headers={"Content-Type": "application/octet-stream"})
        if status != 201:
            raise self._fail(f"PUT blob {repository}@{digest}", status, body)
        return digest

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str = OCI_MANIFEST) -> str:
        """PUT a manifest under a tag; returns its digest (the registry must store it under sha256(raw))."""
        status, headers, body = self._request("PUT", f"{repository}/manifests/{reference}", data=raw,
                                              headers={"Content-Type": media_type},
                                              scope=_scope(repository, "pull,push"))
        if status != 201:
            raise self._fail(f"PUT manifest {repository}:{reference}", status, body)
        digest, served = sha256_digest(raw), _header(headers, "Docker-Content-Digest")
        if served and served != digest:
            raise DigestMismatch(f"{self.describe()}: {repository}:{reference} stored as {served}, not {digest}")
        return digest

    def walk(self, repository: str, reference: str) -> list[Manifest]:
        """The manifest at reference and, for an index, every child manifest (each digest-checked)."""
        top = self.get_manifest(repository, reference)
        out = [top]
        for child in top.children():
            out.append(self.get_manifest(repository, check_digest(child.get("digest", ""), repository)))
        return out

    # ---- skopeo ---------------------------------------------------------------------------------
    @property
    def skopeo(self) -> str:
        exe = self._skopeo or shutil.which("skopeo")
        if not exe:
            raise ServiceError("skopeo not found on PATH (Debian package skopeo)")
        return exe

    def inspect_raw(self, image_ref: str) -> bytes:
        """`skopeo inspect --raw docker://<image_ref>`: the manifest bytes."""
        with auth_file([self]) as auth:
            return _skopeo_bytes([self.skopeo, "inspect", "--raw", "--authfile", auth,
                                  f"--tls-verify={_b(self.tls_verify)}", "--retry-times", "2",
                                  f"docker://{image_ref}"])

    def copy(self, src_ref: str, dest: RegistryClient, dest_ref: str, *, all_images: bool = True,
             preserve_digests: bool = True, timeout: float = 1800, runner=None) -> None:
        """`skopeo copy --all --preserve-digests docker://src docker://dest` (blobs the destination has
        are not uploaded again)."""
        argv = [self.skopeo, "copy", "--retry-times", "3"]
        argv += ["--all"] if all_images else []
        argv += ["--preserve-digests"] if preserve_digests else []
        with auth_file([self, dest]) as auth:
            argv += ["--authfile", auth, f"--src-tls-verify={_b(self.tls_verify)}",
                     f"--dest-tls-verify={_b(dest.tls_verify)}", f"docker://{src_ref}", f"docker://{dest_ref}"]
            _run(argv, timeout, runner)

    def copy_to_oci(self, src_ref: str, layout: Path, name: str, *, timeout: float = 1800, runner=None) -> None:
        """Pull an image (all platforms, digests preserved) into a local OCI layout `layout:name`."""
        Path(layout).parent.mkdir(parents=True, exist_ok=True)
        with auth_file([self]) as auth:
            _run([self.skopeo, "copy", "--retry-times", "3", "--all", "--preserve-digests", "--authfile", auth,
                  f"--src-tls-verify={_b(self.tls_verify)}", f"docker://{src_ref}", f"oci:{layout}:{name}"],
                 timeout, runner)

    def sync(self, repository: str, dest: RegistryClient, dest_prefix: str, *, timeout: float = 3600,
             runner=None) -> None:
        """`skopeo sync --all --preserve-digests` of every tag of repository into dest/<dest_prefix>/."""
        with auth_file([self, dest]) as auth:
            _run([self.skopeo, "sync", "--all", "--preserve-digests", "--retry-times", "3", "--src", "docker",
                  "--dest", "docker", "--src-authfile", auth, "--dest-authfile", auth,
                  f"--src-tls-verify={_b(self.tls_verify)}", f"--dest-tls-verify={_b(dest.tls_verify)}",
                  f"{self.host}/{repository}", f"{dest.host}/{dest_prefix.strip('/')}"], timeout, runner)


# --------------------------------------------------------------------------- helpers

def _b(v: bool) -> str:
    return "true" if v else "false"


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() not in ("false", "0", "no", "off", "")
    return bool(v)


def _scope(repository: str, actions: str = "pull") -> str:
    return f"repository:{repository}:{actions}"


def _header(headers: dict, name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


def _next_link(headers: dict, current: str) -> str | None:
    link = _header(headers, "Link")
    if not link:
        return None
    m = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', link)
    if not m:
        return None
    return urllib.parse.urljoin(current, m.group(1))


def _ecr_region(host: str) -> str | None:
    m = re.match(r"^\d+\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com", host)
    return m.group(1) if m else None
