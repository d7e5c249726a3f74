"""Compare Git refs (a backup's bundle, the primary, a standby mirror) and a cluster's ConfigMaps with
the repository's files at the deployed commit. Pure logic; findings name the ref, ConfigMap and key.

Repository layout -> ConfigMaps: each top-level folder is a service and becomes the ConfigMap
`<service>-config`, one key per file directly in that folder (the file name), the file's text as the
value. Files at the top level (README.md) are not deployed. A deeper folder is an error naming the
path (ConfigMap keys cannot hold "/").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from lifeboat.errors import LifeboatError

_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
CONFIGMAP_SUFFIX = "-config"


class LayoutError(LifeboatError, ValueError):
    """The repository's files do not map onto ConfigMaps; the message names the path."""


@dataclass(frozen=True)
class RefFinding:
    ref: str
    problem: str  # missing | different | extra
    expected: str | None = None
    actual: str | None = None

    def __str__(self) -> str:
        if self.problem == "different":
            return f"{self.ref}: points at {self.actual} instead of {self.expected}"
        return f"{self.ref}: {self.problem} ({self.expected or self.actual})"


def refs_diff(expected: Mapping[str, str], actual: Mapping[str, str], *,
              ignore: tuple[str, ...] = ()) -> list[RefFinding]:
    """Every ref that is missing from `actual`, points elsewhere, or is only in `actual`."""
    out = []
    for ref in sorted(set(expected) | set(actual)):
        if ignore and ref.startswith(ignore):
            continue
        e, a = expected.get(ref), actual.get(ref)
        if a is None:
            out.append(RefFinding(ref, "missing", expected=e))
        elif e is None:
            out.append(RefFinding(ref, "extra", actual=a))
        elif e != a:
            out.append(RefFinding(ref, "different", expected=e, actual=a))
    return out


def configmap_name(service: str) -> str:
    return f"{service}{CONFIGMAP_SUFFIX}"


def configmaps_from_files(files: Mapping[str, bytes | str], *, root: str = "") -> dict[str, dict[str, str]]:
    """{ConfigMap name: {key: text}} for the repository's files (paths relative to the repository, or
    to `root` inside it)."""
    prefix = root.strip("/") + "/" if root.strip("/") else ""
    out: dict[str, dict[str, str]] = {}
    for path in sorted(files):
        if prefix and not path.startswith(prefix):
            continue
        rel = path[len(prefix):]
        parts = rel.split("/")
        if len(parts) == 1:
            continue  # top-level files (README.md) are not deployed
        if len(parts) > 2:
            raise LayoutError(f"{path}: nested folders do not map onto ConfigMap keys (one folder per service, "
                              "files directly inside it)")
        service, key = parts
        if not _KEY.match(key):
            raise LayoutError(f"{path}: {key!r} is not a valid ConfigMap key")
        data = files[path]
        try:
            text = data.decode() if isinstance(data, bytes) else data
        except UnicodeDecodeError:
            raise LayoutError(f"{path}: not UTF-8 text (binaryData is not supported)") from None
        out.setdefault(configmap_name(service), {})[key] = text
    return out


@dataclass(frozen=True)
class DriftFinding:
    configmap: str
    key: str | None
    # configmap missing | key missing | key not in repository | value differs | configmap not in repository
    problem: str
    detail: str = ""

    def __str__(self) -> str:
        where = f"ConfigMap {self.configmap}" + (f" key {self.key}" if self.key else "")
        return f"{where}: {self.problem}" + (f" ({self.detail})" if self.detail else "")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _fingerprint(text: str) -> str:
    return f"sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]}, {len(text.splitlines())} lines"


def drift(expected: Mapping[str, Mapping[str, str]], actual: Mapping[str, Mapping[str, str] | None], *,
          extra_configmaps: bool = False) -> list[DriftFinding]:
    """ConfigMaps in the cluster (`actual`: name -> data, None = absent) against the repository
    (`expected`). Values are never quoted (a ConfigMap may hold something sensitive): a differing value
    is reported with both fingerprints. With extra_configmaps, ConfigMaps only in the cluster count too."""
    out: list[DriftFinding] = []
    for name in sorted(expected):
        live = actual.get(name)
        if live is None:
            out.append(DriftFinding(name, None, "configmap missing"))
            continue
        want = expected[name]
        for key in sorted(set(want) | set(live)):
            if key not in live:
                out.append(DriftFinding(name, key, "key missing"))
            elif key not in want:
                out.append(DriftFinding(name, key, "key not in repository"))
            elif live[key] != want[key]:
                out.append(DriftFinding(name, key, "value differs",
                                        f"cluster {_fingerprint(live[key])}; repository {_fingerprint(want[key])}"))
    if extra_configmaps:
        for name in sorted(set(actual) - set(expected)):
            if actual[name] is not None:
                out.append(DriftFinding(name, None, "configmap not in repository"))
    return out
