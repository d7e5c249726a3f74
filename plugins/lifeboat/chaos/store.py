"""Chaos records in both regions' catalogs (Repository.put_everywhere, keys from lifeboat.layout)."""

from __future__ import annotations

import logging
from collections import defaultdict

from lifeboat.chaos.records import ChaosRecord, Injected, quarter
from lifeboat.layout import Layout

log = logging.getLogger(__name__)


class ChaosStore:
    def __init__(self, repo):
        self.repo = repo

    def save(self, record: ChaosRecord) -> list[str]:
        return self.repo.put_everywhere(Layout.chaos_experiment(record.id), record.to_json())

    def records(self) -> list[ChaosRecord]:
        return sorted(self.repo.records_anywhere(Layout.chaos_experiment(), ChaosRecord), key=lambda r: r.started_at)

    def mark_injected(self, marker: Injected) -> list[str]:
        return self.repo.put_everywhere(Layout.chaos_injected(marker.id), marker.to_json())

    def clear_injected(self, marker_id: str) -> None:
        self.repo.delete_everywhere(Layout.chaos_injected(marker_id))

    def injected(self) -> list[Injected]:
        """Markers from either region (a marker one region could not delete still counts)."""
        seen: dict[str, Injected] = {}
        for st in self.repo.storages():
            try:
                keys = [o.key for o in st.list(Layout.chaos_injected()) if Layout.is_record(o.key)]
                for key in keys:
                    m = Injected.model_validate_json(st.get_bytes(key))
                    seen.setdefault(m.id, m)
            except Exception as exc:  # the other region's copy still answers
                log.warning("cannot list %s/%s: %s", st.url, Layout.chaos_injected(), exc)
        return sorted(seen.values(), key=lambda m: m.injected_at)


def summary(records: list[ChaosRecord], last: int = 12) -> dict:
    """The DR page's view: per experiment the newest run, its trend (last scores) and per-quarter scores."""
    by_exp: dict[str, list[ChaosRecord]] = defaultdict(list)
    for r in records:
        by_exp[r.experiment].append(r)
    experiments = []
    quarters: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r.score is not None and r.verdict != "running":
            quarters[quarter(r.started_at)].append(r.score)
    for name, runs in sorted(by_exp.items()):
        runs.sort(key=lambda r: r.started_at)
        newest = runs[-1]
        per_q: dict[str, list[float]] = defaultdict(list)
        for r in runs:
            if r.score is not None:
                per_q[quarter(r.started_at)].append(r.score)
        experiments.append({
            "experiment": name, "kind": newest.kind, "family": newest.family, "environment": newest.environment,
            "runs": len(runs), "last": view(newest),
            "trend": [{"id": r.id, "at": r.started_at.isoformat(), "score": r.score, "verdict": r.verdict}
                      for r in runs[-last:]],
            "quarters": {q: round(sum(v) / len(v), 1) for q, v in sorted(per_q.items())},
        })
    return {"experiments": experiments,
            "quarters": {q: round(sum(v) / len(v), 1) for q, v in sorted(quarters.items())}}


def view(r: ChaosRecord) -> dict:
    return {"id": r.id, "started_at": r.started_at.isoformat(), "verdict": r.verdict, "score": r.score,
            "detect_seconds": r.detect_seconds, "recover_seconds": r.recover_seconds, "aborted": r.aborted,
            "steady_after": r.steady_after, "reasons": r.reasons,
            "data_lost": sum(d.lost for d in r.data_loss) if r.data_loss else None,
            "run": r.run}
