"""One contract, every engine (after Kanister's integration suite): against the real local stack,
each engine must

1. back up known data, keep it when the live data changes, and restore exactly it into a scratch
   target -- counted there, not taken from the engine's own digest;
2. record that restore test as a drill with an RTO measured between the same two points for every
   engine (pre-checks done .. ready and verified) and an RPO measured from a heartbeat found in the
   restored data;
3. return the very same manifest to a retried backup task;
4. fail verification when one byte of one stored file is flipped, naming that file;
5. never list a backup killed before its manifest as complete.

Per-engine specifics (how to insert, count, change and damage data) are the adapters in
tests/contract/adapters/; a new engine adds an adapter and passes this same suite.
"""

from __future__ import annotations

import pytest

from lifeboat.catalog import Catalog
from lifeboat.drills import DrillRecorder
from lifeboat.inventory import Objectives
from tests.contract.adapters import N, kill_before_manifest

pytestmark = pytest.mark.integration


def recorder(eng, target: str) -> DrillRecorder:
    return DrillRecorder(datastore=eng.name, type_="restore_test", objectives=Objectives(), repo=eng.ctx.repo,
                         target=target, run={"dag_id": "pytest", "run_id": "contract"})


def test_contract_backup_restores_exactly_what_was_inserted_with_a_measured_drill(adapter, unique):
    eng = adapter.engine
    adapter.insert(N)
    assert adapter.count_live() == N
    hb = eng.heartbeat()
    m = eng.backup(adapter.kind, f"contract-{adapter.kind}-{unique}")
    assert m.id in [b.id for b in Catalog(eng.ctx.repo).backups(eng.name)]
    assert eng.backup(adapter.kind, m.id) == m, "a retried task returns the committed manifest"

    adapter.mutate()
    assert adapter.count_live() != N, "the live data changed after the backup"

    target = adapter.target(m)
    rec = recorder(eng, target)
    with eng.restored(m, target, rec) as scratch:
        restored = adapter.count_restored(scratch)
    d = rec.finish()
    assert restored == N, f"restored {restored} of the {N} records inserted before the backup"
    assert adapter.count_live() != N, "the restore test never touches the live datastore"
    assert d.verdict == "pass", d.reasons
    assert all(s.ok for s in d.steps), [(s.name, s.detail) for s in d.steps if not s.ok]
    # The RTO clock: the same two points for every engine, recorded in the drill.
    names = [s.name for s in d.steps]
    assert (d.rto_started_at_step or "").startswith(adapter.first_restore_step), names
    assert (d.rto_stopped_after_step or "").startswith(adapter.last_verify_step), names
    assert names.index(d.rto_started_at_step) <= names.index(d.rto_stopped_after_step) < names.index("newest heartbeat")
    assert 0 < d.rto_seconds < d.objective_rto_seconds
    assert d.ready_at > d.restore_started_at >= d.started_at
    # The RPO: from the heartbeat written before the backup, found in the restored data.
    assert d.newest_heartbeat_at == hb
    assert d.rpo_seconds == pytest.approx((d.started_at - hb).total_seconds())
    assert names[-1] == type(scratch).teardown_step, "the scratch target is torn down last"


def test_contract_flipped_byte_fails_verification_naming_the_file(adapter, unique):
    eng = adapter.engine
    adapter.insert(N)
    m = eng.backup(adapter.kind, f"contract-flip-{unique}")
    (v,) = eng.verify([m])
    assert v.ok, v.problems
    name, undo = adapter.corrupt(m)
    try:
        (v,) = eng.verify([m])
    finally:
        undo()
    assert not v.ok
    assert any(name in p for p in v.problems), (name, v.problems)
    assert Catalog(eng.ctx.repo).last_verification(eng.name, m.id).ok is False, "the failure is stored"
    (repaired,) = eng.verify([m])
    assert repaired.ok, repaired.problems


def test_contract_interrupted_backup_is_never_listed_complete(adapter, unique, tmp_path):
    eng = adapter.engine
    adapter.insert(N)
    kind = adapter.interrupt_kind or adapter.kind
    backup_id = f"contract-killed-{unique}"
    kill_before_manifest(eng, kind, backup_id, tmp_path / "paused")
    try:
        assert eng.ctx.repo.manifest(eng.name, backup_id) is None
        assert backup_id not in [b.id for b in Catalog(eng.ctx.repo).backups(eng.name)]
        if list(eng.ctx.repo.primary.list(eng.ctx.repo.layout.backup(eng.name, backup_id))):
            assert backup_id in eng.ctx.repo.incomplete(eng.name), "artifacts without a manifest are INCOMPLETE"
    finally:
        adapter.forget(backup_id)
