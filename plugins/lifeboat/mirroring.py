"""The cross-region mirror of the catalog, when either region may be gone.

A mirror runs FROM the region a job acts in (`Repository.region`) TO the other region:

* **full** (the active region): every object missing in the other copy or of another size is copied,
  descriptor files (manifests; a native tool's own, as the registry declares them) last, so the other
  copy never lists a backup whose files have not arrived. Objects the other copy has but this one no
  longer has (retention) are deleted there -- manifests first -- but only objects that were already
  there when the last complete mirror in this direction finished: whatever the other region wrote
  since (its own backups after a failover, drills of its restore tests) is never deleted by a mirror
  from here. Records the other region wrote that this copy lacks (drills, failover timelines,
  verifications, the active-region record) are pulled first: the catch-up.
* **records** (a region that is not the active one, e.g. the standby region's Airflow or a runbook
  shell there): only the records this region wrote (drills, timelines, the active-region record, and
  whatever a job noted as pending) go to the other region; nothing is deleted there and no backup is
  copied (the active region's copy is the authority on backups). Verifications are facts about one
  region's copy and are never pulled into the other.

When the other region cannot be reached, the mirror does not fail: it writes a **pending record**
(`mirror/pending-<from>-to-<to>.json`: since when, the keys waiting, the last error) in this region's
catalog and reports `pending`; the next mirror that reaches the other side catches up and removes it.
Jobs that write records in a region that is not active add the keys they wrote to the pending record
(`Repository.note_pending`), so nothing they wrote depends on a mirror from the active region.

In production both regions' buckets replicate with S3 Cross-Region Replication; the mirror then finds
nothing to copy (and proves it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from lifeboat import registry
from lifeboat.errors import RepositoryError
from lifeboat.layout import MANIFEST, MIRROR, Layout
from lifeboat.records import _Record, utcnow

if TYPE_CHECKING:
    from lifeboat.repository import Repository
    from lifeboat.storage import Storage

log = logging.getLogger(__name__)

# Records the other region may write (and the mirror pulls back): drills, failover timelines, the
# active-region record. Incidents, reports and runbooks are written to both copies at once
# (put_everywhere); backups and native repositories belong to the region that took them; a verification
# is a fact about one region's copy and stays there.
_RECORD_PREFIXES = ("drills/", "failovers/", "regions/")


def is_pulled_record(key: str) -> bool:
    return key.startswith(_RECORD_PREFIXES)


class Pending(_Record):
    """What `source` wrote (or must copy) that has not reached `destination` yet."""

    format: Literal["lifeboat.mirror-pending/v1"] = "lifeboat.mirror-pending/v1"
    source: str
    destination: str
    since: datetime
    updated_at: datetime
    full: bool = False  # a whole mirror is owed (the destination was unreachable when it ran)
    keys: list[str] = Field(default_factory=list)  # records written here that the destination lacks
    attempts: int = 0
    last_error: str = ""


class LastMirror(_Record):
    format: Literal["lifeboat.mirror-last/v1"] = "lifeboat.mirror-last/v1"
    source: str
    destination: str
    started_at: datetime
    finished_at: datetime
    scope: Literal["full", "records"]
    copied: int = 0
    bytes: int = 0
    deleted: int = 0
    pulled: int = 0


@dataclass
class MirrorReport:
    copied: int = 0
    bytes: int = 0
    skipped: int = 0
    deleted: int = 0
    pulled: int = 0
    kept: int = 0  # objects only the other region has, written there since the last mirror (never deleted)
    scope: str = "full"
    pending: bool = False
    caught_up: list[str] = field(default_factory=list)
    error: str = ""

    def as_dict(self) -> dict:
        out: dict = {"copied": self.copied, "bytes": self.bytes, "skipped": self.skipped, "deleted": self.deleted,
                     "pulled": self.pulled, "kept": self.kept, "scope": self.scope, "pending": self.pending}
        if self.caught_up:
            out["caught_up"] = self.caught_up
        if self.error:
            out["error"] = self.error
        return out


class MirrorUnreachable(RepositoryError):
    """The other region's copy cannot be listed: the mirror is recorded as pending."""


def _listing(st: Storage, prefix: str, what: str) -> dict[str, tuple[int, float | None]]:
    try:
        return {o.key: (o.size, o.modified) for o in st.list(prefix)}
    except Exception as exc:
        raise MirrorUnreachable(f"{what} {st.url} cannot be listed: {type(exc).__name__}: {exc}") from exc


def _copy(src: Storage, dst: Storage, key: str) -> None:
    path = src.local_path(key)
    if path is not None:
        dst.put_file(key, path)
        adopt = getattr(dst, "adopt_owner", None)
        root = src.local_path("")
        if adopt is not None and root is not None:  # both local: keep the owner (pgBackRest runs as postgres)
            adopt(key, path, root)
    else:
        dst.put_bytes(key, src.get_bytes(key))


# -- pending records ---------------------------------------------------------------------------------

def read_pending(st: Storage, source: str, destination: str) -> Pending | None:
    key = Layout.mirror_pending(source, destination)
    try:
        return Pending.model_validate_json(st.get_bytes(key)) if st.exists(key) else None
    except Exception as exc:  # a damaged record must not stop the mirror: it is rewritten
        log.warning("unreadable %s/%s: %s", st.url, key, exc)
        return None


def note_pending(repo: Repository, keys: list[str] = (), *, full: bool = False, error: str = "") -> Pending | None:  # type: ignore[assignment]
    """Record in this region's catalog that `keys` (or a whole mirror) have not reached the other region."""
    if not repo.mirror_region:
        return None
    now = utcnow()
    p = read_pending(repo.primary, repo.region, repo.mirror_region) or Pending(
        source=repo.region, destination=repo.mirror_region, since=now, updated_at=now)
    p.updated_at = now
    p.full = p.full or full
    p.keys = sorted(set(p.keys) | {k for k in keys if not k.startswith(f"{MIRROR}/")})
    if error:
        p.attempts += 1
        p.last_error = error[:500]
    repo.primary.put_bytes(Layout.mirror_pending(repo.region, repo.mirror_region), p.to_json())
    return p


def _read_last(st: Storage, source: str, destination: str) -> LastMirror | None:
    key = Layout.mirror_last(source, destination)
    try:
        return LastMirror.model_validate_json(st.get_bytes(key)) if st.exists(key) else None
    except Exception as exc:
        log.warning("unreadable %s/%s: %s", st.url, key, exc)
        return None


# -- the mirror ------------------------------------------------------------------------------------

def mirror(repo: Repository, scope: Literal["full", "records"] = "full", prefixes: tuple[str, ...] = ("",)
           ) -> MirrorReport:
    """One mirror run from `repo.region` to the other region; pending (not failed) when it is unreachable."""
    if repo.mirror_storage is None:
        raise RepositoryError("no mirror region configured in the inventory's repository section")
    report = MirrorReport(scope=scope)
    try:
        _run(repo, scope, prefixes, report)
    except MirrorUnreachable as exc:
        report.pending, report.error = True, str(exc)
        p = note_pending(repo, full=(scope == "full"), error=str(exc))
        log.warning("mirror %s -> %s pending since %s: %s", repo.region, repo.mirror_region,
                    p.since.isoformat() if p else "?", exc)
    return report


def _run(repo: Repository, scope: str, prefixes: tuple[str, ...], report: MirrorReport) -> None:
    src, dst = repo.primary, repo.mirror_storage
    assert dst is not None
    here, there = repo.region, repo.mirror_region
    started = utcnow()
    last = _read_last(src, here, there)
    # An object written this close to the end of the last mirror may not be ordered by the store's clock
    # (S3's LastModified has whole seconds): it counts as new, never as stale.
    boundary = last.finished_at.timestamp() - dst.mtime_resolution if last else None
    mine = read_pending(src, here, there)
    theirs = _safe(lambda: read_pending(dst, there, here))
    descriptors, rewritten = registry.descriptor_files()
    final = (MANIFEST, *descriptors)

    def new_there(modified: float | None) -> bool:
        """Written in the other copy after the last complete mirror from here (or no mirror yet)."""
        return boundary is None or modified is None or modified > boundary

    for prefix in prefixes:
        have = _listing(src, prefix, f"this region's copy ({here})")
        other = _listing(dst, prefix, f"the other region's copy ({there})")
        # 1. catch up: records the other region wrote that this copy lacks
        wanted = set(theirs.keys if theirs else ())
        for key, (_size, modified) in sorted(other.items()):
            if key not in have and is_pulled_record(key) and (key in wanted or new_there(modified)):
                _copy(dst, src, key)
                have[key] = other[key]
                report.pulled += 1
        # 2. push what the other copy lacks (descriptors last)
        if scope == "full":
            todo = [k for k, (size, _m) in have.items() if other.get(k, (None,))[0] != size or k.endswith(rewritten)]
        else:
            owed = set(mine.keys if mine else ())
            todo = [k for k in have if k not in other and (k in owed or (is_pulled_record(k)
                                                                          and new_there(have[k][1])))]
        todo = [k for k in todo if not k.startswith(f"{MIRROR}/")]
        todo.sort(key=lambda k: (2 if Layout.is_index(k) else int(k.endswith(final)), k))  # the catalog index last
        for key in todo:
            _copy(src, dst, key)
            report.copied += 1
            report.bytes += have[key][0]
        report.skipped += len(have) - len(todo)
        # 3. deletions (full only): what this copy no longer has and the other had at the last mirror
        if scope == "full":
            stale = [k for k, (_s, m) in other.items() if k not in have and not k.startswith(f"{MIRROR}/")]
            old = [k for k in stale if boundary is not None and not new_there(other[k][1])]
            report.kept += len(stale) - len(old)
            for key in sorted(old, key=lambda k: (not k.endswith(MANIFEST), k)):
                dst.delete(key)
                report.deleted += 1
    # done: the pending records of both directions are settled, the boundary moves
    if theirs is not None:
        _safe(lambda: dst.delete(Layout.mirror_pending(there, here)))
        report.caught_up.append(f"{there} -> {here}: {len(theirs.keys)} record(s) pending since "
                                f"{theirs.since.isoformat()}")
    if mine is not None and (scope == "full" or not mine.full):
        src.delete(Layout.mirror_pending(here, there))
        report.caught_up.append(f"{here} -> {there}: pending since {mine.since.isoformat()}"
                                + (" (full mirror)" if mine.full else f" ({len(mine.keys)} record(s))"))
    if scope == "full":
        rec = LastMirror(source=here, destination=there, started_at=started, finished_at=utcnow(), scope="full",
                         copied=report.copied, bytes=report.bytes, deleted=report.deleted, pulled=report.pulled)
        src.put_bytes(Layout.mirror_last(here, there), rec.to_json())


def _safe(fn):
    try:
        return fn()
    except Exception as exc:  # informational reads/deletes on the other copy
        log.info("mirror: %s", exc)
        return None
