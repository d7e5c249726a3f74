"""Velero's backup files, read without Velero (pure): the tarball, the resource list, the results.

A Velero backup in its location is `backups/<name>/`:

    <name>.tar.gz                      the objects: resources/<resource>/namespaces/<ns>/<name>.json and
                                       resources/<resource>/cluster/<name>.json (plus a copy of each under
                                       resources/<resource>/<version>-preferredversion/...), metadata/version
    <name>-resource-list.json.gz       {"apps/v1/Deployment": ["community/api-gateway", ...], "v1/Namespace": [...]}
    <name>-results.gz                  {"errors": {...}, "warnings": {...}} (velero / cluster / namespaces)
    <name>-logs.gz, ... , velero-backup.json (the Backup object; what another cluster's sync reads)

`read_tarball` parses the tarball into `Tarball` (every object, by resource), from which the manifest's
resource list and item counts come, and against which restored objects are compared.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

OWNER = "lifeboat.io/backup-id"  # annotation on every Velero Backup Lifeboat creates
COPY = "velero/"  # a backup's artifacts: velero/backups/<name>/..., a Velero location layout of its own
_ITEM = re.compile(r"^resources/(?P<resource>[^/]+)/(?:(?P<ns>namespaces)/(?P<namespace>[^/]+)|cluster)/"
                   r"(?P<name>[^/]+)\.json$")
# Velero writes both `ConfigMap:kube-root-ca.crt already exists` and `ConfigMap "kube-root-ca.crt" already exists`
_WARNING = re.compile(r'could not restore, (?P<kind>[A-Za-z]+)(?::| ")(?P<name>[^"\s]+)"? already exists')


def velero_name(backup_id: str) -> str:
    """The Velero Backup's name for a Lifeboat backup id: deterministic (a retried task finds its own),
    a DNS label (lower case, <= 63: Velero puts it into label values)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", backup_id.lower()).strip("-")
    if len(slug) > 63:
        slug = slug[:54].rstrip("-") + "-" + hashlib.sha256(backup_id.encode()).hexdigest()[:8]
    return slug or "lifeboat"


def backup_prefix(prefix: str, name: str) -> str:
    """The folder of backup `name` in a location whose objectStorage.prefix is `prefix`."""
    return f"{prefix.strip('/')}/backups/{name}/" if prefix.strip("/") else f"backups/{name}/"


def restore_prefix(prefix: str, name: str) -> str:
    return f"{prefix.strip('/')}/restores/{name}/" if prefix.strip("/") else f"restores/{name}/"


class TarballError(ValueError):
    """The tarball cannot be read (not gzip, not tar, an item that is not JSON)."""


@dataclass
class Tarball:
    """The objects of one Velero backup tarball."""

    items: dict[str, dict] = field(default_factory=dict)  # "<resource>/<ns>/<name>" (ns "" if cluster) -> object
    format_version: str = ""

    @property
    def resource_list(self) -> dict[str, list[str]]:
        """In Velero's own resource-list format: {"<apiVersion>/<Kind>": ["<ns>/<name>" | "<name>", ...]}."""
        out: dict[str, list[str]] = {}
        for key, obj in self.items.items():
            _, ns, name = key.split("/", 2)
            out.setdefault(f"{obj.get('apiVersion', '?')}/{obj.get('kind', '?')}", []).append(
                f"{ns}/{name}" if ns else name)
        return {k: sorted(v) for k, v in sorted(out.items())}

    @property
    def counts(self) -> dict[str, int]:
        """Items per resource type ("apps/v1/Deployment": 3)."""
        return {k: len(v) for k, v in self.resource_list.items()}

    def objects(self, namespace: str, kinds: Iterable[str] | None = None) -> list[dict]:
        """The backed-up objects of one namespace (optionally only some kinds)."""
        wanted = set(kinds) if kinds is not None else None
        return [o for key, o in sorted(self.items.items()) if key.split("/", 2)[1] == namespace
                and (wanted is None or o.get("kind") in wanted)]

    def find(self, namespace: str, kind: str, name: str) -> tuple[str, dict] | None:
        """(resource, object) of one namespaced object, e.g. ("deployments.apps", {...})."""
        for key, o in self.items.items():
            resource, ns, n = key.split("/", 2)
            if ns == namespace and n == name and o.get("kind") == kind:
                return resource, o
        return None


def read_tarball(data: bytes, where: str = "the tarball") -> Tarball:
    """Parse a Velero backup tarball; TarballError naming `where` if it is damaged."""
    out = Tarball()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                raw = tar.extractfile(member)
                body = raw.read() if raw is not None else b""
                if member.name == "metadata/version":
                    out.format_version = body.decode(errors="replace").strip()
                    continue
                m = _ITEM.match(member.name)
                if not m or "-preferredversion" in member.name:
                    continue  # the preferred-version copies repeat the items above
                try:
                    obj = json.loads(body)
                except ValueError as exc:
                    raise TarballError(f"{where}: {member.name} is not JSON ({exc})") from None
                out.items[f"{m['resource']}/{m['namespace'] or ''}/{m['name']}"] = obj
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, zlib.error) as exc:
        raise TarballError(f"{where}: not a readable Velero tarball ({type(exc).__name__}: {exc})") from None
    if not out.items:
        raise TarballError(f"{where}: holds no Kubernetes objects")
    return out


def read_gzip_json(data: bytes, where: str) -> dict:
    try:
        return json.loads(gzip.decompress(data))
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise TarballError(f"{where}: not gzipped JSON ({type(exc).__name__}: {exc})") from None


def list_difference(recorded: Mapping[str, list[str]], found: Mapping[str, list[str]], limit: int = 8) -> list[str]:
    """What differs between two resource lists, one entry per object ("+ v1/ConfigMap community/x")."""
    out = []
    for key in sorted(set(recorded) | set(found)):
        a, b = set(recorded.get(key, [])), set(found.get(key, []))
        out += [f"- {key} {n} (recorded, not found)" for n in sorted(a - b)]
        out += [f"+ {key} {n} (found, not recorded)" for n in sorted(b - a)]
    return out[:limit] + ([f"... {len(out) - limit} more"] if len(out) > limit else [])


def flatten_results(results: Mapping, level: str) -> list[str]:
    """The messages of one level ("warnings" / "errors") of Velero's results, each prefixed with where."""
    block = results.get(level) or {}
    out = [f"velero: {m}" for m in block.get("velero") or []]
    out += [f"cluster: {m}" for m in block.get("cluster") or []]
    for ns, msgs in sorted((block.get("namespaces") or {}).items()):
        out += [f"{ns}: {m}" for m in msgs]
    return out


def unexpected_warnings(messages: Iterable[str], expected: Iterable[str]) -> list[str]:
    """Warnings other than "could not restore, <Kind>:<name> already exists" for the expected Kind/name
    objects (e.g. ConfigMap/kube-root-ca.crt: every namespace gets its own cluster's copy)."""
    allowed = set(expected)
    out = []
    for msg in messages:
        m = _WARNING.search(msg)
        if not (m and f"{m['kind']}/{m['name']}" in allowed):
            out.append(msg)
    return out
