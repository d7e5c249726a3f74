"""The Disaster Recovery page inside Airflow's UI.

- `app.py`: a FastAPI app mounted in Airflow's API server at `/lifeboat` (registered by
  plugins/lifeboat_plugin.py): the page itself (`/lifeboat/`, static, holds no data) and its JSON
  endpoints (`/datastores`, `/drills`, `/drills/{id}`, `/health`), each behind Airflow's own
  authentication (`requires_authenticated()`: the `_token` cookie the Airflow UI sets at login, or an
  `Authorization: Bearer` token). No CORS middleware: only same-origin pages can use them.
- `data.py`: what the page shows, computed from the catalog alone (works from either region).
- `static/`: the page (vanilla JS, inline SVG charts; no build step).
- `links.py`: URLs into the page, e.g. for an operator extra link to a drill.

This module stays import-cheap: the plugin loader imports it in every Airflow component, and only the
API server ever builds the FastAPI app (`LazyApp`, on its first request).
"""

from __future__ import annotations

import threading
from typing import Any

MOUNT = "/lifeboat"
URL_ROUTE = "disaster-recovery"


class LazyApp:
    """An ASGI app that builds the real FastAPI app on its first request.

    Keeps `import lifeboat_plugin` cheap and free of API-server imports in the scheduler, the
    dag-processor and the workers, which load plugins too but never serve them."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    def _build(self):
        with self._lock:
            if self._app is None:
                from lifeboat.ui.app import create_app

                self._app = create_app()
        return self._app

    async def __call__(self, scope, receive, send) -> None:
        app = self._app or self._build()
        await app(scope, receive, send)

    def __repr__(self) -> str:
        return "lifeboat.ui.app:create_app()"
