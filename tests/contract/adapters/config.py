"""The configuration repository: N branches of this test only pushed to the primary (and mirrored to
the standby, as the mirroring job does); `bundle` stores every ref; the scratch target is a clone of
the bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.contract.adapters import Adapter, N

WEST, EAST = "us-west-2", "us-east-1"


class ConfigAdapter(Adapter):
    fixtures, kind = ("config_remotes", "engine_with", "tmp_path"), "bundle"
    first_restore_step, last_verify_step = "git clone --mirror from the bundle", "fsck, refs and tree hashes"

    def __init__(self, request, unique):
        super().__init__(request, unique)
        self.prefix = f"refs/heads/{self.scope}/"
        self.remotes = self.fixture("config_remotes")
        self.work: Path = self.fixture("tmp_path") / "config-work"

    def make_engine(self) -> Any:
        return self.fixture("engine_with")("config", name=f"config_contract_{self.unique}", kubernetes={})

    @property
    def git(self):
        return self.engine.git

    def sync_mirror(self) -> None:
        from devstack.components import config_repo

        config_repo.sync_mirror(Path(self.fixture("stack_env")["LIFEBOAT_STACK_DIR"]))

    def push(self, refspecs: list[str]) -> None:
        if not self.work.exists():
            self.git.clone(self.remotes[WEST], self.work)
            (self.work / "contract.txt").write_text(self.unique + "\n")
            self.git.run(["-C", self.work, "add", "contract.txt"])
            self.git.run(["-C", self.work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm",
                          f"contract {self.unique}"])
        self.git.push(self.work, self.remotes[WEST], refspecs)

    def insert(self, n: int) -> None:
        self.push([f"HEAD:{self.prefix}b{i:02d}" for i in range(n)])
        self.sync_mirror()

    def live(self) -> list[str]:
        return [r for r in self.git.ls_remote(self.remotes[WEST]) if r.startswith(self.prefix)]

    def count_live(self) -> int:
        return len(self.live())

    def mutate(self) -> None:
        self.push([f":{self.prefix}b{i:02d}" for i in range(0, N, 2)] + [f"HEAD:{self.prefix}after-the-backup"])

    def count_restored(self, scratch: Any) -> int:
        return sum(1 for r in scratch.refs if r.startswith(self.prefix))

    def cleanup(self) -> None:
        gone = [f":{r}" for r in self.live()]
        if self._engine is not None:
            hb = self._engine.heartbeat_ref
            if hb in self.git.ls_remote(self.remotes[WEST]):
                gone.append(f":{hb}")
        if gone:
            self.push(gone)
        self.sync_mirror()
        self.forget_engine()
