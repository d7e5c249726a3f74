"""Image references: parse them, find the images in use (the Deployments of the primary cluster plus an
inventory list), de-duplicate, retarget to another registry, pin by digest. Pure logic.

A reference is `[registry/]repository[:tag][@sha256:<hex>]` (the distribution reference grammar). The
first path component is a registry when it contains "." or ":" or is "localhost"; references without
one are completed with `default_registry` (the primary registry) -- Docker Hub's implicit docker.io is
never assumed, because the platform's images never come from there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lifeboat.errors import LifeboatError

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


class ImageReferenceError(LifeboatError, ValueError):
    """A malformed image reference; the message names it and where it came from."""


@dataclass(frozen=True, order=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        s = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    @property
    def name(self) -> str:
        """registry/repository, without tag or digest."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def reference(self) -> str:
        """What the registry API takes after /manifests/: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def pinned(self, digest: str) -> ImageRef:
        if not _DIGEST.match(digest or ""):
            raise ImageReferenceError(f"{self}: not a sha256 digest: {digest!r}")
        if self.digest and self.digest != digest:
            raise ImageReferenceError(f"{self}: already pinned to another digest than {digest}")
        return replace(self, digest=digest)

    def on(self, registry: str) -> ImageRef:
        """The same repository, tag and digest in another registry (the standby's)."""
        return replace(self, registry=registry)


def parse(text: str, *, default_registry: str = "", where: str = "") -> ImageRef:
    """Parse one reference; `where` (e.g. "Deployment community/api-gateway container api") goes into errors."""
    at = f" ({where})" if where else ""
    s = (text or "").strip()
    if not s or any(c.isspace() for c in s):
        raise ImageReferenceError(f"not an image reference: {text!r}{at}")
    digest = None
    if "@" in s:
        s, _, digest = s.partition("@")
        if not _DIGEST.match(digest):
            raise ImageReferenceError(f"{text!r}{at}: digest must be sha256:<64 hex>, got {digest!r}")
    tag = None
    last = s.rsplit("/", 1)[-1]
    if ":" in last:
        s, _, tag = s.rpartition(":")
        if not _TAG.match(tag):
            raise ImageReferenceError(f"{text!r}{at}: invalid tag {tag!r}")
    parts = s.split("/")
    registry = ""
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, parts = parts[0], parts[1:]
    for p in parts:
        if not _COMPONENT.match(p):
            raise ImageReferenceError(f"{text!r}{at}: invalid repository path component {p!r}")
    if not registry:
        if not default_registry:
            raise ImageReferenceError(f"{text!r}{at}: no registry in the reference and no default registry given")
        registry = default_registry
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(registry=registry, repository="/".join(parts), tag=tag, digest=digest)


@dataclass
class ImageUse:
    """An image in use and everything that uses it ("Deployment ns/name container c", "inventory")."""

    ref: ImageRef
    used_by: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"image": str(self.ref), "used_by": list(self.used_by)}


def _get(d: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if n in d and d[n] is not None:
            return d[n]
    return None


def _pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = _get(obj, "spec") or {}
    if _get(spec, "template"):  # Deployment, StatefulSet, DaemonSet, Job
        return _get(spec["template"], "spec") or {}
    jt = _get(spec, "jobTemplate", "job_template")  # CronJob
    if jt:
        return _get(_get(_get(jt, "spec") or {}, "template") or {}, "spec") or {}
    return spec  # a Pod


def images_in_workload(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(image, "Kind ns/name container c") for every container of a workload (dict as the API returns
    it, camelCase, or the Python client's to_dict(), snake_case)."""
    meta = _get(obj, "metadata") or {}
    kind = _get(obj, "kind") or "Deployment"
    who = f"{kind} {_get(meta, 'namespace') or 'default'}/{_get(meta, 'name') or '?'}"
    pod = _pod_spec(obj)
    out = []
    for field_names, label in ((("initContainers", "init_containers"), "init container"),
                               (("containers",), "container"),
                               (("ephemeralContainers", "ephemeral_containers"), "ephemeral container")):
        for c in _get(pod, *field_names) or []:
            image = _get(c, "image")
            if image:
                out.append((str(image), f"{who} {label} {_get(c, 'name') or '?'}"))
    return out


def collect(workloads: Iterable[Mapping[str, Any]], inventory: Iterable[str] = (), *,
            default_registry: str = "") -> list[ImageUse]:
    """Every image in use, de-duplicated by reference, sorted; each with what uses it."""
    uses: dict[ImageRef, ImageUse] = {}
    for w in workloads:
        for image, who in images_in_workload(w):
            ref = parse(image, default_registry=default_registry, where=who)
            uses.setdefault(ref, ImageUse(ref)).used_by.append(who)
    for i, image in enumerate(inventory):
        ref = parse(image, default_registry=default_registry, where=f"inventory images[{i}]")
        uses.setdefault(ref, ImageUse(ref)).used_by.append("inventory")
    return [uses[k] for k in sorted(uses)]


def by_repository(uses: Iterable[ImageUse]) -> dict[str, list[ImageUse]]:
    """{registry/repository: uses} -- one registry session per repository."""
    out: dict[str, list[ImageUse]] = {}
    for u in uses:
        out.setdefault(u.ref.name, []).append(u)
    return out


def pin_all(uses: Iterable[ImageUse],
            resolve: Callable[[ImageRef], str | None]) -> tuple[list[ImageUse], list[ImageUse]]:
    """Pin every use by digest with resolve(ref) (the primary registry's manifest digest). Returns
    (pinned, unresolved): an image the primary registry does not serve is named, not skipped silently."""
    pinned, unresolved = [], []
    for u in uses:
        digest = u.ref.digest or resolve(u.ref)
        if digest:
            pinned.append(ImageUse(u.ref.pinned(digest), list(u.used_by)))
        else:
            unresolved.append(u)
    return pinned, unresolved


def digest_from_image_id(image_id: str) -> str | None:
    """The digest of a Pod's status.containerStatuses[].imageID ("docker-pullable://repo@sha256:...",
    "registry/repo@sha256:..." or a bare "sha256:..."), None when it carries none."""
    m = re.search(r"(sha256:[0-9a-f]{64})$", image_id or "")
    return m.group(1) if m else None
