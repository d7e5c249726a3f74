"""The FastAPI app behind the DR page, mounted in Airflow's API server at /lifeboat.

Authentication is Airflow's own: every JSON endpoint depends on `requires_authenticated()`, which
accepts the `_token` cookie that Airflow's login sets (HttpOnly, SameSite=Lax, so the page's
same-origin fetches from inside the Airflow UI's iframe carry it) or an `Authorization: Bearer` JWT
from `POST /auth/token`. Without either: 401; with an invalid token: 403. There is no CORS
middleware, so no other origin's page can read these responses.

The page (`/lifeboat/`) and its two static files hold no data and are served without a login, with a
Content-Security-Policy that allows only same-origin scripts and framing by Airflow itself.

Handlers are plain `def`: reading the catalog is blocking I/O (files or S3), which FastAPI runs in
its threadpool instead of on the API server's event loop.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airflow.api_fastapi.core_api.security import requires_authenticated
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from lifeboat.drills import drill_summary
from lifeboat.layout import Layout
from lifeboat.ui.data import BadRequest, Snapshot, cached_snapshot, drill_detail

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
_STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
    "icon-dark.svg": "image/svg+xml",
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
_JSON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

RegionQuery = Query(default=None, description="Region whose catalog copy to read (default: $LIFEBOAT_REGION, "
                                              "else the inventory's primary); falls back to the other one")


def _json(data: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status_code, headers=_JSON_HEADERS)


def _snapshot(region: str | None) -> Snapshot | JSONResponse:
    try:
        return cached_snapshot(region)
    except BadRequest as exc:
        return _json({"detail": str(exc)}, 400)


def _unusable(snap: Snapshot) -> JSONResponse:
    return _json({"detail": snap.message, "source": snap.source()}, 503)


def create_app() -> FastAPI:
    app = FastAPI(
        title="Lifeboat: Disaster Recovery",
        description="Drill results, objectives and backup health from the Lifeboat catalog.",
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    authenticated = [Depends(requires_authenticated())]

    @app.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("DR page: %s %s failed", request.method, request.url.path, exc_info=exc)
        return _json({"detail": f"internal error in the DR page ({type(exc).__name__}: {exc}); "
                                "the Airflow API server log has the details"}, 500)

    # -- the page ---------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return Response((STATIC / "index.html").read_bytes(), media_type="text/html; charset=utf-8",
                        headers=_PAGE_HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC_FILES:
            return _json({"detail": "not found"}, 404)
        return Response((STATIC / name).read_bytes(), media_type=_STATIC_FILES[name], headers=_PAGE_HEADERS)

    # -- JSON, behind Airflow's authentication -------------------------------------------------------
    @app.get("/health", dependencies=authenticated)
    def health(region: str | None = RegionQuery) -> JSONResponse:
        """Where the catalog was read from, whether it was usable, and what could not be read."""
        snap = _snapshot(region)
        if isinstance(snap, JSONResponse):
            return snap
        body = snap.source()
        body["counts"] = {
            "datastores": len(snap.datastores),
            "backups": sum(d["backups"]["count"] for d in snap.datastores),
            "drills": len(snap.drills),
            "failing": [d["name"] for d in snap.datastores if d["state"] == "fail"],
        }
        return _json(body)

    @app.get("/datastores", dependencies=authenticated)
    def datastores(region: str | None = RegionQuery) -> JSONResponse:
        """Every datastore: objectives, newest backup age, last verification, latest drill vs objectives."""
        snap = _snapshot(region)
        if isinstance(snap, JSONResponse):
            return snap
        if not snap.usable:
            return _unusable(snap)
        return _json({"source": snap.source(), "datastores": snap.datastores})

    @app.get("/drills", dependencies=authenticated)
    def drills(region: str | None = RegionQuery, datastore: str | None = None,
               limit: int = Query(default=500, ge=1, le=5000)) -> JSONResponse:
        """Drill history, newest first."""
        snap = _snapshot(region)
        if isinstance(snap, JSONResponse):
            return snap
        if not snap.usable:
            return _unusable(snap)
        now = snap.generated_at
        rows = [drill_summary(d, now) for d in reversed(snap.drills) if datastore in (None, d.datastore)]
        return _json({"source": snap.source(), "drills": rows[:limit], "total": len(rows)})

    @app.get("/drills/{drill_id}", dependencies=authenticated)
    def drill(drill_id: str, region: str | None = RegionQuery) -> JSONResponse:
        """One drill with its step timeline."""
        snap = _snapshot(region)
        if isinstance(snap, JSONResponse):
            return snap
        if not snap.usable:
            return _unusable(snap)
        for d in snap.drills:
            if d.id == drill_id:
                return _json({"source": snap.source(), "drill": drill_detail(d, snap.generated_at)})
        unreadable = [p for p in snap.problems if Layout.drill(drill_id) in p]
        why = f" (its record is unreadable: {unreadable[0]})" if unreadable else ""
        return _json({"detail": f"no drill {drill_id!r} in the catalog at {snap.repository}{why}",
                      "source": snap.source()}, 404)

    from lifeboat.ui.ops import build_router  # /metrics, incidents, reports, runbooks (lifeboat/ui/ops.py)

    app.include_router(build_router())
    return app
