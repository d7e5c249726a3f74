"""The worker's own resources, as the Redis engine checks and uses them (disk, memory, files)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lifeboat.errors import Refused
from lifeboat.repository import mib

__all__ = ["copy_prefix", "free_bytes", "mem_available", "memory_check", "mib", "same_fs"]


def free_bytes(path: Path) -> int:
    p = path
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free


def mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def same_fs(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def copy_prefix(src: Path, dest: Path, limit: int) -> int:
    """Copy the first `limit` bytes of src (a file that may keep growing)."""
    n = 0
    with open(src, "rb") as fi, open(dest, "wb") as fo:
        while n < limit:
            chunk = fi.read(min(4 * 1024 * 1024, limit - n))
            if not chunk:
                break
            fo.write(chunk)
            n += len(chunk)
        fo.flush()
        os.fsync(fo.fileno())
    return n




def memory_check(enabled: bool, datastore: str, need: int, what: str) -> int | None:
    """Refuse before a scratch server would push this worker into the OOM killer; returns the memory
    available (None when unknown)."""
    avail = mem_available()
    if enabled and avail is not None and need > 0.9 * avail:
        raise Refused(f"{what}: a scratch redis-server needs about {mib(need)} of memory (the dataset's used "
                      f"memory when the snapshot was taken), this worker has {mib(avail)} available. Run it on a "
                      f"bigger worker (or set datastores.{datastore}.options.memory_check: false)")
    return avail
