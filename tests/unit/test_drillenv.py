"""The drill environment's teardown: every part attempted (reverse restore order) even when one fails,
only `<recovery dir>/<tag>-*` removed, live targets refused, leftovers reported."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lifeboat.drillenv import DrillEnvironment


class Target:
    def __init__(self, name: str, calls: list[str], fail: bool = False, into: str = "new"):
        self.name, self.calls, self.fail, self.into = name, calls, fail, into

    def locator(self) -> dict:
        return {}

    def abandon(self) -> str:
        self.calls.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} would not stop")
        return "removed"


def env(tmp_path, tag: str = "drill-x") -> DrillEnvironment:
    return DrillEnvironment(SimpleNamespace(recovery_dir=lambda: str(tmp_path)), "us-west-2", tag)


def test_teardown_attempts_everything_in_reverse_order_and_removes_only_its_own_folders(tmp_path):
    calls: list[str] = []
    (tmp_path / "drill-x-postgres").mkdir()
    (tmp_path / "drill-x-redis").mkdir()
    (tmp_path / "r123-postgres").mkdir()  # a real recovery's target: never the drill's to remove
    with env(tmp_path) as e:
        e.add_target("postgres", Target("postgres", calls))
        e.add_target("redis", Target("redis", calls, fail=True))
    assert calls == ["redis", "postgres"]
    assert any("redis" in t and "FAILED" in t for t in e.torn_down), e.torn_down
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r123-postgres"]
    assert e.leftovers() == []


def test_a_live_target_or_an_unnamed_tag_is_refused(tmp_path):
    with pytest.raises(ValueError, match="NEW targets only"):
        env(tmp_path).add_target("postgres", Target("postgres", [], into="live"))
    with pytest.raises(ValueError, match="must start with 'drill-'"):
        env(tmp_path, tag="prod")


def test_leftovers_name_a_folder_that_survived(tmp_path):
    e = env(tmp_path)
    e.teardown()
    (tmp_path / "drill-x-redis").mkdir()
    assert e.leftovers() == [str(tmp_path / "drill-x-redis")]
