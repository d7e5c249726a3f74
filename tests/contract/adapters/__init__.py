"""Per-engine adapters of the contract suite: how to put known data into the live server, count it
there and in a restored scratch target, change it after the backup, and damage one stored byte.

A new engine adds one module here (a subclass of `Adapter`) and one line in `ADAPTERS`; the suite
(tests/contract/test_contract.py) is the same for every engine.
"""

from __future__ import annotations

import abc
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from lifeboat.records import Manifest
from tests.damage import flip_byte
from tests.fixtures import forget_catalog

__all__ = ["ADAPTERS", "Adapter", "N", "flip_byte", "kill_before_manifest"]

ADAPTERS = ("postgres", "redis", "mongodb", "elasticsearch", "kubernetes", "images", "objects", "config", "cdn")
N = 40  # records inserted before the backup


class Adapter(abc.ABC):
    fixtures: ClassVar[tuple[str, ...]] = ()  # pytest fixtures it uses (set up before it, torn down after)
    engine_fixture: ClassVar[str] = ""  # the fixture that is the engine under test, if one is
    kind: ClassVar[str]  # the backup kind the suite takes
    interrupt_kind: ClassVar[str | None] = None  # the kind killed before its manifest (default: kind)
    first_restore_step: ClassVar[str]  # the first step inside the RTO clock (its name starts so)
    last_verify_step: ClassVar[str]  # the step after which the RTO clock stops (its name starts so)
    victim: str | None = None  # the artifact `corrupt` damages (default: the largest)

    def __init__(self, request: pytest.FixtureRequest, unique: str):
        self.request = request
        self.unique = unique
        self.scope = f"contract-{unique}"  # this test's namespace (index, prefix, ...) on the live server
        self._engine: Any = None

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    def make_engine(self) -> Any:
        """Build the engine under test (default: the fixture `engine_fixture`); called once, on first use."""
        return self.fixture(self.engine_fixture)

    @property
    def engine(self) -> Any:
        """The engine under test (an inventory datastore, or one with its own catalog folder)."""
        if self._engine is None:
            self._engine = self.make_engine()
        return self._engine

    def forget_engine(self, delete_backups: bool = False) -> None:
        """Remove the catalog folder of an engine this test built (if it built one); with delete_backups,
        first each backup through the engine (so the native tool forgets it too)."""
        if self._engine is None:
            return
        if delete_backups:
            from lifeboat.catalog import Catalog

            for m in Catalog(self._engine.ctx.repo).backups(self._engine.name):
                self._engine.delete_backup(m)
        forget_catalog(self._engine)

    @abc.abstractmethod
    def insert(self, n: int) -> None:
        """Exactly `n` known records on the live server, in a namespace of this test only."""

    @abc.abstractmethod
    def count_live(self) -> int: ...

    @abc.abstractmethod
    def mutate(self) -> None:
        """Change the live records after the backup (delete some, add some)."""

    @abc.abstractmethod
    def count_restored(self, scratch: Any) -> int:
        """The records of `insert` found in the restored scratch target."""

    def target(self, m: Manifest) -> str:
        """The restore target that means 'the state of this backup'."""
        return "latest"

    def corrupt(self, m: Manifest) -> tuple[str, Callable[[], None]]:
        """Flip one byte in the middle of one artifact; (what the failure must name, undo)."""
        rel = self.victim or max(m.artifacts, key=lambda a: a.size).path
        repo = self.engine.ctx.repo
        return f"{m.datastore}/backups/{m.id}/{rel}", flip_byte(repo.primary.local_path(
            repo.layout.artifact(m.datastore, m.id, rel)))

    def forget(self, backup_id: str) -> None:
        """Remove an interrupted backup (no manifest) from the repository and the native tool."""
        self.engine.ctx.repo.delete_backup(self.engine.name, backup_id)

    def cleanup(self) -> None:  # noqa: B027 -- optional: most adapters remove their namespace here
        """Remove this test's namespace from the live server."""


def kill_before_manifest(eng: Any, kind: str, backup_id: str, marker: Path, timeout: float = 300) -> None:
    """Run `eng.backup(kind, backup_id)` in a forked process and SIGKILL it once every artifact is
    written and only the manifest is missing (the repository's LIFEBOAT_TEST_PAUSE_BEFORE_COMMIT hook)."""

    def child() -> None:
        os.environ["LIFEBOAT_TEST_PAUSE_BEFORE_COMMIT"] = str(marker)
        eng.backup(kind, backup_id)

    proc = multiprocessing.get_context("fork").Process(target=child, daemon=True)
    proc.start()
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert proc.is_alive(), f"the backup exited (code {proc.exitcode}) before reaching the pause point"
        assert time.monotonic() < deadline, "the backup did not reach the pause point"
        time.sleep(0.1)
    assert marker.read_text() == backup_id
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
