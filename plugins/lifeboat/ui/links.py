"""URLs into the DR page, and an operator extra link that opens a drill's record there.

The Airflow UI shows the page in an iframe at `/plugin/disaster-recovery`; everything after that path
is handed to the iframe (`/plugin/disaster-recovery/lifeboat/?drill=<id>` opens `/lifeboat/?drill=<id>`),
so these links are shareable and survive a reload.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlparse

from lifeboat.ui import MOUNT, URL_ROUTE


def _root() -> str:
    """The path Airflow is served under (`[api] base_url`), '' when at the host's root."""
    try:
        from airflow.configuration import conf

        base = conf.get("api", "base_url", fallback="") or ""
    except Exception:
        base = ""
    return urlparse(base).path.rstrip("/")


def page_url(drill_id: str | None = None, region: str | None = None) -> str:
    """Path of the DR page inside Airflow's UI, optionally opened on one drill."""
    params = {k: v for k, v in (("region", region), ("drill", drill_id)) if v}
    query = f"?{urlencode(params)}" if params else ""
    return f"{_root()}/plugin/{URL_ROUTE}{MOUNT}/{query}"


def dag_run_url(dag_id: str, run_id: str) -> str:
    return f"{_root()}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _operator_link_base():
    from airflow.sdk import BaseOperatorLink

    return BaseOperatorLink


class DrillRecordLink(_operator_link_base()):  # type: ignore[misc]
    """Extra link on RestoreTestOperator: the drill's record on the DR page.

    The operator sets `self.drill_id` in execute(); the task runner calls get_link() when the task
    finishes (pass or fail) and stores the URL as an XCom, which the UI shows as a button."""

    name = "Drill record (DR page)"

    def get_link(self, operator, *, ti_key) -> str:
        drill_id = getattr(operator, "drill_id", None)
        return page_url(drill_id) if drill_id else ""
