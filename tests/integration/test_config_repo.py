"""The configuration repository against the real local stack: git http-backend behind basic auth per
region, the standby mirror kept by `git fetch`, bundles, fsck, files at the deployed commit.

Tests that change refs use their own branch (refs/heads/t-<unique>) and delete it afterwards.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from devstack.components import config_repo as comp
from lifeboat.clients import git as gitmod
from lifeboat.clients.git import Git, GitRemote
from lifeboat.configrepo.drift import configmaps_from_files, drift, refs_diff
from lifeboat.errors import ServiceError

pytestmark = pytest.mark.integration
WEST, EAST = "us-west-2", "us-east-1"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def state(stack_env) -> Path:
    return Path(stack_env["LIFEBOAT_STACK_DIR"])


@pytest.fixture
def git() -> Git:
    return Git()


@pytest.fixture
def branch(config_remotes, git, state, unique, tmp_path):
    """A scratch branch pushed to the primary over HTTP; deleted from both regions afterwards."""
    name = f"t-{unique}"
    work = tmp_path / "work"
    git.clone(config_remotes[WEST], work)
    git.run(["-C", str(work), "checkout", "-q", "-b", name])
    (work / "frontend" / "t.json").write_text(json.dumps({"t": unique}) + "\n")
    git.run(["-C", str(work), "add", "frontend/t.json"])
    git.run(["-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "test"])
    git.push(work, config_remotes[WEST], [f"{name}:refs/heads/{name}"])
    yield name, work
    git.push(work, config_remotes[WEST], [f":refs/heads/{name}"])
    comp.sync_mirror(state)
    assert f"refs/heads/{name}" not in git.ls_remote(config_remotes[EAST])


def test_config_mirror_holds_the_same_refs_as_the_primary(config_remotes, git, state):
    comp.sync_mirror(state)
    west, east = git.ls_remote(config_remotes[WEST]), git.ls_remote(config_remotes[EAST])
    assert refs_diff(west, east) == []
    assert {"refs/heads/main", "refs/tags/release/2026.10.0", "refs/tags/release/2026.11.0",
            "refs/tags/deployed/us-west-2", "refs/tags/deployed/us-east-1"} <= set(west)
    assert west == comp.refs(state, WEST)  # what HTTP advertises is what is on disk


def test_config_seeded_history_is_deterministic(state, git, tmp_path):
    primary = Path(comp.repo_dir(state, WEST))
    deployed = git.rev_parse(primary, "deployed/us-west-2")
    assert deployed == git.rev_parse(primary, "release/2026.11.0") == git.rev_parse(primary, "deployed/us-east-1")
    assert git.rev_parse(primary, "main~1") == deployed  # main is one commit ahead of what is deployed
    again = tmp_path / "again.git"
    comp._seed_primary(again)  # fixed authors and dates: the same commit ids on every machine
    assert {r: o for r, o in git.refs(again).items() if r != "refs/heads/main"} == {
        r: o for r, o in git.refs(primary).items() if r.startswith("refs/tags/")}


def test_config_new_branch_reaches_the_mirror_only_after_a_fetch_and_a_rewrite_is_named(config_remotes, git,
                                                                                         state, branch):
    name, work = branch
    ref = f"refs/heads/{name}"
    before = refs_diff(git.ls_remote(config_remotes[WEST]), git.ls_remote(config_remotes[EAST]))
    assert [(f.ref, f.problem) for f in before] == [(ref, "missing")]
    comp.sync_mirror(state)
    assert refs_diff(git.ls_remote(config_remotes[WEST]), git.ls_remote(config_remotes[EAST])) == []
    # rewrite the branch on the primary (force push of an amended commit)
    git.run(["-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--amend",
             "-m", "rewritten"])
    git.push(work, config_remotes[WEST], [f"+{name}:{ref}"], force=True)
    found = refs_diff(git.ls_remote(config_remotes[WEST]), git.ls_remote(config_remotes[EAST]))
    assert [(f.ref, f.problem) for f in found] == [(ref, "different")]


def test_config_bundle_of_all_refs_verifies_and_restores_identical_refs_and_trees(config_remotes, git, tmp_path):
    mirror = git.clone(config_remotes[WEST], tmp_path / "m.git", mirror=True)
    heads = git.bundle_create(mirror, tmp_path / "config.bundle")
    assert heads == git.ls_remote(config_remotes[WEST])
    assert git.bundle_verify(tmp_path / "config.bundle") == heads
    restored = git.clone(tmp_path / "config.bundle", tmp_path / "restored.git", mirror=True)
    assert git.fsck(restored) == []
    assert git.refs(restored) == heads
    for ref in heads:
        assert git.tree_of(restored, ref) == git.tree_of(mirror, ref)
    # a truncated bundle and one with a flipped byte are refused, naming the file -- `git bundle verify`
    # alone (deep=False) passes both: it reads only the header
    data = (tmp_path / "config.bundle").read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    for name, content in (("truncated", data[:-200]), ("flipped", bytes(flipped))):
        broken = tmp_path / f"{name}.bundle"
        broken.write_bytes(content)
        assert git.bundle_verify(broken, deep=False) == heads
        with pytest.raises(ServiceError, match=rf"bundle .*{name}\.bundle: its objects do not unpack"):
            git.bundle_verify(broken)


def test_config_files_at_the_deployed_commit_are_the_include_platform_configmaps(config_remotes, git, tmp_path):
    mirror = git.clone(config_remotes[EAST], tmp_path / "m.git", mirror=True)
    at_deployed = configmaps_from_files(git.files_at(mirror, "deployed/us-east-1"))
    src = ROOT / "include" / "platform" / "config"
    from_include = configmaps_from_files({str(p.relative_to(src)): p.read_bytes()
                                          for p in src.rglob("*") if p.is_file()})
    assert drift(from_include, at_deployed) == []
    assert set(at_deployed) == {"api-gateway-config", "frontend-config", "auth-service-config"}
    head = configmaps_from_files(git.files_at(mirror, "main"))
    service, key = comp.changed_on_main().split("/")
    assert [str(f).split(" (")[0] for f in drift(at_deployed, head)] == [
        f"ConfigMap {service}-config key {key}: value differs"]


def test_config_credentials_never_in_argv_or_urls(config_remotes, git, monkeypatch):
    seen: list[list[str]] = []
    real_run = subprocess.run

    def spy(argv, *a, **kw):
        seen.append([str(x) for x in argv])
        return real_run(argv, *a, **kw)

    monkeypatch.setattr(gitmod.subprocess, "run", spy)
    remote = config_remotes[WEST]
    git.ls_remote(remote)
    assert remote.password and all(remote.password not in " ".join(a) for a in seen)
    assert "@" not in remote.url


def test_config_wrong_password_fails_at_once_naming_the_connection(config_remotes, git):
    r = config_remotes[EAST]
    bad = GitRemote(url=r.url, conn_id=r.conn_id, username=r.username, password="wrong")
    with pytest.raises(ServiceError, match=f"check the login/password of Airflow connection '{r.conn_id}'"):
        git.ls_remote(bad)
