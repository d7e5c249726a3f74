"""Operations routes of the DR page's app (mounted at /lifeboat by the Airflow API server):

    GET  /lifeboat/metrics                  Prometheus metrics (lifeboat.metrics). Bearer token = the password
                                            of the Airflow connection `lifeboat_metrics` (Prometheus cannot log in
                                            to Airflow; its JWTs expire). No connection: 503, wrong token: 401.
    GET  /lifeboat/ops/overview             incidents, reports and runbooks in the catalog    (Airflow login)
    POST /lifeboat/incidents/{id}/ack       acknowledge an incident as the logged-in user     (Airflow login)
    GET  /lifeboat/ops/files/{key}          a report or runbook file from the catalog         (Airflow login)
    GET  /lifeboat/chaos/overview           failure simulations: newest run, score trend, quarters (Airflow login)
    GET  /lifeboat/ops/ops.js               the page's operations section (static)

Acknowledging is a POST with a JSON body from the same origin: the `_token` cookie is SameSite=Lax
and there is no CORS middleware, so another site's page can neither send it with a cookie nor read
the answer.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path
from typing import Annotated

from airflow.api_fastapi.core_api.security import GetUserDep, requires_authenticated
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from lifeboat.layout import Layout

log = logging.getLogger(__name__)
METRICS_CONNECTION = "lifeboat_metrics"
STATIC = Path(__file__).with_name("ops_static")
_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "md": "text/markdown; charset=utf-8",
          "json": "application/json", "png": "image/png", "svg": "image/svg+xml"}
_FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data: 'self'; frame-ancestors 'self'"
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _json(data, status_code: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status_code, headers=_NO_STORE)


def metrics_token() -> str | None:
    """The scrape token: the password of Airflow connection `lifeboat_metrics` (None when undefined)."""
    from lifeboat.connections import resolve
    from lifeboat.errors import ConnectionConfigError

    try:
        return resolve(METRICS_CONNECTION).password or None
    except ConnectionConfigError:
        return None


def _repo(region: str | None):
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    inv = load_inventory()
    return inv, *Repository.readable(inv, region)


def build_router() -> APIRouter:
    from lifeboat import metrics as m
    from lifeboat.chaos.jobs import score_samples

    m.register_hook("chaos_scores", score_samples)  # lifeboat_chaos_score{scenario=<experiment>}
    router = APIRouter()
    authenticated = [Depends(requires_authenticated())]

    @router.get("/metrics", include_in_schema=False)
    def metrics(request: Request, region: str | None = None) -> Response:
        from lifeboat import metrics as m

        expected = metrics_token()
        if expected is None:
            return Response(f"metrics disabled: define the Airflow connection {METRICS_CONNECTION!r} (its password is "
                            "the bearer token Prometheus sends)\n", status_code=503, media_type="text/plain")
        got = request.headers.get("authorization", "")
        if not (got.startswith("Bearer ") and hmac.compare_digest(got[7:].strip().encode(), expected.encode())):
            return Response("bearer token required (the password of connection lifeboat_metrics)\n", status_code=401,
                            media_type="text/plain", headers={"WWW-Authenticate": 'Bearer realm="lifeboat-metrics"'})
        try:
            body = m.exposition(region)
        except Exception as exc:  # Prometheus shows it as a failed scrape (up == 0): LifeboatMetricsDown
            log.exception("metrics failed")
            return Response(f"metrics unavailable: {type(exc).__name__}: {exc}\n", status_code=503,
                            media_type="text/plain")
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8", headers=_NO_STORE)

    @router.get("/ops/ops.js", include_in_schema=False)
    def script() -> Response:
        return Response((STATIC / "ops.js").read_bytes(), media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    @router.get("/ops/overview", dependencies=authenticated)
    def overview(region: str | None = None, days: int = Query(default=30, ge=1, le=366)) -> JSONResponse:
        from datetime import timedelta

        from lifeboat.incidents.manager import incident_view
        from lifeboat.incidents.store import IncidentStore
        from lifeboat.records import utcnow

        try:
            _, repo, used, note = _repo(region)
        except Exception as exc:
            return _json({"detail": str(exc)}, 503)
        now = utcnow()
        store = IncidentStore(repo)
        recent = [i for i in store.closed() if (i.resolved_at or i.opened_at) >= now - timedelta(days=days)]
        files = {prefix: sorted(k for k in repo.keys(prefix) if Layout.is_ops_file(k))
                 for prefix in (Layout.report(), Layout.runbook())}
        return _json({"region": used, "fallback": note,
                      "incidents": [incident_view(i, now) for i in store.active() + list(reversed(recent))],
                      "reports": files[Layout.report()], "runbooks": files[Layout.runbook()]})

    @router.get("/chaos/overview", dependencies=authenticated)
    def chaos(region: str | None = None) -> JSONResponse:
        from lifeboat.chaos.jobs import summary

        try:
            inv, _, _, _ = _repo(region)
            return _json(summary(inv, region))
        except Exception as exc:
            return _json({"detail": str(exc)}, 503)

    @router.post("/incidents/{incident_id}/ack", dependencies=authenticated)
    def ack(incident_id: str, user: GetUserDep, payload: Annotated[dict | None, Body()] = None,
            region: str | None = None) -> JSONResponse:
        from lifeboat.errors import Refused
        from lifeboat.incidents.manager import acknowledge

        try:
            inv, repo, _, _ = _repo(region)
            note = str((payload or {}).get("note", ""))[:500]
            record = acknowledge(inv, repo, incident_id, user.get_name(), note=note, via="dr-page")
        except Refused as exc:
            return _json({"detail": str(exc)}, 409)
        log.info("incident %s acknowledged by %s on the DR page", incident_id, user.get_name())
        return _json({"acknowledged": record})

    @router.get("/ops/files/{key:path}", dependencies=authenticated)
    def file(key: str, region: str | None = None) -> Response:
        if not Layout.is_ops_file(key):
            return _json({"detail": f"not a report or runbook key: {key!r}"}, 404)
        _, repo, _, _ = _repo(region)
        if not repo.exists(key):
            return _json({"detail": f"{repo.url_of(key)} does not exist"}, 404)
        ext = key.rsplit(".", 1)[1]
        headers = {**_NO_STORE, "Content-Security-Policy": _FILE_CSP}
        if ext == "pdf":
            headers["Content-Disposition"] = f'inline; filename="{key.replace("/", "_")}"'
        return Response(repo.read(key), media_type=_TYPES[ext], headers=headers)

    return router
