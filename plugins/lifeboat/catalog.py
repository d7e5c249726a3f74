"""The catalog: what backups exist, which are verified, what retention may delete.

Pure logic over the repository's records, so it reads the same from either region.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lifeboat.errors import BackupNotFound
from lifeboat.layout import Layout
from lifeboat.records import Manifest, Verification, utcnow
from lifeboat.repository import Repository

log = logging.getLogger(__name__)


@dataclass
class RetentionPlan:
    datastore: str
    keep: dict[str, list[str]] = field(default_factory=dict)  # backup id -> why kept
    delete: list[Manifest] = field(default_factory=list)  # newest first (dependents before parents)

    def summary(self) -> dict:
        return {
            "datastore": self.datastore,
            "keep": {k: sorted(set(v)) for k, v in self.keep.items()},
            "delete": [m.id for m in self.delete],
        }


class Catalog:
    def __init__(self, repo: Repository):
        self.repo = repo

    def backups(self, datastore: str, series: str | None = None) -> list[Manifest]:
        """Complete backups, oldest first."""
        return [m for m in self.repo.manifests(datastore) if series is None or m.series == series]

    def get(self, datastore: str, backup_id: str) -> Manifest:
        m = self.repo.manifest(datastore, backup_id)
        if m is None:
            raise BackupNotFound(
                f"{datastore}: no complete backup {backup_id!r} in {self.repo.url} "
                f"(interrupted backups have no manifest: {', '.join(self.repo.incomplete(datastore)) or 'none'})"
            )
        return m

    def last_verification(self, datastore: str, backup_id: str) -> Verification | None:
        vs = self.repo.verifications(datastore, backup_id)
        return vs[-1] if vs else None

    def verification_map(self, datastore: str) -> dict[str, Verification]:
        out: dict[str, Verification] = {}
        for v in self.repo.verifications(datastore):
            out[v.backup_id] = v  # sorted by time: the last one wins
        return out

    def latest(self, datastore: str, *, verified: bool = False, series: str | None = None) -> Manifest:
        backups = self.backups(datastore, series)
        if verified:
            vmap = self.verification_map(datastore)
            backups = [m for m in backups if vmap.get(m.id) is not None and vmap[m.id].ok]
        # The index may be stale (a manifest removed behind Lifeboat's back): act only on one that is there.
        while backups and not self.repo.exists(Layout.manifest(datastore, backups[-1].id)):
            log.warning("%s: backup %s is in the catalog index but its manifest is gone; skipped",
                        datastore, backups[-1].id)
            backups.pop()
        if not backups:
            what = "verified " if verified else ""
            where = f" in series {series!r}" if series else ""
            raise BackupNotFound(f"{datastore}: no {what}backup{where} in the catalog")
        return backups[-1]

    def chain(self, manifest: Manifest) -> list[Manifest]:
        """The backup and every backup it depends on, base first. Raises if a link is missing."""
        by_id = {m.id: m for m in self.backups(manifest.datastore)}
        chain = [manifest]
        while chain[-1].parent:
            parent = by_id.get(chain[-1].parent)
            if parent is None:
                raise BackupNotFound(
                    f"{manifest.datastore}: backup {chain[-1].id} depends on {chain[-1].parent}, "
                    "which is not in the catalog"
                )
            chain.append(parent)
        return list(reversed(chain))

    # -- retention --------------------------------------------------------------------------------
    def retention_plan(self, datastore: str, rules, now: datetime | None = None) -> RetentionPlan:
        """Which backups the keep rules keep, and which may go.

        Per series (a physical chain and a logical series do not crowd each other out):
        keep_last N, keep_within D, keep_daily / keep_weekly / keep_monthly (newest per period);
        the newest verified backup is always kept; everything a kept backup depends on is kept.
        """
        now = now or utcnow()
        plan = RetentionPlan(datastore)
        all_backups = self.backups(datastore)
        by_id = {m.id: m for m in all_backups}
        vmap = self.verification_map(datastore)

        def keep(m: Manifest, why: str) -> None:
            plan.keep.setdefault(m.id, []).append(why)

        for series in sorted({m.series for m in all_backups}):
            newest_first = [m for m in reversed(all_backups) if m.series == series]
            for m in newest_first[: rules.keep_last]:
                keep(m, f"keep_last={rules.keep_last}")
            for m in newest_first:
                if m.finished_at >= now - rules.keep_within:
                    keep(m, f"keep_within={rules.keep_within}")
            for label, n, period in (
                ("keep_daily", rules.keep_daily, lambda d: d.date()),
                ("keep_weekly", rules.keep_weekly, lambda d: tuple(d.isocalendar())[:2]),
                ("keep_monthly", rules.keep_monthly, lambda d: (d.year, d.month)),
            ):
                seen: list = []
                for m in newest_first:
                    p = period(m.finished_at)
                    if p not in seen:
                        if len(seen) >= n:
                            break
                        seen.append(p)
                        keep(m, f"{label}={n}")
            verified = [m for m in newest_first if vmap.get(m.id) is not None and vmap[m.id].ok]
            if verified:
                keep(verified[0], "newest verified")

        # Dependencies of kept backups are kept (a diff/incr is useless without its base).
        for backup_id in list(plan.keep):
            m = by_id[backup_id]
            while m.parent and m.parent in by_id:
                keep(by_id[m.parent], f"base of {m.id}")
                m = by_id[m.parent]
        plan.delete = [m for m in reversed(all_backups) if m.id not in plan.keep]
        return plan


def age(m: Manifest, now: datetime | None = None) -> timedelta:
    return (now or utcnow()) - m.finished_at
