"""The multi-part AOF directory: its manifest, a consistent copy while Redis appends, a cut-off tail.

The copy is taken only while no rewrite is in progress; the AOF manifest and `aof_rewrites` are read
before and after the copy and the copy is retried if a rewrite slipped in. The last incremental file
is copied up to its size at that moment and cut back to the last complete command
(`redis-check-aof` reports where), so the copy is a consistent prefix of the server's history.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.datastores.redis import host
from lifeboat.errors import CommandFailed, Refused
from lifeboat.records import utcnow
from lifeboat.runners import Runner

log = logging.getLogger(__name__)
AOF_FIELDS = ("aof_rewrite_in_progress", "aof_rewrite_scheduled")


def parse_aof_manifest(text: str) -> list[dict[str, str]]:
    """Lines like `file appendonly.aof.1.base.rdb seq 1 type b` -> [{'file':..., 'seq':..., 'type':...}]."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or line.startswith("#"):
            continue
        if len(parts) % 2:
            raise ValueError(f"unreadable AOF manifest line: {line!r}")
        out.append(dict(zip(parts[0::2], parts[1::2], strict=False)))
    return out


def resp_tail_is_partial(tail: bytes) -> bool:
    """True if `tail` is well-formed AOF content (RESP arrays of bulk strings, `#` annotations) that
    merely stops early -- what a copy taken while Redis was appending looks like. False if malformed."""
    pos, n = 0, len(tail)

    def number(prefix: bytes) -> int | None:
        nonlocal pos
        if tail[pos:pos + 1] != prefix:
            raise ValueError(f"expected {prefix!r} at {pos}")
        end = tail.find(b"\r\n", pos)
        digits = tail[pos + 1:end if end >= 0 else n]
        if end < 0:
            d = digits[:-1] if digits.endswith(b"\r") else digits
            if d and not d.isdigit():
                raise ValueError("bad number")
            return None
        if not digits.isdigit():
            raise ValueError("bad number")
        pos = end + 2
        return int(digits)

    if not tail:
        return False
    try:
        while pos < n:
            if tail[pos:pos + 1] == b"#":
                end = tail.find(b"\r\n", pos)
                if end < 0:
                    return True
                pos = end + 2
                continue
            argc = number(b"*")
            if argc is None:
                return True
            for _ in range(argc):
                if pos >= n:
                    return True
                size = number(b"$")
                if size is None:
                    return True
                if pos + size + 2 > n:
                    rest = tail[pos + size:n] if pos + size <= n else b""
                    return b"\r\n".startswith(rest)
                if tail[pos + size:pos + size + 2] != b"\r\n":
                    raise ValueError("missing CRLF")
                pos += size + 2
        return True  # complete commands only (e.g. a MULTI block cut before its EXEC)
    except ValueError:
        return False


class AofCopy:
    """Copies a live appendonlydir consistently (`wait_not_busy` waits for a running rewrite)."""

    def __init__(self, runner: Runner, check_aof_bin: str, live_dir: str, wait_not_busy: Callable[..., dict]):
        self.runner = runner
        self.check_aof_bin = check_aof_bin
        self.live_dir = live_dir
        self.wait_not_busy = wait_not_busy

    def check(self, manifest: Path) -> Any:
        return self.runner.run([self.check_aof_bin, str(manifest)], capture=True, check=False, quiet=True)

    def copy(self, client: Any, manifest_path: Path, dest: Path,
             attempts: int = 3) -> tuple[list[dict[str, Any]], int, datetime]:
        """Copy base + incr files listed in the AOF manifest while no rewrite runs; retry if one slipped in."""
        for attempt in range(1, attempts + 1):
            before = self.wait_not_busy(client, AOF_FIELDS, "copying the AOF")
            text = manifest_path.read_text()
            entries = [e for e in parse_aof_manifest(text) if e.get("type") in ("b", "i")]
            if not entries or not any(e["type"] == "b" for e in entries):
                raise Refused(f"{manifest_path}: no base file listed; is this a Redis 7 multi-part AOF manifest?")
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            files: list[dict[str, Any]] = []
            try:
                for i, e in enumerate(entries):
                    src = manifest_path.parent / e["file"]
                    limit = src.stat().st_size  # the last incr file grows while we copy: take a prefix
                    n = host.copy_prefix(src, dest / e["file"], limit)
                    files.append({"file": e["file"], "type": e["type"], "bytes": n, "last": i == len(entries) - 1})
            except FileNotFoundError as exc:
                log.warning("AOF file vanished during the copy (%s); a rewrite finished meanwhile", exc.filename)
                continue
            copied = utcnow()
            after = client.info("persistence")
            stable = (manifest_path.read_text() == text
                      and after.get("aof_rewrites") == before.get("aof_rewrites")
                      and not int(after.get("aof_rewrite_in_progress", 0)))
            if not stable:
                log.warning("BGREWRITEAOF started during the AOF copy (attempt %d/%d): copying again",
                            attempt, attempts)
                continue
            (dest / manifest_path.name).write_text("".join(
                f"file {e['file']} seq {e.get('seq', '1')} type {e['type']}\n" for e in entries))
            trimmed = self.trim_partial_tail(dest / manifest_path.name, dest / files[-1]["file"]) \
                if files[-1]["type"] == "i" else 0
            files[-1]["bytes"] -= trimmed
            return files, trimmed, copied
        raise Refused(f"{manifest_path}: an AOF rewrite (BGREWRITEAOF) started during each of {attempts} copy "
                      "attempts; not taking an inconsistent copy. Nothing was changed on the server; try again later")

    def trim_partial_tail(self, manifest: Path, last: Path) -> int:
        """Cut the copied last incr file back to its last complete command (a write may have been in
        flight at the copy's end). Only an incomplete *tail* is cut; damage elsewhere is an error."""
        r = self.check(manifest)
        if r.returncode == 0:
            return 0
        out = r.stdout + "\n" + r.tail
        m = re.search(rf"filename={re.escape(last.name)}, size=(\d+), ok_up_to=(\d+),", out)
        partial = False
        size = ok = 0
        if m and re.search(rf"AOF {re.escape(last.name)} is not valid", out):
            size, ok = int(m.group(1)), int(m.group(2))
            with open(last, "rb") as fh:
                fh.seek(ok)
                partial = resp_tail_is_partial(fh.read(size - ok))
        if not partial:
            raise CommandFailed([self.check_aof_bin, str(manifest)], r.returncode,
                                f"the live AOF in {self.live_dir} does not check clean (damaged, not just an "
                                f"in-flight write at the end):\n{out[-1500:]}")
        with open(last, "r+b") as fh:
            fh.truncate(ok)
        log.info("trimmed %d bytes of an in-flight write from the copy of %s", size - ok, last.name)
        r = self.check(manifest)
        if r.returncode != 0:
            raise CommandFailed([self.check_aof_bin, str(manifest)], r.returncode, (r.stdout + r.tail)[-1500:])
        return size - ok
