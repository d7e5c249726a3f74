"""Kubernetes verification: the Velero Backup's phase, the tarball re-read from the bucket (SHA-256 and its
resource list against the manifest), Velero's own resource list, and the other region's Velero listing the
backup through its read-only location. (The Lifeboat copy's checksums are the base class's check.)"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from lifeboat.clients.kubernetes import BackupStatus
from lifeboat.datastores.kubernetes.tarball import OWNER, TarballError, list_difference, read_gzip_json, read_tarball
from lifeboat.errors import LifeboatError
from lifeboat.records import Check, Manifest

if TYPE_CHECKING:
    from lifeboat.datastores.kubernetes.engine import KubernetesDatastore


def checks(eng: KubernetesDatastore, m: Manifest) -> list[Check]:
    out = [backup_object(eng, m)]
    out += bucket_files(eng, m)
    out.append(other_region(eng, m))
    return out


def backup_object(eng: KubernetesDatastore, m: Manifest) -> Check:
    name, region = m.native["velero_backup"], m.region
    try:
        obj = eng.client(region).backup_object(name)
    except LifeboatError as exc:
        return Check(name="velero backup", ok=False, detail=str(exc))
    if obj is None:
        return Check(name="velero backup", ok=False,
                     detail=f"Velero Backup {name} no longer exists in {region} (expired by its ttl or deleted outside "
                            f"Lifeboat); the repository's copy ({m.native.get('copy', 'velero/')}) restores by hand")
    st = BackupStatus.from_object(obj)
    problems = []
    if not st.ok:
        problems.append(st.describe())
    owner = ((obj.get("metadata") or {}).get("annotations") or {}).get(OWNER)
    if owner != m.id:
        problems.append(f"annotation {OWNER}={owner!r}: not the Backup Lifeboat took for {m.id}")
    if st.items_backed_up != m.native.get("items_backed_up"):
        problems.append(f"{st.items_backed_up} items now, {m.native.get('items_backed_up')} recorded")
    return Check(name="velero backup", ok=not problems,
                 detail="; ".join(problems) or f"{st.describe()} in {region}")


def bucket_files(eng: KubernetesDatastore, m: Manifest) -> list[Check]:
    """The tarball and the resource list, read back from the location's bucket."""
    name = m.native["velero_backup"]
    recorded = m.native.get("resources") or {}
    tar = m.native["tarball"]
    try:
        loc = eng.location(m.region, m.native.get("storage_location"))
    except LifeboatError as exc:
        return [Check(name="tarball in the bucket", ok=False, detail=f"{tar['url']}: location unreadable: {exc}")]
    url = loc.url(tar["key"])
    try:
        data = loc.get(tar["key"])
    except LifeboatError as exc:
        return [Check(name="tarball in the bucket", ok=False, detail=f"{url}: unreadable: {exc}")]
    problems = []
    digest = hashlib.sha256(data).hexdigest()
    if digest != tar["sha256"] or len(data) != tar["size"]:
        problems.append(f"{url}: sha256 {digest[:16]}… size {len(data)} != recorded {tar['sha256'][:16]}… size "
                        f"{tar['size']}")
    try:
        found = read_tarball(data, url).resource_list
        if found != recorded:
            problems.append(f"{url}: objects differ from the manifest's resource list: "
                            + "; ".join(list_difference(recorded, found)))
    except TarballError as exc:
        problems.append(str(exc))
    out = [Check(name="tarball in the bucket", ok=not problems,
                 detail="; ".join(problems) or f"{url}: sha256 matches, {sum(len(v) for v in recorded.values())} "
                                               f"objects as recorded")]
    key = loc.resource_list_key(name)
    try:
        listed = read_gzip_json(loc.get(key), loc.url(key))
        diff = list_difference(recorded, listed)
        out.append(Check(name="velero resource list", ok=not diff,
                         detail=f"{loc.url(key)}: " + ("; ".join(diff) if diff else "equal to the manifest's")))
    except (LifeboatError, TarballError) as exc:
        out.append(Check(name="velero resource list", ok=False, detail=f"{loc.url(key)}: {exc}"))
    return out


def other_region(eng: KubernetesDatastore, m: Manifest) -> Check:
    """The other region's Velero lists the backup (its read-only location on this region's bucket): what a
    restore there needs. Waits up to options.sync_timeout (Velero syncs about once a minute)."""
    name, there = m.native["velero_backup"], eng.other_region(m.region)
    try:
        st = eng.client(there).wait_backup_visible(name, timeout=eng.timeout("sync_timeout"), interval=1.0)
    except LifeboatError as exc:
        return Check(name="visible in the other region", ok=False, detail=str(exc))
    problems = []
    if st.items_backed_up != m.native.get("items_backed_up"):
        problems.append(f"{st.items_backed_up} items, {m.native.get('items_backed_up')} recorded")
    try:
        bucket = eng.location(there, st.storage_location).bucket.bucket
        if bucket != m.native.get("bucket"):
            problems.append(f"its location {st.storage_location!r} is bucket {bucket}, not {m.native.get('bucket')}")
    except LifeboatError as exc:
        problems.append(f"location {st.storage_location!r}: {exc}")
    return Check(name="visible in the other region", ok=not problems,
                 detail=f"{there}: {st.describe()} through its location {st.storage_location!r}"
                        + (f"; {'; '.join(problems)}" if problems else f" on {m.native.get('bucket')}"))
