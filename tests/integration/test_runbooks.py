"""Runbooks generated from the inventory and a real file:// catalog in both regions, then read with
the primary region's copy gone -- by the CLI, as a person would without Airflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lifeboat.runbooks import SCENARIOS, jobs
from tests.ops_seed import NOW, seed

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def catalog(tmp_path):
    return seed(tmp_path, NOW)


def _newest_verified(catalog, series: str) -> str:
    failed = set(catalog["failed_verifications"])
    return max((m for m in catalog["backups"] if m.series == series and m.id not in failed),
               key=lambda m: m.finished_at).id


def test_runbooks_name_newest_verified_backups_commands_contacts_in_both_regions(catalog):
    out = jobs.generate(inventory=catalog["inv"], now=NOW)
    assert sorted(out["pages"]) == sorted(["runbooks/index.md", "runbooks/datastores/postgres.md",
                                           *(f"runbooks/scenarios/{s}.md" for s in SCENARIOS)])
    repo = catalog["repo"]
    for st in (repo.primary, repo.mirror_storage):
        for page in out["pages"]:
            assert st.exists(page) and st.exists(page[:-3] + ".html"), f"{st.url}/{page}"
    text = repo.mirror_storage.get_bytes("runbooks/datastores/postgres.md").decode()
    physical, logical = _newest_verified(catalog, "physical"), _newest_verified(catalog, "logical")
    assert f"`{physical}`" in text and f"`{logical}`" in text
    m = next(m for m in catalog["backups"] if m.id == physical)
    assert m.restore_hint in text  # the backup's own standard-tool command, ids filled in
    assert "pgbackrest --stanza=community --pg1-path=/var/lib/postgresql/15/main --delta restore" in text  # docs
    assert "pg_restore --jobs=4 --dbname=community community.dir" in text
    for email in ("dr-manager@community.example.com", "sysadmin@community.example.com", "dba@community.example.com",
                  "security@community.example.com"):
        assert email in text
    assert "1. **on-call engineer** after 0.0s" in text and "- [ ] " in text
    html = repo.primary.get_bytes("runbooks/scenarios/region-loss.html").decode()
    assert '<input type="checkbox" disabled>' in html and physical in html


def test_runbook_cli_prints_from_the_standby_copy_when_the_primary_is_gone(catalog, tmp_path):
    jobs.generate(inventory=catalog["inv"], now=NOW)
    shutil.rmtree(tmp_path / "us-west-2")  # the primary region's catalog is gone
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update({"PYTHONPATH": str(ROOT / "plugins"), "LIFEBOAT_INVENTORY": str(catalog["inventory"])})
    res = subprocess.run([sys.executable, "-m", "lifeboat", "runbook", "region-loss"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("# Runbook: Scenario 1: loss of the primary region")
    assert _newest_verified(catalog, "physical") in res.stdout and "us-east-1" in res.stderr
    res = subprocess.run([sys.executable, "-m", "lifeboat", "runbook", "nope"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 1 and "no such runbook" in res.stderr and "scenarios/region-loss.md" in res.stderr
