"""Airflow plugin registration: the Disaster Recovery page in Airflow's navigation.

- `fastapi_apps`: the DR page's FastAPI app, mounted by the API server at /lifeboat (page + JSON
  endpoints behind Airflow's authentication; see lifeboat/ui/app.py).
- `external_views`: the "Disaster Recovery" nav entry; Airflow shows /lifeboat/ in an iframe at
  /plugin/disaster-recovery.

Importing this module is cheap and cannot fail on configuration: every Airflow component imports
plugins, so nothing here reads the inventory or the repository, and the FastAPI app is only built on
the API server's first request to it.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlparse

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

from lifeboat.ui import MOUNT, URL_ROUTE, LazyApp

# The iframe's src is resolved against the host, so it carries the path Airflow is served under.
_ROOT = urlparse(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


class LifeboatPlugin(AirflowPlugin):
    name = "lifeboat"
    # Airflow reads these as class attributes (plugin configuration), never per instance.
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [{"app": LazyApp(), "url_prefix": MOUNT, "name": "Lifeboat DR page"}]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Disaster Recovery",
            "href": f"{_ROOT}{MOUNT}/",
            "destination": "nav",
            "url_route": URL_ROUTE,
            "nav_top_level": True,
            "icon": f"{_ROOT}{MOUNT}/static/icon.svg",
            "icon_dark_mode": f"{_ROOT}{MOUNT}/static/icon-dark.svg",
        }
    ]
