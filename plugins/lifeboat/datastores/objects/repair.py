"""The guarded repair: copy to the replica exactly the keys the inventory diff finds missing there
(and, only when asked, the different ones). Dry run by default -- it names every key it would copy;
a real run needs `confirm` = "repair <datastore>". Never deletes anything: keys only in the replica
stay (they may be the only copy of something the source lost)."""

from __future__ import annotations

import logging
from typing import Any

from lifeboat.errors import Refused, ServiceError
from lifeboat.objects.diff import DIFFERENT, MISSING, repair_plan

log = logging.getLogger(__name__)


def confirmation(name: str) -> str:
    return f"repair {name}"


def repair(eng, *, dry_run: bool = True, confirm: str = "", include_different: bool = False) -> dict[str, Any]:
    st = eng.run_diff(versions=False)  # current objects: a copy cannot recreate version ids anyway
    plan = repair_plan(st, include_different=include_different)
    summary: dict[str, Any] = {"datastore": eng.name, "source": f"s3://{eng.source.bucket}",
                               "replica": f"s3://{eng.replica.bucket}", "diff": st.summary(),
                               "missing": st.keys(MISSING), "different": st.keys(DIFFERENT),
                               "dry_run": dry_run, "would_copy": plan, "copied": []}
    if dry_run:
        log.info("repair %s (dry run, nothing copied): would copy %d key(s): %s", eng.name, len(plan),
                 ", ".join(plan) or "none")
        return summary
    if confirm != confirmation(eng.name):
        raise Refused(f"confirm: type {confirmation(eng.name)!r} to copy {len(plan)} key(s) to "
                      f"s3://{eng.replica.bucket} (got {confirm!r}); nothing was copied")
    for key in plan:
        src = eng.source.head(key)
        if src is None:  # deleted from the source since the diff: nothing to copy
            log.info("repair %s: %s is gone from the source; skipped", eng.name, key)
            continue
        copied = eng.source.copy_to(eng.replica, key)
        if (copied.etag, copied.size) != (src.etag, src.size):
            raise ServiceError(f"{eng.replica.describe(key)}: copy has ETag {copied.etag} / {copied.size} bytes, "
                               f"the source {src.etag} / {src.size}")
        summary["copied"].append(key)
        log.info("repair %s: copied %s (%d bytes, ETag %s)", eng.name, key, copied.size, copied.etag)
    after = eng.run_diff(versions=False)
    summary["after"] = after.summary()
    left = [k for k in after.keys(MISSING) if k in summary["copied"]]
    if left:
        raise ServiceError(f"repair {eng.name}: still missing after the copy: {', '.join(left)}")
    return summary
