"""The flow every failure simulation shares (the fault kinds only say how to inject and undo):

    steady state?  ──no──► record "not steady" and stop (nothing injected)
        │ yes
    marker "injected" (both regions) ─► inject ─► poll the probes for `duration` (a self-healing fault may
    heal sooner) ─► the recovery step (the runbook's, or nothing when the platform heals itself) ─► poll
    until steady state again ─► finally: revert (idempotent) and delete the marker ─► steady state again?
    ─► data lost (heartbeats read back) ─► score, verdict, record (both regions)

Abort: a probe failing continuously for longer than the experiment's `abort_after` ends the fault at
once (the `finally` reverts it) and the record says so. Times are wall-clock, from probe rounds every
`poll_interval`: detection = injection -> the first round with a failing probe; recovery = injection ->
the first round of the steady state that lasted (`steady_polls` all-pass rounds in a row).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from lifeboat.chaos.faults.base import Fault
from lifeboat.chaos.probes import DatastoreProbe, HttpProbe, Probe
from lifeboat.chaos.records import ChaosRecord, Injected, ProbeStats, resilience_score, utcnow
from lifeboat.chaos.settings import ChaosExperiment

log = logging.getLogger(__name__)
STEADY_TIMEOUT_S = 60.0
STALE_MARGIN = timedelta(minutes=5)


class Abort(Exception):
    pass


class _Background:
    """A step run in a thread (the recovery), so the probes keep measuring meanwhile."""

    def __init__(self, fn):
        self._out: list = []
        self._thread = threading.Thread(target=self._run, args=(fn,), name="chaos-recovery", daemon=True)
        self._thread.start()

    def _run(self, fn) -> None:
        try:
            self._out.append(("ok", fn()))
        except Exception as exc:  # re-raised by result() in the experiment's thread
            self._out.append(("error", exc))

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self, timeout: float) -> str:
        self._thread.join(timeout)
        if not self._out:
            return f"still running after {timeout:.0f}s"
        kind, value = self._out[0]
        if kind == "error":
            raise value
        return str(value)


class Experiment:
    def __init__(self, inv, spec: ChaosExperiment, env_name: str, *, record_id: str, store=None,
                 run: dict | None = None, faults: dict[str, type[Fault]] | None = None):
        from lifeboat.chaos.faults import FAULTS

        chaos = inv.chaos
        self.inv, self.spec, self.env_name, self.store = inv, spec, env_name, store
        self.env = chaos.environments[env_name]
        self.poll = chaos.poll_seconds
        self.steady_polls = chaos.steady_polls
        self.fault = (faults or FAULTS)[spec.kind](spec, self.env, inv, record_id)
        self.rec = ChaosRecord(id=record_id, experiment=spec.name, kind=spec.kind, family=spec.family,
                               environment=env_name, target=dict(spec.target), started_at=utcnow(),
                               poll_interval_seconds=self.poll,
                               objective_detect_seconds=spec.objectives.detect.total_seconds(),
                               objective_recover_seconds=spec.objectives.recover.total_seconds(), run=dict(run or {}))
        self.probes: list[Probe] = []
        self.stats: dict[str, ProbeStats] = {}
        self._failing_since: dict[str, datetime] = {}
        self._pass_run_started: datetime | None = None
        self._pass_rounds = 0

    # -- probes ------------------------------------------------------------------------------------
    def _build_probes(self) -> list[Probe]:
        probes: list[Probe] = []
        if self.env.api:
            base = self.env.api.rstrip("/")
            probes.append(HttpProbe("api-health", f"{base}/health", weight=1))
            probes.append(HttpProbe("api-ready", f"{base}/ready", weight=2,
                                    max_latency=float(self.spec.target.get("max_latency", 1.0))))
        probes += self.fault.probes()
        for p in probes:
            p.weight = int(self.spec.probe_weights.get(p.name, p.weight))
        return probes

    def _round(self, pool: ThreadPoolExecutor) -> tuple[datetime, bool]:
        """One poll of every probe (concurrently); updates the stats and the abort clock."""
        results = list(pool.map(lambda p: (p, p.check()), self.probes))
        at = utcnow()  # when the round's results were known: detection and recovery are observed then
        all_ok = True
        for p, (ok, detail) in results:
            st = self.stats[p.name]
            st.polls += 1
            st.last_detail = detail
            if ok:
                st.passes += 1
                self._failing_since.pop(p.name, None)
            else:
                all_ok = False
                st.first_failure_at = st.first_failure_at or at
                st.last_failure_at = at
                self._failing_since.setdefault(p.name, at)
        if all_ok:
            if self._pass_rounds == 0:
                self._pass_run_started = at
            self._pass_rounds += 1
        else:
            self._pass_rounds = 0
            self._pass_run_started = None
        return at, all_ok

    def _sleep_from(self, t0: float) -> None:
        time.sleep(max(0.0, self.poll - (time.monotonic() - t0)))

    def _check_abort(self, at: datetime) -> None:
        limit = self.spec.abort_after.total_seconds()
        for name, since in self._failing_since.items():
            if (at - since).total_seconds() > limit:
                raise Abort(f"probe {name} failing for {(at - since).total_seconds():.1f}s > abort_after {limit:.0f}s "
                            f"({self.stats[name].last_detail})")

    def _steady(self) -> bool:
        return self._pass_rounds >= self.steady_polls

    def _until_steady(self, pool, timeout: float, *, watch: bool, also=lambda: True) -> bool:
        """Poll until `steady_polls` all-pass rounds in a row (and `also()`); with `watch`, detection and
        abort count."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            at, ok = self._round(pool)
            if watch:
                self._observe(at, ok)
            if self._steady() and also():
                return True
            self._sleep_from(t0)
        return False

    def _observe(self, at: datetime, ok: bool) -> None:
        if not ok and self.rec.detected_at is None:
            self.rec.detected_at = at
            self.rec.step("detected", "; ".join(f"{n}: {self.stats[n].last_detail}" for n in self._failing_since))
        self._check_abort(at)

    # -- the flow ----------------------------------------------------------------------------------
    def run(self) -> ChaosRecord:
        rec, spec = self.rec, self.spec
        self.probes = self._build_probes()
        self.stats = {p.name: ProbeStats(name=p.name, kind=p.kind, weight=p.weight) for p in self.probes}
        with ThreadPoolExecutor(max_workers=max(1, len(self.probes)), thread_name_prefix="chaos-probe") as pool:
            rec.steady_before = self._until_steady(pool, STEADY_TIMEOUT_S, watch=False)
            if not rec.steady_before:
                rec.step("not steady", "; ".join(f"{s.name}: {s.last_detail}" for s in self.stats.values()))
                rec.reasons.append("not in steady state before the fault: nothing was injected")
                return self._finish()
            rec.step("steady before", ", ".join(self.stats))
            self._inject_and_watch(pool)
            self._pass_rounds = 0
            rec.steady_after = self._until_steady(pool, spec.recover_timeout.total_seconds(), watch=False)
            rec.step("steady after" if rec.steady_after else "NOT steady after",
                     "; ".join(f"{s.name}: {s.last_detail}" for s in self.stats.values()))
        for p in self.probes:
            if isinstance(p, DatastoreProbe):
                objective = self._rpo(p.name.removeprefix("write-read-"))
                try:
                    rec.data_loss.append(p.data_loss(objective))
                except Exception as exc:  # recorded: a loss that cannot be counted is not "none"
                    rec.reasons.append(f"{p.name}: heartbeats could not be read back: {exc}")
        return self._finish()

    def _inject_and_watch(self, pool) -> None:
        rec, spec, fault = self.rec, self.spec, self.fault
        fault.info = fault.revert_info()
        now = utcnow()
        marker = Injected(id=rec.id, experiment=spec.name, kind=spec.kind, environment=self.env_name, injected_at=now,
                          stale_at=now + spec.duration + spec.abort_after + 2 * spec.recover_timeout + STALE_MARGIN,
                          revert=fault.info)
        if self.store is not None:
            self.store.mark_injected(marker)
        aborted_at = None
        try:
            rec.injected_at = utcnow()
            rec.step("injected", fault.inject())
            self._pass_rounds = 0
            end = time.monotonic() + spec.duration.total_seconds()
            while time.monotonic() < end:
                t0 = time.monotonic()
                at, ok = self._round(pool)
                self._observe(at, ok)
                if fault.self_healing and rec.detected_at is not None and self._steady():
                    break
                self._sleep_from(t0)
            rec.fault_ended_at = utcnow()
            recovery = _Background(fault.recover)  # the probes keep polling while the recovery step runs
            if self._until_steady(pool, spec.recover_timeout.total_seconds(), watch=True, also=recovery.done):
                rec.recovered_at = self._pass_run_started
            rec.step("recovery step", recovery.result(timeout=spec.recover_timeout.total_seconds()))
        except Abort as exc:
            aborted_at = utcnow()
            rec.aborted, rec.abort_reason = True, str(exc)
            rec.fault_ended_at = rec.fault_ended_at or aborted_at
            rec.step("aborted", str(exc))
        finally:
            try:
                rec.step("reverted", fault.revert(fault.info))
                rec.reverted_at = utcnow()
                if self.store is not None:
                    self.store.clear_injected(rec.id)
            except Exception as exc:  # the marker stays: lifeboat_chaos_cleanup retries the revert
                rec.reasons.append(f"revert failed, marker kept for lifeboat_chaos_cleanup: {exc}")
                log.exception("revert of %s failed", rec.id)
        if aborted_at is not None and rec.reverted_at is not None:
            rec.abort_revert_seconds = round((rec.reverted_at - aborted_at).total_seconds(), 3)

    def _rpo(self, datastore: str) -> float | None:
        try:
            return self.inv.objectives_for(datastore).rpo.total_seconds()
        except Exception:
            return None

    def _finish(self) -> ChaosRecord:
        rec = self.rec
        rec.finished_at = utcnow()
        rec.probes = list(self.stats.values())
        rec.score = resilience_score(rec.probes)
        if rec.injected_at and rec.detected_at:
            rec.detect_seconds = round((rec.detected_at - rec.injected_at).total_seconds(), 3)
        if rec.injected_at and rec.recovered_at:
            rec.recover_seconds = round((rec.recovered_at - rec.injected_at).total_seconds(), 3)
        rec.reasons += _reasons(rec)
        rec.verdict = "fail" if rec.reasons else "pass"
        if self.store is not None:
            self.store.save(rec)
        log.info("chaos %s: %s, detect %ss, recover %ss, score %s", rec.id, rec.verdict, rec.detect_seconds,
                 rec.recover_seconds, rec.score)
        return rec


def _reasons(rec: ChaosRecord) -> list[str]:
    if not rec.injected_at:
        return []
    out = []
    if rec.aborted:
        out.append(f"aborted: {rec.abort_reason}")
    if rec.detect_seconds is None:
        out.append("no probe noticed the fault (a check that cannot fail?)")
    elif rec.detect_seconds > rec.objective_detect_seconds:
        out.append(f"detected after {rec.detect_seconds:.1f}s > objective {rec.objective_detect_seconds:.0f}s")
    if not rec.aborted:
        if rec.recover_seconds is None:
            out.append("did not recover within recover_timeout")
        elif rec.recover_seconds > rec.objective_recover_seconds:
            out.append(f"recovered after {rec.recover_seconds:.1f}s > objective {rec.objective_recover_seconds:.0f}s")
    if not rec.steady_after:
        out.append("not back in steady state after the experiment")
    for d in rec.data_loss:
        if d.objective_rpo_seconds is not None and d.lost and d.lost_window_seconds > d.objective_rpo_seconds:
            out.append(f"{d.datastore}: lost {d.lost} writes over {d.lost_window_seconds:.1f}s > RPO "
                       f"{d.objective_rpo_seconds:.0f}s")
    return out

