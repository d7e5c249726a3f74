"""LocalStorage.list (file:// repositories)."""

from __future__ import annotations


def test_local_listing_skips_symlinks_to_folders(tmp_path):
    """pgBackRest's backup/<stanza>/latest -> <label>: the mirror copied it as a file (IsADirectoryError)."""
    import os

    from lifeboat.storage.local import LocalStorage

    (tmp_path / "pg" / "20261202-001030F").mkdir(parents=True)
    (tmp_path / "pg" / "20261202-001030F" / "backup.manifest").write_text("m")
    os.symlink("20261202-001030F", tmp_path / "pg" / "latest")
    keys = [o.key for o in LocalStorage(f"file://{tmp_path}").list("pg/")]
    assert keys == ["pg/20261202-001030F/backup.manifest"]


def test_local_put_and_get_copy_by_the_kernel_and_fall_back_to_a_plain_copy(tmp_path):
    """put_file/get_file copy with sendfile; kernel_copy into something that is not a file still copies."""
    import io
    import os

    from lifeboat.storage.local import LocalStorage, kernel_copy

    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "src.bin").write_bytes(data)
    st = LocalStorage(f"file://{tmp_path}/repo")
    st.put_file("a/b.bin", tmp_path / "src.bin")
    st.get_file("a/b.bin", tmp_path / "back" / "b.bin")
    assert (tmp_path / "back" / "b.bin").read_bytes() == data
    buf = io.BytesIO()
    with open(tmp_path / "src.bin", "rb") as src:
        kernel_copy(src, buf)
    assert buf.getvalue() == data


def test_fetch_then_check_copies_first_and_names_a_damaged_artifact(tmp_path):
    """The deferred check of a restore that loads while it hashes: a copy whose bytes differ from the
    manifest fails naming the artifact's URL; an intact one passes."""
    from datetime import UTC, datetime

    import pytest

    from lifeboat.errors import RestoreFailed
    from lifeboat.records import Manifest
    from lifeboat.repository import Repository
    from lifeboat.storage import open_storage

    repo = Repository(open_storage(f"file://{tmp_path}/west"))
    (tmp_path / "dump.rdb").write_bytes(b"REDIS0010" + b"x" * 5000)
    art = repo.put_artifact("cache", "b1", "dump.rdb", tmp_path / "dump.rdb")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    m = repo.commit(Manifest(id="b1", datastore="cache", engine="redis", kind="rdb", series="rdb",
                             region="us-west-2", started_at=at, finished_at=at, artifacts=[art]))
    check = repo.fetch_then_check(m, tmp_path / "ok")
    assert (tmp_path / "ok" / "dump.rdb").read_bytes() == (tmp_path / "dump.rdb").read_bytes()
    assert "1 files" in check() and "sha256 checked" in check()
    stored = repo.primary.local_path("") / next(k.key for k in repo.primary.list("") if k.key.endswith("dump.rdb"))
    stored.write_bytes(b"REDIS0010" + b"y" * 5000)  # same size, other bytes
    with pytest.raises(RestoreFailed, match=r"dump\.rdb: sha256 differs from the manifest \(the fetched copy\)"):
        repo.fetch_then_check(m, tmp_path / "bad")()


def test_writeback_ahead_flushes_each_stretch_in_a_helper_thread_never_two_at_once(tmp_path, monkeypatch):
    """A streamed file is written back while it grows: an fdatasync per `every` bytes, in a thread,
    skipped while one is still running; leaving the block waits for it; a failed flush raises nothing
    (durability is the final fsync's)."""
    import os
    import threading

    from lifeboat.storage import local

    calls: list[int] = []
    gate, entered = threading.Event(), threading.Semaphore(0)

    def slow_fdatasync(fd: int) -> None:
        calls.append(fd)
        entered.release()
        gate.wait(5)
        raise OSError(5, "EIO from the early flush")

    monkeypatch.setattr(local.os, "fdatasync", slow_fdatasync)
    with open(tmp_path / "f", "wb") as fh, local.WritebackAhead(fh.fileno(), every=100) as ahead:
        ahead.wrote(99)
        assert calls == []
        ahead.wrote(1)  # 100 bytes: a flush starts
        assert entered.acquire(timeout=5)  # (the thread is in it, not merely started)
        ahead.wrote(500)  # while it runs: none more
        assert len(calls) == 1
        gate.set()
        ahead._busy.join(5)
        ahead.wrote(100)  # the next stretch
        assert entered.acquire(timeout=5)
        assert len(calls) == 2 and calls[0] == fh.fileno()
    assert not ahead._busy.is_alive()
    assert os.path.exists(tmp_path / "f")
