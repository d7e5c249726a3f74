"""Redis verification: redis-check-rdb / redis-check-aof on the stored files, the sample file's digest."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from lifeboat.datastores.redis.sample import SAMPLE_FILE, sample_digest
from lifeboat.datastores.redis.server import RDB_FILE
from lifeboat.records import Check, Manifest
from lifeboat.runners import Runner


class RedisChecks:
    """The checks of one backup, run on a local copy of its folder; every problem names the file by
    its repository URL (`url(m, rel)`)."""

    def __init__(self, runner: Runner, check_rdb_bin: str, check_aof_bin: str, aof_dirname: str, timeout: float,
                 url: Callable[[Manifest, str], str]):
        self.runner, self.check_rdb_bin, self.check_aof_bin = runner, check_rdb_bin, check_aof_bin
        self.aof_dirname, self.timeout, self.url = aof_dirname, timeout, url

    def rdb(self, m: Manifest, local: Path) -> Check:
        path = local / RDB_FILE
        name = self.url(m, RDB_FILE)
        if not path.is_file():
            return Check(name="redis-check-rdb", ok=False, detail=f"{name}: missing")
        r = self.runner.run([self.check_rdb_bin, str(path)], capture=True, check=False, quiet=True,
                            timeout=self.timeout)
        out = r.stdout + "\n" + r.tail
        if r.returncode != 0 or "RDB looks OK" not in out:
            err = [ln for ln in out.splitlines()
                   if re.search(r"ERROR|Unexpected|Wrong|Invalid|failed|mismatch", ln, re.I)
                   and "additional info" not in ln]
            return Check(name="redis-check-rdb", ok=False,
                         detail=f"{name}: {'; '.join(err[:3]) or out.strip()[-600:]} "
                                f"(redis-check-rdb exit {r.returncode})")
        read = re.search(r"\[info\] (\d+) keys read", out)
        keys_read = int(read.group(1)) if read else None
        counted = sum(v for k, v in m.counts.items() if k.endswith(".keys"))
        if keys_read is not None and keys_read < counted:
            return Check(name="redis-check-rdb", ok=False,
                         detail=f"{name}: holds {keys_read} keys but the manifest counted {counted} at backup time")
        return Check(name="redis-check-rdb", ok=True,
                     detail=f"{name}: RDB looks OK (checksum verified), {keys_read} keys read "
                            f"({counted} live at backup time)")

    def aof(self, m: Manifest, local: Path) -> Check:
        d = local / m.native.get("aof_dirname", self.aof_dirname)
        manifest = d / m.native.get("manifest_file", "appendonly.aof.manifest")
        base = self.url(m, d.name)
        if not manifest.is_file():
            return Check(name="redis-check-aof", ok=False, detail=f"{base}/{manifest.name}: missing")
        r = self.runner.run([self.check_aof_bin, str(manifest)], capture=True, check=False, quiet=True,
                            timeout=self.timeout)
        out = r.stdout + "\n" + r.tail
        if r.returncode == 0 and "are valid" in out:
            n = len(re.findall(r"AOF analyzed", out))
            return Check(name="redis-check-aof", ok=True, detail=f"{base}/{manifest.name}: all {n} AOF files valid")
        bad = re.search(r"AOF (\S+) is not valid", out)
        if bad:
            culprit = bad.group(1)
        else:  # e.g. a damaged base RDB: the last file redis-check-aof started to read
            names = re.findall(r"Checking RDB file (\S+)|filename=([^,\s]+)", out)
            culprit = next((a or b for a, b in reversed(names)), manifest.name)
        reasons = [ln.strip() for ln in out.splitlines()
                   if re.search(r"Expected|Unexpected|ERROR|not sane|Bad|invalid|ok_up_to", ln, re.I)]
        return Check(name="redis-check-aof", ok=False,
                     detail=f"{base}/{Path(culprit).name}: {'; '.join(reasons[:3]) or out.strip()[-600:]} "
                            f"(redis-check-aof exit {r.returncode})")

    def sample_file(self, m: Manifest, local: Path) -> Check:
        name = self.url(m, SAMPLE_FILE)
        try:
            doc = json.loads((local / SAMPLE_FILE).read_text())
            ok = sample_digest(doc["entries"]) == m.native["sample"]["digest"] == doc["digest"]
        except (OSError, ValueError, KeyError) as exc:
            return Check(name="sample digest", ok=False, detail=f"{name}: unreadable ({exc})")
        return Check(name="sample digest", ok=ok,
                     detail=f"{name}: {len(doc['entries'])} sampled keys, digest "
                            f"{'matches' if ok else 'DIFFERS from'} the manifest")
