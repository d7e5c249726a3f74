"""The config engine: git bundles of the configuration repository, their verification, restore tests,
the standby mirror's refs and the clusters' ConfigMap drift."""

from __future__ import annotations

import functools
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.clients.git import Git, GitRemote
from lifeboat.configrepo.drift import configmaps_from_files, drift, refs_diff
from lifeboat.configrepo.heartbeat import BUNDLE, HEARTBEAT_MESSAGE, IDENTITY, heartbeat_time
from lifeboat.datastores.base import MonitorFinding, Taken
from lifeboat.datastores.config.options import ConfigOptions
from lifeboat.datastores.regional import RegionalDatastore
from lifeboat.drills import DrillRecorder
from lifeboat.durations import seconds
from lifeboat.errors import LifeboatError, Refused, ServiceError
from lifeboat.records import Check, Manifest, utcnow


class ConfigDatastore(RegionalDatastore[ConfigOptions]):
    engine = "config"
    restore_series = "bundle"

    # -- plumbing --------------------------------------------------------------------------------
    @functools.cached_property
    def git(self) -> Git:
        return Git(timeout=seconds(self.options.timeout))

    def remote(self, region: str | None = None) -> GitRemote:
        return GitRemote.from_connection(self.conn_id(region))

    @property
    def heartbeat_ref(self) -> str:
        return f"{self.options.heartbeat_ref_prefix}{self.name}"

    def _ignored(self, ref: str) -> bool:
        return ref.startswith(self.options.heartbeat_ref_prefix)

    def describe_refs(self, git_dir: Path, refs: dict[str, str]) -> dict[str, dict[str, str]]:
        """{ref: {object, commit, tree}} (one rev-parse for all refs)."""
        names = sorted(refs)
        if not names:
            return {}
        out = self.git.out(["--git-dir", git_dir, "rev-parse", *[f"{r}^{{commit}}" for r in names],
                            *[f"{r}^{{tree}}" for r in names]]).split()
        n = len(names)
        return {r: {"object": refs[r], "commit": out[i], "tree": out[n + i]} for i, r in enumerate(names)}

    def message(self, git_dir: Path, rev: str) -> str:
        return self.git.out(["--git-dir", git_dir, "log", "-1", "--format=%B", rev])

    # -- backup: a bundle of every ref ---------------------------------------------------------------
    def _take(self, kind: str, backup_id: str, staging: Path) -> Taken:
        remote = self.remote()
        mirror = staging.parent / f"{backup_id}-mirror.git"
        shutil.rmtree(mirror, ignore_errors=True)
        try:
            self.git.clone(remote, mirror, mirror=True)
            refs = self.git.refs(mirror)
            heads = self.git.bundle_create(mirror, staging / BUNDLE)
            if heads != refs:
                raise ServiceError(f"bundle of {remote.describe()}: its refs {sorted(set(heads) ^ set(refs))} differ "
                                   "from the clone's")
            described = self.describe_refs(mirror, refs)
            hb = heartbeat_time(self.message(mirror, self.heartbeat_ref)) if self.heartbeat_ref in refs else None
            version = self.git.out(["--version"]).strip()
        finally:
            shutil.rmtree(mirror, ignore_errors=True)
        artifact = self.ctx.repo.put_artifact(self.name, backup_id, BUNDLE, staging / BUNDLE)
        return Taken(
            position={"refs_at": utcnow().isoformat(), "heartbeat_at": hb.isoformat() if hb else None},
            counts={"refs": len(refs)}, artifacts=[artifact], tools={"git": version},
            native={"tool": "git bundle create --all", "file": BUNDLE, "refs": described,
                    "remote": remote.describe()},
            source=remote.describe(),
            restore_hint=(f"git clone --mirror {BUNDLE} restored.git && git --git-dir restored.git fsck --full "
                          "&& git --git-dir restored.git push --mirror <new repository URL> "
                          "(docs/datastores/config.md)"),
        )

    # -- verification ----------------------------------------------------------------------------
    def checks(self, m: Manifest, batch: Any, deep: bool) -> list[Check]:
        refs = {r: d["object"] for r, d in (m.native.get("refs") or {}).items()}
        out = []
        with tempfile.TemporaryDirectory(prefix=f"lifeboat-{self.name}-verify-", dir=self.ctx.workdir) as tmp, \
                self.ctx.repo.local_copy(m, Path(tmp) / "backup") as local:
            try:
                heads = self.git.bundle_verify(local / BUNDLE, deep=True)
                wrong = refs_diff(refs, heads)
                out.append(Check(name="git bundle verify, unpack and fsck", ok=not wrong,
                                 detail="; ".join(map(str, wrong)) if wrong else
                                 f"{len(heads)} refs unpack into an empty repository, fsck clean"))
            except (ServiceError, ValueError) as exc:
                out.append(Check(name="git bundle verify, unpack and fsck", ok=False,
                                 detail=f"{self.ctx.repo.artifact_url(m, BUNDLE)}: {str(exc)[:1500]}"))
            out.append(self._rewritten(m, refs, local / BUNDLE, Path(tmp)))
        out.append(self._mirror_check())
        return out

    def _rewritten(self, m: Manifest, refs: dict[str, str], bundle: Path, tmp: Path) -> Check:
        """Since the backup, did any branch move other than forward, or any tag move at all?"""
        name = "no ref rewritten since the backup"
        try:
            now = self.git.ls_remote(self.remote())
        except ServiceError as exc:
            return Check(name=name, ok=False, detail=f"primary not readable: {exc}")
        moved = [r for r, oid in refs.items() if r in now and now[r] != oid and not self._ignored(r)
                 and not r.startswith(tuple(self.options.moving_refs))]
        problems, forward = [], 0
        if moved:
            work = tmp / "history.git"
            self.git.clone(self.remote(), work, mirror=True)  # today's objects ...
            self.git.run(["--git-dir", work, "fetch", "--quiet", "--no-write-fetch-head", bundle,
                          "+refs/*:refs/lifeboat-backup/*"])  # ... and the backup's
            for r in moved:
                old = m.native["refs"][r]["commit"]
                if r.startswith("refs/tags/"):
                    problems.append(f"{r}: tag moved from {refs[r][:12]} to {now[r][:12]} (tags never move)")
                    continue
                p = self.git.run(["--git-dir", work, "merge-base", "--is-ancestor", old, f"{r}^{{commit}}"],
                                 check=False)
                if p.returncode == 0:
                    forward += 1
                else:
                    problems.append(f"{r}: rewritten (force-pushed): the backup's commit {old[:12]} is no longer in "
                                    f"its history (now {now[r][:12]})")
        gone = sorted(r for r in refs if r not in now and not self._ignored(r))
        moving = tuple(self.options.moving_refs)
        tags_gone = [r for r in gone if r.startswith("refs/tags/") and not r.startswith(moving)]
        problems += [f"{r}: tag deleted" for r in tags_gone]
        detail = "; ".join(problems) if problems else (
            f"{len(refs)} refs: {forward} branches moved forward, {len(gone)} branches deleted, the rest unchanged")
        return Check(name=name, ok=not problems, detail=detail)

    def _mirror_check(self) -> Check:
        name = "standby mirror holds the primary's refs"
        try:
            a = {r: o for r, o in self.git.ls_remote(self.remote()).items() if not self._ignored(r)}
            b = {r: o for r, o in self.git.ls_remote(self.remote(self.standby_region)).items() if not self._ignored(r)}
        except ServiceError as exc:
            return Check(name=name, ok=False, detail=str(exc)[:1000])
        found = refs_diff(a, b)
        return Check(name=name, ok=not found, detail="; ".join(f"{self.standby_region} {f}" for f in found)
                     if found else f"{len(a)} refs equal in {self.region} and {self.standby_region}")

    # -- restore test ----------------------------------------------------------------------------
    def scratch_target(self, manifest: Manifest, target: str, drill: DrillRecorder):
        from lifeboat.datastores.config.scratch import ConfigScratch

        self.latest_only(target, "a bundle restores the refs it holds; use target 'latest'")
        return ConfigScratch(self, manifest, drill)

    # -- heartbeat -------------------------------------------------------------------------------------
    def heartbeat(self) -> datetime:
        """A root commit (empty tree) on refs/lifeboat/heartbeat/<datastore>, its time in the message."""
        now = utcnow()
        remote = self.remote()
        with tempfile.TemporaryDirectory(prefix="lifeboat-heartbeat-", dir=self.ctx.workdir) as tmp:
            bare = Path(tmp) / "hb.git"
            self.git.run(["init", "--quiet", "--bare", bare])
            tree = self.git.out(["--git-dir", bare, "mktree"], input=b"").strip()
            stamp = now.strftime("%Y-%m-%dT%H:%M:%S+00:00")
            env = {**IDENTITY, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
            commit = self.git.out(["--git-dir", bare, "commit-tree", tree, "-m",
                                   f"{HEARTBEAT_MESSAGE}{now.isoformat()}"], env=env).strip()
            self.git.run(["--git-dir", bare, "push", "--quiet", "--force", remote.url,
                          f"{commit}:{self.heartbeat_ref}"], remote=remote)
        return now

    # -- monitor: the standby mirror and ConfigMap drift ------------------------------------------------
    def cached_mirror(self) -> Path:
        """A bare mirror of the primary under the workdir, fetched on every call (the drift check's source)."""
        d = self.ctx.workdir / "cache" / self.name / "mirror.git"
        if (d / "HEAD").exists():
            self.git.fetch(d, self.remote(), prune=True, refspecs=["+refs/*:refs/*"])
        else:
            shutil.rmtree(d, ignore_errors=True)
            d.parent.mkdir(parents=True, exist_ok=True)
            self.git.clone(self.remote(), d, mirror=True)
        return d

    def configmaps(self, region: str) -> dict[str, dict[str, str] | None]:
        from lifeboat.clients.kubernetes import KubernetesClient

        client = KubernetesClient(self.options.kubernetes[region], region=region)
        items = client.list_namespace(self.options.namespace, (("v1", "ConfigMap", "configmaps"),))
        return {i["metadata"]["name"]: dict(i.get("data") or {}) for i in items}

    def drift(self, region: str, mirror: Path | None = None) -> tuple[str, list]:
        """(the deployed commit, the drift findings) of one region's cluster."""
        mirror = mirror or self.cached_mirror()
        tag = f"{self.options.deployed_tag_prefix}{region}"
        try:
            commit = self.git.rev_parse(mirror, tag)
        except ServiceError:
            raise Refused(f"{self.name}: no {tag} in {self.remote().describe()}: which commit runs in {region} "
                          "is unknown") from None
        expected = configmaps_from_files(self.git.files_at(mirror, commit, self.options.config_root),
                                         root=self.options.config_root)
        return commit, drift(expected, self.configmaps(region))

    def monitor_findings(self) -> list[MonitorFinding]:
        out = []
        mirror_check = self._mirror_check()
        out.append(MonitorFinding("standby mirror", "ok" if mirror_check.ok else "high",
                                  "in sync" if mirror_check.ok else "differs", "in sync",
                                  f"{self.name}: {mirror_check.detail}"))
        if not self.options.kubernetes:
            return out
        mirror = self.cached_mirror()
        for region in sorted(self.options.kubernetes):
            check = f"configmap drift {region}"
            try:
                commit, found = self.drift(region, mirror)
            except LifeboatError as exc:
                out.append(MonitorFinding(check, "high", "unknown", "no drift", f"{self.name}: {region}: {exc}"))
                continue
            tag = self.options.deployed_tag_prefix.removeprefix("refs/tags/") + region
            if found:
                out.append(MonitorFinding(check, "high", f"{len(found)} difference(s)", "no drift",
                                          f"{self.name}: the {region} cluster's ConfigMaps differ from {tag} "
                                          f"({commit[:12]}): " + "; ".join(map(str, found))))
            else:
                out.append(MonitorFinding(check, "ok", "none", "no drift",
                                          f"{self.name}: the {region} cluster's ConfigMaps equal {tag} "
                                          f"({commit[:12]})"))
        return out
