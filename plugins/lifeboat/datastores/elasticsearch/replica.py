"""The replicated copy of an fs snapshot repository in the other region (locally; production: S3 CRR).

An Elasticsearch repository is immutable blobs plus a generation pointer: `index-<N>` lists every
snapshot, `index.latest` names N. A reader (the other region's cluster, registered read-only) follows
index.latest -> index-N -> snap-/meta-*.dat -> indices/.../*. So the copy goes in that order's reverse:
every data blob first, then the new `index-<N>`, then `index.latest` last, each file written to a
temporary name and renamed; only then are blobs the source no longer has deleted (old generations,
snapshots removed by retention). Each copy keeps the source file's owner, mode and modification time,
so the other region's cluster (its own OS user) can read it and, after a failover, write to it.

Never creates the destination folder: a copy that is not there is a region that is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from lifeboat.errors import RepositoryError

POINTER = "index.latest"


def _files(root: Path) -> dict[str, os.stat_result]:
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            if n.startswith(".lifeboat-tmp-"):
                continue
            p = Path(dirpath) / n
            with contextlib.suppress(FileNotFoundError):
                out[p.relative_to(root).as_posix()] = p.stat()
    return out


def _order(rel: str) -> tuple[int, str]:
    name = rel.rsplit("/", 1)[-1]
    if rel == POINTER:
        return 3, rel
    if "/" not in rel and name.startswith("index-"):
        return 2, rel
    return 1, rel


def _mkdirs(src_root: Path, dst_root: Path, rel_dir: str) -> None:
    """Create the folders of `rel_dir` under dst_root with the source folders' owner and mode."""
    cur_src, cur_dst = src_root, dst_root
    for part in [p for p in rel_dir.split("/") if p]:
        cur_src, cur_dst = cur_src / part, cur_dst / part
        if not cur_dst.is_dir():
            st = cur_src.stat()
            cur_dst.mkdir(mode=st.st_mode & 0o7777)
            with contextlib.suppress(PermissionError):
                os.chown(cur_dst, st.st_uid, st.st_gid)
            os.chmod(cur_dst, st.st_mode & 0o7777)


def _copy(src_root: Path, dst_root: Path, rel: str, st: os.stat_result) -> None:
    src, dst = src_root / rel, dst_root / rel
    _mkdirs(src_root, dst_root, rel.rpartition("/")[0])
    tmp = dst.with_name(f".lifeboat-tmp-{dst.name}")
    shutil.copyfile(src, tmp)
    with contextlib.suppress(PermissionError):
        os.chown(tmp, st.st_uid, st.st_gid)
    os.chmod(tmp, st.st_mode & 0o7777)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, dst)


def replicate(src_root: Path, dst_root: Path) -> dict:
    """Bring dst_root up to src_root (see the module text). Returns what was copied and deleted."""
    if not src_root.is_dir():
        raise RepositoryError(f"{src_root}: the snapshot repository folder does not exist here")
    if not dst_root.is_dir():
        raise RepositoryError(f"{dst_root}: the other region's copy of the snapshot repository does not exist "
                              "(that region is gone or not mounted); not creating it")
    src, dst = _files(src_root), _files(dst_root)
    todo = [r for r, st in src.items() if r not in dst or dst[r].st_size != st.st_size or r == POINTER
            or dst[r].st_mtime_ns != st.st_mtime_ns]
    todo.sort(key=_order)
    copied = nbytes = 0
    for rel in todo:
        _copy(src_root, dst_root, rel, src[rel])
        copied += 1
        nbytes += src[rel].st_size
    stale = sorted((r for r in dst if r not in src), key=lambda r: -_order(r)[0])
    for rel in stale:  # after the pointer moved: nothing reachable from it is deleted
        (dst_root / rel).unlink(missing_ok=True)
    for dirpath, _dirs, _names in sorted(os.walk(dst_root), key=lambda t: -len(t[0])):
        if Path(dirpath) != dst_root:
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)  # only empty ones
    return {"from": str(src_root), "to": str(dst_root), "copied": copied, "bytes": nbytes, "deleted": len(stale),
            "unchanged": len(src) - copied}
