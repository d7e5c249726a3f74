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
