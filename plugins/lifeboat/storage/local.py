"""file:// storage: a directory tree. Atomic writes via temp file + fsync + rename."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from lifeboat.errors import RepositoryError
from lifeboat.storage.base import Children, ObjectInfo, Storage

_TMP_PREFIX = ".lifeboat-tmp-"
_COPY_CHUNK = 64 * 1024 * 1024


class WritebackAhead:
    """Flush a file being streamed to disk while it is written: an `fdatasync` in a helper thread each
    time `every` more bytes were written (never two at once). The final fsync of whoever makes the file
    durable then finds little left, instead of the whole file's dirty pages at the end. Durability is
    still only that final fsync's; a failed early flush is left for it to report."""

    def __init__(self, fd: int, every: int = 32 * 1024 * 1024):
        self.fd, self.every = fd, every
        self._pending = 0
        self._busy: threading.Thread | None = None

    def wrote(self, n: int) -> None:
        self._pending += n
        if self._pending < self.every or (self._busy is not None and self._busy.is_alive()):
            return
        self._pending = 0
        self._busy = threading.Thread(target=self._flush, name="lifeboat-writeback", daemon=True)
        self._busy.start()

    def _flush(self) -> None:
        with contextlib.suppress(OSError):
            os.fdatasync(self.fd)

    def __enter__(self) -> WritebackAhead:
        return self

    def __exit__(self, *exc) -> None:
        """Wait for a flush in flight (before the file is closed or handed on)."""
        if self._busy is not None:
            self._busy.join()


def kernel_copy(src: BinaryIO, dst: BinaryIO) -> None:
    """All of `src` into `dst`, copied by the kernel (sendfile, as shutil.copyfile does on Linux) without
    a pass through user space; a read/write loop where the kernel cannot."""
    dst.flush()
    done = 0
    try:
        fin, fout = src.fileno(), dst.fileno()
        while n := os.sendfile(fout, fin, done, _COPY_CHUNK):
            done += n
    except OSError:
        if done:
            raise
        src.seek(0)
        shutil.copyfileobj(src, dst, 1024 * 1024)


class LocalStorage(Storage):
    """`create_root=False`: the root folder is never created -- another region's copy that is not there
    is a region that is gone (or not mounted), not a folder to make."""

    mtime_resolution = 0.0  # st_mtime: nanoseconds
    cheap_listing = True

    def __init__(self, url: str, create_root: bool = True):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise RepositoryError(f"file:// url must be absolute (file:///path), got {url!r}")
        self.url = url
        self.root = Path(unquote(parsed.path))
        self.create_root = create_root

    def _require_root(self) -> None:
        if not self.create_root and not self.root.is_dir():
            raise RepositoryError(f"{self.url}: the repository folder does not exist (that region's copy is gone "
                                  "or not mounted); not creating it")

    def _path(self, key: str) -> Path:
        key = key.lstrip("/")
        p = (self.root / key).resolve() if key else self.root
        if p != self.root and self.root.resolve() not in p.parents and p != self.root.resolve():
            raise RepositoryError(f"key {key!r} escapes the repository {self.url}")
        return p

    def local_path(self, key: str = "") -> Path:
        return self._path(key)

    def _atomic_write(self, key: str, writer) -> None:
        self._require_root()
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                writer(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o640)
            os.replace(tmp, dest)
            dir_fd = os.open(dest.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self._atomic_write(key, lambda fh: fh.write(data))

    def put_file(self, key: str, local: Path) -> None:
        def copy(fh):
            with open(local, "rb") as src:
                kernel_copy(src, fh)

        self._atomic_write(key, copy)

    def move_file(self, key: str, local: Path) -> None:
        """fsync `local`, then rename it into place (atomic, like _atomic_write); a copy when it lives on
        another filesystem (the workdir and the repository on different mounts)."""
        self._require_root()
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(local, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.chmod(local, 0o640)
            os.rename(local, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            self.put_file(key, local)
            return
        dir_fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def adopt_owner(self, key: str, like: Path, like_root: Path) -> None:
        """Give `key` and the folders above it (up to the root) the owner and mode of `like` and its folders
        under `like_root`: a mirrored native repository (pgBackRest's) stays usable by its tool's OS user.
        Only as root; otherwise files belong to whoever runs the mirror anyway."""
        if os.geteuid() != 0:
            return
        dst, src = self._path(key), like
        while True:
            with contextlib.suppress(OSError):
                st, have = src.stat(), dst.stat()
                if (have.st_uid, have.st_gid) != (st.st_uid, st.st_gid):
                    os.chown(dst, st.st_uid, st.st_gid)
                if have.st_mode & 0o7777 != st.st_mode & 0o7777:
                    os.chmod(dst, st.st_mode & 0o7777)
            if dst.parent == self.root or src.parent == like_root or dst == self.root:
                return
            dst, src = dst.parent, src.parent

    def get_bytes(self, key: str) -> bytes:
        self._require_root()
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise RepositoryError(f"{self.url}/{key}: not found") from None

    def open_read(self, key: str) -> BinaryIO:
        self._require_root()
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise RepositoryError(f"{self.url}/{key}: not found") from None

    def get_file(self, key: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        with self.open_read(key) as src, open(local, "wb") as dst:
            kernel_copy(src, dst)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._require_root()
        start = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self._path(start)
        if not base.is_dir():
            return iter(())
        root = os.path.realpath(self.root)
        out: list[ObjectInfo] = []
        # os.scandir with string keys: a catalog of 10,000 backups is ~50,000 files, and pathlib per
        # file costs more than the stat itself
        stack = [os.path.realpath(base)]
        while stack:
            d = stack.pop()
            try:
                entries = list(os.scandir(d))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for e in entries:
                if e.is_dir():  # as os.walk: a symlink to a folder (pgBackRest's `latest`) is no object
                    if not e.is_symlink():
                        stack.append(e.path)
                    continue
                if e.name.startswith(_TMP_PREFIX):
                    continue
                key = e.path[len(root) + 1:]
                if key.startswith(prefix):
                    try:
                        out.append(ObjectInfo(key, e.stat().st_size, e.stat().st_mtime))
                    except FileNotFoundError:
                        continue
        return iter(sorted(out, key=lambda o: o.key))

    def children_with(self, prefix: str, name: str) -> Children:
        # one scandir of the folder and one stat per child: no walk through every backup's artifacts
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return [], []
        have, others = [], []
        for e in sorted(os.scandir(base), key=lambda e: e.name):
            if not e.is_dir(follow_symlinks=False):
                continue
            try:
                have.append(ObjectInfo(f"{prefix}{e.name}/{name}", os.stat(os.path.join(e.path, name)).st_size))
            except FileNotFoundError:
                if any(self.list(f"{prefix}{e.name}/")):
                    others.append(e.name)
        return have, others

    def exists(self, key: str) -> bool:
        self._require_root()
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._require_root()
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        n = super().delete_prefix(prefix)
        # prune empty directories left behind
        p = self._path(prefix.rstrip("/"))
        if p.is_dir() and p != self.root:
            for dirpath, _d, _f in sorted(os.walk(p), key=lambda t: -len(t[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)
        return n
