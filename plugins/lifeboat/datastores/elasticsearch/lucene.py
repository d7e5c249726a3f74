"""Lucene's file footer, checked without Elasticsearch (pure file reads): every blob of an fs snapshot
repository ends with a footer whose CRC32 covers the bytes before it -- what `pgbackrest verify` is for
PostgreSQL: a flipped byte is found and named."""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

from lifeboat.records import Check, Manifest

_FOOTER_MAGIC = 0xC02893E8  # ~CodecUtil.CODEC_MAGIC: every Lucene file (and ES metadata blob) ends with it


def lucene_footer_problem(parts: list[Path]) -> str | None:
    """None if the blob (one file, or its .partN chunks in order) ends with a valid Lucene footer
    whose CRC32 matches the bytes before it; else what is wrong."""
    sizes = [p.stat().st_size for p in parts]
    total = sum(sizes)
    if total < 16:
        return f"{total} bytes: too short for a Lucene footer"
    crc, left = 0, total - 8
    footer_head = b""
    tail = b""
    for p in parts:
        with open(p, "rb") as fh:
            while True:
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                if left > 0:
                    use = chunk[:left]
                    crc = zlib.crc32(use, crc)
                    footer_head = (footer_head + use)[-8:]
                    left -= len(use)
                    chunk = chunk[len(use):]
                tail += chunk
    magic, algo = struct.unpack(">ii", footer_head)
    if magic & 0xFFFFFFFF != _FOOTER_MAGIC or algo != 0:
        return "no Lucene footer (truncated or overwritten)"
    (expected,) = struct.unpack(">q", tail[-8:])
    if expected != crc:
        return f"CRC32 {crc:08x} does not match the footer's {expected & 0xFFFFFFFF:08x} (corrupt)"
    return None


def check_blobs(m: Manifest, info: dict, cache: dict[str, str | None], since: float | None = None,
                default_root: str = "") -> Check:
    """CRC32 of every blob of the snapshot's indices against its Lucene footer (fs repositories);
    with `since` (epoch seconds) only the blobs written from then on, i.e. by this snapshot. `default_root`
    is the region's copy of the repository (the manifest names the one it was written to)."""
    name = "repository blob checksums"
    root = Path(default_root or m.native.get("repository_location") or "")
    try:
        gen = int.from_bytes((root / "index.latest").read_bytes(), "big")
        data = json.loads((root / f"index-{gen}").read_bytes())
    except FileNotFoundError as exc:
        return Check(name=name, ok=False, detail=f"{exc.filename} is missing from the repository")
    except PermissionError:
        return Check(name=name, ok=True, detail=f"skipped: {root} is not readable from this worker")
    except (OSError, ValueError) as exc:
        return Check(name=name, ok=True, detail=f"skipped: cannot read the repository index under {root}: {exc}")
    uuid = info["uuid"]
    folders = {n: v["id"] for n, v in (data.get("indices") or {}).items() if uuid in v.get("snapshots", [])}
    problems = [f"{i}: not in the repository index ({root}/index-{gen})" for i in info.get("indices", [])
                if i not in folders]
    blobs: dict[str, list[Path]] = {}
    for f in (root / f"snap-{uuid}.dat", root / f"meta-{uuid}.dat"):
        blobs[str(f)] = [f]
    for folder in folders.values():
        base = root / "indices" / folder
        if not base.is_dir():
            problems.append(f"{base}: folder missing")
            continue
        for p in sorted(base.rglob("*")):
            if p.is_file() and (since is None or p.stat().st_mtime >= since):
                key = re.sub(r"\.part\d+$", "", str(p))
                blobs.setdefault(key, []).append(p)
    n_bytes = 0
    for key, parts in blobs.items():
        parts.sort(key=lambda p: int(m_.group(1)) if (m_ := re.search(r"\.part(\d+)$", p.name)) else 0)
        if key not in cache:
            try:
                cache[key] = lucene_footer_problem(parts)
            except FileNotFoundError:
                cache[key] = "missing"
        n_bytes += sum(p.stat().st_size for p in parts if p.exists())
        if cache[key]:
            problems.append(f"{key}: {cache[key]}")
    return Check(name=name, ok=not problems,
                 detail="; ".join(problems[:20]) + (f" (+{len(problems) - 20} more)" if len(problems) > 20 else "")
                 if problems else f"{len(blobs)} {'' if since is None else 'new '}blobs ({n_bytes / 1e6:.1f} MB) "
                                  "match their Lucene CRC32 footers")
