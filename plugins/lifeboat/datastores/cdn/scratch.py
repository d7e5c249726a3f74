"""The CDN restore-test target. With `scratch_distribution` (local moto): a scratch distribution created
from the backup (CallerReference `lifeboat-drill-<drill id>`, no aliases -- an alias belongs to one
distribution -- disabled, the backup id and heartbeat in its Comment), read back, compared with the
backup, deleted (disabled, then DeleteDistribution). Without it (production): read-only -- the backup is
turned into the request update-distribution would send, checked, and compared with the live
distribution; nothing is created."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from lifeboat.cdn.compare import ARTIFACT, differences
from lifeboat.datastores.base import ScratchTarget
from lifeboat.drills import DrillRecorder
from lifeboat.errors import LifeboatError, RestoreFailed
from lifeboat.records import Manifest

_HB = re.compile(r"heartbeat (\S+)\)")


class CdnScratch(ScratchTarget):
    teardown_step = "delete scratch distribution"

    def __init__(self, eng, m: Manifest, drill: DrillRecorder):
        self.eng, self.m, self.drill_id = eng, m, drill.drill.id
        self.config: dict[str, Any] = {}
        self.scratch_id: str | None = None
        self.restored: dict[str, Any] = {}
        self.live_diff: list[str] = []

    @property
    def read_only(self) -> bool:
        return not self.eng.options.scratch_distribution

    def precheck(self, drill: DrillRecorder) -> None:
        with drill.step("pre-checks") as s:
            try:
                self.config = self.eng.stored_config(self.m)
            except (ValueError, OSError) as exc:
                raise RestoreFailed(f"{self.eng.ctx.repo.artifact_url(self.m, ARTIFACT)}: {exc}") from None
            s.detail = ("read-only restore test (options.scratch_distribution is off): nothing is created"
                        if self.read_only else f"a scratch distribution lifeboat-drill-{self.drill_id}")

    def request(self) -> dict[str, Any]:
        hb = self.m.position.get("heartbeat_at")
        cfg = json.loads(json.dumps(self.config))
        cfg.update(CallerReference=f"lifeboat-drill-{self.drill_id}", Enabled=False,
                   Aliases={"Quantity": 0},
                   Comment=f"lifeboat drill of {self.m.id} (heartbeat {hb})")  # CloudFront: <= 128 characters
        if len(cfg["Comment"]) > 128:
            raise RestoreFailed(f"scratch Comment longer than CloudFront's 128 characters: {cfg['Comment']!r}")
        return cfg

    def restore(self, drill: DrillRecorder) -> None:
        if self.read_only:
            with drill.step("build the update-distribution request") as s:
                self.restored = self.request()
                s.detail = f"{len(json.dumps(self.restored))} bytes, not sent"
            return
        with drill.step("create scratch distribution from the backup") as s:
            self.scratch_id, _ = self.eng.cloudfront.create(self.request())
            self.restored = self.eng.cloudfront.get_config(self.scratch_id)[0]
            s.detail = f"distribution {self.scratch_id} (disabled, no aliases)"

    def verify(self, drill: DrillRecorder) -> None:
        with drill.step("compare with the backup") as s:
            diff = differences(self.config, self.restored)
            if diff:
                raise RestoreFailed("the restored configuration differs from the backup: " + "; ".join(diff))
            rep = self.eng.check_config(self.restored)
            if not rep.ok:
                raise RestoreFailed("the restored configuration does not fail over: "
                                    + "; ".join(str(f) for f in rep.findings))
            try:
                self.live_diff = differences(self.config, self.eng.cloudfront.get_config(
                    self.eng.options.distribution_id)[0])
            except LifeboatError as exc:
                self.live_diff = [f"live distribution not read: {exc}"]
            s.detail = ("origins, origin groups and behaviors equal to the backup; origin groups fail over; "
                        + ("the live distribution has changed since: " + "; ".join(self.live_diff)
                           if self.live_diff else "the live distribution is unchanged since the backup"))

    def newest_heartbeat(self) -> datetime | None:
        comment = str(self.restored.get("Comment") or "")
        m = _HB.search(comment)
        if not m or m.group(1) == "None":
            return None
        return datetime.fromisoformat(m.group(1))

    def heartbeat_detail(self, hb: datetime | None) -> str:
        return (f"{hb.isoformat()} (the newest heartbeat mark before the configuration was read)" if hb
                else "no heartbeat mark before the backup")

    def teardown(self) -> str:
        if self.scratch_id is None:
            return "nothing was created" if not self.read_only else "read-only: nothing to delete"
        self.eng.cloudfront.delete(self.scratch_id)
        if self.scratch_id in self.eng.cloudfront.list_ids():
            raise RestoreFailed(f"scratch distribution {self.scratch_id} is still listed after its deletion")
        return f"deleted distribution {self.scratch_id}"
