"""The config restore-test target: `git clone --mirror` of the stored bundle into a scratch folder,
`git fsck`, every ref and its tree hash compared with the manifest; the clone is deleted afterwards."""

from __future__ import annotations

from datetime import datetime

from lifeboat.configrepo.drift import refs_diff
from lifeboat.configrepo.heartbeat import BUNDLE, heartbeat_time
from lifeboat.datastores.folder import FolderScratch
from lifeboat.drills import DrillRecorder
from lifeboat.errors import RestoreFailed
from lifeboat.records import Manifest


class ConfigScratch(FolderScratch):
    teardown_step = "delete scratch clone"

    def __init__(self, eng, m: Manifest, drill: DrillRecorder):
        super().__init__(eng, m, drill)
        self.clone = self.root / "restored.git"
        self.refs: dict[str, str] = {}

    def precheck(self, drill: DrillRecorder) -> None:
        with drill.step("pre-checks") as s:
            self.eng.check_scratch_root(self.root)
            self.root.mkdir(parents=True)
            self.started = True
            s.detail = self.eng.ctx.repo.fetch(self.m, self.root)  # the bundle, its sha256 checked

    def restore(self, drill: DrillRecorder) -> None:
        with drill.step("git clone --mirror from the bundle") as s:
            self.eng.git.clone(self.root / BUNDLE, self.clone, mirror=True)
            self.refs = self.eng.git.refs(self.clone)
            s.detail = f"{len(self.refs)} refs"

    def verify(self, drill: DrillRecorder) -> None:
        with drill.step("fsck, refs and tree hashes") as s:
            problems = self.eng.git.fsck(self.clone)
            if problems:
                raise RestoreFailed("git fsck of the restored clone: " + "; ".join(problems[:20]))
            want = self.m.native.get("refs") or {}
            wrong = refs_diff({r: d["object"] for r, d in want.items()}, self.refs)
            if wrong:
                raise RestoreFailed("restored refs differ from the manifest: " + "; ".join(map(str, wrong)))
            got = self.eng.describe_refs(self.clone, self.refs)
            trees = [r for r, d in want.items() if got[r]["tree"] != d["tree"] or got[r]["commit"] != d["commit"]]
            if trees:
                raise RestoreFailed("tree or commit hashes differ from the manifest: " + ", ".join(trees))
            s.detail = f"fsck clean; {len(self.refs)} refs, commits and trees equal to the manifest"

    def newest_heartbeat(self) -> datetime | None:
        ref = self.eng.heartbeat_ref
        if ref not in self.refs:
            return None
        return heartbeat_time(self.eng.message(self.clone, ref))

    def heartbeat_detail(self, hb: datetime | None) -> str:
        return hb.isoformat() if hb else f"no {self.eng.heartbeat_ref} in the bundle"

