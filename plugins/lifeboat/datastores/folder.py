"""A restore-test target that restores into a private folder <workdir>/scratch/<engine>-<drill id>/
(config: a git mirror clone, images: an OCI layout, objects: downloaded objects), deleted at teardown
only if this drill created it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from lifeboat.datastores.base import ScratchTarget
from lifeboat.drills import DrillRecorder
from lifeboat.records import Manifest


class FolderScratch(ScratchTarget):
    def __init__(self, eng: Any, m: Manifest, drill: DrillRecorder):
        self.eng, self.m = eng, m
        self.root: Path = eng.scratch_dir(f"{eng.engine}-{drill.drill.id}")
        self.started = False  # set once this drill created self.root: only then does teardown delete it

    def teardown(self) -> str:
        if not self.started:
            return "nothing was restored"
        shutil.rmtree(self.root, ignore_errors=True)
        return f"deleted {self.root}{self.deleted_note()}"

    def deleted_note(self) -> str:
        """What the deleted folder held, e.g. ' (12 blobs)'."""
        return ""
