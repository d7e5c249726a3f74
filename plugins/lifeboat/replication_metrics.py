"""The replication metrics hooks (lifeboat.metrics.HOOK_METRICS), computed from the engines' state records
in the catalog at scrape time -- no call to a bucket or a registry, so a scrape stays fast and works
from the standby region when the primary is gone:

    s3_replication_lag     lifeboat_s3_replication_lag_seconds{bucket}       per `objects` datastore: the
                           canary lag (newest arrived canary's lag, or the age of the oldest one still
                           pending -- grows with the clock while replication is stopped), from the canary
                           ledger the heartbeat and the monitor keep (state record `canaries`)
    image_replication_lag  lifeboat_image_replication_lag_seconds{repository}  per repository the standby
                           registry lacks an image in use of: now - when Lifeboat first saw that image (state
                           record `lacking`, written by every monitor run and every replication); 0 series
                           when nothing is lacking

lifeboat.metrics adds these to whatever `register_hook` registered (a registered hook of the same name wins).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from lifeboat.objects import canary

log = logging.getLogger(__name__)

CANARIES, LACKING = "canaries", "lacking"  # the objects / images engines' state record names


def _repo(inv):
    from lifeboat.repository import Repository

    return Repository.readable(inv, os.environ.get("LIFEBOAT_REGION"))[0]


def _parse(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def _states(inv, engine: str, key: str) -> Iterator[dict[str, Any]]:
    """The state document `key` of every enabled datastore of `engine` ({} where none was written yet)."""
    repo = _repo(inv)
    for spec in inv.enabled_datastores():
        if spec.engine == engine:
            yield repo.get_state(spec.name, key) or {}


def s3_replication_lag(inv, now: datetime) -> Iterator[tuple[dict[str, str], float]]:
    for doc in _states(inv, "objects", CANARIES):
        ledger, prefix = doc.get("canaries") or {}, doc.get("canary_prefix")
        if not ledger or not prefix or not doc.get("bucket"):
            continue  # no heartbeat yet: no sample (lifeboat_monitor reports "no canary yet")
        lag = canary.lag([(k, _parse(v)) for k, v in ledger.items()], now, prefix)
        if lag.lag_s is not None:
            yield {"bucket": str(doc["bucket"])}, lag.lag_s


def image_replication_lag(inv, now: datetime) -> Iterator[tuple[dict[str, str], float]]:
    for doc in _states(inv, "images", LACKING):
        for repository, first_seen in sorted((doc.get("repositories") or {}).items()):
            t = _parse(first_seen)
            yield {"repository": repository}, max(0.0, (now - t).total_seconds()) if t else 0.0


HOOKS = {"s3_replication_lag": s3_replication_lag, "image_replication_lag": image_replication_lag}
