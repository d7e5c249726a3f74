"""pgBackRest, as the postgres engine drives it: one wrapper for every call (config, stanza, OS user)."""

from __future__ import annotations

import configparser
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from lifeboat.datastores.postgres.options import PostgresOptions
from lifeboat.datastores.postgres.wal import seg_no
from lifeboat.durations import seconds
from lifeboat.errors import CommandFailed, Refused
from lifeboat.runners import CommandResult, Runner

log = logging.getLogger(__name__)


class PgBackRest:
    """`config`: the region's pgbackrest.conf (its pg1 host, its copy of the repository)."""

    def __init__(self, runner: Runner, options: PostgresOptions, datastore: str, config: str | None = None):
        self.runner = runner
        self.options = options
        self.datastore = datastore
        self.stanza = options.stanza
        self.config = config or options.pgbackrest_config

    def run(self, *args: str, capture: bool = False, timeout: float | None = None, check: bool = True) -> CommandResult:
        argv = ["pgbackrest", f"--config={self.config}", f"--stanza={self.stanza}", *args]
        return self.runner.run(argv, as_user=self.options.os_user, capture=capture, timeout=timeout, check=check)

    def version(self) -> str:
        return self.runner.run(["pgbackrest", "version"], capture=True, quiet=True).stdout.strip()

    def info(self) -> dict[str, Any]:
        data = json.loads(self.run("info", "--output=json", capture=True, timeout=120).stdout or "[]")
        return next((st for st in data if st.get("name") == self.stanza), {})

    def labels(self) -> set[str]:
        return {b["label"] for b in self.info().get("backup", [])}

    @staticmethod
    def find_annotated(info: dict[str, Any], backup_id: str) -> dict[str, Any] | None:
        """The pgBackRest set a Lifeboat backup annotated with its id (a retried task finds its own)."""
        for b in info.get("backup", []):
            if (b.get("annotation") or {}).get("lifeboat-id") == backup_id:
                return b
        return None

    def backup(self, kind: str, backup_id: str) -> dict[str, Any]:
        """The set annotated with `backup_id`: an existing one (retried task), else a new backup."""
        return self.take(kind, backup_id) or self.annotated(backup_id)

    def take(self, kind: str, backup_id: str) -> dict[str, Any] | None:
        """Run `pgbackrest backup` annotated with `backup_id`; None when it ran, the existing set when a
        retried task finds its own (then nothing runs). The stanza is created where it is missing."""
        info = self.info()
        if not info or info.get("status", {}).get("code") not in (0, 2):
            # 0 ok, 2 no backups yet; anything else (missing stanza) -> create it (idempotent).
            self.run("stanza-create", timeout=300)
            info = self.info()
        found = self.find_annotated(info, backup_id)
        if found is not None:
            log.info("pgBackRest set %s for %s already exists (retried task): reusing it", found["label"], backup_id)
            return found
        self.run(f"--type={kind}", f"--annotation=lifeboat-id={backup_id}", "backup",
                 timeout=seconds(self.options.backup_timeout))
        return None

    def annotated(self, backup_id: str) -> dict[str, Any]:
        """The set annotated with `backup_id` in `pgbackrest info`; CommandFailed when there is none."""
        found = self.find_annotated(self.info(), backup_id)
        if found is None:
            raise CommandFailed(["pgbackrest", "info"], 0,
                                f"backup annotated lifeboat-id={backup_id} not found after backup")
        return found

    def manifest_sha256(self, label: str) -> str:
        """sha256 of the set's backup.manifest as pgBackRest stores it (recorded, then re-checked)."""
        raw = self.run("repo-get", f"backup/{self.stanza}/{label}/backup.manifest", capture=True, timeout=300).stdout
        return hashlib.sha256(raw.encode()).hexdigest()

    def expire(self, label: str) -> None:
        self.run(f"--set={label}", "expire", timeout=3600)

    def restore(self, pg1_path: Path, label: str, target_args: list[str], timeout: float,
                archive_off: bool = True) -> None:
        """`pgbackrest restore` of set `label` into `pg1_path`; `archive_off` (scratch and new recovery
        targets) writes archive_mode=off, so the restored instance never pushes WAL into this stanza."""
        self.run(f"--pg1-path={pg1_path}", f"--set={label}", *(["--archive-mode=off"] if archive_off else []),
                 *target_args, "restore", timeout=timeout)

    def archive_get(self, segment: str, dest: Path, timeout: float = 300) -> bool:
        """Fetch one archived WAL segment (decompressed) to `dest`; False when it is not in the archive."""
        return self.run("archive-get", segment, str(dest), check=False, timeout=timeout).returncode == 0

    def check(self) -> CommandResult:
        return self.run("check", capture=True, check=False, timeout=300)

    def verify(self) -> dict[str, Any]:
        """Run `pgbackrest verify` once (it reads every file of the repository) and parse it."""
        r = self.run("--output=text", "--verbose", "--log-level-console=info", "verify", capture=True, check=False,
                     timeout=24 * 3600)
        text = r.stdout + "\n" + r.tail
        return {
            "returncode": r.returncode,
            "text": text,
            "files": re.findall(r"INFO: ((?:invalid|missing)[^'\n]*) '([^']+)'", text),
            "status": dict(re.findall(r"backup: (\S+), status: (\w+)", text)),
        }

    def archived_segments(self) -> dict[int, set[int]]:
        r = self.run("repo-ls", "--recurse", "--output=json", f"archive/{self.stanza}", capture=True, timeout=600)
        segs: dict[int, set[int]] = {}
        for name in json.loads(r.stdout or "{}"):
            base = name.rsplit("/", 1)[-1]
            if re.match(r"^[0-9A-F]{24}-[0-9a-f]{40}", base):
                tli, no = seg_no(base[:24])
                segs.setdefault(tli, set()).add(no)
        return segs

    def repo_conf(self) -> dict[str, str]:
        """pgbackrest.conf's [global] merged with the stanza's section."""
        cp = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            with open(self.config) as fh:
                cp.read_file(fh)
        except OSError as exc:
            field = "pgbackrest_config" if self.config == self.options.pgbackrest_config else "pgbackrest_configs"
            raise Refused(f"datastores.{self.datastore}.options.{field}: cannot read {exc.filename}: "
                          f"{exc.strerror}") from None
        merged = dict(cp["global"]) if cp.has_section("global") else {}
        if cp.has_section(self.stanza):
            merged.update(cp[self.stanza])
        return merged
